//! Thin wrappers over the syscalls the simulator needs and the `nix` crate does not wrap
//! (pidfd, close_range, TIOCSCTTY, SIOCSIFFLAGS), plus small fd and file helpers.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;

/// Turns a libc return value into a `Result`, like `nix`'s `Errno::result`.
fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `pidfd_open(2)`: a handle that becomes readable when `pid` exits, immune to pid reuse.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Marks every fd from `first` on close-on-exec (`close_range(first, ~0, CLOEXEC)`), so a
/// launched program starts with exactly the fds below `first` while an error pipe above it
/// still works until `execve` succeeds.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: plain syscall with integer arguments; it only changes fd flags.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) })?;
    Ok(())
}

/// Closes the fds `first..=last`.
pub fn close_range(first: u32, last: u32) -> io::Result<()> {
    // SAFETY: plain syscall; called only where no Rust object owns the closed fds any more
    // (PID 1 right before it turns into a reaper).
    check(unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) })?;
    Ok(())
}

/// Makes the terminal `fd` the controlling terminal of the calling session leader.
pub fn set_controlling_tty(fd: RawFd) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an int argument; fd validity is checked by the kernel.
    check(unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) } as libc::c_long)?;
    Ok(())
}

/// Sets a terminal's window size (what a Windows console window would report).
pub fn set_winsize(fd: RawFd, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a `winsize` from the pointer, which is valid for the call.
    check(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) } as libc::c_long)?;
    Ok(())
}

/// Copies the window size of terminal `from` to terminal `to`.
pub fn copy_winsize(from: RawFd, to: RawFd) -> io::Result<()> {
    // SAFETY: winsize is plain old data.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize into the struct we own.
    check(unsafe { libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) } as libc::c_long)?;
    // SAFETY: TIOCSWINSZ reads the struct.
    check(unsafe { libc::ioctl(to, libc::TIOCSWINSZ, &ws) } as libc::c_long)?;
    Ok(())
}

/// Brings the loopback interface of the current network namespace up (all WSL networking
/// is out of scope; services inside only need `lo`).
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: socket(2) with constant arguments.
    let sock =
        check(
            unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) }
                as libc::c_long,
        )?;
    // SAFETY: fresh fd owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(sock as RawFd) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own.
    unsafe {
        check(libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut ifr) as libc::c_long)?;
        ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        check(libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &ifr) as libc::c_long)?;
    }
    Ok(())
}

/// Waits until `fd` is readable or `timeout` passes; `Ok(false)` on timeout.
pub fn wait_readable(fd: RawFd, timeout: Option<Duration>) -> io::Result<bool> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .as_millis()
                .min(i32::MAX as u128) as i32,
        };
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        return Ok(n > 0);
    }
}

/// A pipe whose both ends are close-on-exec.
pub fn pipe() -> io::Result<(File, File)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    Ok((File::from(r), File::from(w)))
}

/// Reads one `\n`-terminated line from `fd` without buffering past it, waiting at most
/// `timeout`. `Ok(None)` at EOF.
pub fn read_line_timeout(file: &mut File, timeout: Duration) -> Result<Option<String>> {
    let deadline = Instant::now() + timeout;
    let mut line = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if !wait_readable(file.as_raw_fd(), Some(left))? {
            bail!(
                "timed out after {timeout:?} waiting for a line (got {:?})",
                String::from_utf8_lossy(&line)
            );
        }
        let mut byte = [0u8];
        match file.read(&mut byte) {
            Ok(0) if line.is_empty() => return Ok(None),
            Ok(0) => return Ok(Some(String::from_utf8_lossy(&line).into_owned())),
            Ok(_) if byte[0] == b'\n' => {
                return Ok(Some(String::from_utf8_lossy(&line).into_owned()))
            }
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("reading a line"),
        }
    }
}

/// Writes a whole message in one `write(2)` where possible (pipes keep it atomic below
/// PIPE_BUF), ignoring a reader that went away.
pub fn send(file: &mut File, msg: &str) {
    let _ = file.write_all(msg.as_bytes());
}

/// A path as a C string.
pub fn cpath(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("paths contain no NUL")
}

/// `kill(2)` that ignores "no such process" (the target may have just exited).
pub fn kill(pid: i32, sig: nix::sys::signal::Signal) -> Result<()> {
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("sending {sig} to {pid}")),
    }
}

/// `(st_dev, st_ino)` of a path: identifies a directory across mount namespaces.
pub fn file_id(path: &Path) -> Result<(u64, u64)> {
    let st = nix::sys::stat::stat(path).with_context(|| format!("stat {}", path.display()))?;
    Ok((st.st_dev as u64, st.st_ino as u64))
}

/// Resets every signal's disposition to SIG_DFL with the raw `rt_sigaction` syscall: libc's
/// wrappers refuse the two realtime signals they use internally (32, 33), and an ignored
/// disposition there would survive exec.
pub fn reset_all_signal_dispositions() {
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads a kernel sigaction we own; sigsetsize is 8 on Linux.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        };
    }
}
