//! NixOS generations at boot (issue 14), end to end in the WSL simulator with real systemd,
//! in both modes (the login shell's namespace, and WSL's own systemd with nixos-wsl-init).
//!
//! Every distro gets a system profile of fake generations: `/nix/store/<hash>-nixos-system-gN`
//! with an `activate` that appends N to the persistent `/var/log/generations` and links
//! `/run/current-system`, a `systemd` link to Debian's `/usr` (so
//! `<toplevel>/systemd/lib/systemd/systemd` is real systemd) and a `nixos-version`; the profile
//! links `system-N-link` and `system -> system-2-link`; the static admin CLI at /bin/nixos-wsl,
//! as the module links it. Root only; fails in CI when it cannot run, skipped elsewhere.

use crate::sim;

use anyhow::{ensure, Result};

use sim::harness::TestFn;
use sim::under_test::{self, Mode};
use sim::{Distro, DistroOptions, Exit, Launch, Output};

pub(crate) fn tests() -> Vec<(String, TestFn)> {
    let mut t = modes!["generations":
        chosen_once_then_current,
        broken_current_names_the_previous,
        missing_systemd_names_the_previous,
    ];
    t.extend(tests!["generations":
        environment_variable_cold_and_warm,
        bad_choices_change_nothing,
        recovery_through_bin_nixos_wsl_with_broken_shells,
    ]);
    t
}

/// A distro with generations 1 and 2 (current), in `mode`; `more` adds to it.
fn distro(
    name: &str,
    mode: Mode,
    more: impl FnOnce(DistroOptions) -> DistroOptions,
) -> Result<Distro> {
    Distro::start(more(under_test::nixos_distro(name, mode)?))
}

/// What the last boot activated, the recorded generation, and PID 1's name.
fn booted(d: &Distro) -> Result<(String, String, String)> {
    let out = d.run(&Launch::command(
        "tail -n1 /var/log/generations; cut -d' ' -f1 /run/nixos-wsl/generation; cat /proc/1/comm",
    ))?;
    ensure!(out.exit == Exit::Code(0), "{out}");
    let lines: Vec<String> = out.out().lines().map(str::to_owned).collect();
    ensure!(lines.len() == 3, "{out}");
    Ok((lines[0].clone(), lines[1].clone(), lines[2].clone()))
}

fn as_root(d: &Distro, argv: &[&str]) -> Result<Output> {
    d.run(&Launch::exec(argv.iter().copied()).user("root"))
}

fn restart(d: &Distro) -> Result<()> {
    d.terminate()?;
    d.boot()
}

/// The current generation boots; `boot --generation 1` makes the next start (only) boot 1;
/// `--rollback` picks 1 as well; `--default` forgets the choice.
fn chosen_once_then_current(mode: Mode) -> Result<()> {
    let d = distro(&format!("gen-{mode:?}"), mode, |o| o)?;
    let sd = "systemd".to_string();
    ensure!(
        booted(&d)? == ("2".into(), "2".into(), sd.clone()),
        "first boot"
    );

    let list = as_root(&d, &["/bin/nixos-wsl", "generations"])?;
    ensure!(list.exit == Exit::Code(0), "{list}");
    let text = list.out();
    ensure!(
        text.lines()
            .any(|l| l.trim_start().starts_with("1 ") && l.contains("25.11.g1"))
            && text
                .lines()
                .any(|l| l.trim_start().starts_with("2 ") && l.contains("(current, booted)")),
        "{list}"
    );
    let json = as_root(&d, &["/bin/nixos-wsl", "generations", "--json"])?;
    ensure!(
        json.out().starts_with("[{\"number\":1,")
            && json.out().contains("\"current\":true,\"booted\":true"),
        "{json}"
    );

    let out = as_root(&d, &["/bin/nixos-wsl", "boot", "--generation", "1"])?;
    ensure!(
        out.exit == Exit::Code(0) && out.out().contains(&format!("wsl -t {}", d.name())),
        "{out}"
    );
    restart(&d)?;
    ensure!(
        booted(&d)? == ("1".into(), "1".into(), sd.clone()),
        "the chosen boot"
    );
    let status = as_root(&d, &["/bin/nixos-wsl", "status"])?;
    ensure!(
        status.out().contains("generation:  1 booted, 2 current"),
        "{status}"
    );
    // A second launch of the same boot stays on 1.
    ensure!(booted(&d)?.1 == "1", "a later launch of the chosen boot");
    restart(&d)?;
    ensure!(
        booted(&d)? == ("2".into(), "2".into(), sd.clone()),
        "the boot after"
    );

    let out = as_root(&d, &["/bin/nixos-wsl", "boot", "--rollback"])?;
    ensure!(out.exit == Exit::Code(0), "{out}");
    let choice = d.root_sh("cat /var/lib/nixos-wsl/next-generation")?;
    ensure!(choice.out() == "1\n", "{choice}");
    let out = as_root(&d, &["/bin/nixos-wsl", "boot", "--default"])?;
    ensure!(out.exit == Exit::Code(0), "{out}");
    restart(&d)?;
    ensure!(booted(&d)?.0 == "2", "--default forgot the choice");
    Ok(())
}

/// The current generation's activation fails: the user still gets a shell, and one line that
/// names the previous generation and the command that boots it.
fn broken_current_names_the_previous(mode: Mode) -> Result<()> {
    let d = distro(&format!("gen-broken-{mode:?}"), mode, |o| {
        sim::nixos::generation(o, 3, true).link("/nix/var/nix/profiles/system", "system-3-link")
    })?;
    let out = d.run(&Launch::command("echo shell"))?;
    ensure!(out.exit == Exit::Code(0) && out.out() == "shell\n", "{out}");
    let hint = "to boot the previous generation 2, run from Windows: wsl -d";
    ensure!(
        out.err().contains(hint)
            && out
                .err()
                .contains("-u root -e /bin/nixos-wsl boot --generation 2"),
        "no hint naming generation 2: {out}"
    );
    // Following it works.
    let fix = as_root(&d, &["/bin/nixos-wsl", "boot", "--generation", "2"])?;
    ensure!(fix.exit == Exit::Code(0), "{fix}");
    restart(&d)?;
    let out = d.run(&Launch::command("tail -n1 /var/log/generations"))?;
    ensure!(out.out() == "2\n" && !out.err().contains(hint), "{out}");
    Ok(())
}

/// The current generation has no systemd: a shell, and the hint.
fn missing_systemd_names_the_previous(mode: Mode) -> Result<()> {
    let d = distro(&format!("gen-nosd-{mode:?}"), mode, |o| {
        let t = sim::nixos::toplevel(4);
        o.file_mode(
            &format!("{t}/activate"),
            sim::nixos::activate(4, false),
            0o755,
        )
        .link(&format!("{t}/systemd"), "/nonexistent")
        .link("/nix/var/nix/profiles/system-4-link", &t)
        .link("/nix/var/nix/profiles/system", "system-4-link")
    })?;
    let out = d.run(&Launch::command("echo shell").timeout(std::time::Duration::from_secs(60)))?;
    ensure!(out.out() == "shell\n", "{out}");
    ensure!(
        out.err().contains("to boot the previous generation 2"),
        "no hint: {out}"
    );
    Ok(())
}

/// NIXOS_WSL_GENERATION (namespace mode): a cold start boots it; a warm launch says what
/// runs and changes nothing.
fn environment_variable_cold_and_warm() -> Result<()> {
    let d = distro("gen-env", Mode::Namespace, |o| o)?;
    let out = d.run(
        &Launch::command("tail -n1 /var/log/generations").wslenv("NIXOS_WSL_GENERATION", "1"),
    )?;
    ensure!(
        out.out() == "1\n",
        "cold start with NIXOS_WSL_GENERATION=1: {out}"
    );
    let warm = d.run(
        &Launch::command("tail -n1 /var/log/generations").wslenv("NIXOS_WSL_GENERATION", "2"),
    )?;
    ensure!(
        warm.out() == "1\n"
            && warm.err().contains("NIXOS_WSL_GENERATION = 2 applies when the distribution starts; it is running generation 1"),
        "warm launch: {warm}"
    );
    restart(&d)?;
    ensure!(booted(&d)?.0 == "2", "the next cold start without it");
    Ok(())
}

/// Bad input gets one clear line and changes nothing.
fn bad_choices_change_nothing() -> Result<()> {
    let d = distro("gen-bad", Mode::Namespace, |o| {
        // 3: incomplete (no activate); 5: a link outside the store.
        let t = sim::nixos::toplevel(3);
        o.file(&format!("{t}/nixos-version"), "25.11.g3\n")
            .link("/nix/var/nix/profiles/system-3-link", &t)
            .file_mode("/opt/evil/activate", "#!/bin/sh\n", 0o755)
            .link("/nix/var/nix/profiles/system-5-link", "/opt/evil")
    })?;
    for (args, code, why) in [
        (&["--generation", "7"][..], 1, "there is no generation 7"),
        (&["--generation", "3"], 1, "generation 3 is incomplete"),
        (&["--generation", "5"], 1, "outside the Nix store"),
        (&["--generation", "x"], 2, "not a generation number"),
        (&["--generation", "0"], 2, "not a generation number"),
        (&["--bogus"], 2, "give one of"),
    ] {
        let mut argv = vec!["/bin/nixos-wsl", "boot"];
        argv.extend_from_slice(args);
        let out = as_root(&d, &argv)?;
        ensure!(
            out.exit == Exit::Code(code) && out.err().contains(why),
            "boot {args:?}: {out}"
        );
    }
    let none = d.root_sh("ls /var/lib/nixos-wsl/next-generation 2>&1 || true")?;
    ensure!(
        none.out().contains("No such file"),
        "a refused choice was recorded: {none}"
    );
    // Not root.
    let out = d.run(&Launch::exec(["/bin/nixos-wsl", "boot", "--rollback"]).user("nixos"))?;
    ensure!(
        out.exit == Exit::Code(1) && out.err().contains("as root"),
        "{out}"
    );

    // A garbage choice file: one line, the current generation boots, the file is set aside.
    d.root_sh("mkdir -p /var/lib/nixos-wsl && echo banana > /var/lib/nixos-wsl/next-generation")?;
    restart(&d)?;
    let out = d.run(&Launch::command("tail -n1 /var/log/generations"))?;
    ensure!(
        out.out() == "2\n"
            && out.err().contains(
                "/var/lib/nixos-wsl/next-generation: \"banana\" is not a generation number"
            ),
        "{out}"
    );
    // An unreadable one (a directory): one line, the current generation, nothing removed.
    d.root_sh(
        "rm -f /var/lib/nixos-wsl/next-generation*; mkdir /var/lib/nixos-wsl/next-generation",
    )?;
    restart(&d)?;
    let out = d.run(&Launch::command(
        "tail -n1 /var/log/generations; test -d /var/lib/nixos-wsl/next-generation && echo kept",
    ))?;
    ensure!(
        out.out() == "2\nkept\n" && out.err().contains("is not a small regular file"),
        "{out}"
    );
    Ok(())
}

/// Every user's passwd shell broken: `wsl -u root -e /bin/nixos-wsl boot --rollback` still
/// works (no shell, no PATH, a static binary).
fn recovery_through_bin_nixos_wsl_with_broken_shells() -> Result<()> {
    let d = distro("gen-recovery", Mode::Namespace, |o| o)?;
    d.root_sh("sed -i 's#:[^:]*$#:/nonexistent/shell#' /etc/passwd")?;
    let out = d.run(&Launch::exec(["/bin/nixos-wsl", "boot", "--rollback"]).user("root"))?;
    ensure!(out.exit == Exit::Code(0), "{out}");
    let out = d.run(&Launch::exec(["/bin/nixos-wsl", "generations"]).user("root"))?;
    ensure!(
        out.exit == Exit::Code(0) && out.out().contains("25.11.g1"),
        "{out}"
    );
    Ok(())
}
