//! Checks shared by the end-to-end modules that install the admin CLI next to the login
//! shell (tests/e2e/: kill, garbage, recovery, cli): the distro they boot, systemd's
//! processes as the host sees them, a working session, and the CLI run as WSL's root.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use super::under_test;
use nix::sys::signal::Signal;

use super::{Distro, DistroOptions, Exit, Launch, Output, RootShell};

/// Where the admin CLI is installed in every distro (next to the login shell).
pub const CLI: &str = "/usr/local/bin/nixos-wsl";

/// A distro with nixos-wsl-shell as root's login shell and the admin CLI installed.
pub fn opts(name: &str) -> DistroOptions {
    let cli = std::fs::read(under_test::cli()).expect("reading the nixos-wsl binary");
    DistroOptions::new(name, RootShell::NixosWslShell(under_test::shell()))
        .file_mode(CLI, cli, 0o755)
}

/// A oneshot unit pulled into the boot that sleeps `secs`: systemd stays "starting" (no
/// READY=1) that long.
pub fn slow_boot(o: DistroOptions, secs: u32) -> DistroOptions {
    o.file(
        "/etc/systemd/system/slow-boot.service",
        format!(
            "[Unit]\nDescription=Slow boot (fault-injection test)\n\
             [Service]\nType=oneshot\nExecStart=/bin/sleep {secs}\nRemainAfterExit=yes\n"
        ),
    )
    .file(
        "/etc/systemd/system/multi-user.target.d/slow-boot.conf",
        "[Unit]\nWants=slow-boot.service\n",
    )
}

pub fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

pub fn read(path: String) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The `NSpid:` entries of a host pid.
pub fn nspid(pid: i32) -> Vec<i32> {
    read(format!("/proc/{pid}/status"))
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|v| {
            v.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

pub fn comm(pid: i32) -> String {
    read(format!("/proc/{pid}/comm")).trim().to_string()
}

pub fn ppid(pid: i32) -> Option<i32> {
    read(format!("/proc/{pid}/status"))
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Start time (field 22 of /proc/<pid>/stat): the same number from every PID namespace.
pub fn start_time(pid: i32) -> String {
    let stat = read(format!("/proc/{pid}/stat"));
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(19))
        .unwrap_or("")
        .to_string()
}

/// Host pids of the distro's processes that are systemd as PID 1 of a nested PID namespace.
pub fn systemd_inits(d: &Distro) -> Vec<i32> {
    d.host_pids()
        .into_iter()
        .filter(|&pid| nspid(pid).last() == Some(&1) && comm(pid) == "systemd")
        .collect()
}

/// Polls `cond` (every millisecond: the stages below last milliseconds) until it holds.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !cond() {
        ensure!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// How a host pid relates to the flock()s in /proc/locks (host pids: we read the host's).
#[derive(Debug, PartialEq, Eq)]
pub enum LockView {
    Holding,
    Waiting,
    Neither,
}

pub fn lock_view(pid: i32) -> LockView {
    let locks = read("/proc/locks".into());
    let mut view = LockView::Neither;
    for l in locks.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        let (waiting, rest) = match w.get(1) {
            Some(&"->") => (true, &w[2..]),
            _ => (false, w.get(1..).unwrap_or(&[])),
        };
        if rest.first() == Some(&"FLOCK") && rest.get(3) == Some(&pid.to_string().as_str()) {
            view = if waiting {
                LockView::Waiting
            } else {
                LockView::Holding
            };
            if !waiting {
                return view;
            }
        }
    }
    view
}

/// Waits (bounded) until the distro runs exactly one systemd init and returns its host pid.
/// A killed one may linger for a moment as a zombie before WSL's init reaps it.
pub fn one_systemd(d: &Distro) -> Result<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let inits = systemd_inits(d);
        if inits.len() == 1 {
            return Ok(inits[0]);
        }
        ensure!(
            Instant::now() < deadline,
            "expected exactly one systemd, found {}: {inits:?}",
            inits.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn no_systemd(d: &Distro, within: Duration) -> Result<()> {
    wait_for("every systemd to be gone", within, || {
        d.host_pids().into_iter().all(|p| comm(p) != "systemd")
    })
}

/// The command every "working session" check runs: PID 1, the user, the boot state and PID
/// 1's start time.
/// No `--wait`: a launch returns only once systemd finished booting, so it must say
/// `running` at once (and as the user, `systemctl` needs D-Bus, which is up only then).
pub const SESSION_CHECK: &str =
    "cat /proc/1/comm; id -un; timeout 10 systemctl is-system-running; cut -d' ' -f22 /proc/1/stat";

/// A launch ends in a working session: the user's shell in a namespace whose PID 1 is a
/// running systemd, and the distro runs exactly one systemd. Returns systemd's start time and
/// the launch (whose stderr may hold a legitimate warning about what was repaired).
pub fn working_session(d: &Distro) -> Result<(String, Output)> {
    let out = d
        .run(&Launch::command(SESSION_CHECK).timeout(Duration::from_secs(120)))
        .context("the launch after the fault")?;
    let l = lines(&out.out());
    ensure!(
        out.code == 0 && l.len() == 4 && l[0] == "systemd" && l[1] == "nixos" && l[2] == "running",
        "not a working session: {out}"
    );
    let pid = one_systemd(d)?;
    ensure!(
        start_time(pid) == l[3],
        "the session's PID 1 (start {}) is not the distro's only systemd (pid {pid}, start {})",
        l[3],
        start_time(pid)
    );
    Ok((l[3].clone(), out))
}

/// The launch shape the kill tests use: prints a line once the user's command runs, then
/// lets go of the caller's pipes so a killed supervisor's launcher can finish.
pub fn entering_launch() -> Launch {
    Launch::command("echo entered; exec sleep 30 </dev/null >/dev/null 2>&1")
        .timeout(Duration::from_secs(60))
}

/// SIGKILLs the launched login shell and collects the launch: WSL reports signal 9.
pub fn kill_launch(p: super::Process) -> Result<()> {
    p.signal(Signal::SIGKILL)?;
    let out = p.wait().context("the killed launch")?;
    ensure!(
        out.exit == Exit::Signal(9),
        "the launch was not killed: {out}"
    );
    Ok(())
}

/// Completed activations recorded on the distro's disk (one line per finished run).
pub fn activations(d: &Distro) -> Result<usize> {
    Ok(d.root_sh("cat /var/log/activations 2>/dev/null || true")?
        .out()
        .lines()
        .count())
}

/// Runs the admin CLI as WSL's root, outside the namespace (`wsl -u root -e nixos-wsl ...`).
pub fn cli(d: &Distro, args: &[&str]) -> Result<Output> {
    d.run(
        &Launch::exec(std::iter::once(CLI).chain(args.iter().copied()))
            .user("root")
            .cwd("/")
            .timeout(Duration::from_secs(120)),
    )
}

/// The raw value of a scalar field in the one-line JSON of `status --json`.
pub fn json_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let start = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &json[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(&rest[..end])
}
