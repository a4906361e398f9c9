//! Replacing the process: `execv(2)` / `execve(2)` from Rust strings.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// Execs `program` with `argv`, and `env` (`None`: keep ours). Returns only on failure, with
/// the errno; a NUL byte in any string is `EINVAL`. The caller resets the signal state first
/// where a fresh program must not inherit ours ([`super::signals::reset_for_exec`]).
pub(crate) fn exec(
    program: &Path,
    argv: &[OsString],
    env: Option<&[(OsString, OsString)]>,
) -> nix::Error {
    let c = |s: &OsStr| CString::new(s.as_bytes()).map_err(|_| nix::Error::EINVAL);
    let prepared = (|| {
        let path = c(program.as_os_str())?;
        let argv = argv.iter().map(|a| c(a)).collect::<nix::Result<Vec<_>>>()?;
        let env = env
            .map(|env| {
                env.iter()
                    .map(|(k, v)| {
                        let mut kv = k.clone().into_vec();
                        kv.push(b'=');
                        kv.extend_from_slice(v.as_bytes());
                        CString::new(kv).map_err(|_| nix::Error::EINVAL)
                    })
                    .collect::<nix::Result<Vec<_>>>()
            })
            .transpose()?;
        Ok((path, argv, env))
    })();
    let (path, argv, env) = match prepared {
        Ok(p) => p,
        Err(e) => return e,
    };
    let result = match &env {
        Some(env) => nix::unistd::execve(&path, &argv, env),
        None => nix::unistd::execv(&path, &argv),
    };
    match result {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_come_back_as_errno() {
        let argv = [OsString::from("x")];
        assert_eq!(
            exec(Path::new("/nonexistent/program"), &argv, None),
            nix::Error::ENOENT
        );
        let nul = [OsString::from("a\0b")];
        assert_eq!(exec(Path::new("/bin/true"), &nul, None), nix::Error::EINVAL);
        let env = [(OsString::from("K"), OsString::from("v\0"))];
        assert_eq!(
            exec(Path::new("/bin/true"), &argv, Some(&env)),
            nix::Error::EINVAL
        );
    }
}
