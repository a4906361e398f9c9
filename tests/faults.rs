//! Fault injection and hostile input (issue 7), in the WSL simulator (tests/sim) with real
//! systemd. (The admin CLI's end-to-end tests are tests/cli.rs.)
//!
//! One test binary (`harness = false`, libtest-mimic). Tiers:
//! - `kill::*`: SIGKILL of the login shell at each stage of a cold start, then a working
//!   session with exactly one systemd;
//! - `systemd::*`: systemd dying while starting or after being ready;
//! - `garbage::*`: hostile contents of `/run/nixos-wsl/`;
//! - `user::*`, `bytes::*`, `recovery::*`: broken passwd entries, non-UTF-8 input, the
//!   `NIXOS_WSL_SYSTEMD=off` / `NIXOS_WSL_USER=root` switches;
//!
//! Everything but the first tier needs root; without root those tests are skipped with a
//! note, except under `CI`, where they fail. Each launch has its own timeout, each wait a
//! deadline, and the whole run a budget (`NIXOS_WSL_TEST_BUDGET` seconds, default 900).
//! Environment: `NIXOS_WSL_TEST_SHELL_BIN` / `NIXOS_WSL_TEST_CLI_BIN` install other builds;
//! `NIXOS_WSL_FUZZ_INPUTS` (default 1000000) and `NIXOS_WSL_FUZZ_SEED` tune the fuzzer.

mod sim;

use sim::checks::*;
use sim::harness::{self, TestFn};

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use libtest_mimic::{Arguments, Trial};
use nix::sys::signal::Signal;

use sim::{Distro, Launch, Output};

fn main() {
    if let Some(code) = sim::role_main() {
        std::process::exit(code);
    }
    let args = Arguments::from_args();
    let mut tests = Vec::new();
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
