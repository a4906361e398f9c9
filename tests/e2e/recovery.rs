//! Recovering from what breaks a launch (issue 7): systemd itself dying (`systemd::*`), a
//! broken passwd entry (`user::*`), non-UTF-8 bytes (`bytes::*`), and the documented
//! switches `NIXOS_WSL_SYSTEMD=off` / `NIXOS_WSL_USER=root` (`recovery::*`).

use crate::sim;

use sim::checks::*;
use sim::harness::TestFn;

use std::time::Duration;

use anyhow::{ensure, Result};
use nix::sys::signal::Signal;

use sim::{Distro, Launch, Output};

pub(crate) fn tests() -> Vec<(String, TestFn)> {
    let mut t = tests!["systemd": exits_right_after_starting, crashes_after_ready];
    t.extend(tests!["user": no_home, missing_shell, shell_not_executable]);
    t.extend(tests!["bytes": non_utf8_argv, non_utf8_environment, non_utf8_config]);
    t.extend(tests!["recovery": systemd_off, user_root]);
    t
}

// systemd::*: systemd itself dies.

fn exits_right_after_starting() -> Result<()> {
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
        first.err_lines().len() == 1 && first.err().contains("/run/nixos-wsl/systemd.log"),
        "one line naming the log expected: {first}"
    );
    let status = cli(&d, &["status"])?;
    ensure!(status.code == 3, "status after the death: {status}");
    working_session(&d)?;
    Ok(())
}

fn crashes_after_ready() -> Result<()> {
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
// user::*: the user's passwd entry is broken.

/// Runs `cmd` after editing nixos's passwd entry with `usermod`; returns the launch.
fn with_broken_user(name: &str, usermod: &str, cmd: &str, cwd: &str) -> Result<Output> {
    let d = Distro::start(opts(name).file_mode(
        "/usr/local/bin/not-executable-shell",
        "#!/bin/sh\necho should not run\n",
        0o644,
    ))?;
    crate::garbage::plant(&d, usermod)?;
    d.run(
        &Launch::command(cmd)
            .cwd(cwd)
            .timeout(Duration::from_secs(90)),
    )
}

fn no_home() -> Result<()> {
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
        } else if out.err_lines().len() != 1 || !out.err().contains("home") {
            failures.push(format!(
                "home {home:?}: expected one line about the missing home: {out}"
            ));
        }
    }
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

fn missing_shell() -> Result<()> {
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
        out.err_lines().len() == 1 && out.err().contains("/bin/no-such-shell"),
        "expected one line naming the shell: {out}"
    );
    Ok(())
}

fn shell_not_executable() -> Result<()> {
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
        out.err_lines().len() == 1 && out.err().contains("not-executable-shell"),
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

fn non_utf8_environment() -> Result<()> {
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
        out.err_lines().len() == 3,
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

fn systemd_off() -> Result<()> {
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

fn user_root() -> Result<()> {
    let d = hung_distro("recovery-root")?;
    crate::garbage::plant(&d, "usermod -s /bin/no-such-shell nixos")?;
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
