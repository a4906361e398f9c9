//! Replacing the process: `execv(2)` / `execve(2)` from Rust strings.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Execs `program` with `argv`, keeping our environment. Returns only on failure, with the
/// errno; a NUL byte in any string is `EINVAL`. The caller resets the signal state first
/// where a fresh program must not inherit ours ([`super::signals::reset_for_exec`]).
pub(crate) fn exec(program: &Path, argv: &[OsString]) -> nix::Error {
    match (c_string(program.as_os_str()), c_strings(argv)) {
        (Ok(path), Ok(argv)) => match nix::unistd::execv(&path, &argv) {
            Ok(never) => match never {},
            Err(e) => e,
        },
        (Err(e), _) | (_, Err(e)) => e,
    }
}

/// [`exec`] with exactly `env` (`NAME`, value pairs, in order) as the environment.
pub(crate) fn exec_with_env<K: AsRef<OsStr>, V: AsRef<OsStr>>(
    program: &Path,
    argv: &[OsString],
    env: &[(K, V)],
) -> nix::Error {
    let env: nix::Result<Vec<CString>> = env
        .iter()
        .map(|(k, v)| {
            let (k, v) = (k.as_ref().as_bytes(), v.as_ref().as_bytes());
            // Room for `=` and the NUL: one allocation per variable.
            let mut kv = Vec::with_capacity(k.len() + v.len() + 2);
            kv.extend_from_slice(k);
            kv.push(b'=');
            kv.extend_from_slice(v);
            CString::new(kv).map_err(|_| nix::Error::EINVAL)
        })
        .collect();
    match (c_string(program.as_os_str()), c_strings(argv), env) {
        (Ok(path), Ok(argv), Ok(env)) => match nix::unistd::execve(&path, &argv, &env) {
            Ok(never) => match never {},
            Err(e) => e,
        },
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => e,
    }
}

fn c_string(s: &OsStr) -> nix::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| nix::Error::EINVAL)
}

fn c_strings(v: &[OsString]) -> nix::Result<Vec<CString>> {
    v.iter().map(|a| c_string(a)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_come_back_as_errno() {
        let argv = [OsString::from("x")];
        assert_eq!(
            exec(Path::new("/nonexistent/program"), &argv),
            nix::Error::ENOENT
        );
        let nul = [OsString::from("a\0b")];
        assert_eq!(exec(Path::new("/bin/true"), &nul), nix::Error::EINVAL);
        let env = [(OsString::from("K"), OsString::from("v\0"))];
        assert_eq!(
            exec_with_env(Path::new("/bin/true"), &argv, &env),
            nix::Error::EINVAL
        );
    }
}
