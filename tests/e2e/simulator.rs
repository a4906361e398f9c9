//! `crate::sim::*`: the simulator itself, with `/bin/bash` as root's shell (no systemd).

use crate::*;
// ---------------------------------------------------------------------------------------
// crate::sim::*: the simulator, with /bin/bash as root's shell.

pub(crate) fn tests() -> Vec<Trial> {
    let own = tests!["sim": refuses_a_rootfs_without_its_marker, terminate_and_boot_give_a_fresh_run, user_resolution, exit_codes_and_signals, pid1_is_wsl_init_and_reaps, no_harness_fds_in_the_distro, wsl_mounts, environment_in_wsl_order, argv_forms, cwd, pty_and_session, fresh_signal_state, stdio_pipes_byte_exact, cgroup_is_private_v2];
    root(own)
}

fn refuses_a_rootfs_without_its_marker() -> Result<()> {
    // A lower dir that looks like a distro but lacks the marker.
    let tmp = crate::sim::rootfs::cache_dir().join(format!("unmarked-{}", std::process::id()));
    for d in ["etc", "proc", "sys", "dev", "run", "mnt", "tmp"] {
        std::fs::create_dir_all(tmp.join(d))?;
    }
    std::fs::write(tmp.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
    let res = Distro::new_with_lower(
        DistroOptions::new("Unmarked", RootShell::Existing("/bin/sh".into())),
        tmp.clone(),
    )
    .and_then(|d| d.boot().map(|_| d));
    let _ = std::fs::remove_dir_all(&tmp);
    match res {
        Ok(_) => bail!("the simulator booted a rootfs without its marker"),
        Err(e) => {
            let msg = format!("{e:#}");
            ensure!(
                msg.contains("refusing") && msg.contains("marker"),
                "unexpected error: {msg}"
            );
        }
    }
    Ok(())
}

fn terminate_and_boot_give_a_fresh_run() -> Result<()> {
    let d = Distro::start(DistroOptions::new(
        "Lifecycle",
        RootShell::Existing("/bin/bash".into()),
    ))?;
    let out = d.root_sh("touch /run/marker /var/tmp/marker; readlink /proc/1/ns/pid")?;
    let ns = out.out();
    let init = d.init_pid()?;
    d.terminate()?;
    ensure!(
        !std::path::Path::new(&format!("/proc/{init}")).exists(),
        "PID 1 survived terminate"
    );
    ensure!(!d.cgroup()?.exists(), "the distro's cgroup was not removed");
    d.boot()?;
    let out = d.root_sh("test -e /run/marker || echo run-fresh; test -e /var/tmp/marker && echo disk-kept; readlink /proc/1/ns/pid")?;
    let l = lines(&out.out());
    ensure!(
        l.len() == 3 && l[0] == "run-fresh" && l[1] == "disk-kept" && l[2] != ns.trim(),
        "{out}"
    );
    Ok(())
}

fn user_resolution() -> Result<()> {
    let d = Distro::start(DistroOptions::new(
        "Users",
        RootShell::Existing("/bin/bash".into()),
    ))?;
    let id = |l: Launch| -> Result<String> { Ok(d.run(&l)?.out()) };
    ensure!(
        id(Launch::exec(["id", "-u"]))? == "0\n",
        "wsl.conf default = root"
    );
    ensure!(id(Launch::exec(["id", "-u"]).user("nixos"))? == "1000\n");
    ensure!(
        id(Launch::exec(["id", "-G"]).user("nixos"))? == "100 27\n",
        "initgroups"
    );
    ensure!(
        d.run(&Launch::exec(["id"]).user("nobody-here")).is_err(),
        "unknown -u must fail"
    );
    d.write_file("/etc/wsl.conf", b"[user]\ndefault=nixos\n", 0o644)?;
    ensure!(
        id(Launch::exec(["id", "-un"]))? == "nixos\n",
        "wsl.conf default = nixos"
    );
    d.write_file("/etc/wsl.conf", b"[user]\ndefault=ghost\n", 0o644)?;
    ensure!(
        id(Launch::exec(["id", "-un"]))? == "root\n",
        "unknown default falls back to root"
    );
    Ok(())
}

fn exit_codes_and_signals() -> Result<()> {
    let d = bash()?;
    let started = Instant::now();
    for code in 0..=255 {
        let out = d.run(&Launch::command(format!("exit {code}")))?;
        ensure!(out.code == code, "exit {code}: {out}");
    }
    eprintln!("  (256 launches of bash in {:.1?})", started.elapsed());
    for (sig, n) in [("TERM", 15), ("KILL", 9), ("SEGV", 11)] {
        let out = d.run(&Launch::command(format!("kill -{sig} $$")))?;
        ensure!(
            out.code == n && out.exit == crate::sim::Exit::Signal(n),
            "kill -{sig}: {out}"
        );
    }
    Ok(())
}

fn pid1_is_wsl_init_and_reaps() -> Result<()> {
    let d = bash()?;
    let out = d.run(&Launch::exec(["cat", "/proc/1/comm"]))?;
    ensure!(out.out().trim() != "systemd" && out.code == 0, "{out}");
    // Every namespace WSL creates is new: nothing a distro does (a systemd poweroff calls
    // reboot(2)) may reach the host's.
    let init = d.init_pid()?;
    for ns in ["pid", "mnt", "uts", "ipc", "net", "cgroup"] {
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}"))?;
        let distro = std::fs::read_link(format!("/proc/{init}/ns/{ns}"))?;
        ensure!(
            host != distro,
            "the distro shares the host's {ns} namespace"
        );
    }
    // Orphans are reaped by PID 1: leave a short-lived grandchild behind, then look for
    // zombies whose parent is PID 1 (other tests' transient zombies have live parents).
    d.run(&Launch::exec(["/bin/sh", "-c", "(sleep 0.2 &) ; true"]))?;
    std::thread::sleep(Duration::from_millis(600));
    let zombies = d.root_sh(
        "for f in /proc/[0-9]*/status; do awk '/^State:/{s=$2} /^PPid:/{p=$2} \
         END{if (s == \"Z\" && p == 1) print FILENAME}' $f 2>/dev/null; done | wc -l",
    )?;
    ensure!(
        zombies.out().trim() == "0",
        "zombies in the distro: {zombies}"
    );
    Ok(())
}

pub(crate) fn fd_targets(pid: i32) -> Result<Vec<(String, String)>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        let e = e?;
        let target = std::fs::read_link(e.path())
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        v.push((e.file_name().to_string_lossy().into_owned(), target));
    }
    v.sort();
    Ok(v)
}

fn no_harness_fds_in_the_distro() -> Result<()> {
    let d = bash()?;
    let init = fd_targets(d.init_pid()?)?;
    ensure!(
        init.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>() == ["0", "1", "2"]
            && init.iter().all(|(_, t)| t == "/dev/null"),
        "fds of the distro's PID 1: {init:?}"
    );
    // The dynamic loader of the launched program opens libraries for a moment after exec;
    // what matters is that no other fd stays.
    let p = d.spawn(&Launch::exec(["sleep", "30"]))?;
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let fds = fd_targets(p.pid)?;
        if fds.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>() == ["0", "1", "2"] {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "fds of a launched program: {fds:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wsl_mounts() -> Result<()> {
    let d = bash()?;
    let mi = d.run(&Launch::exec(["cat", "/proc/self/mountinfo"]))?.out();
    let find = |mp: &str| {
        mi.lines()
            .find(|l| l.split(' ').nth(4) == Some(mp))
            .map(str::to_string)
    };
    let fstype = |mp: &str| {
        find(mp).and_then(|l| {
            l.split(" - ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .map(str::to_string)
        })
    };
    for (mp, ty) in [
        ("/", "overlay"),
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/sys/fs/cgroup", "cgroup2"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/run", "tmpfs"),
        ("/run/lock", "tmpfs"),
        ("/run/shm", "tmpfs"),
        ("/run/user", "tmpfs"),
        ("/dev/shm", "tmpfs"),
    ] {
        ensure!(
            fstype(mp).as_deref() == Some(ty),
            "{mp} should be {ty}: {:?}\n{mi}",
            find(mp)
        );
    }
    let pts = find("/dev/pts").unwrap();
    ensure!(
        pts.contains("gid=5") && pts.contains("mode=620") && pts.contains("ptmxmode=666"),
        "{pts}"
    );
    ensure!(
        find("/").unwrap().contains("shared:"),
        "/ must be shared (WSL >= 2.0)"
    );
    ensure!(
        find("/mnt/wsl").is_some_and(|l| l.contains("shared:")),
        "/mnt/wsl must be a shared mount"
    );
    ensure!(find("/mnt/c").is_some(), "/mnt/c missing");
    let out = d.root_sh(
        "stat -c '%a' /run/WSL; [ \"$(stat -c %d:%i /dev/shm)\" = \"$(stat -c %d:%i /run/shm)\" ] && echo shm-bound; \
         ls -d '/mnt/c/Program Files'; cat /etc/hostname; grep -c nixos-wsl-sim /etc/hosts; hostname; readlink /dev/ptmx",
    )?;
    ensure!(
        out.out()
            == "777\nshm-bound\n/mnt/c/Program Files\nnixos-wsl-sim\n1\nnixos-wsl-sim\npts/ptmx\n",
        "{out}"
    );
    Ok(())
}

fn environment_in_wsl_order() -> Result<()> {
    let d = bash()?;
    let out = d.run(
        &Launch::exec(["env", "-0"])
            .user("nixos")
            .wslenv("NIXOS_WSL_LOG", "debug"),
    )?;
    let env = parse_env(&out.out());
    let keys: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    ensure!(
        keys == [
            "HOSTTYPE",
            "LANG",
            "PATH",
            "TERM",
            "WSLENV",
            "WT_SESSION",
            "WT_PROFILE_ID",
            "NIXOS_WSL_LOG",
            "WSL_INTEROP",
            "NAME",
            "WSL_DISTRO_NAME",
            "HOME",
            "USER",
            "LOGNAME",
            "SHELL"
        ],
        "{env:#?}"
    );
    ensure!(env[2].1.ends_with(
        "/usr/local/games:/mnt/c/Windows/system32:/mnt/c/Windows:/mnt/c/Program Files/Thing"
    ));
    ensure!(env[4].1 == "WT_SESSION:WT_PROFILE_ID:NIXOS_WSL_LOG" && env[7].1 == "debug");
    ensure!(
        env[11].1 == "/home/nixos" && env[12].1 == "nixos" && env[14].1 == "/bin/bash",
        "{env:?}"
    );
    let umask = d.run(&Launch::command("umask").user("nixos"))?;
    ensure!(umask.out() == "0022\n", "{umask}");
    Ok(())
}

fn argv_forms() -> Result<()> {
    let d = bash()?;
    let out = d.run(&Launch::login().stdin("echo \"$0\"; shopt -q login_shell && echo login\n"))?;
    ensure!(out.out() == "-bash\nlogin\n", "login form: {out}");
    let out = d.run(&Launch::command(r#"echo "$0" "a  b""#))?;
    ensure!(out.out() == "/bin/bash a  b\n", "-c form: {out}");
    let out = d.run(&Launch::login_command("echo \"$0\""))?;
    ensure!(out.out() == "-bash\n", "--shell-type login: {out}");
    let out = d.run(&Launch::exec(["printf", "%s|", "a b", "$HOME"]))?;
    ensure!(out.out() == "a b|$HOME|", "-e form: {out}");
    let err = d
        .run(&Launch::exec(["no-such-cmd"]))
        .err()
        .context("-e no-such-cmd succeeded")?;
    ensure!(
        format!("{err:#}").contains("execvpe(no-such-cmd) failed"),
        "{err:#}"
    );
    // -e looks only in /usr/local/bin:/bin:/usr/bin: /usr/sbin/nologin is not found by name.
    ensure!(
        d.run(&Launch::exec(["nologin"])).is_err(),
        "-e must not search /usr/sbin"
    );
    Ok(())
}

fn cwd() -> Result<()> {
    let d = bash()?;
    let pwd = |l: Launch| -> Result<String> { Ok(d.run(&l)?.out()) };
    ensure!(pwd(Launch::exec(["pwd"]))? == "/mnt/c/Users/me\n");
    ensure!(pwd(Launch::exec(["pwd"]).cwd("/mnt/c/Program Files"))? == "/mnt/c/Program Files\n");
    ensure!(pwd(Launch::exec(["pwd"]).cwd("~").user("nixos"))? == "/home/nixos\n");
    ensure!(
        pwd(Launch::exec(["pwd"]).cwd("/does/not/exist"))? == "/\n",
        "failing chdir stays in /"
    );
    ensure!(
        pwd(Launch::exec(["pwd"]).cwd("/root").user("nixos"))? == "/\n",
        "unenterable stays in /"
    );
    Ok(())
}

fn pty_and_session() -> Result<()> {
    let d = bash()?;
    let out = d.run(
        &Launch::command(
            "tty; stat -c '%u:%g:%a' $(tty); echo sid=$(ps -o sid= -p $$ | tr -d ' ') pid=$$",
        )
        .user("nixos")
        .pty(),
    )?;
    let o = out.out().replace('\r', "");
    let l = lines(&o);
    ensure!(
        l.len() == 3 && l[0].starts_with("/dev/pts/") && l[1] == "1000:5:620",
        "{out}"
    );
    let sid = l[2].split_whitespace().collect::<Vec<_>>();
    ensure!(
        sid.len() == 2 && sid[0].trim_start_matches("sid=") == sid[1].trim_start_matches("pid="),
        "session leader: {o}"
    );
    // With pipes there still is a controlling terminal, but fds 0-2 are pipes.
    let out = d.run(&Launch::command(
        "test -t 0 || echo stdin-not-tty; ps -o tty= -p $$",
    ))?;
    let l = lines(&out.out());
    ensure!(
        l.len() == 2 && l[0] == "stdin-not-tty" && l[1].starts_with("pts/"),
        "{out}"
    );
    // Typed input, interactive login shell on the terminal.
    let out = d.run(&Launch::login().pty().stdin("echo typed-$((1+1))\nexit 4\n"))?;
    ensure!(out.code == 4 && out.out().contains("typed-2"), "{out}");
    Ok(())
}

fn fresh_signal_state() -> Result<()> {
    let d = bash()?;
    let out = d.run(&Launch::exec([
        "grep",
        "-E",
        "^Sig(Blk|Ign)",
        "/proc/self/status",
    ]))?;
    ensure!(
        out.out() == "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n",
        "{out}"
    );
    Ok(())
}

fn stdio_pipes_byte_exact() -> Result<()> {
    let d = bash()?;
    let data: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    let out = d.run(&Launch::exec(["cat"]).stdin(data.clone()))?;
    ensure!(out.stdout == data, "cat changed the bytes");
    let out = d.run(&Launch::command("echo out; echo err >&2"))?;
    ensure!(out.out() == "out\n" && out.err() == "err\n", "{out}");
    // A process left behind holding stdout: the launch must not hang forever.
    let out = d.run(&Launch::command("sleep 3 & echo bg").timeout(Duration::from_secs(20)))?;
    ensure!(out.out() == "bg\n", "{out}");
    Ok(())
}

fn cgroup_is_private_v2() -> Result<()> {
    let d = bash()?;
    let out = d.root_sh("cat /proc/self/cgroup; cat /sys/fs/cgroup/cgroup.procs | wc -l")?;
    // The v1 lines of the hybrid host stay visible (the kernel lists every hierarchy), but
    // the distro's cgroup2 view starts at its own cgroup, which is all systemd looks at.
    let l = lines(&out.out());
    ensure!(l.iter().any(|x| x == "0::/"), "{out}");
    let host_cg = d.cgroup()?;
    ensure!(
        host_cg.exists() && crate::sim::cgroup::pids(&host_cg).contains(&d.init_pid()?),
        "PID 1 not in {}",
        host_cg.display()
    );
    Ok(())
}
