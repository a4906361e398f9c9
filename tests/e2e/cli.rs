//! The admin CLI end to end: `nixos-wsl` installed next to the login shell in the WSL
//! simulator (tests/sim), with real systemd: `status`, `exec`, `stop`, `logs` from outside
//! the namespace, from inside it and under WSL's own systemd, and the argument handling of
//! every subcommand.
//!
//! `cli::usage_help_and_version` needs no privileges, the rest need root.

use crate::sim;

use sim::checks::*;
use sim::harness::TestFn;

use libtest_mimic::Trial;

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use sim::{under_test, Distro, Launch};

pub(crate) fn tests() -> Vec<Trial> {
    let mut t = crate::unprivileged_all(tests!["cli": usage_help_and_version]);
    t.extend(crate::root(tests!["cli":
        status_exec_stop_logs,
        status_changes_no_file,
        inside_the_namespace,
        stop_kills_a_systemd_that_will_not_power_off,
        exec_without_systemd,
        wsl_systemd_mode,
    ]));
    t
}

fn usage_help_and_version() -> Result<()> {
    let run = |args: &[&str]| -> Result<std::process::Output> {
        std::process::Command::new(under_test::cli())
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
fn status_changes_no_file() -> Result<()> {
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

fn status_exec_stop_logs() -> Result<()> {
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

fn inside_the_namespace() -> Result<()> {
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

fn stop_kills_a_systemd_that_will_not_power_off() -> Result<()> {
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
fn wsl_systemd_mode() -> Result<()> {
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

fn exec_without_systemd() -> Result<()> {
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
