//! `garbage::*`: hostile contents of `/run/nixos-wsl/` (issue 7).

use crate::sim;

use sim::checks::*;
use sim::harness::TestFn;

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use sim::{Distro, Launch};

pub(crate) fn tests() -> Vec<(String, TestFn)> {
    tests!["garbage": stale_files, dangling_and_odd_handles, wrong_permissions, user_planted_lock_cannot_stall_launches, symlinks_are_never_followed, special_files]
}

// garbage::*: /run/nixos-wsl/ holds things it should not. Planted as WSL's root before the
// first launch of a boot (/run is fresh at every boot).

/// Runs `script` as WSL's root (`set -e`); fails unless it succeeds.
pub(crate) fn plant(d: &Distro, script: &str) -> Result<()> {
    let out = d.root_sh(&format!("set -e; {script}"))?;
    ensure!(out.code == 0, "planting garbage failed: {out}");
    Ok(())
}

fn stale_files() -> Result<()> {
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

fn dangling_and_odd_handles() -> Result<()> {
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

fn wrong_permissions() -> Result<()> {
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
fn user_planted_lock_cannot_stall_launches() -> Result<()> {
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
fn symlinks_are_never_followed() -> Result<()> {
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
fn special_files() -> Result<()> {
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
