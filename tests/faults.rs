//! Fault injection and hostile input (issue 7), and the admin CLI end to end, in the WSL
//! simulator (tests/sim) with real systemd.
//!
//! One test binary (`harness = false`, libtest-mimic). Tiers:
//! - `cli::usage*`: no privileges (the CLI's argument handling);
//! - `kill::*`: SIGKILL of the login shell at each stage of a cold start, then a working
//!   session with exactly one systemd;
//! - `systemd::*`: systemd dying while starting or after being ready;
//! - `garbage::*`: hostile contents of `/run/nixos-wsl/`;
//! - `user::*`, `bytes::*`, `recovery::*`: broken passwd entries, non-UTF-8 input, the
//!   `NIXOS_WSL_SYSTEMD=off` / `NIXOS_WSL_USER=root` switches;
//! - `cli::*`: `nixos-wsl status/exec/stop/logs` installed in the distro.
//!
//! Everything but the first tier needs root; without root those tests are skipped with a
//! note, except under `CI`, where they fail. Each launch has its own timeout, each wait a
//! deadline, and the whole run a budget (`NIXOS_WSL_TEST_BUDGET` seconds, default 900).
//! Environment: `NIXOS_WSL_TEST_SHELL_BIN` / `NIXOS_WSL_TEST_CLI_BIN` install other builds;
//! `NIXOS_WSL_FUZZ_INPUTS` (default 1000000) and `NIXOS_WSL_FUZZ_SEED` tune the fuzzer.

mod sim;

use sim::harness::{self, unprivileged, TestFn};
use sim::under_test;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use libtest_mimic::{Arguments, Trial};
use nix::sys::signal::Signal;

use sim::{Distro, DistroOptions, Exit, Launch, Output, RootShell};

fn main() {
    if let Some(code) = sim::role_main() {
        std::process::exit(code);
    }
    let args = Arguments::from_args();
    let mut tests = vec![unprivileged("cli::usage_help_and_version", cli_usage)];
    let privileged_tests: Vec<(&str, TestFn)> = vec![
        // The slowest first, so they overlap with the rest.
        ("kill::at_every_moment_of_a_cold_start", kill_sweep),
        ("kill::before_the_lock", kill_before_lock),
        ("kill::holding_the_lock", kill_holding_lock),
        ("kill::during_activation", kill_during_activation),
        (
            "kill::after_systemd_started_before_ready",
            kill_while_booting,
        ),
        ("kill::right_after_systemd_exec", kill_right_after_exec),
        ("kill::while_entering", kill_while_entering),
        ("systemd::exits_right_after_starting", systemd_exits_at_once),
        ("systemd::crashes_after_ready", systemd_crashes_after_ready),
        ("garbage::stale_files", garbage_stale_files),
        ("garbage::dangling_and_odd_handles", garbage_odd_handles),
        ("garbage::wrong_permissions", garbage_permissions),
        (
            "garbage::user_planted_lock_cannot_stall_launches",
            garbage_user_lock,
        ),
        ("garbage::symlinks_are_never_followed", garbage_symlinks),
        ("garbage::special_files", garbage_special_files),
        ("user::no_home", user_no_home),
        ("user::missing_shell", user_missing_shell),
        ("user::shell_not_executable", user_shell_not_executable),
        ("bytes::non_utf8_argv", non_utf8_argv),
        ("bytes::non_utf8_environment", non_utf8_env),
        ("bytes::non_utf8_config", non_utf8_config),
        ("recovery::systemd_off", recovery_systemd_off),
        ("recovery::user_root", recovery_user_root),
        ("cli::status_exec_stop_logs", cli_end_to_end),
        ("cli::status_changes_no_file", cli_status_changes_no_file),
        ("cli::inside_the_namespace", cli_inside),
        (
            "cli::stop_kills_a_systemd_that_will_not_power_off",
            cli_stop_kills,
        ),
        ("cli::exec_without_systemd", cli_exec_without_systemd),
        ("cli::wsl_systemd_mode", cli_wsl_systemd_mode),
    ];
    tests.extend(
        privileged_tests
            .into_iter()
            .map(|(name, f)| privileged(name, f)),
    );
    harness::start_watchdog("faults", 900, || {});
    libtest_mimic::run(&args, tests).exit();
}

// ---------------------------------------------------------------------------------------
// Harness plumbing.

/// A test that needs root: fails under `CI` without it, skipped elsewhere.
fn privileged(name: &str, f: TestFn) -> Trial {
    harness::gated(name, f, || harness::needs_root("faults"))
}

fn cli_bin() -> PathBuf {
    under_test::build("NIXOS_WSL_TEST_CLI_BIN", env!("CARGO_BIN_EXE_nixos-wsl"))
}

/// Where the admin CLI is installed in every distro (next to the login shell).
const CLI: &str = "/usr/local/bin/nixos-wsl";

/// A distro with nixos-wsl-shell as root's login shell and the admin CLI installed.
fn opts(name: &str) -> DistroOptions {
    let cli = std::fs::read(cli_bin()).expect("reading the nixos-wsl binary");
    DistroOptions::new(name, RootShell::NixosWslShell(under_test::shell()))
        .file_mode(CLI, cli, 0o755)
}

/// A oneshot unit pulled into the boot that sleeps `secs`: systemd stays "starting" (no
/// READY=1) that long.
fn slow_boot(o: DistroOptions, secs: u32) -> DistroOptions {
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

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

fn read(path: String) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The `NSpid:` entries of a host pid.
fn nspid(pid: i32) -> Vec<i32> {
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

fn comm(pid: i32) -> String {
    read(format!("/proc/{pid}/comm")).trim().to_string()
}

fn ppid(pid: i32) -> Option<i32> {
    read(format!("/proc/{pid}/status"))
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Start time (field 22 of /proc/<pid>/stat): the same number from every PID namespace.
fn start_time(pid: i32) -> String {
    let stat = read(format!("/proc/{pid}/stat"));
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(19))
        .unwrap_or("")
        .to_string()
}

/// Host pids of the distro's processes that are systemd as PID 1 of a nested PID namespace.
fn systemd_inits(d: &Distro) -> Vec<i32> {
    d.host_pids()
        .into_iter()
        .filter(|&pid| nspid(pid).last() == Some(&1) && comm(pid) == "systemd")
        .collect()
}

/// Polls `cond` (every millisecond: the stages below last milliseconds) until it holds.
fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> Result<()> {
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
enum LockView {
    Holding,
    Waiting,
    Neither,
}

fn lock_view(pid: i32) -> LockView {
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
fn one_systemd(d: &Distro) -> Result<i32> {
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

fn no_systemd(d: &Distro, within: Duration) -> Result<()> {
    wait_for("every systemd to be gone", within, || {
        d.host_pids().into_iter().all(|p| comm(p) != "systemd")
    })
}

/// The command every "working session" check runs: PID 1, the user, the boot state and PID
/// 1's start time.
/// No `--wait`: a launch returns only once systemd finished booting, so it must say
/// `running` at once (and as the user, `systemctl` needs D-Bus, which is up only then).
const SESSION_CHECK: &str =
    "cat /proc/1/comm; id -un; timeout 10 systemctl is-system-running; cut -d' ' -f22 /proc/1/stat";

/// A launch ends in a working session: the user's shell in a namespace whose PID 1 is a
/// running systemd, and the distro runs exactly one systemd. Returns systemd's start time and
/// the launch (whose stderr may hold a legitimate warning about what was repaired).
fn working_session(d: &Distro) -> Result<(String, Output)> {
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
fn entering_launch() -> Launch {
    Launch::command("echo entered; exec sleep 30 </dev/null >/dev/null 2>&1")
        .timeout(Duration::from_secs(60))
}

/// SIGKILLs the launched login shell and collects the launch: WSL reports signal 9.
fn kill_launch(p: sim::Process) -> Result<()> {
    p.signal(Signal::SIGKILL)?;
    let out = p.wait().context("the killed launch")?;
    ensure!(
        out.exit == Exit::Signal(9),
        "the launch was not killed: {out}"
    );
    Ok(())
}

/// Completed activations recorded on the distro's disk (one line per finished run).
fn activations(d: &Distro) -> Result<usize> {
    Ok(d.root_sh("cat /var/log/activations 2>/dev/null || true")?
        .out()
        .lines()
        .count())
}

/// Runs the admin CLI as WSL's root, outside the namespace (`wsl -u root -e nixos-wsl ...`).
fn cli(d: &Distro, args: &[&str]) -> Result<Output> {
    d.run(
        &Launch::exec(std::iter::once(CLI).chain(args.iter().copied()))
            .user("root")
            .cwd("/")
            .timeout(Duration::from_secs(120)),
    )
}

/// The raw value of a scalar field in the one-line JSON of `status --json`.
fn json_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let start = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &json[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(&rest[..end])
}

// ---------------------------------------------------------------------------------------
// kill::*: SIGKILL of the login shell during a cold start.

/// Kill points after the launch starts (ms). A cold start in the simulator takes about
/// 300-500 ms, so these land before exec, while reading the config, deciding under the lock,
/// activating, forking the namespace creator, waiting for READY=1, joining and entering.
const SWEEP_MS: [u64; 18] = [
    0, 1, 2, 3, 5, 8, 12, 17, 25, 35, 50, 70, 100, 140, 200, 280, 400, 600,
];

fn kill_sweep() -> Result<()> {
    let d = Distro::new(opts("kill-sweep"))?;
    let (mut seen, mut failures) = (Vec::new(), Vec::new());
    for ms in SWEEP_MS {
        d.terminate()?;
        d.boot()?;
        let p = d.spawn(&entering_launch())?;
        std::thread::sleep(Duration::from_millis(ms));
        let shell = p.pid;
        let at_kill = (
            lock_view(shell),
            systemd_inits(&d).len(),
            d.host_pids().iter().any(|&c| comm(c) == "activate"),
        );
        p.signal(Signal::SIGKILL)?;
        let _ = p.wait(); // killed at any point: whatever the launcher saw
        let what = format!("{ms}ms:{:?}/{}/{}", at_kill.0, at_kill.1, at_kill.2);
        let session = working_session(&d).and_then(|_| {
            let activated = d.root_sh("test -e /run/current-system && echo yes")?;
            ensure!(activated.out() == "yes\n", "the boot was never activated");
            Ok(())
        });
        match session {
            Ok(()) => seen.push(what),
            Err(e) => failures.push(format!("after SIGKILL at {what}: {e:#}")),
        }
    }
    eprintln!(
        "  kill points passed (lock/systemds/activation seen at the kill): {}",
        seen.join(" ")
    );
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

/// Takes the state lock from outside the login shell (flock -o: only flock itself holds it;
/// no `-c`, which would run $SHELL, here the login shell itself) until the process is dropped.
fn hold_lock(d: &Distro) -> Result<sim::Process> {
    let holder = d.spawn(
        &Launch::exec([
            "/bin/sh",
            "-c",
            "mkdir -p /run/nixos-wsl && exec flock -o /run/nixos-wsl/lock /bin/sh -c 'echo held; exec sleep 60'",
        ])
        .user("root")
        .cwd("/")
        .timeout(Duration::from_secs(90)),
    )?;
    holder.wait_for_stdout("held", Duration::from_secs(20))?;
    Ok(holder)
}

/// A launch killed while it queues for the lock: nothing it did before the lock may matter,
/// on a cold start (no systemd yet) and on a warm one (the running systemd stays the one).
fn kill_before_lock() -> Result<()> {
    let d = Distro::start(opts("kill-before-lock"))?;
    let mut warm = None;
    for round in ["cold", "warm"] {
        let holder = hold_lock(&d)?;
        let p = d.spawn(&entering_launch())?;
        let shell = p.pid;
        wait_for(
            "the launch to queue for the lock",
            Duration::from_secs(20),
            || lock_view(shell) == LockView::Waiting,
        )?;
        kill_launch(p)?;
        if round == "cold" {
            ensure!(
                systemd_inits(&d).is_empty(),
                "a systemd started without the lock"
            );
        }
        drop(holder); // kills flock: the lock is free
        let (start, _) = working_session(&d).with_context(|| format!("{round} start"))?;
        if let Some(before) = &warm {
            ensure!(
                &start == before,
                "the {round} launch replaced the running systemd"
            );
        }
        warm = Some(start);
    }
    Ok(())
}

fn kill_holding_lock() -> Result<()> {
    let d = Distro::start(opts("kill-holding-lock"))?;
    let p = d.spawn(&entering_launch())?;
    let shell = p.pid;
    wait_for(
        "the launch to hold the lock",
        Duration::from_secs(20),
        || lock_view(shell) == LockView::Holding,
    )?;
    let systemds = systemd_inits(&d).len();
    kill_launch(p)?;
    eprintln!("  killed holding the lock; {systemds} systemd existed at the kill");
    working_session(&d)?;
    let activated = d.root_sh("test -e /run/current-system && echo yes")?;
    ensure!(activated.out() == "yes\n", "the boot was never activated");
    Ok(())
}

fn kill_during_activation() -> Result<()> {
    // The activation ignores SIGHUP (the hangup of the launch's terminal would otherwise end
    // it), so only the launcher's own care (PR_SET_PDEATHSIG) can stop it.
    let d = Distro::start(
        opts("kill-activation")
            .file("/etc/activation-delay", "30\n")
            .file(
                "/etc/nixos-wsl.conf",
                "activate = /usr/local/bin/stubborn-activate\n",
            )
            .file_mode(
                "/usr/local/bin/stubborn-activate",
                "#!/bin/sh\ntrap '' HUP\nexec /nix/var/nix/profiles/system/activate\n",
                0o755,
            ),
    )?;
    let p = d.spawn(&entering_launch())?;
    let activation = || {
        d.host_pids()
            .into_iter()
            .filter(|&c| comm(c) == "activate")
            .collect::<Vec<_>>()
    };
    wait_for("the activation to run", Duration::from_secs(20), || {
        !activation().is_empty()
    })?;
    ensure!(
        lock_view(p.pid) == LockView::Holding,
        "the activation runs without the lock"
    );
    kill_launch(p)?;
    // The activation must not outlive its launch (PR_SET_PDEATHSIG), or the next launch
    // would race it.
    wait_for(
        "the orphaned activation to die",
        Duration::from_secs(5),
        || activation().is_empty(),
    )?;
    ensure!(
        systemd_inits(&d).is_empty(),
        "systemd started before the activation finished"
    );
    d.write_file("/etc/activation-delay", b"0\n", 0o644)?;
    working_session(&d)?;
    ensure!(
        activations(&d)? == 1,
        "expected exactly one completed activation, got {}",
        activations(&d)?
    );
    Ok(())
}

fn kill_while_booting() -> Result<()> {
    let d = Distro::start(slow_boot(opts("kill-booting"), 6))?;
    let p = d.spawn(&entering_launch())?;
    let shell = p.pid;
    // Mid-boot: the slow unit's `sleep` runs inside the namespace (two PID namespaces below
    // ours: the distro's and systemd's), and the launch still waits for READY=1.
    wait_for(
        "the boot to be under way while the launch waits for READY=1",
        Duration::from_secs(30),
        || {
            d.host_pids()
                .into_iter()
                .any(|c| comm(c) == "sleep" && nspid(c).len() == nspid(shell).len() + 1)
                && lock_view(shell) == LockView::Holding
        },
    )?;
    let booting = one_systemd(&d)?;
    let started = start_time(booting);
    kill_launch(p)?;
    let t = Instant::now();
    let (session_start, _) = working_session(&d)?;
    ensure!(
        session_start == started,
        "the next launch started another systemd (start {session_start}) instead of waiting for pid {booting} (start {started})"
    );
    ensure!(
        t.elapsed() > Duration::from_secs(2),
        "the next launch did not wait for the boot ({:.1?})",
        t.elapsed()
    );
    eprintln!(
        "  the next launch waited {:.1?} for the booting systemd",
        t.elapsed()
    );
    Ok(())
}

/// Killed in systemd's first moments (exec'd, before its private bus socket exists): the
/// next launch must still wait for the boot rather than give up at once.
fn kill_right_after_exec() -> Result<()> {
    let d = Distro::start(slow_boot(opts("kill-after-exec"), 4))?;
    let p = d.spawn(&entering_launch())?;
    wait_for("systemd to be exec'd", Duration::from_secs(30), || {
        systemd_inits(&d).len() == 1
    })?;
    kill_launch(p)?;
    working_session(&d)?;
    Ok(())
}

fn kill_while_entering() -> Result<()> {
    let d = Distro::start(opts("kill-entering"))?;
    let p = d.spawn(&entering_launch())?;
    let shell = p.pid;
    let depth = nspid(shell).len();
    // The session's child lives one PID namespace deeper than its supervisor.
    wait_for(
        "the session to be forked into the namespace",
        Duration::from_secs(30),
        || {
            d.host_pids()
                .into_iter()
                .any(|c| ppid(c) == Some(shell) && nspid(c).len() > depth)
        },
    )?;
    let started = start_time(one_systemd(&d)?);
    kill_launch(p)?;
    let (session_start, _) = working_session(&d)?;
    ensure!(session_start == started, "a second systemd was started");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// systemd::*: systemd itself dies.

fn systemd_exits_at_once() -> Result<()> {
    let d = Distro::start(
        opts("systemd-exits")
            .file(
                "/etc/nixos-wsl.conf",
                "systemd = /usr/local/bin/flaky-systemd\ntimeout = 20\n",
            )
            .file_mode(
                "/usr/local/bin/flaky-systemd",
                "#!/bin/sh\n# Exits at once the first time in a boot, is systemd afterwards.\n\
                 if [ ! -e /run/flaky-systemd-once ]; then : > /run/flaky-systemd-once; \
                 echo 'flaky-systemd: exiting at once' >&2; exit 1; fi\n\
                 exec /lib/systemd/systemd \"$@\"\n",
                0o755,
            ),
    )?;
    let first =
        d.run(&Launch::command("id -un; cat /proc/1/comm").timeout(Duration::from_secs(60)))?;
    ensure!(
        first.elapsed < Duration::from_secs(10),
        "a systemd that exited at once was waited for ({:.1?}, timeout 20 s): {first}",
        first.elapsed
    );
    ensure!(
        first.code == 0 && first.out().starts_with("nixos\n") && first.out() != "nixos\nsystemd\n",
        "the first launch should get a shell without systemd: {first}"
    );
    ensure!(
        first.err().lines().count() == 1 && first.err().contains("/run/nixos-wsl/systemd.log"),
        "one line naming the log expected: {first}"
    );
    let status = cli(&d, &["status"])?;
    ensure!(status.code == 3, "status after the death: {status}");
    working_session(&d)?;
    Ok(())
}

fn systemd_crashes_after_ready() -> Result<()> {
    let d = Distro::start(opts("systemd-crashes"))?;
    let (first, _) = working_session(&d)?;
    let pid = one_systemd(&d)?;
    sim::sys::kill(pid, Signal::SIGKILL)?;
    no_systemd(&d, Duration::from_secs(10))?;
    let status = cli(&d, &["status", "--json"])?;
    ensure!(
        status.code == 3 && json_field(&status.out(), "mode") == Some("\"none\""),
        "status after the crash: {status}"
    );
    ensure!(
        status.out().contains("dead"),
        "status should say the namespace is dead: {status}"
    );
    let (second, _) = working_session(&d)?;
    ensure!(
        second != first,
        "the same systemd (start {first}) after the crash?"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// garbage::*: /run/nixos-wsl/ holds things it should not. Planted as WSL's root before the
// first launch of a boot (/run is fresh at every boot).

fn plant(d: &Distro, script: &str) -> Result<()> {
    let out = d.root_sh(&format!("set -e; {script}"))?;
    ensure!(out.code == 0, "planting garbage failed: {out}");
    Ok(())
}

fn garbage_stale_files() -> Result<()> {
    let d = Distro::start(opts("garbage-stale"))?;
    plant(
        &d,
        "mkdir -p /run/nixos-wsl/ns /run/nixos-wsl/junk.d; cd /run/nixos-wsl; \
         echo 'ready 4026531836' > ready; printf 'gave-up x\\n' > ready.tmp; echo junk > notify; \
         echo 'an old boot' > systemd.log; echo junk > ns/pid; echo 1 > ns/init-pid; echo junk > lock; \
         head -c 4096 /dev/urandom > junk",
    )?;
    working_session(&d)?;
    ensure!(activations(&d)? == 1, "the activation did not run once");
    Ok(())
}

fn garbage_odd_handles() -> Result<()> {
    let d = Distro::new(opts("garbage-handles"))?;
    let mut failures = Vec::new();
    for (what, script) in [
        (
            "a dangling symlink",
            "ln -s /nonexistent/pid /run/nixos-wsl/ns/pid",
        ),
        ("an empty plain file", ": > /run/nixos-wsl/ns/pid"),
        ("a directory", "mkdir /run/nixos-wsl/ns/pid"),
        ("a FIFO", "mkfifo /run/nixos-wsl/ns/pid"),
        (
            "a bind mount of WSL's own PID namespace (its init is not systemd)",
            ": > /run/nixos-wsl/ns/pid; mount --bind /proc/1/ns/pid /run/nixos-wsl/ns/pid",
        ),
    ] {
        d.terminate()?;
        d.boot()?;
        plant(&d, &format!("mkdir -p /run/nixos-wsl/ns; {script}"))?;
        if let Err(e) = working_session(&d) {
            failures.push(format!("handle is {what}: {e:#}"));
        }
    }
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

fn garbage_permissions() -> Result<()> {
    let d = Distro::start(opts("garbage-perms"))?;
    plant(
        &d,
        "mkdir -p /run/nixos-wsl/ns; chown 1000:100 /run/nixos-wsl /run/nixos-wsl/ns; \
         chmod 0777 /run/nixos-wsl /run/nixos-wsl/ns",
    )?;
    working_session(&d)?;
    let out = d.root_sh("stat -c '%u %a' /run/nixos-wsl; stat -c '%u %a' /run/nixos-wsl/ns")?;
    let l = lines(&out.out());
    ensure!(
        l.first().map(String::as_str) == Some("0 755"),
        "state dir: {out}"
    );
    ensure!(
        l.get(1).map(String::as_str) == Some("0 700"),
        "handle dir: {out}"
    );
    // A user may not plant what the next launch trusts.
    let planted = d.run(
        &Launch::exec([
            "/bin/sh",
            "-c",
            "echo x > /run/nixos-wsl/mine && echo planted",
        ])
        .user("nixos")
        .cwd("/"),
    )?;
    ensure!(
        planted.out().is_empty(),
        "a user could still write there: {planted}"
    );
    Ok(())
}

/// A state dir that was world-writable let a user create the lock file and hold it: the
/// launch must neither wait the full timeout nor lose systemd because of it.
fn garbage_user_lock() -> Result<()> {
    let d = Distro::start(opts("garbage-user-lock").file("/etc/nixos-wsl.conf", "timeout = 5\n"))?;
    plant(&d, "mkdir -p /run/nixos-wsl; chmod 0777 /run/nixos-wsl")?;
    let holder = d.spawn(
        &Launch::exec([
            "/bin/sh",
            "-c",
            "exec flock -o /run/nixos-wsl/lock /bin/sh -c 'echo held; exec sleep 60'",
        ])
        .user("nixos")
        .cwd("/")
        .timeout(Duration::from_secs(90)),
    )?;
    holder.wait_for_stdout("held", Duration::from_secs(20))?;
    let t = Instant::now();
    let (_, out) = working_session(&d)?;
    ensure!(
        t.elapsed() < Duration::from_secs(5),
        "the launch waited {:.1?} behind a user's lock: {out}",
        t.elapsed()
    );
    drop(holder);
    Ok(())
}

/// Plants `link` in /run/nixos-wsl as a symlink to /var/tmp/elsewhere/victim.
fn victim_link(link: &str) -> String {
    format!(
        "mkdir -p /run/nixos-wsl/ns /var/tmp/elsewhere; echo keep > /var/tmp/elsewhere/victim; \
         ln -s /var/tmp/elsewhere/victim /run/nixos-wsl/{link}"
    )
}

const VICTIM_CHECK: &str =
    "cat /var/tmp/elsewhere/victim; ls -lA /var/tmp/elsewhere | tail -n +2 | cut -c1-10,30-";

/// Symlinks in /run/nixos-wsl pointing elsewhere: the target is never written, removed or
/// unmounted, and the launch still ends in a session, with systemd (a stale file in our own
/// state directory must not cost the rest of the boot its systemd).
fn garbage_symlinks() -> Result<()> {
    let d = Distro::new(opts("garbage-symlinks"))?;
    // (what, planted after a first session?, plant, check the target elsewhere)
    let cases: Vec<(&str, bool, String, &str)> =
        vec![
        (
            "/run/nixos-wsl itself",
            false,
            "mkdir -p /var/tmp/elsewhere/ns; echo keep > /var/tmp/elsewhere/victim; \
             echo keep > /var/tmp/elsewhere/ns/pid; ln -s /var/tmp/elsewhere /run/nixos-wsl"
                .into(),
            "cat /var/tmp/elsewhere/victim /var/tmp/elsewhere/ns/pid; ls -RA /var/tmp/elsewhere",
        ),
        (
            "the handle directory ns",
            false,
            "mkdir -p /var/tmp/elsewhere /run/nixos-wsl; echo keep > /var/tmp/elsewhere/victim; \
             echo keep > /var/tmp/elsewhere/pid; ln -s /var/tmp/elsewhere /run/nixos-wsl/ns"
                .into(),
            "cat /var/tmp/elsewhere/victim /var/tmp/elsewhere/pid; ls -A /var/tmp/elsewhere",
        ),
        (
            "the handle, pointing at a mount point (/mnt/c)",
            false,
            "mkdir -p /run/nixos-wsl/ns; ln -s /mnt/c /run/nixos-wsl/ns/pid".into(),
            "grep -c ' /mnt/c ' /proc/self/mountinfo",
        ),
        ("the handle", false, victim_link("ns/pid"), VICTIM_CHECK),
        ("the init PID hint", false, victim_link("ns/init-pid"), VICTIM_CHECK),
        (
            "the readiness record's temporary file",
            false,
            victim_link("ready.tmp"),
            VICTIM_CHECK,
        ),
        ("the readiness record", false, victim_link("ready"), VICTIM_CHECK),
        ("systemd's log", false, victim_link("systemd.log"), VICTIM_CHECK),
        ("the activation log", false, victim_link("activation.log"), VICTIM_CHECK),
        ("the lock", false, victim_link("lock"), VICTIM_CHECK),
        ("the notification socket", false, victim_link("notify"), VICTIM_CHECK),
        (
            "the hint's temporary file, with a wrong hint (after a first session)",
            true,
            format!("echo 999999 > /run/nixos-wsl/ns/init-pid; {}", victim_link("ns/init-pid.tmp")),
            VICTIM_CHECK,
        ),
    ];
    let mut failures = Vec::new();
    for (what, after_first, planted, check) in cases {
        d.terminate()?;
        d.boot()?;
        if after_first {
            working_session(&d).with_context(|| format!("{what}: the first session"))?;
        }
        d.root_sh("rm -rf /var/tmp/elsewhere")?;
        plant(&d, &planted)?;
        let before = d.root_sh(check)?.out();
        let launch =
            d.run(&Launch::command("id -un; cat /proc/1/comm").timeout(Duration::from_secs(150)))?;
        let after = d.root_sh(check)?.out();
        if after != before {
            failures.push(format!(
                "symlink as {what}: the target elsewhere changed: before {before:?}, after {after:?}"
            ));
        }
        if launch.code != 0 || !launch.out().starts_with("nixos\n") {
            failures.push(format!("symlink as {what}: no session: {launch}"));
        } else if launch.out() != "nixos\nsystemd\n" {
            failures.push(format!(
                "symlink as {what}: a session, but without systemd for the rest of this boot: {}",
                launch.err().trim()
            ));
        }
    }
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

/// Special files where the state directory expects regular ones: nothing may block a launch
/// (an open() of a FIFO for writing waits for a reader forever) or cost the boot its systemd.
fn garbage_special_files() -> Result<()> {
    let d = Distro::new(opts("garbage-special").file("/etc/nixos-wsl.conf", "timeout = 10\n"))?;
    let mut failures = Vec::new();
    for (what, planted) in [
        (
            "a FIFO as systemd's log",
            "mkfifo /run/nixos-wsl/systemd.log",
        ),
        (
            "a FIFO as the activation log",
            "mkfifo /run/nixos-wsl/activation.log",
        ),
        ("a FIFO as the lock", "mkfifo /run/nixos-wsl/lock"),
        ("a directory as the lock", "mkdir /run/nixos-wsl/lock"),
        (
            "a directory as the notification socket",
            "mkdir /run/nixos-wsl/notify",
        ),
        (
            "a directory as the readiness record",
            "mkdir /run/nixos-wsl/ready",
        ),
        (
            "a directory as systemd's log",
            "mkdir /run/nixos-wsl/systemd.log",
        ),
    ] {
        d.terminate()?;
        d.boot()?;
        plant(&d, &format!("mkdir -p /run/nixos-wsl; {planted}"))?;
        let launch =
            d.run(&Launch::command("id -un; cat /proc/1/comm").timeout(Duration::from_secs(30)));
        match launch {
            Err(e) => failures.push(format!("{what}: {e:#}")),
            Ok(l) if l.code != 0 || !l.out().starts_with("nixos\n") => {
                failures.push(format!("{what}: no session: {l}"))
            }
            Ok(l) if l.elapsed > Duration::from_secs(25) => {
                failures.push(format!("{what}: the session took {:.1?}", l.elapsed))
            }
            Ok(l) if l.out() != "nixos\nsystemd\n" => failures.push(format!(
                "{what}: a session, but without systemd for the rest of this boot: {}",
                l.err().trim()
            )),
            Ok(_) => {}
        }
    }
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// user::*: the user's passwd entry is broken.

/// Runs `cmd` after editing nixos's passwd entry with `usermod`; returns the launch.
fn with_broken_user(name: &str, usermod: &str, cmd: &str, cwd: &str) -> Result<Output> {
    let d = Distro::start(opts(name).file_mode(
        "/usr/local/bin/not-executable-shell",
        "#!/bin/sh\necho should not run\n",
        0o644,
    ))?;
    plant(&d, usermod)?;
    d.run(
        &Launch::command(cmd)
            .cwd(cwd)
            .timeout(Duration::from_secs(90)),
    )
}

fn user_no_home() -> Result<()> {
    let mut failures = Vec::new();
    for (usermod, home) in [
        ("usermod -d /home/ghost nixos", "/home/ghost"),
        (
            "sed -i 's|^nixos:\\([^:]*\\):\\([^:]*\\):\\([^:]*\\):\\([^:]*\\):[^:]*:|nixos:\\1:\\2:\\3:\\4::|' /etc/passwd",
            "",
        ),
    ] {
        // `~` is root's home for WSL (root's shell is the login shell): mapped to the user's.
        let out = with_broken_user("user-no-home", usermod, "id -un; pwd; cat /proc/1/comm", "~")?;
        if out.code != 0 || out.out() != "nixos\n/\nsystemd\n" {
            failures.push(format!("home {home:?}: expected a session in /: {out}"));
        } else if out.err().lines().count() != 1 || !out.err().contains("home") {
            failures.push(format!(
                "home {home:?}: expected one line about the missing home: {out}"
            ));
        }
    }
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

fn user_missing_shell() -> Result<()> {
    let out = with_broken_user(
        "user-missing-shell",
        "usermod -s /bin/no-such-shell nixos",
        "echo \"$0\"; id -un; cat /proc/1/comm",
        "/mnt/c/Users/me",
    )?;
    ensure!(
        out.code == 0 && out.out().ends_with("bash\nnixos\nsystemd\n"),
        "expected a fallback bash: {out}"
    );
    ensure!(
        out.err().lines().count() == 1 && out.err().contains("/bin/no-such-shell"),
        "expected one line naming the shell: {out}"
    );
    Ok(())
}

fn user_shell_not_executable() -> Result<()> {
    let out = with_broken_user(
        "user-noexec-shell",
        "usermod -s /usr/local/bin/not-executable-shell nixos",
        "echo \"$0\"; id -un",
        "/mnt/c/Users/me",
    )?;
    ensure!(
        out.code == 0 && out.out().ends_with("bash\nnixos\n"),
        "expected a fallback bash: {out}"
    );
    ensure!(
        out.err().lines().count() == 1 && out.err().contains("not-executable-shell"),
        "expected one line naming the shell: {out}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// bytes::*: non-UTF-8 bytes. The simulator's launches carry UTF-8 strings, so the bytes are
// made inside the distro: WSL's root (`wsl -u root -e`) runs the login shell directly, which
// is exactly how a launch starts it.

fn non_utf8_argv() -> Result<()> {
    let d = Distro::start(opts("bytes-argv").file_mode(
        "/usr/local/bin/argv-test",
        "#!/bin/bash\n\
         /usr/local/bin/nixos-wsl-shell -c $'printf %s \"\\xff\\xfe\" | od -An -tx1 | tr -d \" \"; id -un; cat /proc/1/comm'\n\
         echo \"exit=$?\"\n\
         echo 'echo \"$0\"; id -un' | (exec -a $'-\\xff' /usr/local/bin/nixos-wsl-shell)\n\
         echo \"exit=$?\"\n\
         nixos-wsl exec --user nixos -- printf %s $'a\\xffb' | od -An -tx1 | tr -d ' '\n\
         nixos-wsl $'\\xff'; echo \"exit=$?\"\n\
         nixos-wsl status $'\\xff' 2>/dev/null; echo \"exit=$?\"\n",
        0o755,
    ))?;
    let out = d.run(
        &Launch::exec(["/usr/local/bin/argv-test"])
            .user("root")
            .cwd("/")
            .timeout(Duration::from_secs(90)),
    )?;
    ensure!(
        out.out() == "fffe\nnixos\nsystemd\nexit=0\n-bash\nnixos\nexit=0\n61ff62\nexit=2\nexit=2\n",
        "{out}"
    );
    Ok(())
}

fn non_utf8_env() -> Result<()> {
    let d = Distro::start(opts("bytes-env").file_mode(
        "/usr/local/bin/env-test",
        "#!/bin/bash\n\
         env $'X=\\xff\\xfe' $'NIXOS_WSL_USER=\\xff' $'NIXOS_WSL_SYSTEMD=\\xff' $'WSLENV=X:\\xff' \
         /usr/local/bin/nixos-wsl-shell -c 'printf %s \"$X\" | od -An -tx1 | tr -d \" \"; id -un; cat /proc/1/comm'\n\
         echo \"exit=$?\"\n",
        0o755,
    ))?;
    let out = d.run(
        &Launch::exec(["/usr/local/bin/env-test"])
            .user("root")
            .cwd("/")
            .timeout(Duration::from_secs(90)),
    )?;
    ensure!(
        out.out() == "fffe\nnixos\nsystemd\nexit=0\n",
        "non-UTF-8 values must pass through and the switches be ignored: {out}"
    );
    Ok(())
}

fn non_utf8_config() -> Result<()> {
    let d = Distro::start(opts("bytes-config").file(
        "/etc/nixos-wsl.conf",
        b"# \xff a comment with bad bytes\nuser = nixos\n\xff\xfe = \xff\ntimeout = 7\xc3\n\x00\n".to_vec(),
    ))?;
    let out =
        d.run(&Launch::command("id -un; cat /proc/1/comm").timeout(Duration::from_secs(90)))?;
    ensure!(out.code == 0 && out.out() == "nixos\nsystemd\n", "{out}");
    ensure!(
        out.err().lines().count() == 3,
        "expected one warning per bad line (3): {out}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// recovery::*: the documented switches (Windows users set them through WSLENV).

/// A distro whose systemd hangs forever: the situation the switches exist for.
fn hung_distro(name: &str) -> Result<Distro> {
    Distro::start(
        opts(name)
            .file(
                "/etc/nixos-wsl.conf",
                "systemd = /usr/local/bin/hung-systemd\ntimeout = 60\n",
            )
            .file_mode(
                "/usr/local/bin/hung-systemd",
                "#!/bin/sh\nexec sleep 1000\n",
                0o755,
            ),
    )
}

fn recovery_systemd_off() -> Result<()> {
    let d = hung_distro("recovery-off")?;
    let out = d.run(
        &Launch::command("id -un; cat /proc/1/comm")
            .wslenv("NIXOS_WSL_SYSTEMD", "off")
            .timeout(Duration::from_secs(30)),
    )?;
    ensure!(
        out.code == 0
            && out.elapsed < Duration::from_secs(5)
            && out.out().starts_with("nixos\n")
            && out.out() != "nixos\nsystemd\n",
        "NIXOS_WSL_SYSTEMD=off must open the user's shell at once, without systemd: {out}"
    );
    let started_anyway = d
        .host_pids()
        .into_iter()
        .any(|p| read(format!("/proc/{p}/cmdline")).contains("hung-systemd"));
    ensure!(
        !started_anyway && systemd_inits(&d).is_empty(),
        "systemd was started anyway"
    );
    let state = d.root_sh("test -e /run/nixos-wsl/ns/pid && echo handle || echo none")?;
    ensure!(state.out() == "none\n", "a namespace was created: {state}");
    Ok(())
}

fn recovery_user_root() -> Result<()> {
    let d = hung_distro("recovery-root")?;
    plant(&d, "usermod -s /bin/no-such-shell nixos")?;
    let out = d.run(
        &Launch::command("id -u; cat /proc/1/comm")
            .wslenv("NIXOS_WSL_SYSTEMD", "off")
            .wslenv("NIXOS_WSL_USER", "root")
            .timeout(Duration::from_secs(30)),
    )?;
    ensure!(
        out.code == 0
            && out.out().starts_with("0\n")
            && out.out() != "0\nsystemd\n"
            && out.stderr.is_empty(),
        "NIXOS_WSL_USER=root with systemd off: {out}"
    );
    // With systemd working, NIXOS_WSL_USER=root lands in root's shell inside it.
    let d = Distro::start(opts("recovery-root-systemd"))?;
    working_session(&d)?; // booted: the next launch is a warm one, silent on stderr
    let out = d.run(
        &Launch::command("id -u; cat /proc/1/comm")
            .wslenv("NIXOS_WSL_USER", "root")
            .timeout(Duration::from_secs(60)),
    )?;
    out.ok()?;
    ensure!(out.out() == "0\nsystemd\n", "{out}");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// cli::*: the admin CLI.

fn cli_usage() -> Result<()> {
    let run = |args: &[&str]| -> Result<std::process::Output> {
        std::process::Command::new(cli_bin())
            .args(args)
            .env("NIXOS_WSL_LOG", "warn")
            .output()
            .context("running nixos-wsl")
    };
    let version = run(&["--version"])?;
    ensure!(
        version.status.code() == Some(0)
            && String::from_utf8_lossy(&version.stdout).starts_with("nixos-wsl "),
        "--version: {version:?}"
    );
    for cmd in [
        "status",
        "exec",
        "stop",
        "logs",
        "doctor",
        "generations",
        "boot",
        "version",
    ] {
        let help = run(&[cmd, "--help"])?;
        let text = String::from_utf8_lossy(&help.stdout);
        ensure!(
            help.status.code() == Some(0)
                && text.starts_with(&format!("usage: nixos-wsl {cmd}"))
                && help.stderr.is_empty(),
            "{cmd} --help: {help:?}"
        );
        let bad = run(&[cmd, "--no-such-option"])?;
        let err = String::from_utf8_lossy(&bad.stderr);
        ensure!(
            bad.status.code() == Some(2)
                && err.contains(&format!("usage: nixos-wsl {cmd}"))
                && bad.stdout.is_empty(),
            "{cmd} --no-such-option: {bad:?}"
        );
    }
    for args in [
        &["exec"][..],
        &["exec", "--"][..],
        &["stop", "--timeout", "0"][..],
        &["bogus"][..],
    ] {
        let out = run(args)?;
        ensure!(out.status.code() == Some(2), "{args:?}: {out:?}");
    }
    // Every tarball subcommand takes --help too, conventionally: usage on stdout, exit 0.
    for sub in ["build", "installer", "verify", "rootfs", "ico", "manifest"] {
        for help in ["--help", "-h"] {
            let out = run(&["tarball", sub, help])?;
            ensure!(
                out.status.code() == Some(0)
                    && String::from_utf8_lossy(&out.stdout).starts_with("usage: nixos-wsl tarball")
                    && out.stderr.is_empty(),
                "tarball {sub} {help}: {out:?}"
            );
        }
    }
    let top = run(&["--help"])?;
    let text = String::from_utf8_lossy(&top.stdout);
    for cmd in ["status", "exec", "stop", "logs", "tarball"] {
        ensure!(
            text.contains(&format!("  {cmd} ")),
            "--help lacks {cmd}: {text}"
        );
    }
    Ok(())
}

/// `nixos-wsl status` is documented as never changing a file: with the init PID hint gone,
/// it finds systemd by scanning and leaves the hint alone; the next launch repairs it.
fn cli_status_changes_no_file() -> Result<()> {
    let d = Distro::start(opts("cli-status-ro"))?;
    d.run(&Launch::command("true"))?.ok()?;
    let hint = "/run/nixos-wsl/ns/init-pid";
    d.root_sh(&format!("rm {hint}"))?.ok()?;
    let s = cli(&d, &["status"])?;
    ensure!(s.code == 0, "status without the hint: {s}");
    let after = d.root_sh(&format!("test -e {hint} && echo written || echo untouched"))?;
    ensure!(after.out() == "untouched\n", "status wrote {hint}: {after}");
    d.run(&Launch::command("true"))?.ok()?;
    let after = d.root_sh(&format!("test -e {hint} && echo repaired"))?;
    ensure!(after.out() == "repaired\n", "the next launch: {after}");
    Ok(())
}

fn cli_end_to_end() -> Result<()> {
    // Wrappers that leave a line in each log: the simulator has no /dev/console, so systemd's
    // own console output (its banner) has nowhere to go there.
    let d = Distro::start(
        opts("cli")
            .file(
                "/etc/nixos-wsl.conf",
                "systemd = /usr/local/bin/noisy-systemd\nactivate = /usr/local/bin/noisy-activate\n",
            )
            .file_mode(
                "/usr/local/bin/noisy-systemd",
                "#!/bin/sh\necho 'noisy-systemd: starting'\nexec /lib/systemd/systemd \"$@\"\n",
                0o755,
            )
            .file_mode(
                "/usr/local/bin/noisy-activate",
                "#!/bin/sh\necho \"noisy-activate: LANG=$LANG\"\nexec /nix/var/nix/profiles/system/activate\n",
                0o755,
            ),
    )?;
    // Nothing started yet.
    let s = cli(&d, &["status"])?;
    ensure!(
        s.code == 3 && s.out().starts_with("mode:        none\n"),
        "cold status: {s}"
    );
    let s = cli(&d, &["status", "--json"])?;
    ensure!(
        s.code == 3
            && json_field(&s.out(), "mode") == Some("\"none\"")
            && json_field(&s.out(), "up") == Some("false"),
        "cold status --json: {s}"
    );
    ensure!(systemd_inits(&d).is_empty(), "status started systemd");

    // exec starts systemd like a login does, and runs the command in its namespace as root.
    let e = cli(
        &d,
        &["exec", "--", "sh", "-c", "cat /proc/1/comm; id -u; exit 42"],
    )?;
    ensure!(e.code == 42 && e.out() == "systemd\n0\n", "exec: {e}");
    let e = cli(&d, &["exec", "--user", "nixos", "--", "id", "-un"])?;
    ensure!(e.code == 0 && e.out() == "nixos\n", "exec --user: {e}");
    let e = cli(&d, &["exec", "--", "/no/such/command"])?;
    ensure!(
        e.code == 127 && !e.stderr.is_empty(),
        "exec of a missing command: {e}"
    );
    let e = cli(&d, &["exec", "--user", "nobody-here", "--", "true"])?;
    ensure!(
        e.code == 125 && e.err().contains("nobody-here"),
        "exec --user nobody-here: {e}"
    );
    ensure!(
        activations(&d)? == 1,
        "exec must activate like a login does"
    );

    // status while it runs. "Outside" is the distro's view (WSL's init), one level in from ours.
    let host_pid = one_systemd(&d)?;
    let ns = nspid(host_pid);
    let pid = ns[ns.len() - 2];
    let s = cli(&d, &["status", "--json"])?;
    let j = s.out();
    ensure!(s.code == 0, "status: {s}");
    for (key, want) in [
        ("mode", "\"namespace\"".to_string()),
        ("inside", "false".into()),
        ("up", "true".into()),
        ("pid_inside", "1".into()),
        ("pid_outside", pid.to_string()),
        ("state", "\"running\"".into()),
        ("failed_units", "0".into()),
        ("readiness", "\"ready\"".into()),
        ("current_system", "true".into()),
        ("activated", "true".into()),
    ] {
        ensure!(
            json_field(&j, key) == Some(want.as_str()),
            "status --json: {key} is {:?}, expected {want}: {j}",
            json_field(&j, key)
        );
    }
    let ago: u64 = json_field(&j, "started_secs_ago")
        .and_then(|v| v.parse().ok())
        .context("started_secs_ago")?;
    ensure!(ago < 120, "started {ago} s ago?");
    let s = cli(&d, &["status"])?;
    ensure!(
        s.code == 0 && s.out().contains(&format!("1 inside, {pid} outside")),
        "status text: {s}"
    );
    // A user outside the namespace cannot open the handle (0700): "cannot tell", with advice.
    let s = d.run(&Launch::exec([CLI, "status"]).user("nixos").cwd("/"))?;
    ensure!(
        s.code == 4 && s.out().contains("run it as root"),
        "status as a user outside: {s}"
    );

    // logs: both logs of this boot, under headers.
    let l = cli(&d, &["logs"])?;
    let text = l.out();
    ensure!(l.code == 0, "logs: {l}");
    let sd = text.find("==> systemd's early output: /run/nixos-wsl/systemd.log <==\n");
    let act = text.find("==> activation: /run/nixos-wsl/activation.log <==\n");
    ensure!(
        matches!((sd, act), (Some(a), Some(b)) if a < b),
        "logs headers: {text}"
    );
    let (sd, act) = (sd.unwrap_or(0), act.unwrap_or(0));
    ensure!(
        text[sd..act].contains("noisy-systemd: starting\n")
            && text[act..].contains("noisy-activate: LANG=C.UTF-8\n"),
        "logs lack this boot's lines: {text}"
    );

    // stop: powered off, no systemd left, the handle forgotten; a second stop is a no-op.
    let started = start_time(host_pid);
    let st = cli(&d, &["stop"])?;
    ensure!(
        st.code == 0 && st.out().contains("powered off"),
        "stop: {st}"
    );
    no_systemd(&d, Duration::from_secs(10))?;
    let h = d.root_sh("test -e /run/nixos-wsl/ns/pid && echo handle; test -e /run/nixos-wsl/ready && echo ready; true")?;
    ensure!(h.out().is_empty(), "stop left state behind: {h}");
    let s = cli(&d, &["status"])?;
    ensure!(s.code == 3, "status after stop: {s}");
    let st = cli(&d, &["stop"])?;
    ensure!(
        st.code == 0 && st.out().contains("not running"),
        "second stop: {st}"
    );
    // The next launch boots afresh.
    let (next, _) = working_session(&d)?;
    ensure!(next != started, "the next launch found the stopped systemd");
    Ok(())
}

fn cli_inside() -> Result<()> {
    let d = Distro::start(opts("cli-inside"))?;
    working_session(&d)?;
    let pid = one_systemd(&d)?;
    // As root inside (sudo in a session) and as the user.
    for cmd in ["sudo nixos-wsl status --json", "nixos-wsl status --json"] {
        let s = d.run(&Launch::command(cmd))?;
        let j = s.out();
        ensure!(
            s.code == 0
                && json_field(&j, "mode") == Some("\"namespace\"")
                && json_field(&j, "inside") == Some("true")
                && json_field(&j, "state") == Some("\"running\""),
            "{cmd}: {s}"
        );
    }
    let st = d.run(&Launch::command("sudo nixos-wsl stop"))?;
    ensure!(
        st.code == 1 && st.err().contains("-u root -e nixos-wsl stop"),
        "stop inside must refuse and say how: {st}"
    );
    ensure!(one_systemd(&d)? == pid, "stop inside stopped systemd");
    let e = d.run(&Launch::command(
        "sudo nixos-wsl exec --user nixos -- sh -c 'id -un; cat /proc/1/comm'",
    ))?;
    ensure!(
        e.code == 0 && e.out() == "nixos\nsystemd\n",
        "exec inside: {e}"
    );
    ensure!(
        one_systemd(&d)? == pid,
        "exec inside started another systemd"
    );
    Ok(())
}

fn cli_stop_kills() -> Result<()> {
    let d = Distro::start(
        opts("cli-stop-kill")
            .file(
                "/etc/systemd/system/stubborn.service",
                "[Unit]\nDescription=Never stops (fault-injection test)\n\
                 [Service]\nExecStart=/bin/sleep infinity\nExecStop=/bin/sleep 600\nTimeoutStopSec=infinity\n",
            )
            .file(
                "/etc/systemd/system/multi-user.target.d/stubborn.conf",
                "[Unit]\nWants=stubborn.service\n",
            ),
    )?;
    working_session(&d)?;
    let t = Instant::now();
    let st = cli(&d, &["stop", "--timeout", "3"])?;
    ensure!(
        st.code == 0 && st.out().contains("killed") && st.err().contains("did not power off"),
        "stop: {st}"
    );
    ensure!(
        t.elapsed() < Duration::from_secs(20),
        "stop took {:.1?}",
        t.elapsed()
    );
    no_systemd(&d, Duration::from_secs(10))?;
    working_session(&d)?;
    Ok(())
}

/// WSL's own systemd mode (`[boot] systemd=true`, nixos-wsl-init as /sbin/init): status says
/// so, exec runs in it without starting another systemd, stop refuses and names `wsl -t`.
fn cli_wsl_systemd_mode() -> Result<()> {
    let init = under_test::init();
    let d = Distro::start(opts("cli-native").wsl_systemd(sim::WslSystemd::new(init)))?;
    let s = cli(&d, &["status", "--json"])?;
    let j = s.out();
    for (key, want) in [
        ("mode", "\"wsl-systemd\""),
        ("inside", "true"),
        ("up", "true"),
        ("state", "\"running\""),
    ] {
        ensure!(
            s.code == 0 && json_field(&j, key) == Some(want),
            "status --json: {key} is {:?}, expected {want}: {s}",
            json_field(&j, key)
        );
    }
    let e = cli(
        &d,
        &[
            "exec",
            "--user",
            "nixos",
            "--",
            "sh",
            "-c",
            "id -un; cat /proc/1/comm",
        ],
    )?;
    ensure!(e.code == 0 && e.out() == "nixos\nsystemd\n", "exec: {e}");
    let st = cli(&d, &["stop"])?;
    ensure!(
        st.code == 1 && st.err().contains("wsl -t cli-native"),
        "stop must refuse and name `wsl -t`: {st}"
    );
    let l = cli(&d, &["logs"])?;
    ensure!(
        l.code == 0
            && l.out()
                .contains("==> nixos-wsl-init: /run/nixos-wsl/init.log <=="),
        "logs: {l}"
    );
    ensure!(
        systemd_inits(&d).len() == 1,
        "expected only WSL's systemd: {:?}",
        systemd_inits(&d)
    );
    Ok(())
}

fn cli_exec_without_systemd() -> Result<()> {
    let d = Distro::start(
        opts("cli-no-systemd").file("/etc/nixos-wsl.conf", "systemd = /nonexistent/systemd\n"),
    )?;
    let e = cli(&d, &["exec", "--", "true"])?;
    ensure!(
        e.code == 125 && e.err().contains("/nonexistent/systemd"),
        "exec must fail loudly without systemd: {e}"
    );
    let s = cli(&d, &["status"])?;
    ensure!(s.code == 3, "{s}");
    Ok(())
}
