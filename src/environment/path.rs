//! PATH policy and the automount root.
//!
//! WSL hands the shell `PATH=<Linux entries>:<translated Windows %PATH% entries>`, the latter
//! under the automount root (`/mnt/c/Windows/system32`, `/mnt/c/Program Files/Git/cmd`).
//! NixOS' set-environment then replaces PATH, often without `:$PATH`. The session PATH is
//! NixOS' entries first, then WSL's Windows entries unless `wsl.interop.includePath` is off;
//! `WSLPATH` always carries the Windows part (NixOS-WSL #32, #57, split-path tests U1-U4).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use super::Env;

/// Where WSL mounts Windows drives unless `/etc/wsl.conf` says otherwise.
pub(crate) const DEFAULT_AUTOMOUNT_ROOT: &str = "/mnt";

/// The Windows part of PATH, exported whether or not PATH includes it.
pub(crate) const WSLPATH: &str = "WSLPATH";

/// The PATH and `WSLPATH` of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionPath {
    pub(crate) path: OsString,
    /// Colon-joined Windows entries; empty when WSL appended none.
    pub(crate) wslpath: OsString,
}

/// Splits a PATH into Linux and Windows entries, each in order, without empty entries or
/// duplicates. Windows entries are drive mounts under `automount_root`: `<root>/<letter>`
/// or below it (so `/mnt/wsl` and `/mnt/wslg` stay Linux, and a root of `/` works).
pub(crate) fn split_windows_path(
    path: &OsStr,
    automount_root: &Path,
) -> (Vec<OsString>, Vec<OsString>) {
    let root = trim_slashes(automount_root.as_os_str().as_bytes());
    let (mut linux, mut windows) = (Vec::new(), Vec::new());
    for entry in entries(path) {
        let list = if is_windows_entry(entry, root) {
            &mut windows
        } else {
            &mut linux
        };
        push_unique(list, entry);
    }
    (linux, windows)
}

/// Combines the PATH WSL gave (`wsl_path`, plus any `WSLPATH` it gave, from an outer launch
/// that dropped the Windows entries) with the PATH after set-environment (`loaded_path`).
///
/// The result is `loaded_path` without WSL's Windows entries, then those entries if
/// `include_windows`; no empty entries, no duplicates, first occurrence wins. A Windows entry
/// that set-environment adds itself (not one WSL gave) is NixOS' and stays where it is.
/// Applying it again to its own output (a nested launch) changes nothing.
pub(crate) fn session_path(
    wsl_path: &OsStr,
    wsl_wslpath: Option<&OsStr>,
    loaded_path: &OsStr,
    automount_root: &Path,
    include_windows: bool,
) -> SessionPath {
    let root = trim_slashes(automount_root.as_os_str().as_bytes());
    let (_, mut windows) = split_windows_path(wsl_path, automount_root);
    for entry in wsl_wslpath.map(entries).into_iter().flatten() {
        if is_windows_entry(entry, root) {
            push_unique(&mut windows, entry);
        }
    }
    let mut path = Vec::new();
    for entry in entries(loaded_path) {
        if !windows.iter().any(|w| w.as_bytes() == entry) {
            push_unique(&mut path, entry);
        }
    }
    if include_windows {
        for entry in &windows {
            push_unique(&mut path, entry.as_bytes());
        }
    }
    SessionPath {
        path: join(&path),
        wslpath: join(&windows),
    }
}

/// [`session_path`] over whole environments: reads `PATH` and `WSLPATH` from `wsl_env` (what
/// WSL gave) and `PATH` from `env` (after set-environment), and sets both in `env`. An
/// empty result removes the variable: an empty PATH would mean "search the current
/// directory" to `execvp`.
pub(crate) fn apply_session_path(
    wsl_env: &Env,
    env: &mut Env,
    automount_root: &Path,
    include_windows: bool,
) {
    let session = session_path(
        wsl_env.get("PATH").unwrap_or_default(),
        wsl_env.get(WSLPATH),
        env.get("PATH").unwrap_or_default(),
        automount_root,
        include_windows,
    );
    for (name, value) in [("PATH", session.path), (WSLPATH, session.wslpath)] {
        if value.is_empty() {
            env.remove(name);
        } else {
            env.set(name, value);
        }
    }
}

/// The non-empty entries of a colon-separated list.
fn entries(list: &OsStr) -> impl Iterator<Item = &[u8]> {
    list.as_bytes()
        .split(|&b| b == b':')
        .filter(|e| !e.is_empty())
}

fn push_unique(list: &mut Vec<OsString>, entry: &[u8]) {
    if !list.iter().any(|e| e.as_bytes() == entry) {
        list.push(OsString::from_vec(entry.to_vec()));
    }
}

fn join(list: &[OsString]) -> OsString {
    OsString::from_vec(
        list.iter()
            .map(|e| e.as_bytes())
            .collect::<Vec<_>>()
            .join(&b':'),
    )
}

fn trim_slashes(mut path: &[u8]) -> &[u8] {
    while let Some(rest) = path.strip_suffix(b"/") {
        path = rest;
    }
    path
}

/// `<root>/<drive letter>` or below; `root` without trailing slashes.
fn is_windows_entry(entry: &[u8], root: &[u8]) -> bool {
    let Some(rest) = entry.strip_prefix(root).and_then(|r| r.strip_prefix(b"/")) else {
        return false;
    };
    matches!(rest, [letter] | [letter, b'/', ..] if letter.is_ascii_alphabetic())
}

/// The automount root from `/etc/wsl.conf`, read as WSL reads it ([`crate::wslconf`]: the
/// first `root` in `[automount]` counts, parsing stops at the first syntax error), trailing
/// slashes dropped (`/mnt/` is `/mnt`). [`DEFAULT_AUTOMOUNT_ROOT`] when absent, empty, not
/// absolute or climbing with `..`.
pub(crate) fn automount_root(wsl_conf: &[u8]) -> PathBuf {
    let parsed = crate::wslconf::parse(wsl_conf, crate::wslconf::WSL_CONF_KEYS);
    let root: PathBuf = parsed
        .get("automount.root")
        .map(|r| Path::new(r).components().collect())
        .unwrap_or_default();
    if root.has_root() && root.components().all(|c| c != Component::ParentDir) {
        root
    } else {
        PathBuf::from(DEFAULT_AUTOMOUNT_ROOT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    fn strings(list: &[OsString]) -> Vec<&str> {
        list.iter()
            .map(|e| e.to_str().unwrap_or("<non-utf8>"))
            .collect()
    }

    const WSL_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/bin:/bin:\
        /mnt/c/Windows/system32:/mnt/c/Program Files/Git/cmd:/mnt/c/Users/me/it's \"q\":\
        /mnt/d:/mnt/wsl/bin:/mnt/wslg/x:/mntx/c:/mnt/c/Windows/system32::";

    #[test]
    fn split_by_drive_mounts() {
        let (linux, windows) = split_windows_path(os(WSL_PATH), Path::new("/mnt"));
        assert_eq!(
            strings(&linux),
            [
                "/usr/local/sbin",
                "/usr/local/bin",
                "/usr/bin",
                "/bin",
                "/mnt/wsl/bin",
                "/mnt/wslg/x",
                "/mntx/c"
            ]
        );
        assert_eq!(
            strings(&windows),
            [
                "/mnt/c/Windows/system32",
                "/mnt/c/Program Files/Git/cmd",
                "/mnt/c/Users/me/it's \"q\"",
                "/mnt/d"
            ]
        );
        // A trailing slash on the root changes nothing.
        assert_eq!(
            split_windows_path(os(WSL_PATH), Path::new("/mnt/")).1,
            windows
        );
    }

    #[test]
    fn split_with_other_roots() {
        let (linux, windows) = split_windows_path(os("/c/Windows:/bin:/cd:/d/"), Path::new("/"));
        assert_eq!(
            (strings(&linux), strings(&windows)),
            (vec!["/bin", "/cd"], vec!["/c/Windows", "/d/"])
        );
        let (linux, windows) = split_windows_path(os("/mnt/c/x:/win/e/y"), Path::new("/win"));
        assert_eq!(
            (strings(&linux), strings(&windows)),
            (vec!["/mnt/c/x"], vec!["/win/e/y"])
        );
    }

    #[test]
    fn split_is_byte_exact() {
        let path = OsString::from_vec(b"/bin/\xff:/mnt/c/\xfe dir".to_vec());
        let (linux, windows) = split_windows_path(&path, Path::new("/mnt"));
        assert_eq!(linux, [OsString::from_vec(b"/bin/\xff".to_vec())]);
        assert_eq!(windows, [OsString::from_vec(b"/mnt/c/\xfe dir".to_vec())]);
    }

    const NIXOS: &str =
        "/home/u/.nix-profile/bin:/etc/profiles/per-user/u/bin:/run/current-system/sw/bin";
    const WINDOWS: &str =
        "/mnt/c/Windows/system32:/mnt/c/Program Files/Git/cmd:/mnt/c/Users/me/it's \"q\":/mnt/d";

    fn session(loaded: &str, include: bool) -> SessionPath {
        session_path(os(WSL_PATH), None, os(loaded), Path::new("/mnt"), include)
    }

    #[test]
    fn nixos_first_then_windows() {
        let s = session(NIXOS, true);
        assert_eq!(s.path, OsString::from(format!("{NIXOS}:{WINDOWS}")));
        assert_eq!(s.wslpath, os(WINDOWS));
        let s = session(NIXOS, false);
        assert_eq!(s.path, os(NIXOS));
        assert_eq!(s.wslpath, os(WINDOWS), "exported even when not included");
    }

    #[test]
    fn windows_entries_move_behind_nixos_entries() {
        // set-environment with `:$PATH`, as `export PATH="/run/wrappers/bin:$PATH"` does.
        let loaded = format!("/run/wrappers/bin:{NIXOS}:{WSL_PATH}:/bin");
        let s = session(&loaded, true);
        let expected = format!(
            "/run/wrappers/bin:{NIXOS}:/usr/local/sbin:/usr/local/bin:/usr/bin:/bin:\
             /mnt/wsl/bin:/mnt/wslg/x:/mntx/c:{WINDOWS}"
        );
        assert_eq!(s.path, OsString::from(expected));
        assert!(!session(&loaded, false)
            .path
            .as_bytes()
            .windows(6)
            .any(|w| w == b"/mnt/c"));
    }

    #[test]
    fn windows_entry_of_nixos_own_stays() {
        let s = session(&format!("/mnt/e/tools:{NIXOS}"), false);
        assert_eq!(s.path, OsString::from(format!("/mnt/e/tools:{NIXOS}")));
    }

    #[test]
    fn nested_launch_is_idempotent() {
        for include in [true, false] {
            let outer = session(NIXOS, include);
            let inner = session_path(
                &outer.path,
                Some(&outer.wslpath),
                &outer.path,
                Path::new("/mnt"),
                include,
            );
            assert_eq!(inner, outer, "include={include}");
        }
    }

    #[test]
    fn apply_to_environments() {
        let wsl: Env = [("PATH", WSL_PATH), ("HOME", "/h")]
            .iter()
            .map(|(n, v)| (OsString::from(n), OsString::from(v)))
            .collect();
        let mut env = wsl.clone();
        env.set("PATH", NIXOS);
        apply_session_path(&wsl, &mut env, Path::new("/mnt"), false);
        assert_eq!(env.get("PATH"), Some(os(NIXOS)));
        assert_eq!(env.get(WSLPATH), Some(os(WINDOWS)));

        let mut env = Env::new();
        apply_session_path(&Env::new(), &mut env, Path::new("/mnt"), true);
        assert_eq!(env, Env::new(), "no empty PATH or WSLPATH");
    }

    #[test]
    fn automount_root_from_wsl_conf() {
        // WSL's reading (src/shared/configfile/configfile.cpp): the first value of a key
        // counts, `;` is no comment, and the first syntax error ends the file.
        let cases = [
            ("", "/mnt"),
            ("[automount]\nroot = /windir/\n", "/windir"),
            ("[AutoMount]\r\n  ROOT=/x//y/ \r\n", "/x/y"),
            (
                "[automount] # c\nroot = \"/quoted dir/\" # comment\n",
                "/quoted dir",
            ),
            ("[automount]\nroot = /\n", "/"),
            ("[automount]\nroot = /a\nroot = /b\n", "/a"),
            ("[automount]\nroot = relative\n", "/mnt"),
            ("[automount]\nroot =\n", "/mnt"),
            ("[automount]\nroot = /../x\n", "/mnt"),
            (
                "[interop]\nroot = /nope\n[automount]\nenabled = true\n",
                "/mnt",
            ),
            (
                "[automount]\n# root = /no\noptions = \"metadata,uid=1000\"\nroot=/yes;x\n",
                "/yes;x",
            ),
            ("[automount]\n; root = /no\nroot = /yes\n", "/mnt"),
            (
                "[automount]\nroot = /first\nthis is not ini\nroot = /later\n",
                "/first",
            ),
            ("[automount\nroot = /x\n", "/mnt"),
            ("[ automount ]\nroot = /x\n", "/mnt"),
        ];
        for (text, root) in cases {
            assert_eq!(automount_root(text.as_bytes()), Path::new(root), "{text:?}");
        }
    }
}
