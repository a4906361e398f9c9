//! `kill::*`: SIGKILL of the login shell at each stage of a cold start, then a working
//! session with exactly one systemd (issue 7).

use crate::sim;

use sim::checks::*;
use sim::harness::TestFn;

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use nix::sys::signal::Signal;

use sim::{Distro, Launch};

/// The slowest first, so they overlap with the rest.
pub(crate) fn tests() -> Vec<(String, TestFn)> {
    tests!["kill": at_every_moment_of_a_cold_start, before_the_lock, holding_the_lock, during_activation, after_systemd_started_before_ready, right_after_systemd_exec, while_entering]
}

// kill::*: SIGKILL of the login shell during a cold start.

/// Kill points after the launch starts (ms). A cold start in the simulator takes about
/// 300-500 ms, so these land before exec, while reading the config, deciding under the lock,
/// activating, forking the namespace creator, waiting for READY=1, joining and entering.
const SWEEP_MS: [u64; 18] = [
    0, 1, 2, 3, 5, 8, 12, 17, 25, 35, 50, 70, 100, 140, 200, 280, 400, 600,
];

fn at_every_moment_of_a_cold_start() -> Result<()> {
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
fn before_the_lock() -> Result<()> {
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

fn holding_the_lock() -> Result<()> {
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

fn during_activation() -> Result<()> {
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

fn after_systemd_started_before_ready() -> Result<()> {
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
fn right_after_systemd_exec() -> Result<()> {
    let d = Distro::start(slow_boot(opts("kill-after-exec"), 4))?;
    let p = d.spawn(&entering_launch())?;
    wait_for("systemd to be exec'd", Duration::from_secs(30), || {
        systemd_inits(&d).len() == 1
    })?;
    kill_launch(p)?;
    working_session(&d)?;
    Ok(())
}

fn while_entering() -> Result<()> {
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
