//! Helper programs (systemctl, the admin CLI's probes) run with a bound: a hung systemd must
//! not hang the launch or `nixos-wsl status`.

use std::io::Read;
use std::process::{Command, Stdio};

use nix::unistd::Pid;

use super::deadline::Deadline;

/// How a bounded child ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finished {
    /// Its exit code; `None` when it was killed at the deadline (or died by a signal).
    pub(crate) code: Option<i32>,
    /// True when it did not exit by itself before the deadline and was killed.
    pub(crate) timed_out: bool,
    /// What it wrote on stdout (lossily UTF-8).
    pub(crate) stdout: String,
}

/// Runs `command` with no stdin and stderr discarded, collecting stdout; kills it when
/// `deadline` passes first. The caller sets the program, arguments and environment.
pub(crate) fn run_bounded(command: &mut Command, deadline: Deadline) -> std::io::Result<Finished> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let exited = super::pidfd::open(Pid::from_raw(child.id() as i32))
        .map(|fd| super::pidfd::wait_exit(&fd, deadline))
        // No pidfd (a kernel before 5.3): wait for it without a bound.
        .unwrap_or(true);
    let mut out = Vec::new();
    if let Some(mut stdout) = child.stdout.take() {
        if !exited {
            let _ = child.kill();
            // What it printed before it hung, without waiting for a grandchild that may
            // hold the pipe open.
            let _ = nix::fcntl::fcntl(
                std::os::fd::AsRawFd::as_raw_fd(&stdout),
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            );
        }
        let _ = stdout.read_to_end(&mut out);
    }
    let status = child.wait()?;
    Ok(Finished {
        code: status.code().filter(|_| exited),
        timed_out: !exited,
        stdout: String::from_utf8_lossy(&out).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn collects_and_times_out() {
        let done = run_bounded(
            Command::new("/bin/sh").args(["-c", "echo hi; exit 3"]),
            Deadline::after(Duration::from_secs(10)),
        )
        .unwrap();
        assert_eq!(
            done,
            Finished {
                code: Some(3),
                timed_out: false,
                stdout: "hi\n".into()
            }
        );
        let started = Instant::now();
        let hung = run_bounded(
            Command::new("/bin/sh").args(["-c", "echo partial; exec sleep 30"]),
            Deadline::after(Duration::from_millis(300)),
        )
        .unwrap();
        assert!(hung.timed_out && hung.code.is_none(), "{hung:?}");
        assert_eq!(hung.stdout, "partial\n");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
