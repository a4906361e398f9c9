//! `nixos-wsl doctor` end to end in the WSL simulator with real systemd (issue 14): a healthy
//! distro in both modes, then for each check a distro (or a change) that makes it warn or
//! fail with its fix, the JSON shape, and the time bound with a hung systemctl.
//!
//! The simulator does not emulate WSL's kernel or its interop (wsl-behaviour.md section 5:
//! `.exe` launching and the kernel are the host's), so on a healthy simulated distro the
//! `kernel`, `interop` and `binfmt` checks warn, and only those; everything else is ok. Root
//! only; fails in CI when it cannot run, skipped elsewhere.

use crate::sim;

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use sim::harness::TestFn;
use sim::under_test::{self, Mode};
use sim::{Distro, DistroOptions, Exit, Launch, Output};

/// The checks the simulator cannot make ok (see the module docs).
const SIMULATOR_LIMITS: &[&str] = &["kernel", "interop", "binfmt"];

pub(crate) fn tests() -> Vec<(String, TestFn)> {
    let mut t = modes!["doctor": healthy];
    t.extend(tests!["doctor": json_shape, hung_systemctl_stays_within_2_s, each_check_warns_or_fails_with_its_fix]);
    t
}

/// A healthy distro: generations, /bin/nixos-wsl, WSL's resolv.conf link; one session ran.
fn distro(
    name: &str,
    mode: Mode,
    more: impl FnOnce(DistroOptions) -> DistroOptions,
) -> Result<Distro> {
    let opts =
        under_test::nixos_distro(name, mode)?.link("/etc/resolv.conf", "/mnt/wsl/resolv.conf");
    let d = Distro::start(more(opts))?;
    let out = d.run(&Launch::command("true"))?;
    ensure!(out.exit == Exit::Code(0), "first launch: {out}");
    Ok(d)
}

fn doctor(d: &Distro, args: &[&str]) -> Result<Output> {
    let mut argv = vec!["/bin/nixos-wsl", "doctor"];
    argv.extend_from_slice(args);
    d.run(&Launch::exec(argv).user("root"))
}

/// (check, status) of every line of the text report.
fn statuses(out: &Output) -> Vec<(String, String)> {
    out.out()
        .lines()
        .filter_map(|l| {
            let (status, rest) = l.split_once(' ')?;
            matches!(status, "ok" | "warn" | "fail").then(|| {
                (
                    rest.trim_start().split(':').next().unwrap_or("").to_owned(),
                    status.to_owned(),
                )
            })
        })
        .collect()
}

fn healthy(mode: Mode) -> Result<()> {
    let d = distro(&format!("doctor-{mode:?}"), mode, |o| o)?;
    let out = doctor(&d, &[])?;
    let s = statuses(&out);
    ensure!(s.len() == 13, "13 checks expected: {out}");
    for (check, status) in &s {
        let expected = if SIMULATOR_LIMITS.contains(&check.as_str()) {
            "warn"
        } else {
            "ok"
        };
        ensure!(
            status == expected,
            "{check} is {status}, expected {expected}: {out}"
        );
    }
    ensure!(out.exit == Exit::Code(1), "warnings exit 1: {out}");
    ensure!(
        out.elapsed < Duration::from_secs(2),
        "took {:?}",
        out.elapsed
    );
    Ok(())
}

fn json_shape() -> Result<()> {
    let d = distro("doctor-json", Mode::Namespace, |o| o)?;
    let out = doctor(&d, &["--json"])?;
    let script = r#"
import json, sys
r = json.loads(sys.stdin.read())
assert set(r) == {"checks", "summary"}, r
assert len(r["checks"]) == 13
for c in r["checks"]:
    assert set(c) == {"name", "status", "message", "fix"}, c
    assert c["status"] in ("ok", "warn", "fail")
    assert (c["fix"] is None) == (c["status"] == "ok"), c
s = r["summary"]
assert s["ok"] + s["warn"] + s["fail"] == 13 and s["fail"] == 0, s
"#;
    let mut py = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .context("python3")?;
    std::io::Write::write_all(py.stdin.as_mut().context("stdin")?, &out.stdout)?;
    ensure!(py.wait()?.success(), "JSON shape: {out}");
    Ok(())
}

/// systemctl hangs: the doctor still answers, within 2 s, and says systemd did not answer.
fn hung_systemctl_stays_within_2_s() -> Result<()> {
    let d = distro("doctor-hung", Mode::Namespace, |o| {
        o.file_mode("/opt/hang", "#!/bin/sh\nexec sleep 100\n", 0o755)
    })?;
    // Over the real one, in the distro's mount namespace only (it propagates into systemd's).
    d.root_sh("mount --bind /opt/hang /usr/bin/systemctl")?;
    let started = Instant::now();
    let out = doctor(&d, &[])?;
    let took = started.elapsed();
    ensure!(took < Duration::from_secs(2), "took {took:?}: {out}");
    ensure!(out.exit == Exit::Code(2), "{out}");
    ensure!(
        out.out()
            .contains("fail  systemd: systemd did not answer within the doctor's time"),
        "{out}"
    );
    Ok(())
}

/// Each check made to warn or fail, one change at a time, each with its fix.
fn each_check_warns_or_fails_with_its_fix() -> Result<()> {
    let expect = |d: &Distro, check: &str, status: &str, says: &str| -> Result<()> {
        let out = doctor(d, &[])?;
        let text = out.out();
        let line = text
            .lines()
            .position(|l| {
                l.starts_with(status)
                    && l[status.len()..]
                        .trim_start()
                        .starts_with(&format!("{check}:"))
            })
            .with_context(|| format!("{check} is not {status}: {out}"))?;
        let lines: Vec<&str> = text.lines().collect();
        ensure!(lines[line].contains(says), "{check}: {out}");
        ensure!(
            lines
                .get(line + 1)
                .is_some_and(|l| l.trim_start().starts_with("fix: ")),
            "{check} without a fix: {out}"
        );
        let code = if status == "fail" { 2 } else { 1 };
        ensure!(out.exit == Exit::Code(code), "{check}: exit {:?}", out.exit);
        Ok(())
    };

    // A distro whose wsl.conf asks for WSL's systemd but runs the namespace mode, with an
    // unknown key, no /bin/nixos-wsl (the doctor runs from elsewhere) and a failing activation.
    let d = distro("doctor-broken", Mode::Namespace, |o| {
        o.file(
            "/etc/wsl.conf",
            "[boot]\nsystemd=true\n[user]\ndefault=root\n[nixos]\nshell=x\n",
        )
        .file("/etc/nixos-wsl.conf", "activate = /opt/fail\n")
        .file_mode("/opt/fail", "#!/bin/sh\nexit 1\n", 0o755)
    })?;
    d.root_sh("mv /usr/bin/nixos-wsl /usr/local/bin/doctor-cli")?;
    let run = |args: &[&str]| -> Result<Output> {
        let mut argv = vec!["/usr/local/bin/doctor-cli", "doctor"];
        argv.extend_from_slice(args);
        d.run(&Launch::exec(argv).user("root"))
    };
    let out = run(&[])?;
    let text = out.out();
    for (check, status, says) in [
        ("mode", "fail", "asks WSL to start systemd"),
        ("paths", "fail", "/bin/nixos-wsl"),
        ("wsl.conf", "warn", "Unknown key 'nixos.shell'"),
        ("activation", "fail", "activation of this boot failed"),
    ] {
        ensure!(
            text.lines().any(|l| l.starts_with(status)
                && l.contains(&format!("{check}: "))
                && l.contains(says)),
            "{check} not {status}: {out}"
        );
    }
    ensure!(out.exit == Exit::Code(2), "{out}");

    // One healthy distro, changed one thing at a time.
    let d = distro("doctor-fixtures", Mode::Namespace, |o| o)?;
    d.root_sh("touch /run/nixos-wsl/bogus")?;
    expect(&d, "state", "warn", "bogus")?;
    d.root_sh("rm /run/nixos-wsl/bogus; rm /etc/resolv.conf; echo 'nameserver 9.9.9.9' > /etc/resolv.conf")?;
    expect(&d, "resolv.conf", "warn", "something else did")?;
    d.root_sh("ln -sfn /mnt/wsl/resolv.conf /etc/resolv.conf")?;
    let stop = d.run(
        &Launch::exec([
            "/bin/nixos-wsl",
            "exec",
            "--",
            "systemctl",
            "stop",
            "user@1000.service",
        ])
        .user("root"),
    )?;
    ensure!(stop.exit == Exit::Code(0), "{stop}");
    expect(&d, "user-session", "warn", "user@1000.service is inactive")?;
    let fail = d.run(
        &Launch::exec([
            "/bin/nixos-wsl",
            "exec",
            "--",
            "systemd-run",
            "--unit=doctor-broken",
            "--wait",
            "false",
        ])
        .user("root"),
    )?;
    ensure!(fail.exit != Exit::Code(0), "{fail}");
    expect(&d, "systemd", "warn", "doctor-broken.service")?;
    d.root_sh("mount -t tmpfs -o size=1m tmpfs /nix/store")?;
    expect(&d, "disk", "fail", "/nix/store 0.0 GiB free")?;
    d.root_sh("umount /nix/store")?;
    let chosen =
        d.run(&Launch::exec(["/bin/nixos-wsl", "boot", "--generation", "1"]).user("root"))?;
    ensure!(chosen.exit == Exit::Code(0), "{chosen}");
    d.terminate()?;
    d.boot()?;
    d.run(&Launch::command("true"))?;
    expect(
        &d,
        "generation",
        "warn",
        "booted generation 1, but the current one is 2",
    )?;
    Ok(())
}
