//! `shell::*` lifecycle tests (issue 2): boots, concurrent first logins, poweroff, terminate,
//! broken systemd, config and users, with the built `nixos-wsl-shell` as root's shell; and
//! the helpers the session and native tests share.

use crate::*;
// ---------------------------------------------------------------------------------------
// shell::*: issue 2, with real systemd.

pub(crate) fn tests() -> Vec<Trial> {
    // Lifecycle tests (own distros) first, so they overlap with the shared ones.
    let own = tests!["shell": simultaneous_first_logins_start_one_systemd, activation_runs_once_per_boot, first_login_and_later_logins, poweroff_inside_then_next_login, launch_while_shutting_down_waits_then_boots, terminate_then_next_login, missing_systemd_still_gives_a_shell, hung_systemd_still_gives_a_shell, broken_config_still_gives_a_shell, missing_user_still_gives_a_shell, recovery_variables];
    let mut trials = root(own);
    trials.extend(session_trials("shell", Mode::Namespace));
    trials
}

/// What identifies PID 1 to a user's command: its comm and its start time (field 22 of
/// /proc/1/stat), which tells one systemd instance from the next (a user may not read
/// another user's /proc/1/ns/pid).
pub(crate) const PID1_CMD: &str = "cat /proc/1/comm; cut -d' ' -f22 /proc/1/stat";

/// The comm and start time of PID 1, as seen by a user's command.
pub(crate) fn pid1_of(d: &Distro) -> Result<(String, String)> {
    let out = happy(d, &Launch::command(PID1_CMD))?;
    let l = lines(&out.out());
    ensure!(l.len() == 2, "unexpected output: {out}");
    Ok((l[0].clone(), l[1].clone()))
}

/// Lines of the persistent activation log.
pub(crate) fn activations(d: &Distro) -> Result<usize> {
    let out = d.root_sh("cat /var/log/activations 2>/dev/null || true")?;
    Ok(out.out().lines().count())
}

/// Host pids of processes in `d` that are PID 1 of a nested PID namespace and run systemd.
pub(crate) fn systemd_inits(d: &Distro) -> Vec<i32> {
    nested_inits(d, "systemd")
}

/// Host pids of processes in `d` that are PID 1 of a nested PID namespace, named `comm`.
pub(crate) fn nested_inits(d: &Distro, name: &str) -> Vec<i32> {
    d.host_pids()
        .into_iter()
        .filter(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let nspid_is_1 = status
                .lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .and_then(|v| v.split_whitespace().last().map(|x| x == "1"))
                .unwrap_or(false);
            nspid_is_1 && comm.trim() == name
        })
        .collect()
}

pub(crate) fn first_login_and_later_logins() -> Result<()> {
    let d = Distro::start(own("first-login"))?;
    prepare_windows_side(&d)?;
    // The very first launch of a fresh boot: WSL's plain `wsl -d NixOS` (a login shell),
    // typed commands arriving on stdin.
    let first = Launch::login().stdin(format!("echo \"$0\"\nid -un\n{PID1_CMD}\n"));
    let out = happy(&d, &first)?;
    let l = lines(&out.out());
    ensure!(
        l.len() == 4 && l[0] == "-bash" && l[1] == "nixos" && l[2] == "systemd",
        "first login: {out}"
    );
    let ns = l[3].clone();
    for i in 0..3 {
        let (comm, ns_later) = pid1_of(&d)?;
        ensure!(
            comm == "systemd" && ns_later == ns,
            "login {i} found {comm} in {ns_later}, first was {ns}"
        );
    }
    let later = happy(&d, &Launch::login().stdin("id -un\n"))?;
    ensure!(later.out() == "nixos\n", "{later}");
    ensure!(
        systemd_inits(&d).len() == 1,
        "expected exactly one systemd: {:?}",
        systemd_inits(&d)
    );
    ensure!(
        activations(&d)? == 1,
        "activation ran {} times",
        activations(&d)?
    );
    Ok(())
}

pub(crate) fn parse_env(s: &str) -> Vec<(String, String)> {
    s.split('\0')
        .filter(|e| !e.is_empty())
        .filter_map(|e| {
            e.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

pub(crate) fn working_directory_kept_or_replaced(mode: Mode) -> Result<()> {
    let d = shared(mode)?;
    // In WSL's systemd mode WSL itself changes into the directory as the user (the login
    // shell is the user's own, not root's): one the user cannot enter leaves the process in
    // `/` (wsl-behaviour.md section 1), which no shell can tell from a requested `/`. The
    // namespace mode's rule exists for root's `~` (= `/root`), which that mode cannot reach.
    let unenterable = match mode {
        Mode::Namespace => "/home/nixos",
        Mode::Native => "/",
    };
    for (cwd, expected) in [
        ("/mnt/c/Users/me", "/mnt/c/Users/me"),
        (
            "/mnt/c/Users/me/My Documents",
            "/mnt/c/Users/me/My Documents",
        ),
        ("/mnt/c/Program Files/Thing", "/mnt/c/Program Files/Thing"),
        ("/root", unenterable),
        ("/mnt/c/Users/private", unenterable),
        ("/tmp", "/tmp"),
    ] {
        let out = happy(&d, &Launch::command("pwd").cwd(cwd))?;
        ensure!(out.out() == format!("{expected}\n"), "cwd {cwd}: {out}");
        let login = happy(&d, &Launch::login().cwd(cwd).stdin("pwd\n"))?;
        ensure!(
            login.out() == format!("{expected}\n"),
            "login cwd {cwd}: {login}"
        );
    }
    Ok(())
}

pub(crate) fn binary_stdin_stdout_byte_exact(mode: Mode) -> Result<()> {
    let d = shared(mode)?;
    // Every byte value, NUL and CR included, then 1 MiB of pseudo-random bytes.
    let mut data: Vec<u8> = (0..=255u8).collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    data.extend((0..1 << 20).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    }));
    let out = happy(&d, &Launch::command("cat").stdin(data.clone()))?;
    ensure!(
        out.stdout.len() == data.len(),
        "got {} bytes back, sent {}",
        out.stdout.len(),
        data.len()
    );
    ensure!(out.stdout == data, "bytes differ");
    let wc = happy(&d, &Launch::command("wc -c").stdin(data.clone()))?;
    ensure!(wc.out().trim() == data.len().to_string(), "{wc}");
    Ok(())
}

pub(crate) fn interactive_login_shell_from_piped_stdin(mode: Mode) -> Result<()> {
    let d = shared(mode)?;
    let script = "echo \"$0\"\nshopt -q login_shell && echo login-shell\nid -un\npwd\nexit 7\n";
    let out = d.run(&Launch::login().stdin(script))?;
    ensure!(
        out.out() == "-bash\nlogin-shell\nnixos\n/mnt/c/Users/me\n"
            && out.code == 7
            && out.stderr.is_empty(),
        "{out}"
    );
    Ok(())
}

/// `users.users.<name>.shell` set the NixOS way, as the module writes it to passwd (a
/// per-shell link to nixos-wsl-shell with the real shell next to it): root bash, the default
/// user zsh, a second user dash. Every launch form runs the user's own shell with NixOS'
/// environment, `$0` and `$SHELL` naming it; in the namespace mode root's link still starts
/// systemd.
pub(crate) fn users_own_shells_set_the_nixos_way(mode: Mode) -> Result<()> {
    let opts = match mode {
        Mode::Namespace => own("own-shells"),
        Mode::Native => native_opts("own-shells-native", native_mode()),
    };
    let d = Distro::start(
        opts.user_shell("root", "/bin/bash")
            .user_shell("nixos", "/bin/zsh")
            .user_shell("alice", "/bin/dash"),
    )?;
    let probe = "echo \"$0|$SHELL|$NIXOS_MARKER|$(id -un)|$(cat /proc/1/comm)\"";
    let marker = "nixos-set-environment-loaded";

    let out = happy(&d, &Launch::command(probe))?;
    ensure!(
        out.out() == format!("/bin/zsh|/bin/zsh|{marker}|nixos|systemd\n"),
        "wsl -- cmd: {out}"
    );
    let out = d.run(&Launch::login().stdin(format!("{probe}\nexit 3\n")))?;
    ensure!(
        out.code == 3 && out.out() == format!("-zsh|/bin/zsh|{marker}|nixos|systemd\n"),
        "wsl (login): {out}"
    );
    // `wsl -u alice` runs alice's passwd shell directly. In the namespace mode that is
    // outside systemd's namespace (joining it needs root): her own shell and NixOS'
    // environment, without systemd, the documented recovery path.
    let out = happy(&d, &Launch::command(probe).user("alice"))?;
    let text = out.out();
    let (head, pid1) = text.trim_end().rsplit_once('|').unwrap_or_default();
    ensure!(
        head == format!("/bin/dash|/bin/dash|{marker}|alice")
            && (pid1 == "systemd") == (mode == Mode::Native),
        "wsl -u alice -- cmd: {out}"
    );
    // Root's own shell: in the namespace mode through root's link with NIXOS_WSL_USER, in
    // WSL's systemd mode with `wsl -u root`.
    let as_root = match mode {
        Mode::Namespace => Launch::command(probe).wslenv("NIXOS_WSL_USER", "root"),
        Mode::Native => Launch::command(probe).user("root"),
    };
    let out = happy(&d, &as_root)?;
    ensure!(
        out.out() == format!("/bin/bash|/bin/bash|{marker}|root|systemd\n"),
        "root: {out}"
    );
    Ok(())
}

/// An image whose /etc/nixos-wsl.conf says `welcome = true` (as the module writes it) shows
/// the welcome once: on the user's first interactive login, not on `wsl -- cmd` or a login
/// with piped input before it, and never again after it.
pub(crate) fn welcome_once_on_the_first_interactive_login(mode: Mode) -> Result<()> {
    let conf = "user = nixos\nshell = /bin/bash\nwelcome = true\n";
    let opts = match mode {
        Mode::Namespace => own("welcome"),
        Mode::Native => native_opts("welcome-native", native_mode()),
    };
    let d = Distro::start(opts.file("/etc/nixos-wsl.conf", conf))?;
    let welcome = "Welcome to NixOS on WSL";
    let out = happy(&d, &Launch::command("echo ran"))?;
    ensure!(out.out() == "ran\n", "wsl -- cmd: {out}");
    let out = d.run(&Launch::login().stdin("echo piped\n"))?;
    ensure!(
        out.code == 0 && out.out() == "piped\n" && !out.err().contains(welcome),
        "piped login: {out}"
    );
    let first = d.run(&Launch::login().pty().stdin("exit 0\n"))?;
    let text = first.out().replace('\r', "");
    ensure!(
        first.code == 0 && text.contains(welcome) && text.contains(&format!("wsl -t {}", d.name())),
        "first interactive login: {first}"
    );
    let second = d.run(&Launch::login().pty().stdin("exit 0\n"))?;
    ensure!(
        second.code == 0 && !second.out().contains(welcome),
        "second interactive login: {second}"
    );
    let marker = happy(&d, &Launch::command("ls ~/.local/state/nixos-wsl"))?;
    ensure!(marker.out() == "welcome\n", "{marker}");
    Ok(())
}

pub(crate) fn no_capabilities_and_no_extra_fds(mode: Mode) -> Result<()> {
    let d = shared(mode)?;
    let cmd = "while read -r k v; do case $k in CapInh:|CapPrm:|CapEff:|CapAmb:) echo \"$k $v\";; esac; done < /proc/$$/status; ls /proc/$$/fd; true";
    for launch in [
        Launch::command(cmd),
        Launch::login().stdin(format!("{cmd}\n")),
    ] {
        let out = happy(&d, &launch)?;
        let l = lines(&out.out());
        ensure!(l.len() >= 4, "{out}");
        for cap in &l[..4] {
            ensure!(
                cap.ends_with(" 0000000000000000"),
                "capabilities left: {cap} ({:?})",
                launch.form
            );
        }
        ensure!(
            l[4..] == ["0", "1", "2"],
            "fds of the user's shell: {:?} ({:?})",
            &l[4..],
            launch.form
        );
    }
    // The launched program itself (the shell's supervisor) keeps only what it needs; at
    // least, none of the harness's fds got there (the simulator guarantees 0-2 at exec).
    Ok(())
}

pub(crate) fn sigterm_and_sighup_reach_the_command(mode: Mode) -> Result<()> {
    let d = shared(mode)?;
    for (sig, name) in [(Signal::SIGTERM, "TERM"), (Signal::SIGHUP, "HUP")] {
        let cmd = format!(
            "trap 'echo got-{name}; exit 42' {name}; echo ready; while :; do sleep 0.1; done"
        );
        let p = d.spawn(&Launch::command(cmd).timeout(Duration::from_secs(30)))?;
        p.wait_for_stdout("ready", Duration::from_secs(20))?;
        p.signal(sig)?;
        let out = p.wait()?;
        ensure!(
            out.out().contains(&format!("got-{name}")) && out.code == 42,
            "SIG{name}: {out}"
        );
    }
    Ok(())
}

pub(crate) fn recovery_variables() -> Result<()> {
    let d = shell()?;
    let out = happy(
        &d,
        &Launch::command("id -u; cat /proc/1/comm").wslenv("NIXOS_WSL_USER", "root"),
    )?;
    ensure!(out.out() == "0\nsystemd\n", "NIXOS_WSL_USER=root: {out}");
    let out = d.run(&Launch::command("cat /proc/1/comm").wslenv("NIXOS_WSL_SYSTEMD", "off"))?;
    ensure!(
        out.code == 0 && out.out().trim() != "systemd",
        "NIXOS_WSL_SYSTEMD=off: {out}"
    );
    Ok(())
}

pub(crate) fn activation_runs_once_per_boot() -> Result<()> {
    let d = Distro::start(own("activation").file("/etc/activation-delay", "2\n"))?;
    // Concurrent first launches while activation is slow (they may show progress on stderr
    // after a second, nothing else).
    let procs: Vec<_> = (0..4)
        .map(|_| {
            d.spawn(&Launch::command(
                "test -e /run/current-system && echo activated",
            ))
        })
        .collect::<Result<_>>()?;
    for p in procs {
        let out = p.wait()?;
        ensure!(out.code == 0 && out.out() == "activated\n", "{out}");
        ensure!(
            out.err().lines().count() <= 2,
            "more than progress on stderr: {out}"
        );
    }
    let log = String::from_utf8_lossy(&d.read_file("/var/log/activations")?).into_owned();
    ensure!(
        log.lines().count() == 1,
        "first boot ran activation {} times:\n{log}",
        log.lines().count()
    );
    ensure!(
        log.contains("LANG=C.UTF-8"),
        "activation must run with LANG=C.UTF-8: {log}"
    );
    happy(&d, &Launch::command("true"))?;
    ensure!(activations(&d)? == 1);
    d.terminate()?;
    d.boot()?;
    happy(&d, &Launch::command("true"))?;
    happy(&d, &Launch::command("true"))?;
    ensure!(
        activations(&d)? == 2,
        "second boot: {} activations in total",
        activations(&d)?
    );
    Ok(())
}

pub(crate) fn poweroff_inside_then_next_login() -> Result<()> {
    let d = Distro::start(own("poweroff"))?;
    let (_, ns) = pid1_of(&d)?;
    let off =
        d.run(&Launch::command("sudo systemctl poweroff").timeout(Duration::from_secs(60)))?;
    let _ = off; // the command may be cut off by the shutdown; any status is fine
                 // Wait until that systemd and its namespace are gone.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !systemd_inits(&d).is_empty() {
        ensure!(
            Instant::now() < deadline,
            "systemd did not power off within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (comm, ns2) = pid1_of(&d)?;
    ensure!(
        comm == "systemd" && ns2 != ns,
        "after poweroff: PID 1 {comm} in {ns2} (old {ns})"
    );
    let out = d.run(&Launch::command("systemctl is-system-running"))?;
    ensure!(out.out().trim() == "running", "{out}");
    Ok(())
}

/// A launch while a `poweroff` inside is still going on: PID 1 is systemd-shutdown, which
/// kills every process of its namespace before it exits. The launch must not join it (its
/// command would be killed); it waits, then boots a new systemd and runs.
pub(crate) fn launch_while_shutting_down_waits_then_boots() -> Result<()> {
    let d = Distro::start(own("shutting-down"))?;
    let (_, ns) = pid1_of(&d)?;
    // A process of no unit (moved to the root cgroup, so stopping the session's scope does
    // not kill it) that ignores SIGTERM and SIGHUP for 3 s: systemd-shutdown's SIGTERM round
    // waits for it (up to 90 s), which holds the shutdown open for the launch below.
    let holder = d.spawn(&Launch::command(
        "sudo sh -c 'echo $$ > /sys/fs/cgroup/cgroup.procs; trap \"\" TERM HUP; exec sleep 3' \
         </dev/null >/dev/null 2>&1",
    ))?;
    std::thread::sleep(Duration::from_millis(300));
    let _off =
        d.spawn(&Launch::command("sudo systemctl poweroff").timeout(Duration::from_secs(60)))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while nested_inits(&d, "systemd-shutdow").is_empty() {
        ensure!(
            Instant::now() < deadline,
            "PID 1 did not become systemd-shutdown within 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = d.run(&Launch::command(PID1_CMD))?;
    let l = lines(&out.out());
    ensure!(
        out.exit == crate::sim::Exit::Code(0)
            && l.len() == 2
            && l[0] == "systemd"
            && l[1] != ns
            && out.err()
                == "nixos-wsl-shell: waiting for the previous boot to finish shutting down\n",
        "a launch during the shutdown (about 2.5 s of it left): {out}"
    );
    drop(holder);
    Ok(())
}

pub(crate) fn terminate_then_next_login() -> Result<()> {
    let d = Distro::start(own("terminate"))?;
    let (_, ns) = pid1_of(&d)?;
    happy(
        &d,
        &Launch::command("touch /var/tmp/on-disk; echo x > /run/user/1000/on-run || true"),
    )?;
    d.terminate()?;
    ensure!(!d.is_running());
    d.boot()?;
    let (comm, ns2) = pid1_of(&d)?;
    ensure!(
        comm == "systemd" && ns2 != ns,
        "after terminate: PID 1 {comm} in {ns2} (old {ns})"
    );
    let out = happy(&d, &Launch::command("test -e /var/tmp/on-disk && echo disk-kept; test -e /run/user/1000/on-run || echo run-fresh; systemctl is-system-running"))?;
    ensure!(out.out() == "disk-kept\nrun-fresh\nrunning\n", "{out}");
    Ok(())
}

pub(crate) fn simultaneous_first_logins_start_one_systemd() -> Result<()> {
    let d = Distro::start(own("simultaneous"))?;
    let procs: Vec<_> = (0..8)
        .map(|_| d.spawn(&Launch::command(format!("{PID1_CMD}; id -un"))))
        .collect::<Result<_>>()?;
    let mut starts = Vec::new();
    for p in procs {
        let out = p.wait()?;
        out.ok()?;
        let l = lines(&out.out());
        ensure!(
            l.len() == 3 && l[0] == "systemd" && l[2] == "nixos",
            "{out}"
        );
        starts.push(l[1].clone());
    }
    starts.sort();
    starts.dedup();
    ensure!(
        starts.len() == 1,
        "launches met different systemds (start times {starts:?})"
    );
    let inits = systemd_inits(&d);
    ensure!(
        inits.len() == 1,
        "expected one systemd, found {}: {inits:?}",
        inits.len()
    );
    ensure!(
        activations(&d)? == 1,
        "activation ran {} times",
        activations(&d)?
    );
    Ok(())
}

/// A launch in a distro whose systemd cannot come up: a shell anyway, quickly, with one
/// reason on stderr.
pub(crate) fn degraded_launch(d: &Distro, bound: Duration) -> Result<Output> {
    let out =
        d.run(&Launch::command("echo still-a-shell").timeout(bound + Duration::from_secs(30)))?;
    ensure!(
        out.elapsed < bound,
        "took {:.1?} (bound {bound:?}): {out}",
        out.elapsed
    );
    ensure!(out.code == 0 && out.out() == "still-a-shell\n", "{out}");
    ensure!(!out.stderr.is_empty(), "no reason given on stderr: {out}");
    Ok(out)
}

pub(crate) fn missing_systemd_still_gives_a_shell() -> Result<()> {
    let d = Distro::start(
        own("no-systemd").file("/etc/nixos-wsl.conf", "systemd = /nonexistent/systemd\n"),
    )?;
    let out = degraded_launch(&d, Duration::from_secs(15))?;
    ensure!(
        out.err_lines().len() == 1,
        "expected one line on stderr: {out}"
    );
    Ok(())
}

pub(crate) fn hung_systemd_still_gives_a_shell() -> Result<()> {
    let d = Distro::start(
        own("hung-systemd")
            .file(
                "/etc/nixos-wsl.conf",
                "systemd = /usr/local/bin/hung-systemd\ntimeout = 3\n",
            )
            .file_mode(
                "/usr/local/bin/hung-systemd",
                "#!/bin/sh\nexec sleep 1000\n",
                0o755,
            ),
    )?;
    let out = degraded_launch(&d, Duration::from_secs(20))?;
    ensure!(
        out.err().contains("systemd"),
        "the reason should name systemd: {out}"
    );
    Ok(())
}

pub(crate) fn broken_config_still_gives_a_shell() -> Result<()> {
    let d = Distro::start(own("broken-config").file(
        "/etc/nixos-wsl.conf",
        b"# broken on purpose\ntimeout = soon\nno equals sign here \xff\xfe\n".to_vec(),
    ))?;
    let out =
        d.run(&Launch::command("id -un; cat /proc/1/comm").timeout(Duration::from_secs(90)))?;
    ensure!(
        out.code == 0 && out.out() == "nixos\nsystemd\n",
        "defaults must apply: {out}"
    );
    let warnings = out.err_lines().len();
    ensure!(
        warnings == 2,
        "expected one warning per bad line (2): {out}"
    );
    Ok(())
}

pub(crate) fn missing_user_still_gives_a_shell() -> Result<()> {
    let d = Distro::start(own("missing-user").file("/etc/nixos-wsl.conf", "user = nobody-here\n"))?;
    let out = d.run(&Launch::command("echo still-a-shell").timeout(Duration::from_secs(90)))?;
    ensure!(out.code == 0 && out.out() == "still-a-shell\n", "{out}");
    ensure!(
        out.err_lines().len() == 1 && out.err().contains("nobody-here"),
        "one line naming the user: {out}"
    );
    Ok(())
}
