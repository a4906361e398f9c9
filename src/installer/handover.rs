//! Handing over to the real system: root's login shell from the unpacked `/etc/passwd`,
//! executed with the arguments WSL gave the installer, so `wsl -d NixOS -- cmd` runs `cmd` on
//! the very first launch and returns its exit status.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::session::{is_executable, Invocation, FALLBACK_SHELLS};

/// The shell of the first uid-0 entry of a passwd file; an empty shell field means `/bin/sh`
/// (passwd(5)). `None` if there is no uid-0 entry.
pub fn root_shell(passwd: &[u8]) -> Option<Vec<u8>> {
    for line in passwd.split(|&b| b == b'\n') {
        let fields: Vec<&[u8]> = line.split(|&b| b == b':').collect();
        if fields.len() < 7 || fields[0].is_empty() || fields[0].starts_with(b"#") {
            continue;
        }
        if fields[2] == b"0" {
            let shell = fields[6].strip_suffix(b"\r").unwrap_or(fields[6]);
            return Some(if shell.is_empty() {
                b"/bin/sh".to_vec()
            } else {
                shell.to_vec()
            });
        }
    }
    None
}

/// The argv for the new shell, by the login shell's own rule ([`Invocation::argv_for`]): a
/// login shell (argv[0] starting with `-`, as WSL starts the interactive shell) stays a login
/// shell under the new shell's name; otherwise argv[0] is the shell's path. The arguments are
/// passed on verbatim.
pub fn shell_argv(original: &[OsString], shell: &[u8]) -> Vec<OsString> {
    Invocation::from_argv(original.iter().cloned()).argv_for(Path::new(OsStr::from_bytes(shell)))
}

/// Where the shell's file is: inside `root` for test runs against a temporary root, as is
/// when `root` is `/`.
pub fn program_path(root: &Path, shell: &[u8]) -> PathBuf {
    let rel = Path::new(OsStr::from_bytes(shell));
    if root == Path::new("/") {
        rel.to_path_buf()
    } else {
        root.join(rel.strip_prefix("/").unwrap_or(rel))
    }
}

/// Replaces the process with `program` and `argv`, with the signal state a fresh program
/// expects (Rust's runtime ignores SIGPIPE, which the shell must not inherit). Returns only on
/// failure, with the errno.
pub fn exec(program: &Path, argv: &[OsString]) -> nix::Error {
    crate::sys::signals::reset_for_exec();
    crate::sys::exec::exec(program, argv)
}

/// Shells to offer when the installation cannot proceed (none in a pristine installer system,
/// but a user may have put one there): the login shell's own fallbacks
/// ([`FALLBACK_SHELLS`]) inside `root`, as `(path, argv[0])`.
pub fn fallback_shells(root: &Path) -> Vec<(PathBuf, OsString)> {
    FALLBACK_SHELLS
        .iter()
        .map(|shell| program_path(root, shell.as_bytes()))
        .filter(|path| is_executable(path))
        .map(|path| {
            let name = path.file_name().unwrap_or_default().to_owned();
            (path, name)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::os;

    #[test]
    fn finds_root_shell() {
        let pw = b"# comment\nnobody:x:65534:65534::/:/bin/false\nroot:x:0:0:System administrator:/root:/run/current-system/sw/bin/nixos-wsl-shell\n";
        assert_eq!(
            root_shell(pw).unwrap(),
            b"/run/current-system/sw/bin/nixos-wsl-shell"
        );
        assert_eq!(root_shell(b"root:x:0:0::/root:\n").unwrap(), b"/bin/sh");
        assert_eq!(
            root_shell(b"root:x:0:0::/root:/bin/bash\r\n").unwrap(),
            b"/bin/bash"
        );
        assert_eq!(root_shell(b"user:x:1000:100::/home:/bin/sh\n"), None);
        assert_eq!(root_shell(b"garbage"), None);
    }

    #[test]
    fn login_shells_stay_login_shells() {
        let argv = shell_argv(
            &os(&["-nixos-wsl-installer"]),
            b"/nix/store/x/bin/nixos-wsl-shell",
        );
        assert_eq!(argv, os(&["-nixos-wsl-shell"]));
        let argv = shell_argv(
            &os(&[
                "/nixos-wsl-installer/nixos-wsl-installer",
                "-c",
                "echo hi; exit 3",
            ]),
            b"/bin/sh",
        );
        assert_eq!(argv, os(&["/bin/sh", "-c", "echo hi; exit 3"]));
        let argv = shell_argv(&os(&["-sh", "-c", "x"]), b"sh");
        assert_eq!(argv, os(&["-sh", "-c", "x"]));
    }

    #[test]
    fn program_paths() {
        assert_eq!(
            program_path(Path::new("/"), b"/bin/sh"),
            PathBuf::from("/bin/sh")
        );
        assert_eq!(
            program_path(Path::new("/tmp/r"), b"/bin/sh"),
            PathBuf::from("/tmp/r/bin/sh")
        );
    }
}
