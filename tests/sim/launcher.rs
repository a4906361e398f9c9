//! The `launch` role: what WSL's init does for one session (wsl-behaviour.md section 1),
//! with the launcher process itself standing in for wsl.exe.
//!
//! The launcher moves into the distro's cgroup, joins the namespaces of the distro's PID 1
//! (`/proc/<pid>/ns/*`), checks that `/` is the distro, resolves the user, opens a pty on the
//! distro's devpts, and forks: the child (inside the distro's PID namespace) becomes a
//! session leader with the pty as controlling terminal, takes the credentials, cwd, signal
//! state and environment WSL gives, keeps only fds 0-2, and execs. The launcher stays
//! outside as wsl.exe: it forwards signals, relays the pty in pty mode, and exits with the
//! program's exit code, or with N if signal N killed it. The status pipe protocol is
//! described in launch.rs.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Gid, Uid};

use super::safety::{check_root, HostRoot};
use super::session::{self, program_and_argv, wsl_environment, EnvInputs, Form};
use super::sys;
use super::userdb::{self, Passwd};
use super::{cgroup, RoleArgs};

/// Signals wsl.exe passes on to the Linux process (Ctrl-C and console events arrive as
/// signals there; a test may also signal the launcher).
const FORWARDED: [Signal; 7] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// Entry point of the `launch` role (single-threaded).
pub fn main(args: &RoleArgs) -> i32 {
    // SAFETY: the harness put the status pipe on fd 3; nothing else in this process owns it.
    let mut status = unsafe { File::from_raw_fd(3) };
    // SAFETY: fcntl on our own fd.
    unsafe { libc::fcntl(3, libc::F_SETFD, libc::FD_CLOEXEC) };
    match launch(args, &mut status) {
        Ok(code) => code,
        Err(e) => {
            sys::send(
                &mut status,
                &format!("error {}\n", format!("{e:#}").replace('\n', " ")),
            );
            1
        }
    }
}

/// Everything decided before the fork.
struct Plan {
    user: Passwd,
    gids: Vec<Gid>,
    program: CString,
    argv: Vec<CString>,
    env_inputs: (String, Vec<String>, Vec<(String, String)>, String, String),
    cwd: Option<String>,
    /// WSL's systemd mode and helper-command options (native.rs).
    native: super::native::LaunchArgs,
}

fn launch(args: &RoleArgs, status: &mut File) -> Result<i32> {
    let init_pid: i32 = args.string("init-pid")?.parse()?;
    let stdio = args.string("stdio")?;
    let pty_mode = stdio == "pty";
    let host = HostRoot::record()?;
    // The host's /proc, kept open: after joining the mount namespace, /proc is the
    // distro's, where this process (outside its PID namespace) is invisible.
    let host_proc = File::open("/proc").context("opening /proc")?;

    cgroup::enter(&args.path("cgroup")?, 0)?;
    let ns_files: Vec<(File, CloneFlags)> = [
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ]
    .into_iter()
    .map(|(name, flag)| {
        let path = format!("/proc/{init_pid}/ns/{name}");
        File::open(&path)
            .with_context(|| format!("opening {path}"))
            .map(|f| (f, flag))
    })
    .collect::<Result<_>>()?;
    for (f, flag) in &ns_files {
        setns(f, *flag).with_context(|| format!("joining the distro's {flag:?} namespace"))?;
    }
    drop(ns_files);
    // setns(mnt) moved our root and cwd to the distro's root: prove it before anything runs.
    check_root(host)?;
    nix::unistd::chdir("/")?;

    let plan = plan(args)?;

    // The terminal: a pty of the distro's own devpts instance.
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .context("opening /dev/ptmx")?;
    nix::pty::grantpt(&master)?;
    nix::pty::unlockpt(&master)?;
    let slave_path = nix::pty::ptsname_r(&master)?;
    let slave = File::options()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(&slave_path)
        .with_context(|| format!("opening {slave_path}"))?;
    // The console's size if the launcher runs on a terminal, else 80x24.
    if !(pty_mode && sys::copy_winsize(0, slave.as_raw_fd()).is_ok()) {
        let _ = sys::set_winsize(slave.as_raw_fd(), 24, 80);
    }

    // Block what we forward (and SIGCHLD) before forking so nothing is lost; the child
    // unblocks everything.
    let mut mask = SigSet::empty();
    for s in FORWARDED {
        mask.add(s);
    }
    mask.add(Signal::SIGCHLD);
    mask.thread_block()?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;

    // Closed by a successful exec (close-on-exec), or carries the child's error: the harness
    // learns the pid only once the program really runs.
    let (mut exec_r, mut exec_w) = sys::pipe()?;
    // SAFETY: single-threaded process.
    let child = match unsafe { fork() }? {
        ForkResult::Child => {
            drop(exec_r);
            let err = child_exec(&plan, slave.as_raw_fd(), pty_mode);
            sys::send(&mut exec_w, &err);
            // SAFETY: leave without running the parent's atexit handlers or destructors.
            unsafe { libc::_exit(1) }
        }
        ForkResult::Parent { child } => child,
    };
    drop(exec_w);
    let mut exec_err = String::new();
    let _ = exec_r.read_to_string(&mut exec_err);
    if !exec_err.is_empty() {
        let _ = waitpid(child, None);
        bail!("{exec_err}");
    }
    let pid = child.as_raw();
    let ns_pid = ns_pid_of(&host_proc, pid).unwrap_or(0);
    sys::send(status, &format!("pid {pid} {ns_pid}\n"));
    drop(slave);
    if !pty_mode {
        // Only the distro side may hold the caller's pipes now, so EOF means what it says.
        let null = File::options().read(true).write(true).open("/dev/null")?;
        for fd in 0..3 {
            nix::unistd::dup2(null.as_raw_fd(), fd)?;
        }
    }
    let ws = relay(pid, &master, &sfd, pty_mode);
    let code = session::wsl_exit_code(ws).unwrap_or(1);
    match ws {
        WaitStatus::Signaled(_, sig, _) => sys::send(status, &format!("signal {}\n", sig as i32)),
        _ => sys::send(status, &format!("exit {code}\n")),
    }
    Ok(code)
}

/// Resolves the user and decides argv, program and environment inputs (reading the
/// distro's files, as WSL does at every launch).
fn plan(args: &RoleArgs) -> Result<Plan> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let users = userdb::parse_passwd(&read("/etc/passwd"));
    let user = match args.opt("user") {
        Some(name) => users
            .iter()
            .find(|u| u.name == name)
            .cloned()
            .ok_or_else(|| anyhow!("User not found: {name} (wsl -u {name})"))?,
        None => {
            let default = userdb::wsl_conf_default_user(&read("/etc/wsl.conf"));
            default
                .and_then(|d| users.iter().find(|u| u.name == d).cloned())
                .or_else(|| users.iter().find(|u| u.uid == 0).cloned())
                .unwrap_or_else(Passwd::fallback_root)
        }
    };
    let gids = userdb::groups_of(&read("/etc/group"), &user.name, user.gid)
        .into_iter()
        .map(Gid::from_raw)
        .collect();
    let lang = userdb::lang_from(&read("/etc/default/locale"))
        .or_else(|| userdb::lang_from(&read("/etc/locale.conf")))
        .unwrap_or_else(|| userdb::DEFAULT_LANG.to_string());
    let form = match args.string("form")?.as_str() {
        "login" => Form::Login,
        "command" => Form::Command(args.string("command")?),
        "login-command" => Form::LoginCommand(args.string("command")?),
        "exec" => Form::Exec(args.all("arg")),
        other => bail!("unknown form {other}"),
    };
    let executable = |p: &str| {
        nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok() && Path::new(p).is_file()
    };
    let (program, argv) = program_and_argv(&form, &user, executable).map_err(|e| anyhow!(e))?;
    let wslenv = args
        .all("wslenv")
        .into_iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let cwd = args.string("cwd")?;
    let cwd = if cwd == "~" { user.home.clone() } else { cwd };
    Ok(Plan {
        gids,
        program: CString::new(program)?,
        argv: argv
            .into_iter()
            .map(CString::new)
            .collect::<Result<_, _>>()?,
        env_inputs: (
            lang,
            args.all("winpath"),
            wslenv,
            args.string("hostname")?,
            args.string("distro")?,
        ),
        cwd: Some(cwd),
        user,
        native: super::native::LaunchArgs::parse(args),
    })
}

/// The child: WSL's session setup, then exec. Returns only on failure (the message).
fn child_exec(plan: &Plan, slave: RawFd, pty_mode: bool) -> String {
    let step = || -> Result<std::convert::Infallible> {
        nix::unistd::setsid().context("setsid")?;
        sys::set_controlling_tty(slave).context("TIOCSCTTY")?;
        if pty_mode {
            for fd in 0..3 {
                nix::unistd::dup2(slave, fd)?;
            }
        }
        let (uid, gid) = (Uid::from_raw(plan.user.uid), Gid::from_raw(plan.user.gid));
        // WSL gives the terminal to the user (group tty), then drops privileges.
        nix::unistd::fchown(slave, Some(uid), Some(Gid::from_raw(5))).context("fchown pty")?;
        nix::unistd::setgroups(&plan.gids).context("setgroups")?;
        nix::unistd::setgid(gid).context("setgid")?;
        nix::unistd::setuid(uid).context("setuid")?;
        nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
        // A failing chdir is not fatal: the process stays in `/`.
        nix::unistd::chdir("/")?;
        if let Some(cwd) = &plan.cwd {
            let _ = nix::unistd::chdir(cwd.as_str());
        }
        let (lang, winpath, wslenv, hostname, distro) = &plan.env_inputs;
        let session = wsl_environment(&EnvInputs {
            lang,
            windows_path: winpath,
            wslenv,
            interop_pid: nix::unistd::getpid().as_raw(),
            hostname,
            distro,
            user: &plan.user,
        });
        let env = plan.native.environment(session, plan.user.uid);
        let envp: Vec<CString> = env
            .into_iter()
            .map(|(k, v)| CString::new(format!("{k}={v}")))
            .collect::<Result<_, _>>()?;
        // Fresh signal state: every disposition default (Rust ignores SIGPIPE), empty mask.
        sys::reset_all_signal_dispositions();
        nix::sys::signal::sigprocmask(
            nix::sys::signal::SigmaskHow::SIG_SETMASK,
            Some(&SigSet::empty()),
            None,
        )?;
        if plan.native.ignore_signals {
            super::native::ignore_all_signals();
        }
        // Only fds 0-2 survive exec (the error pipe stays usable until then).
        sys::cloexec_from(3).context("close_range")?;
        nix::unistd::execve(&plan.program, &plan.argv, &envp)
            .with_context(|| format!("exec {:?}", plan.program))
    };
    match step() {
        Ok(never) => match never {},
        Err(e) => format!("{e:#}"),
    }
}

/// The program's pid inside the distro, from the host's /proc.
fn ns_pid_of(host_proc: &File, pid: i32) -> Option<i32> {
    let fd = nix::fcntl::openat(
        Some(host_proc.as_raw_fd()),
        format!("{pid}/status").as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    // SAFETY: fresh fd from openat, owned here.
    let mut f = unsafe { File::from_raw_fd(fd) };
    let mut s = String::new();
    f.read_to_string(&mut s).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|v| v.split_whitespace().last()?.parse().ok())
}

/// wsl.exe's side while the program runs: forward signals, relay the pty (pty mode: the
/// launcher's stdin to the terminal, the terminal to its stdout; pipe mode: terminal output
/// is discarded), and return the program's wait status.
fn relay(pid: i32, master: &nix::pty::PtyMaster, sfd: &SignalFd, pty_mode: bool) -> WaitStatus {
    let child = nix::unistd::Pid::from_raw(pid);
    let mut status = None;
    let mut stdin_open = pty_mode;
    let mut master_open = true;
    let mut out = std::io::stdout();
    let mut buf = [0u8; 16384];
    loop {
        if status.is_some() && (!pty_mode || !master_open) {
            break;
        }
        let mut fds = vec![
            libc::pollfd {
                fd: sfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if master_open { master.as_raw_fd() } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if stdin_open { 0 } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // After the program exited, drain the terminal until it is idle for 200 ms (a
        // background process may keep the slave open).
        let timeout = if status.is_some() { 200 } else { -1 };
        // SAFETY: valid pollfd array for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            if Errno::last() == Errno::EINTR {
                continue;
            }
            break;
        }
        if n == 0 && status.is_some() {
            break;
        }
        if fds[0].revents != 0 {
            while let Ok(Some(info)) = sfd.read_signal() {
                let signo = info.ssi_signo as i32;
                if signo == libc::SIGCHLD {
                    if let Ok(ws @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) =
                        waitpid(child, Some(WaitPidFlag::WNOHANG))
                    {
                        status = Some(ws);
                    }
                } else if signo == libc::SIGWINCH
                    && pty_mode
                    && sys::copy_winsize(0, master.as_raw_fd()).is_ok()
                {
                    // The console was resized: the kernel signals the terminal's foreground
                    // process group itself.
                } else if let Ok(sig) = Signal::try_from(signo) {
                    let _ = sys::kill(pid, sig);
                }
            }
        }
        if master_open && fds[1].revents != 0 {
            match nix::unistd::read(master.as_raw_fd(), &mut buf) {
                Ok(0) | Err(Errno::EIO) => master_open = false,
                Ok(n) => {
                    if pty_mode {
                        let _ = out.write_all(&buf[..n]).and_then(|_| out.flush());
                    }
                }
                Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
                Err(_) => master_open = false,
            }
        }
        if stdin_open && fds[2].revents != 0 {
            match nix::unistd::read(0, &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    let _ = write_all_fd(master.as_raw_fd(), &buf[..n]);
                }
            }
        }
    }
    match status {
        Some(ws) => ws,
        // Only reached if poll failed: wait for real.
        None => waitpid(child, None).unwrap_or(WaitStatus::Exited(child, 1)),
    }
}

fn write_all_fd(fd: RawFd, mut data: &[u8]) -> nix::Result<()> {
    // SAFETY: fd is the pty master, open for the duration of the call.
    let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    while !data.is_empty() {
        match nix::unistd::write(bfd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
