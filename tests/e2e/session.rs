//! Issue 2's session contract, run once per [`Mode`](crate::Mode) (`shell::*` and
//! `native::*`): exit codes, identity, environment, cwd, signals, stdio, terminals.

use crate::*;

/// A test of the session contract, for one mode.
type SessionTest = fn(Mode) -> Result<()>;

/// `contract![a, b]`: `[("a", a), ("b", b)]`.
macro_rules! contract {
    ($($f:ident),* $(,)?) => {
        &[$((stringify!($f), $f as SessionTest)),*]
    };
}

/// Issue 2's session contract: each runs once per [`Mode`], as `shell::<name>` against the
/// login shell's namespace and `native::<name>` under WSL's own systemd.
const SESSION_CONTRACT: &[(&str, SessionTest)] = contract![
    exit_codes_0_to_255,
    users_own_shells_set_the_nixos_way,
    welcome_once_on_the_first_interactive_login,
    pid1_is_systemd_and_running,
    identity_and_groups,
    environment,
    path_with_spaces,
    working_directory_kept_or_replaced,
    death_by_signal,
    verbatim_command_strings,
    binary_stdin_stdout_byte_exact,
    stderr_is_separate,
    interactive_login_shell_from_piped_stdin,
    systemctl_user_works,
    terminal_belongs_to_the_user,
    no_capabilities_and_no_extra_fds,
    no_launcher_fds_in_systemd,
    sigterm_and_sighup_reach_the_command,
    sudo_i_inside
];

pub(crate) fn session_trials(tier: &str, mode: Mode) -> Vec<Trial> {
    SESSION_CONTRACT
        .iter()
        .map(|&(name, f)| privileged(&format!("{tier}::{name}"), move || f(mode)))
        .collect()
}

pub(crate) fn pid1_is_systemd_and_running(mode: Mode) -> Result<()> {
    let d = shared(mode)?;
    let (comm, _) = pid1_of(&d)?;
    ensure!(comm == "systemd", "PID 1 is {comm}");
    let out = d.run(&Launch::command("systemctl is-system-running"))?;
    ensure!(
        out.out().trim() == "running" && out.code == 0,
        "is-system-running: {out}"
    );
    Ok(())
}

pub(crate) fn identity_and_groups(mode: Mode) -> Result<()> {
    let d = shared(mode)?;
    let out = happy(&d, &Launch::command("id -u; id -un; id -g; id -Gn"))?;
    let l = lines(&out.out());
    ensure!(
        l.len() == 4 && l[0] == "1000" && l[1] == "nixos" && l[2] == "100",
        "{out}"
    );
    let groups: Vec<&str> = l[3].split(' ').collect();
    ensure!(
        groups.contains(&"users") && groups.contains(&"sudo"),
        "groups: {out}"
    );
    Ok(())
}

pub(crate) fn environment(mode: Mode) -> Result<()> {
    let d = shared(mode)?;
    for launch in [
        Launch::command("env -0").wslenv("NIXOS_WSL_TEST_EXTRA", "a b"),
        Launch::login()
            .stdin("env -0\n")
            .wslenv("NIXOS_WSL_TEST_EXTRA", "a b"),
    ] {
        let out = happy(&d, &launch)?;
        let env = parse_env(&out.out());
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let expect = [
            ("HOME", "/home/nixos"),
            ("USER", "nixos"),
            ("LOGNAME", "nixos"),
            ("SHELL", "/bin/bash"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
            ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/1000/bus"),
            ("WSL_DISTRO_NAME", "NixOS"),
            ("WSLENV", "WT_SESSION:WT_PROFILE_ID:NIXOS_WSL_TEST_EXTRA"),
            ("WT_SESSION", "6f9c5a3e-2b1d-4c7e-9a0f-1d2e3f4a5b6c"),
            ("NIXOS_WSL_TEST_EXTRA", "a b"),
            ("TERM", "xterm-256color"),
            ("HOSTTYPE", "x86_64"),
            ("NAME", "nixos-wsl-sim"),
            ("LANG", "en_US.UTF-8"),
        ];
        for (k, v) in expect {
            ensure!(
                get(k) == Some(v),
                "{:?}: {k} is {:?}, expected {v:?}\n{env:#?}",
                launch.form,
                get(k)
            );
        }
        ensure!(
            get("WSL_INTEROP").is_some_and(|v| v.starts_with("/run/WSL/")),
            "WSL_INTEROP: {env:?}"
        );
        let path = get("PATH").unwrap_or_default();
        ensure!(
            path.split(':').any(|p| p == "/mnt/c/Program Files/Thing"),
            "PATH lost the Windows part: {path}"
        );
    }
    Ok(())
}

pub(crate) fn path_with_spaces(mode: Mode) -> Result<()> {
    let d = shared(mode)?;
    let out = happy(&d, &Launch::command("hello-thing; command -v hello-thing"))?;
    ensure!(
        out.out() == "hello from thing\n/mnt/c/Program Files/Thing/hello-thing\n",
        "{out}"
    );
    Ok(())
}

pub(crate) fn exit_codes_0_to_255(mode: Mode) -> Result<()> {
    let d = shared(mode)?;
    let started = Instant::now();
    for code in 0..=255 {
        let out = d.run(&Launch::command(format!("exit {code}")))?;
        ensure!(
            out.code == code && out.stderr.is_empty(),
            "exit {code}: {out}"
        );
    }
    let f = d.run(&Launch::command("false"))?;
    ensure!(f.code == 1, "false: {f}");
    eprintln!("  (256 launches in {:.1?})", started.elapsed());
    Ok(())
}

pub(crate) fn death_by_signal(mode: Mode) -> Result<()> {
    let d = shared(mode)?;
    for (sig, n) in [
        ("TERM", 15),
        ("KILL", 9),
        ("SEGV", 11),
        ("INT", 2),
        ("HUP", 1),
        ("USR1", 10),
    ] {
        let out = d.run(&Launch::command(format!("kill -{sig} $$")))?;
        ensure!(
            out.code == n,
            "kill -{sig} $$: wsl.exe would report {}, expected {n}: {out}",
            out.code
        );
    }
    Ok(())
}

pub(crate) fn verbatim_command_strings(mode: Mode) -> Result<()> {
    let d = shared(mode)?;
    let cases: &[(&str, &str)] = &[
        (r#"echo "a  b" 'c  d'"#, "a  b c  d\n"),
        ("exec echo exec-ok", "exec-ok\n"),
        ("for i in 1 2 3; do printf %s $i; done; echo", "123\n"),
        (r#"x='a"b'; echo "$x""#, "a\"b\n"),
        (
            r#"printf '%s|' '$HOME' "\$HOME" \"q\" \\b; echo"#,
            "$HOME|$HOME|\"q\"|\\b|\n",
        ),
        ("true && echo and || echo or", "and\n"),
        ("  echo leading-space  ", "leading-space\n"),
        (
            "cat <<EOF\nline one\n  line two\nEOF",
            "line one\n  line two\n",
        ),
        ("echo héllo ✓", "héllo ✓\n"),
        ("(echo sub; exit 0) | tr a-z A-Z", "SUB\n"),
        ("echo $((6 * 7)) `echo bq` $(echo dollar)", "42 bq dollar\n"),
        ("set -- a 'b c'; echo $#", "2\n"),
        ("echo ';' '&&' '|' '#'", "; && | #\n"),
    ];
    for (cmd, expected) in cases {
        let out = happy(&d, &Launch::command(*cmd))?;
        ensure!(
            out.out() == *expected,
            "-c {cmd:?}: expected {expected:?}: {out}"
        );
    }
    Ok(())
}

pub(crate) fn stderr_is_separate(mode: Mode) -> Result<()> {
    let d = shared(mode)?;
    let out = d.run(&Launch::command("echo out; echo err >&2; echo out2"))?;
    ensure!(
        out.out() == "out\nout2\n" && out.err() == "err\n" && out.code == 0,
        "{out}"
    );
    // No pty inserted: the command's fds 0-2 are the caller's pipes.
    let out = happy(
        &d,
        &Launch::command(
            "[ -p /dev/stdin ] && [ -p /dev/stdout ] && [ -p /dev/stderr ] && echo pipes",
        ),
    )?;
    ensure!(out.out() == "pipes\n", "{out}");
    Ok(())
}

pub(crate) fn systemctl_user_works(mode: Mode) -> Result<()> {
    let d = shared(mode)?;
    let cmd = "timeout 30 systemctl --user is-system-running --wait; systemctl --user show-environment >/dev/null && echo user-manager-ok";
    for launch in [
        Launch::command(cmd),
        Launch::login().stdin(format!("{cmd}\n")),
    ] {
        let out = d.run(&launch)?;
        let o = out.out();
        ensure!(
            (o.starts_with("running\n") || o.starts_with("degraded\n"))
                && o.ends_with("user-manager-ok\n"),
            "{:?}: {out}",
            launch.form
        );
    }
    Ok(())
}

pub(crate) fn terminal_belongs_to_the_user(mode: Mode) -> Result<()> {
    let d = shared(mode)?;
    let out =
        d.run(&Launch::command("t=$(tty); echo \"tty=$t\"; stat -c 'owner=%u:%g' \"$t\"").pty())?;
    let o = out.out().replace('\r', "");
    ensure!(out.code == 0, "{out}");
    ensure!(o.contains("tty=/dev/pts/"), "not on a terminal: {o:?}");
    ensure!(
        o.contains("owner=1000:5"),
        "the terminal is not the user's: {o:?}"
    );
    // A login shell on the terminal, typed input.
    let login = d.run(
        &Launch::login()
            .pty()
            .stdin("stat -c 'owner=%u' \"$(tty)\"; exit 3\n"),
    )?;
    let o = login.out().replace('\r', "");
    ensure!(login.code == 3 && o.contains("owner=1000"), "{login}");
    Ok(())
}

pub(crate) fn no_launcher_fds_in_systemd(mode: Mode) -> Result<()> {
    let d = shared(mode)?;
    let out = happy(
        &d,
        &Launch::command(
            "sudo sh -c 'for f in /proc/1/fd/*; do echo \"${f##*/} $(readlink $f)\"; done'",
        ),
    )?;
    let (comm, _) = pid1_of(&d)?;
    ensure!(comm == "systemd", "PID 1 is {comm}, not systemd");
    let fds = out.out();
    for line in fds.lines() {
        let target = line.split_once(' ').map(|x| x.1).unwrap_or("");
        for bad in [
            "/run/nixos-wsl/lock",
            "/run/nixos-wsl/ns",
            "nixos-wsl-shell",
            "/dev/pts/",
        ] {
            ensure!(!target.contains(bad), "systemd holds {line:?}:\n{fds}");
        }
    }
    let fd0 = fds.lines().find(|l| l.starts_with("0 ")).unwrap_or("");
    ensure!(
        fd0 == "0 /dev/null",
        "systemd's stdin should be /dev/null, is {fd0:?}"
    );
    Ok(())
}

pub(crate) fn sudo_i_inside(mode: Mode) -> Result<()> {
    let d = shared(mode)?;
    let out = happy(
        &d,
        &Launch::command("sudo -i sh -c 'id -u; cat /proc/1/comm'")
            .timeout(Duration::from_secs(30)),
    )?;
    ensure!(out.out() == "0\nsystemd\n", "{out}");
    let out = happy(
        &d,
        &Launch::command("echo 'id -un; echo $0' | sudo -i").timeout(Duration::from_secs(30)),
    )?;
    let l = lines(&out.out());
    ensure!(l.first().map(String::as_str) == Some("root"), "{out}");
    ensure!(!out.out().contains("nixos-wsl-shell: "), "{out}");
    Ok(())
}
