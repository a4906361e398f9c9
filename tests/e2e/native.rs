//! `native::*` (issue 5): WSL's own systemd mode, `nixos-wsl-init` as `/sbin/init`.

use crate::*;
// ---------------------------------------------------------------------------------------
// native::*: issue 5, WSL's own systemd mode: nixos-wsl-init as /sbin/init, WSL's readiness
// poll and `login -f`, the login shell as the default user's passwd shell.

/// A distro in WSL's systemd mode, configured as `wsl.nativeSystemd` does.
pub(crate) fn native_opts(name: &str, mode: crate::sim::WslSystemd) -> DistroOptions {
    DistroOptions::new(name, shell_under_test()).wsl_systemd(mode)
}

pub(crate) fn native_mode() -> crate::sim::WslSystemd {
    crate::sim::WslSystemd::new(crate::sim::under_test::init())
}

pub(crate) fn make_shared_native() -> Result<Distro> {
    let d = Distro::start(native_opts("NixOS", native_mode()))?;
    prepare_windows_side(&d)?;
    Ok(d)
}

pub(crate) fn tests() -> Vec<Trial> {
    // Lifecycle tests (own distros) first, so they overlap with the shared ones.
    let own = tests!["native": launch_during_slow_activation_waits_then_runs, missing_systemd_leaves_a_reaping_init, broken_activation_still_boots, activation_runs_before_systemd_once_per_boot, first_launch, nixos_environment_loaded_once, poweroff_inside_then_next_boot, old_wsl_dev_shm_symlink_and_private_root, pid1_is_systemd_and_no_second_systemd];
    let mut trials = root(own);
    trials.extend(session_trials("native", Mode::Native));
    trials
}

/// Reads a file of the distro as text (as root).
pub(crate) fn read_text(d: &Distro, path: &str) -> Result<String> {
    Ok(String::from_utf8_lossy(&d.read_file(path)?).into_owned())
}

/// The activation stand-in's records: (realtime seconds, boot pid namespace, own pid
/// namespace) per run.
pub(crate) fn activation_records(d: &Distro) -> Result<Vec<(f64, String, String)>> {
    let log = d
        .root_sh("cat /var/log/activations 2>/dev/null || true")?
        .out();
    log.lines()
        .map(|l| {
            let mut it = l.split(' ');
            let ts = it.next().unwrap_or("").parse::<f64>()?;
            let field = |name: &str| {
                l.split(' ')
                    .find_map(|f| f.strip_prefix(name))
                    .unwrap_or("")
                    .to_string()
            };
            Ok((ts, field("boot="), field("self=")))
        })
        .collect()
}

/// systemd's own start, in realtime seconds (its `UserspaceTimestamp`).
pub(crate) fn systemd_started_at(d: &Distro) -> Result<f64> {
    let out = d.root_sh(
        "busctl get-property org.freedesktop.systemd1 /org/freedesktop/systemd1 \
         org.freedesktop.systemd1.Manager UserspaceTimestamp",
    )?;
    let us: u64 = out
        .out()
        .trim()
        .strip_prefix("t ")
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("UserspaceTimestamp: {out}"))?;
    ensure!(us > 0, "systemd recorded no start time: {out}");
    Ok(us as f64 / 1e6)
}

pub(crate) fn first_launch() -> Result<()> {
    let d = Distro::start(native_opts("native-first", native_mode()))?;
    let boot = d.wsl_systemd_state().boot_wait();
    ensure!(
        matches!(boot, Some((true, _))),
        "WSL's readiness poll did not see systemd up: {boot:?}"
    );
    let first = Launch::login().stdin(format!("echo \"$0\"\nid -un\n{PID1_CMD}\n"));
    let out = happy(&d, &first)?;
    let l = lines(&out.out());
    ensure!(
        l.len() == 4 && l[0] == "-bash" && l[1] == "nixos" && l[2] == "systemd",
        "first launch: {out}"
    );
    let later = happy(&d, &Launch::command("id -un; echo $SHELL"))?;
    ensure!(later.out() == "nixos\n/bin/bash\n", "{later}");
    Ok(())
}

/// WSL runs the default user's passwd shell (nixos-wsl-shell) itself: NixOS'
/// `/etc/set-environment` must still be loaded exactly once, for `-c` commands (which bash
/// does not load it for) and login shells alike, and `$SHELL` must name the real shell.
pub(crate) fn nixos_environment_loaded_once() -> Result<()> {
    let d = shared(Mode::Native)?;
    let cmd = "echo \"$NIXOS_MARKER_LOADS\"; nixos-marker; echo \"$SHELL\"";
    for launch in [
        Launch::command(cmd),
        Launch::login().stdin(format!("{cmd}\n")),
        Launch::login_command(cmd),
    ] {
        let out = happy(&d, &launch)?;
        ensure!(
            out.out() == "x\nnixos-marker ran as nixos\n/bin/bash\n",
            "{:?}: {out}",
            launch.form
        );
    }
    Ok(())
}

pub(crate) fn pid1_is_systemd_and_no_second_systemd() -> Result<()> {
    let d = shared(Mode::Native)?;
    // Launches of every kind, as the default user and as root (whose login shell is the
    // same nixos-wsl-shell): none may start a systemd of its own.
    happy(&d, &Launch::command("true"))?;
    happy(&d, &Launch::login().stdin("true\n"))?;
    let root = happy(&d, &Launch::command("id -u; cat /proc/1/comm").user("root"))?;
    ensure!(root.out() == "0\nsystemd\n", "{root}");
    happy(&d, &Launch::command("sudo -i true"))?;
    let init = d.init_pid()?;
    let inits = systemd_inits(&d);
    ensure!(
        inits == [init],
        "expected only the distro's PID 1 ({init}) as systemd, found {inits:?}"
    );
    let out = d.root_sh(
        "test -e /run/nixos-wsl/ns/pid && echo namespace-handle; \
         test -e /run/nixos-wsl/systemd.log && echo namespace-log; \
         readlink /proc/1/exe; for f in /proc/1/fd/*; do readlink $f; done | grep /run/nixos-wsl/ || true",
    )?;
    ensure!(
        out.out() == "/usr/lib/systemd/systemd\n",
        "namespace-mode traces, or fds of nixos-wsl-init left in systemd: {out}"
    );
    // systemd got WSL's environment unchanged, and our argv plus the kernel log target.
    let environ = d.read_file("/proc/1/environ")?;
    ensure!(
        environ
            == b"container=wsl\0container_host_id=windows\0container_host_version_id=2.4.13.0\0",
        "systemd's environment: {:?}",
        String::from_utf8_lossy(&environ)
    );
    let cmdline = d.read_file("/proc/1/cmdline")?;
    ensure!(
        cmdline == b"/nix/var/nix/profiles/system/systemd/lib/systemd/systemd\0--log-target=kmsg\0",
        "systemd's argv: {:?}",
        String::from_utf8_lossy(&cmdline)
    );
    Ok(())
}

pub(crate) fn activation_runs_before_systemd_once_per_boot() -> Result<()> {
    let d = Distro::start(
        native_opts("native-activation", native_mode()).file("/etc/activation-delay", "1\n"),
    )?;
    happy(&d, &Launch::command("true"))?;
    let records = activation_records(&d)?;
    let pidns = d
        .root_sh("readlink /proc/1/ns/pid")?
        .out()
        .trim()
        .to_string();
    ensure!(records.len() == 1, "activations: {records:?}");
    let (activated_at, boot, own) = &records[0];
    ensure!(
        *boot == pidns && *own == pidns,
        "the activation ran outside this boot's PID namespace ({boot}, {own} vs {pidns})"
    );
    let started = systemd_started_at(&d)?;
    ensure!(
        *activated_at < started,
        "systemd started at {started:.6}, before the activation finished at {activated_at:.6}"
    );
    let log = read_text(&d, "/run/nixos-wsl/init.log")?;
    ensure!(
        log.contains("starting (WSL 2.4.13.0)")
            && log.contains("activation finished")
            && log.contains("executing"),
        "init.log: {log}"
    );
    let lang = d.root_sh("cat /var/log/activations")?.out();
    ensure!(lang.contains("LANG=C.UTF-8"), "{lang}");
    ensure!(
        d.root_sh("readlink /run/booted-system")?.out().trim() == "/nix/var/nix/profiles/system",
        "no /run/booted-system"
    );
    // Once per boot: a new boot activates again, exactly once.
    for _ in 0..3 {
        happy(&d, &Launch::command("true"))?;
    }
    d.terminate()?;
    d.boot()?;
    happy(&d, &Launch::command("true"))?;
    let records = activation_records(&d)?;
    ensure!(
        records.len() == 2 && records[1].1 != records[0].1,
        "two boots: {records:?}"
    );
    Ok(())
}

pub(crate) fn launch_during_slow_activation_waits_then_runs() -> Result<()> {
    // WSL gives up waiting after 1 s, then starts sessions while the activation still runs.
    let d = Distro::start(
        native_opts(
            "native-slow",
            native_mode().init_timeout(Duration::from_secs(1)),
        )
        .file("/etc/activation-delay", "6\n"),
    )?;
    let boot = d.wsl_systemd_state().boot_wait();
    ensure!(
        matches!(boot, Some((false, _))),
        "the activation should outlast WSL's readiness poll: {boot:?}"
    );
    let cmd = "test -e /run/current-system && echo activated; date +%s.%N";
    let user = d.spawn(&Launch::command(cmd).timeout(Duration::from_secs(60)))?;
    let root = d.spawn(
        &Launch::command(cmd)
            .user("root")
            .timeout(Duration::from_secs(60)),
    )?;
    for (who, p) in [("nixos", user), ("root", root)] {
        let out = p.wait()?;
        let l = lines(&out.out());
        ensure!(
            out.code == 0 && l.len() == 2 && l[0] == "activated",
            "{who}: {out}"
        );
        ensure!(
            out.err().lines().count() <= 1,
            "{who}: more than one progress line on stderr: {out}"
        );
        let ran_at: f64 = l[1].parse()?;
        let records = activation_records(&d)?;
        ensure!(records.len() == 1, "activations: {records:?}");
        ensure!(
            records[0].0 < ran_at,
            "{who}: the command ran at {ran_at:.3}, before the activation finished at {:.3}",
            records[0].0
        );
    }
    let inits = systemd_inits(&d);
    ensure!(
        inits == [d.init_pid()?],
        "a launch during the activation started a systemd of its own: {inits:?}"
    );
    // systemd was exec'd just now: wait for its socket, then for the end of its boot.
    let out = d.root_sh(
        "for i in $(seq 300); do s=$(timeout 60 systemctl is-system-running --wait 2>/dev/null) \
         && break; sleep 0.1; done; echo \"$s\"",
    )?;
    ensure!(out.out().trim() == "running", "{out}");
    Ok(())
}

pub(crate) fn broken_activation_still_boots() -> Result<()> {
    // As NixOS' activation does when a snippet fails: it carries on, links
    // /run/current-system and exits non-zero.
    let failing = "#!/bin/sh\necho 'snippet users failed' >&2\n\
                   ln -sfn /nix/var/nix/profiles/system /run/current-system\nexit 1\n";
    // An activation that dies before linking anything.
    let crashing = "#!/bin/sh\necho 'killed' >&2\nexit 137\n";
    for (name, script, bound) in [
        ("native-broken-activation", failing, Duration::from_secs(10)),
        (
            "native-crashed-activation",
            crashing,
            Duration::from_secs(15),
        ),
    ] {
        let d = Distro::start(
            native_opts(name, native_mode())
                .file(
                    "/etc/nixos-wsl.conf",
                    native_conf("activate = /usr/local/bin/broken-activate\ntimeout = 3\n"),
                )
                .file_mode("/usr/local/bin/broken-activate", script, 0o755),
        )?;
        let boot = d.wsl_systemd_state().boot_wait();
        ensure!(
            matches!(boot, Some((true, _))),
            "{name}: systemd did not come up: {boot:?}"
        );
        let out = d.run(
            &Launch::command("cat /proc/1/comm; systemctl is-system-running")
                .timeout(bound + Duration::from_secs(30)),
        )?;
        ensure!(
            out.code == 0 && out.out() == "systemd\nrunning\n" && out.elapsed < bound,
            "{name}: no working session within {bound:?}: {out}"
        );
        let log = read_text(&d, "/run/nixos-wsl/init.log")?;
        ensure!(
            log.contains("activation failed") && log.contains("starting systemd anyway"),
            "{name}: init.log does not say why: {log}"
        );
    }
    Ok(())
}

/// The nixos-wsl.conf of this mode with `extra` lines.
pub(crate) fn native_conf(extra: &str) -> String {
    crate::sim::native::nixos_wsl_conf(extra)
}

pub(crate) fn missing_systemd_leaves_a_reaping_init() -> Result<()> {
    let d = Distro::start(
        native_opts(
            "native-no-systemd",
            native_mode().init_timeout(Duration::from_secs(2)),
        )
        .file(
            "/etc/nixos-wsl.conf",
            native_conf("systemd = /nonexistent/systemd\n"),
        ),
    )?;
    let out = d.run(&Launch::command(
        "cat /proc/1/comm; id -un; test -e /run/current-system && echo activated",
    ))?;
    ensure!(
        out.code == 0 && out.out() == "nixos-wsl-init\nnixos\nactivated\n",
        "{out}"
    );
    let log = read_text(&d, "/run/nixos-wsl/init.log")?;
    ensure!(
        log.contains("cannot execute systemd at /nonexistent/systemd")
            && log.contains("minimal init"),
        "init.log: {log}"
    );
    // Orphans are reaped.
    d.run(&Launch::exec(["/bin/sh", "-c", "(sleep 0.2 &) ; true"]))?;
    std::thread::sleep(Duration::from_millis(800));
    let zombies = d.root_sh(
        "for f in /proc/[0-9]*/status; do awk '/^State:/{s=$2} /^PPid:/{p=$2} \
         END{if (s == \"Z\" && p == 1) print FILENAME}' $f 2>/dev/null; done | wc -l",
    )?;
    ensure!(zombies.out().trim() == "0", "zombies: {zombies}");
    // Stray signals are ignored; SIGTERM ends the distribution in an orderly way.
    d.root_sh("kill -HUP 1; kill -USR1 1")?;
    std::thread::sleep(Duration::from_millis(300));
    ensure!(d.is_running(), "PID 1 died of SIGHUP/SIGUSR1");
    let _ = d.run(&Launch::exec(["kill", "-TERM", "1"]).user("root").cwd("/"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while d.is_running() {
        ensure!(
            Instant::now() < deadline,
            "PID 1 did not shut down after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    d.terminate()?;
    d.boot()?;
    // The next boot has no systemd either: the session still opens, and its one line says
    // why and where to look.
    let out = d.run(&Launch::command("id -un"))?;
    ensure!(
        out.code == 0
            && out.out() == "nixos\n"
            && out.err_lines().len() == 1
            && out
                .err()
                .contains("systemd is not running this boot (see /run/nixos-wsl/init.log)"),
        "next boot: {out}"
    );
    Ok(())
}

pub(crate) fn poweroff_inside_then_next_boot() -> Result<()> {
    let d = Distro::start(native_opts("native-poweroff", native_mode()))?;
    // WSL's `login -f` ignores every signal until, its PAM session open, it forks the login
    // shell. WSL only waits for `user@<uid>.service`, which is already active because the
    // default user lingers, so a first launch can run inside that window; a poweroff then
    // waits out the session scope's stop timeout (90 s) on WSL as here (seen in CI: logind
    // registered the session after "System is powering down"). This test is about the
    // poweroff, so it starts once `login` has forked.
    happy(&d, &Launch::command("true"))?;
    let forked = d.root_sh(
        "for i in $(seq 300); do \
           for s in /proc/[0-9]*/status; do \
             p=$(awk '/^PPid:/ { print $2 }' \"$s\" 2>/dev/null); \
             [ -n \"$p\" ] && [ \"$(cat /proc/$p/comm 2>/dev/null)\" = login ] && { echo forked; exit; }; \
           done; sleep 0.1; \
         done",
    )?;
    ensure!(
        forked.out() == "forked\n",
        "`login -f` never forked its shell: {forked}"
    );
    let _ = d.run(&Launch::command("sudo systemctl poweroff").timeout(Duration::from_secs(60)));
    let deadline = Instant::now() + Duration::from_secs(60);
    while d.is_running() {
        if Instant::now() >= deadline {
            let state = d
                .root_sh("systemctl list-jobs --no-pager; journalctl -b --no-pager -n 80")
                .map(|o| o.to_string())
                .unwrap_or_else(|e| format!("{e:#}"));
            bail!("systemd did not power off within 60 s:\n{state}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    d.terminate()?;
    d.boot()?;
    // container=wsl: the poweroff did not remount the disk read-only.
    let out = happy(
        &d,
        &Launch::command(
            "touch /var/tmp/after-poweroff && echo writable; systemctl is-system-running",
        ),
    )?;
    ensure!(out.out() == "writable\nrunning\n", "{out}");
    ensure!(
        activation_records(&d)?.len() == 2,
        "one activation per boot"
    );
    Ok(())
}

pub(crate) fn old_wsl_dev_shm_symlink_and_private_root() -> Result<()> {
    let d = Distro::start(native_opts("native-old-wsl", native_mode().old_wsl()))?;
    let out = d.root_sh(
        "stat -c %F /dev/shm; [ \"$(stat -c %d:%i /dev/shm)\" = \"$(stat -c %d:%i /run/shm)\" ] && echo shm-bound; \
         awk '$5 == \"/\" { print ($0 ~ / shared:/) ? \"root-shared\" : \"root-private\" }' /proc/self/mountinfo; \
         systemctl is-system-running",
    )?;
    ensure!(
        out.out() == "directory\nshm-bound\nroot-shared\nrunning\n",
        "older WSL's layout was not fixed: {out}"
    );
    happy(&d, &Launch::command("true"))?;
    Ok(())
}
