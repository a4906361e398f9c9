//! One `wsl.exe` invocation, harness side: [`Launch`] describes it, [`Process`] runs it
//! through the `launch` role (launcher.rs) and collects [`Output`].
//!
//! The launcher process gets the launch's stdin/stdout/stderr and a status pipe on fd 3
//! (one line each: `pid <host pid> <pid in the distro>` once the program runs, then
//! `exit <code>` or `signal <n>`; `error <message>` if the launch itself failed).

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::Signal;

use super::session::Form;
use super::sys::{self, pidfd_open, wait_readable};
use super::{RoleArgs, ROLE_VAR};

/// How the launched program's fds 0-2 are connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stdio {
    /// Three pipes (WSL when none of wsl.exe's stdio is a console); the program still gets a
    /// pty as controlling terminal, like under WSL. Output is captured separately.
    Pipes,
    /// All three on the pty (a console window); the test writes input and reads the
    /// terminal's output (stdout and stderr merged, with `\r\n`).
    Pty,
    /// The harness's own fds 0-2 passed through (the CLI's `run` with pipes or files).
    #[allow(dead_code)] // only examples/wsl-sim.rs passes its terminal or fds through
    Inherit,
    /// A pty relayed to the harness's own terminal, as wsl.exe does in a console window
    /// (the CLI's `shell`; the caller puts its terminal in raw mode).
    #[allow(dead_code)] // only examples/wsl-sim.rs passes its terminal or fds through
    Terminal,
}

impl Stdio {
    fn as_str(self) -> &'static str {
        match self {
            Stdio::Pipes => "pipes",
            Stdio::Pty | Stdio::Terminal => "pty",
            Stdio::Inherit => "inherit",
        }
    }
}

/// One `wsl.exe` invocation, built fluently: `Launch::command("id -u").user("nixos")`.
#[derive(Clone, Debug)]
pub struct Launch {
    pub form: Form,
    /// `-u NAME`; `None` = `[user] default` of the distro's /etc/wsl.conf, else root.
    pub user: Option<String>,
    /// The translated Windows cwd (or `--cd`); `~` = the user's home. Default:
    /// `/mnt/c/Users/me`, i.e. wsl.exe started from `C:\Users\me`.
    pub cwd: String,
    pub stdio: Stdio,
    /// Windows variables named by `WSLENV`, in order (default: Windows Terminal's).
    pub wslenv: Vec<(String, String)>,
    /// Translated Windows `%PATH%` entries appended to `PATH`.
    pub windows_path: Vec<String>,
    /// Bytes written to the program's stdin by [`Launch`]'s `run`; stdin is then closed.
    pub stdin: Vec<u8>,
    /// Whether `run`/`spawn` closes stdin after writing `stdin` (default true).
    pub close_stdin: bool,
    /// Upper bound for the whole launch; on expiry the program and launcher are killed.
    pub timeout: Duration,
    /// WSL's systemd mode: the session also gets the user's `DBUS_SESSION_BUS_ADDRESS` and
    /// `XDG_RUNTIME_DIR` (native.rs; set by `Distro::spawn` for such distros).
    pub wsl_systemd: bool,
    /// Exactly this environment instead of a session's (WSL's own helper commands).
    pub exact_env: Option<Vec<(String, String)>>,
    /// Start the program with every signal ignored (WSL's `login -f`).
    pub ignore_signals: bool,
}

impl Launch {
    pub fn new(form: Form) -> Launch {
        Launch {
            form,
            user: None,
            cwd: "/mnt/c/Users/me".into(),
            stdio: Stdio::Pipes,
            wslenv: vec![
                (
                    "WT_SESSION".into(),
                    "6f9c5a3e-2b1d-4c7e-9a0f-1d2e3f4a5b6c".into(),
                ),
                (
                    "WT_PROFILE_ID".into(),
                    "{2c4de342-38b7-51cf-b940-2309a097f518}".into(),
                ),
            ],
            windows_path: vec![
                "/mnt/c/Windows/system32".into(),
                "/mnt/c/Windows".into(),
                "/mnt/c/Program Files/Thing".into(),
            ],
            stdin: Vec::new(),
            close_stdin: true,
            timeout: Duration::from_secs(60),
            wsl_systemd: false,
            exact_env: None,
            ignore_signals: false,
        }
    }
    /// `wsl -d X`
    pub fn login() -> Launch {
        Launch::new(Form::Login)
    }
    /// `wsl -d X -- <string>`
    pub fn command(s: impl Into<String>) -> Launch {
        Launch::new(Form::Command(s.into()))
    }
    /// `wsl -d X --shell-type login -- <string>`
    pub fn login_command(s: impl Into<String>) -> Launch {
        Launch::new(Form::LoginCommand(s.into()))
    }
    /// `wsl -d X -e cmd args...`
    pub fn exec<S: Into<String>>(args: impl IntoIterator<Item = S>) -> Launch {
        Launch::new(Form::Exec(args.into_iter().map(Into::into).collect()))
    }
    pub fn user(mut self, user: impl Into<String>) -> Launch {
        self.user = Some(user.into());
        self
    }
    pub fn cwd(mut self, cwd: impl Into<String>) -> Launch {
        self.cwd = cwd.into();
        self
    }
    pub fn pty(mut self) -> Launch {
        self.stdio = Stdio::Pty;
        self
    }
    pub fn stdio(mut self, stdio: Stdio) -> Launch {
        self.stdio = stdio;
        self
    }
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Launch {
        self.stdin = bytes.into();
        self
    }
    /// Keep stdin open after writing (for tests that write more later).
    pub fn keep_stdin_open(mut self) -> Launch {
        self.close_stdin = false;
        self
    }
    /// Adds a Windows variable and names it in `WSLENV` (e.g. `NIXOS_WSL_LOG`).
    pub fn wslenv(mut self, name: impl Into<String>, value: impl Into<String>) -> Launch {
        self.wslenv.push((name.into(), value.into()));
        self
    }
    pub fn timeout(mut self, timeout: Duration) -> Launch {
        self.timeout = timeout;
        self
    }
}

/// How the program ended, as the launcher saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

/// A finished launch.
#[derive(Clone, Debug)]
pub struct Output {
    /// What `wsl.exe` would exit with: the exit code, or N for death by signal N.
    pub code: i32,
    pub exit: Exit,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub elapsed: Duration,
}

impl Output {
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    /// Stderr's lines without the login shell's notice of a slow systemd boot, which it
    /// prints after a second (a loaded machine reaches that on a cold start): what the tests
    /// that count warnings count.
    pub fn err_lines(&self) -> Vec<String> {
        self.err()
            .lines()
            .filter(|l| *l != "nixos-wsl: waiting for systemd to finish booting...")
            .map(str::to_string)
            .collect()
    }

    /// Fails unless the program exited 0 with nothing on stderr (the happy path).
    pub fn ok(&self) -> Result<&Output> {
        if self.code != 0 || !self.stderr.is_empty() {
            bail!("expected exit 0 and empty stderr, got {self}");
        }
        Ok(self)
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} after {:.2?}\n--- stdout ---\n{}\n--- stderr ---\n{}\n---",
            self.exit,
            self.elapsed,
            self.out(),
            self.err()
        )
    }
}

/// Where a launch goes: the identity of a booted distro.
#[derive(Clone, Debug)]
pub struct Target {
    pub init_pid: i32,
    pub cgroup: PathBuf,
    pub distro: String,
    pub hostname: String,
}

/// A byte stream collected by a reader thread, with a way to wait for content.
#[derive(Default)]
struct Collector {
    state: Mutex<(Vec<u8>, bool)>,
    cv: Condvar,
}

impl Collector {
    fn start(mut src: impl Read + Send + 'static) -> (Arc<Collector>, JoinHandle<()>) {
        let c = Arc::new(Collector::default());
        let c2 = c.clone();
        let h = std::thread::spawn(move || {
            let mut buf = [0u8; 16384];
            loop {
                match src.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        c2.state.lock().unwrap().0.extend_from_slice(&buf[..n]);
                        c2.cv.notify_all();
                    }
                }
            }
            c2.state.lock().unwrap().1 = true;
            c2.cv.notify_all();
        });
        (c, h)
    }

    /// Waits until `pred(bytes, eof)` holds or `deadline` passes; returns whether it held.
    fn wait_until(&self, deadline: Instant, pred: impl Fn(&[u8], bool) -> bool) -> bool {
        let mut st = self.state.lock().unwrap();
        loop {
            if pred(&st.0, st.1) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self.cv.wait_timeout(st, left).unwrap().0;
        }
    }

    fn snapshot(&self) -> (Vec<u8>, bool) {
        let st = self.state.lock().unwrap();
        (st.0.clone(), st.1)
    }
}

/// A running launch.
pub struct Process {
    launcher: Option<Child>,
    /// Host pid of the launched program (what a test signals).
    pub pid: i32,
    /// Its pid inside the distro's PID namespace.
    pub ns_pid: i32,
    stdin: Option<ChildStdin>,
    stdout: Option<Arc<Collector>>,
    stderr: Option<Arc<Collector>>,
    status: Arc<Collector>,
    started: Instant,
    deadline: Instant,
    timeout: Duration,
}

impl Process {
    /// Starts `launch` in the distro `target`; returns once the program is forked.
    pub fn spawn(target: &Target, launch: &Launch) -> Result<Process> {
        let started = Instant::now();
        let mut args = RoleArgs::default();
        args.push("init-pid", target.init_pid.to_string());
        args.push("cgroup", &target.cgroup);
        args.push("distro", &target.distro);
        args.push("hostname", &target.hostname);
        args.push("stdio", launch.stdio.as_str());
        args.push("cwd", &launch.cwd);
        if let Some(u) = &launch.user {
            args.push("user", u);
        }
        match &launch.form {
            Form::Login => args.push("form", "login"),
            Form::Command(s) => {
                args.push("form", "command");
                args.push("command", s);
            }
            Form::LoginCommand(s) => {
                args.push("form", "login-command");
                args.push("command", s);
            }
            Form::Exec(v) => {
                args.push("form", "exec");
                for a in v {
                    args.push("arg", a);
                }
            }
        }
        for (k, v) in &launch.wslenv {
            args.push("wslenv", format!("{k}={v}"));
        }
        for p in &launch.windows_path {
            args.push("winpath", p);
        }
        super::native::push_launch_args(launch, &mut args);

        let (status_r, status_w) = sys::pipe()?;
        let w = status_w.as_raw_fd();
        let mut cmd =
            Command::new(std::env::current_exe().context("finding the simulator executable")?);
        cmd.env(ROLE_VAR, "launch").args(args.into_vec());
        let piped = !matches!(launch.stdio, Stdio::Inherit | Stdio::Terminal);
        if piped {
            cmd.stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
        }
        // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if w == 3 {
                    if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(w, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().context("spawning the launcher")?;
        drop(status_w);
        let (status, _) = Collector::start(status_r);
        let (stdout, stderr) = if piped {
            let (o, _) = Collector::start(child.stdout.take().unwrap());
            let (e, _) = Collector::start(child.stderr.take().unwrap());
            (Some(o), Some(e))
        } else {
            (None, None)
        };
        let mut p = Process {
            stdin: child.stdin.take(),
            launcher: Some(child),
            pid: 0,
            ns_pid: 0,
            stdout,
            stderr,
            status,
            started,
            deadline: started + launch.timeout,
            timeout: launch.timeout,
        };
        let got = p
            .status
            .wait_until(p.deadline, |b, eof| eof || b.contains(&b'\n'));
        let (text, _) = p.status.snapshot();
        let text = String::from_utf8_lossy(&text).into_owned();
        let first = text.lines().next().unwrap_or("");
        if let Some(rest) = first.strip_prefix("pid ") {
            let mut it = rest.split(' ').filter_map(|s| s.parse::<i32>().ok());
            p.pid = it.next().unwrap_or(0);
            p.ns_pid = it.next().unwrap_or(0);
            if p.pid <= 0 {
                bail!("launcher sent a bad pid line: {first:?}");
            }
        } else {
            let launcher_msg = first.strip_prefix("error ").unwrap_or(first).to_string();
            p.kill();
            if !got {
                bail!(
                    "the launcher did not start the program within {:?}",
                    launch.timeout
                );
            }
            bail!("wsl launch failed: {launcher_msg}");
        }
        if !launch.stdin.is_empty() || launch.close_stdin {
            let data = launch.stdin.clone();
            let close = launch.close_stdin;
            if let Some(mut stdin) = p.stdin.take() {
                // A thread, so a program that does not read cannot block the harness.
                let handle = std::thread::spawn(move || {
                    let _ = stdin.write_all(&data);
                    if close {
                        None
                    } else {
                        Some(stdin)
                    }
                });
                if !close {
                    p.stdin = handle.join().ok().flatten();
                }
            }
        }
        Ok(p)
    }

    /// Sends `sig` to the launched program (as a test, or Windows, would).
    pub fn signal(&self, sig: Signal) -> Result<()> {
        sys::kill(self.pid, sig)
    }

    /// Waits until stdout contains `needle` (or `timeout` passes).
    pub fn wait_for_stdout(&self, needle: &str, timeout: Duration) -> Result<()> {
        let c = self
            .stdout
            .as_ref()
            .ok_or_else(|| anyhow!("stdout is not captured"))?;
        let n = needle.as_bytes();
        let found = c.wait_until(Instant::now() + timeout, |b, _| {
            b.windows(n.len()).any(|w| w == n)
        });
        if !found {
            let (b, eof) = c.snapshot();
            bail!(
                "stdout did not show {needle:?} within {timeout:?} (eof: {eof}); so far:\n{}\nstderr so far:\n{}",
                String::from_utf8_lossy(&b),
                String::from_utf8_lossy(&self.stderr.as_ref().map(|c| c.snapshot().0).unwrap_or_default())
            );
        }
        Ok(())
    }

    /// Kills the launched program and the launcher (best effort).
    pub fn kill(&mut self) {
        if self.pid > 0 {
            let _ = sys::kill(self.pid, Signal::SIGKILL);
        }
        if let Some(mut l) = self.launcher.take() {
            let _ = l.kill();
            let _ = l.wait();
        }
    }

    /// Waits for the end (bounded by the launch's timeout) and collects the output. Fails
    /// on timeout, and if stdout/stderr stay open after the program exited (something in
    /// the distro, e.g. a daemon started by the shell, kept the caller's pipes).
    pub fn wait(mut self) -> Result<Output> {
        self.stdin = None;
        // On any early return, Drop kills and reaps the launcher.
        let launcher_pid = self.launcher.as_ref().map_or(0, |l| l.id() as i32);
        let pidfd = pidfd_open(launcher_pid)?;
        let left = self.deadline.saturating_duration_since(Instant::now());
        if !wait_readable(pidfd.as_raw_fd(), Some(left))? {
            let partial = self.partial();
            self.kill();
            bail!("timed out after {:?}; killed it. {partial}", self.timeout);
        }
        if let Some(mut launcher) = self.launcher.take() {
            launcher.wait()?;
        }
        let elapsed = self.started.elapsed();
        // The status pipe ends with the launcher; the output pipes end when every holder in
        // the distro closed them.
        let grace = Instant::now() + Duration::from_secs(5);
        self.status.wait_until(grace, |_, eof| eof);
        for (name, c) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            if let Some(c) = c {
                if !c.wait_until(grace, |_, eof| eof) {
                    bail!(
                        "the program exited but its {name} is still open 5 s later: a process \
                         left in the distro (systemd?) holds the caller's pipe. {}",
                        self.partial()
                    );
                }
            }
        }
        let (status, _) = self.status.snapshot();
        let status = String::from_utf8_lossy(&status).into_owned();
        let mut exit = None;
        for line in status.lines() {
            let num = |s: &str| s.trim().parse::<i32>().ok();
            if let Some(c) = line.strip_prefix("exit ").and_then(num) {
                exit = Some(Exit::Code(c));
            } else if let Some(s) = line.strip_prefix("signal ").and_then(num) {
                exit = Some(Exit::Signal(s));
            } else if let Some(e) = line.strip_prefix("error ") {
                bail!("wsl launch failed: {e}. {}", self.partial());
            }
        }
        let Some(exit) = exit else {
            bail!("the launcher died without reporting an exit status ({status:?})");
        };
        let code = match exit {
            Exit::Code(c) | Exit::Signal(c) => c,
        };
        Ok(Output {
            code,
            exit,
            stdout: self
                .stdout
                .as_ref()
                .map(|c| c.snapshot().0)
                .unwrap_or_default(),
            stderr: self
                .stderr
                .as_ref()
                .map(|c| c.snapshot().0)
                .unwrap_or_default(),
            elapsed,
        })
    }

    fn partial(&self) -> String {
        let get = |c: &Option<Arc<Collector>>| {
            String::from_utf8_lossy(&c.as_ref().map(|c| c.snapshot().0).unwrap_or_default())
                .into_owned()
        };
        format!(
            "stdout so far:\n{}\nstderr so far:\n{}",
            get(&self.stdout),
            get(&self.stderr)
        )
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.launcher.is_some() {
            self.kill();
        }
    }
}
