//! `nixos-wsl logs`: systemd's early output and the activation log of this boot, each under a
//! header, as they are (bytes, not re-encoded).

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;

use super::UsageError;
use crate::paths::INIT_LOG;
use crate::paths::{ACTIVATION_LOG, SYSTEMD_LOG};

pub(crate) const USAGE: &str = "\
usage: nixos-wsl logs

Prints the logs of this boot (they live in /run, so a new boot starts them afresh):
  /run/nixos-wsl/systemd.log     systemd's own output while it starts and stops (its console)
  /run/nixos-wsl/activation.log  the NixOS activation the login shell ran before systemd
  /run/nixos-wsl/init.log        nixos-wsl-init, in WSL's own systemd mode (when present)
Later messages of systemd and its services are in the journal: journalctl -b.

Exit status: 0, or 1 when a log exists but cannot be read.
";

pub(crate) fn parse(args: &[OsString]) -> Result<Option<()>, UsageError> {
    super::no_arguments(args)
}

pub fn main(args: &[OsString]) -> i32 {
    super::dispatch("logs", USAGE, args, parse, run)
}

/// The header line before each log.
pub(crate) fn header(title: &str, path: &str) -> String {
    format!("==> {title}: {path} <==\n")
}

fn run((): ()) -> i32 {
    let mut out = std::io::stdout().lock();
    let mut code = 0;
    let init_log = std::fs::symlink_metadata(INIT_LOG)
        .is_ok()
        .then_some(("nixos-wsl-init", INIT_LOG));
    for (i, (title, path)) in [
        ("systemd's early output", SYSTEMD_LOG),
        ("activation", ACTIVATION_LOG),
    ]
    .into_iter()
    .chain(init_log)
    .enumerate()
    {
        let sep = if i > 0 { "\n" } else { "" };
        let _ = write!(out, "{sep}{}", header(title, path));
        // Never follow a symlink planted in /run/nixos-wsl.
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path);
        let result = file.and_then(|mut f| {
            if !f.metadata()?.is_file() {
                return Err(std::io::Error::other("not a regular file"));
            }
            std::io::copy(&mut f, &mut out).map(drop)
        });
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let _ = writeln!(out, "(not written this boot)");
            }
            Err(e) => {
                let _ = out.flush();
                eprintln!("nixos-wsl logs: cannot read {path}: {e}");
                code = 1;
            }
        }
    }
    let _ = out.flush();
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_name_the_file() {
        assert_eq!(header("activation", "/x"), "==> activation: /x <==\n");
        assert_eq!(parse(&[]), Ok(Some(())));
        assert!(parse(&[OsString::from("-f")]).is_err());
    }
}
