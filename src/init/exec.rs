//! Step 4: handing PID 1 over to systemd.
//!
//! systemd started with `container=` set (WSL passes `container=wsl`) logs to the console,
//! which under WSL nobody reads; `--log-target=kmsg` puts its boot messages where `dmesg`
//! and the journal find them. It comes before our own arguments because systemd applies
//! options in order (the last `--log-target` wins), so an explicit one passed to `/sbin/init`
//! still overrides it. As PID 1, systemd also accepts positional arguments (`emergency`,
//! `rescue`, runlevels) the way it reads them from the kernel command line.

use std::ffi::OsString;
use std::path::Path;

/// The option that makes a container systemd log to the kernel log.
pub(crate) const LOG_TARGET: &str = "--log-target=kmsg";

/// systemd's argv: its own path, [`LOG_TARGET`], then our arguments (`argv[1..]`) unchanged.
pub(crate) fn systemd_argv(systemd: &Path, args: &[OsString]) -> Vec<OsString> {
    let mut argv = vec![systemd.as_os_str().to_owned(), OsString::from(LOG_TARGET)];
    argv.extend(args.iter().cloned());
    argv
}

/// Execs `systemd` with `argv` (as built by [`systemd_argv`]), keeping our environment, which
/// is exactly WSL's, and our fds 0-2. Signal state is reset first: systemd, like any program,
/// expects default dispositions and an empty mask. Returns only on failure.
pub(crate) fn exec_systemd(systemd: &Path, argv: &[OsString]) -> nix::Error {
    crate::sys::signals::reset_for_exec();
    crate::sys::exec::exec(systemd, argv)
}

/// Outside PID 1: exec systemd with argv unchanged (argv[0] included), so that systemd
/// called as `init` does what it does then (act as `telinit`); the signal state is reset as
/// for [`exec_systemd`] (Rust's runtime ignores SIGPIPE). Returns only on failure.
pub(crate) fn exec_as_telinit(systemd: &Path, argv: &[OsString]) -> nix::Error {
    crate::sys::signals::reset_for_exec();
    crate::sys::exec::exec(systemd, argv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::os;

    #[test]
    fn wsl_argv_gets_the_log_target() {
        assert_eq!(
            systemd_argv(Path::new("/s/lib/systemd/systemd"), &[]),
            os(&["/s/lib/systemd/systemd", "--log-target=kmsg"])
        );
    }

    #[test]
    fn our_arguments_follow_so_they_win() {
        assert_eq!(
            systemd_argv(
                Path::new("/s/systemd"),
                &os(&["--log-target=console", "emergency"])
            ),
            os(&[
                "/s/systemd",
                "--log-target=kmsg",
                "--log-target=console",
                "emergency"
            ])
        );
    }
}
