//! End-to-end tests of the session environment (issue 8): NixOS' `/etc/set-environment`
//! loaded once by `nixos-wsl-shell`, PATH ordered NixOS first and Windows last (or dropped),
//! `WSLPATH`, per-user variables, for bash, zsh, dash and fish, in the WSL simulator
//! (tests/sim) with real systemd.
//!
//! The test rootfs (tests/rootfs) carries a stand-in `/etc/set-environment` written like
//! NixOS' (marker variables, a PATH whose first entry holds the `nixos-marker` program, the
//! `__NIXOS_SET_ENVIRONMENT_DONE` line) and startup files that source it unless that marker
//! is exported (`/etc/profile`, `/etc/bash.bashrc`, `/etc/zsh/zshenv`, as NixOS' do). The
//! file appends an `x` to `NIXOS_MARKER_LOADS` each time it is evaluated, so a second load
//! anywhere shows up as `xx`.
//!
//! Tiers: `unit::*` needs no privileges; `env::*` needs root. Every launch has its own
//! timeout.

use crate::sim;

use sim::harness::TestFn;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use libtest_mimic::Trial;

use sim::{Distro, DistroOptions, Launch, Output, RootShell};

pub(crate) fn tests() -> Vec<Trial> {
    let mut t = crate::unprivileged_all(tests!["unit": stand_in_takes_the_fast_path]);
    // Tests with distros of their own first, so their boots overlap with the rest.
    t.extend(crate::root(tests!["env": zsh, dash, fish, include_path_false_drops_windows_entries, fallback_shell_path_loads_once, missing_file_one_warning, broken_file_one_warning, marker_program_and_variables, path_order_and_wslpath, shell_and_per_user_variables, nested_shells_do_not_reload, login_shells_see_the_environment, sudo_i_inside_gets_the_environment]));
    t
}

/// Options for a distro of a test's own.
fn own(name: &str) -> DistroOptions {
    DistroOptions::new(name, RootShell::NixosWslShell(sim::under_test::shell()))
}

/// Boots `opts`, puts a program in the Windows PATH entry with a space, and starts systemd
/// with a first launch, whose progress lines on stderr ("waiting for systemd...") are no
/// concern of these tests.
fn start(opts: DistroOptions) -> Result<Distro> {
    use std::os::unix::fs::PermissionsExt;
    let d = Distro::start(opts)?;
    let c = d.state_dir().join("c");
    let thing = c.join("Program Files/Thing/hello-thing");
    std::fs::write(&thing, "#!/bin/sh\necho hello from thing\n")?;
    std::fs::set_permissions(&thing, std::fs::Permissions::from_mode(0o755))?;
    std::fs::create_dir_all(c.join("Users/me/it's \"q\""))?;
    let first = d.run(&Launch::command("true").timeout(Duration::from_secs(120)))?;
    ensure!(first.code == 0, "the first launch failed: {first}");
    Ok(d)
}

/// The distro shared by the tests that change nothing in it, booted on first use.
pub(crate) static SHARED: crate::Shared = crate::Shared::new(|| start(own("NixOS")));

fn shared() -> Result<Arc<Distro>> {
    SHARED.get()
}

// ---------------------------------------------------------------------------------------
// What the stand-in file and the simulated WSL give.

/// The Windows `%PATH%` entries every launch here passes (WSL appends them to PATH): one
/// with a space, one with quotes.
const WINDOWS_ENTRIES: [&str; 4] = [
    "/mnt/c/Windows/system32",
    "/mnt/c/Windows",
    "/mnt/c/Program Files/Thing",
    "/mnt/c/Users/me/it's \"q\"",
];

/// The Windows part of PATH, as `WSLPATH` must carry it.
fn windows_part() -> String {
    WINDOWS_ENTRIES.join(":")
}

/// The PATH the stand-in `/etc/set-environment` sets for `user` with home `home`.
fn nixos_part(user: &str, home: &str) -> String {
    format!(
        "/opt/nixos-marker/bin:{home}/.nix-profile/bin:/etc/profiles/per-user/{user}/bin:\
         /usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
    )
}

/// The session PATH of the default user `nixos` with the Windows entries included.
fn nixos_session_path() -> String {
    format!("{}:{}", nixos_part("nixos", "/home/nixos"), windows_part())
}

/// What WSL's PATH is before any NixOS environment: its Linux part, then the Windows part.
fn wsl_path() -> String {
    format!("{}:{}", sim::session::LINUX_PATH, windows_part())
}

const MARKER: &str = "nixos-set-environment-loaded";
const MARKER_QUOTED: &str = "it's a \"quoted\" value with  spaces and a $dollar";
const MARKER_PROGRAM_OUTPUT: &str = "nixos-marker ran as nixos";

/// A launch with this file's Windows PATH entries and a bound of 30 s.
fn with_defaults(mut launch: Launch) -> Launch {
    launch.windows_path = WINDOWS_ENTRIES.iter().map(|s| s.to_string()).collect();
    launch.timeout(Duration::from_secs(30))
}

/// `wsl -- <s>`
fn command(s: &str) -> Launch {
    with_defaults(Launch::command(s))
}

/// `wsl` with `script` typed on stdin (an interactive login shell reading a pipe).
fn login(script: &str) -> Launch {
    with_defaults(Launch::login().stdin(script))
}

/// Runs `launch` and demands the happy path: exit 0, nothing on stderr.
fn happy(d: &Distro, launch: &Launch) -> Result<Output> {
    let out = d.run(launch)?;
    out.ok()
        .with_context(|| format!("launch {:?}", launch.form))?;
    Ok(out)
}

/// Runs `launch` and compares its stdout, line by line, with `expected`.
fn expect_lines(d: &Distro, launch: &Launch, expected: &[&str]) -> Result<()> {
    let out = happy(d, launch)?;
    let got: Vec<&str> = out.stdout_lines();
    ensure!(
        got == expected,
        "{:?}: expected {expected:#?}\ngot {got:#?}\n{out}",
        launch.form
    );
    Ok(())
}

trait Lines {
    fn stdout_lines(&self) -> Vec<&str>;
}

impl Lines for Output {
    fn stdout_lines(&self) -> Vec<&str> {
        std::str::from_utf8(&self.stdout)
            .unwrap_or("<not UTF-8>")
            .lines()
            .collect()
    }
}

fn parse_env(bytes: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(bytes)
        .split('\0')
        .filter_map(|e| {
            e.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// unit::*

/// The stand-in must stay inside the subset NixOS generates, so the simulator tests cover the
/// fast path (`env::fallback_shell_path_loads_once` covers the other one).
fn stand_in_takes_the_fast_path() -> Result<()> {
    use nixos_wsl::environment::{script, Env};
    let path = sim::rootfs::recipe_dir().join("files/etc/set-environment");
    let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut env = Env::new();
    env.set("HOME", "/home/nixos");
    env.set("USER", "nixos");
    env.set("PATH", wsl_path());
    let loaded = script::evaluate(&text, &env).map_err(|e| anyhow::anyhow!("{e}"))?;
    let get = |k: &str| loaded.get(k).and_then(|v| v.to_str());
    ensure!(
        get("__NIXOS_SET_ENVIRONMENT_DONE") == Some("1"),
        "{loaded:?}"
    );
    ensure!(get("NIXOS_MARKER") == Some(MARKER), "{loaded:?}");
    ensure!(
        get("NIXOS_MARKER_QUOTED") == Some(MARKER_QUOTED),
        "{loaded:?}"
    );
    ensure!(get("NIXOS_MARKER_LOADS") == Some("x"), "{loaded:?}");
    ensure!(
        get("NIXOS_MARKER_USER") == Some("nixos:/home/nixos"),
        "{loaded:?}"
    );
    ensure!(
        get("PATH") == Some(nixos_part("nixos", "/home/nixos").as_str()),
        "{loaded:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// env::* with the shared distro (bash as the user's shell).

/// `wsl -- nixos-marker` finds the program only through NixOS' PATH; the variables arrive
/// byte-exact.
fn marker_program_and_variables() -> Result<()> {
    let d = shared()?;
    expect_lines(
        &d,
        &command(
            "nixos-marker; command -v nixos-marker; echo \"$NIXOS_MARKER\"; \
             printf '%s\\n' \"$NIXOS_MARKER_QUOTED\"",
        ),
        &[
            MARKER_PROGRAM_OUTPUT,
            "/opt/nixos-marker/bin/nixos-marker",
            MARKER,
            MARKER_QUOTED,
        ],
    )?;
    // The literal `wsl -- 'echo $MARKER'` of the issue, and the program alone as the command.
    expect_lines(&d, &command("echo $NIXOS_MARKER"), &[MARKER])?;
    expect_lines(&d, &command("nixos-marker"), &[MARKER_PROGRAM_OUTPUT])
}

/// NixOS' entries first, then the Windows entries WSL appended, in order, the one with a
/// space and the one with quotes intact; `WSLPATH` is the Windows part. The same in the
/// login form, `--shell-type login`, and in nested shells.
fn path_order_and_wslpath() -> Result<()> {
    let d = shared()?;
    let path = nixos_session_path();
    let windows = windows_part();
    let expected = [path.as_str(), windows.as_str(), "hello from thing"];
    let show = "printenv PATH; printenv WSLPATH; hello-thing";
    expect_lines(&d, &command(show), &expected)?;
    expect_lines(&d, &login(&format!("{show}\n")), &expected)?;
    expect_lines(&d, &with_defaults(Launch::login_command(show)), &expected)?;
    expect_lines(
        &d,
        &command(&format!("bash -c '{show}'; bash -lc '{show}' | head -n 1")),
        &[&expected[..], &expected[..1]].concat(),
    )
}

/// `SHELL` is the real shell and the per-user variables are the target user's, also when WSL
/// (as root) passed root's and WSLg's; set-environment saw the user's `$USER` and `$HOME`.
fn shell_and_per_user_variables() -> Result<()> {
    let d = shared()?;
    for launch in [
        command("env -0"),
        login("env -0\n"),
        command("env -0").wslenv("XDG_RUNTIME_DIR", "/mnt/wslg/runtime-dir"),
    ] {
        let out = happy(&d, &launch)?;
        let env = parse_env(&out.stdout);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        for (k, v) in [
            ("SHELL", "/bin/bash"),
            ("HOME", "/home/nixos"),
            ("USER", "nixos"),
            ("LOGNAME", "nixos"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
            ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/1000/bus"),
            ("NIXOS_MARKER_USER", "nixos:/home/nixos"),
            ("NIXOS_MARKER_LOADS", "x"),
            ("__NIXOS_SET_ENVIRONMENT_DONE", "1"),
        ] {
            ensure!(
                get(k) == Some(v),
                "{:?}: {k} is {:?}, expected {v:?}\n{env:#?}",
                launch.form,
                get(k)
            );
        }
        for (k, v) in &env {
            ensure!(
                !v.contains("/root") && !v.contains("/mnt/wslg") && !v.contains("nixos-wsl-shell"),
                "{:?}: {k}={v:?} is root's, WSLg's or the wrapper's\n{env:#?}",
                launch.form
            );
        }
    }
    Ok(())
}

/// Nested shells that would source the file (login bash, interactive bash, every zsh, login
/// dash: the rootfs's startup files do, as NixOS') see the marker and skip it.
fn nested_shells_do_not_reload() -> Result<()> {
    let d = shared()?;
    let show = "echo \"$NIXOS_MARKER_LOADS\"";
    let script = format!(
        "{show}; bash -c '{show}'; bash -lc '{show}'; bash -ic '{show}' 2>/dev/null; \
         zsh -c '{show}'; dash -lc '{show}'; sh -c '{show}'; bash -c \"bash -lc '{show}'\""
    );
    expect_lines(&d, &command(&script), &["x"; 8])?;
    expect_lines(&d, &login(&format!("{script}\n")), &["x"; 8])
}

/// `wsl` (no command) is a login shell (`-bash`, `shopt login_shell` on) and sees NixOS'
/// environment, which it does not load a second time.
fn login_shells_see_the_environment() -> Result<()> {
    let d = shared()?;
    let script = "echo \"$0\"; shopt -q login_shell && echo login-shell; nixos-marker; \
                  echo \"$NIXOS_MARKER\"; echo \"$NIXOS_MARKER_LOADS\"; echo \"$SHELL\"\n";
    let expected = [
        "-bash",
        "login-shell",
        MARKER_PROGRAM_OUTPUT,
        MARKER,
        "x",
        "/bin/bash",
    ];
    expect_lines(&d, &login(script), &expected)?;
    // `wsl --shell-type login -- ...`
    expect_lines(
        &d,
        &with_defaults(Launch::login_command(script.trim_end())),
        &expected,
    )
}

/// `sudo -i` inside the session runs root's login shell, nixos-wsl-shell, which is already
/// inside: it loads the file for root (sudo reset the environment), once, and sets `SHELL`
/// to the real shell.
fn sudo_i_inside_gets_the_environment() -> Result<()> {
    let d = shared()?;
    let root_path = nixos_part("root", "/root");
    expect_lines(
        &d,
        &command(
            "sudo -i printenv NIXOS_MARKER NIXOS_MARKER_LOADS NIXOS_MARKER_USER HOME SHELL PATH",
        ),
        &[
            MARKER,
            "x",
            "root:/root",
            "/root",
            "/run/current-system/sw/bin/bash",
            &root_path,
        ],
    )?;
    expect_lines(
        &d,
        &command("sudo -i nixos-marker"),
        &["nixos-marker ran as root"],
    )?;
    // Interactive: commands on sudo's stdin.
    expect_lines(
        &d,
        &command(
            "echo 'shopt -q login_shell && echo login-shell; echo \"$NIXOS_MARKER_LOADS\"; \
             nixos-marker' | sudo -i",
        ),
        &["login-shell", "x", "nixos-marker ran as root"],
    )
}

// ---------------------------------------------------------------------------------------
// env::* with distros of their own.

/// The same contract with `shell` as the user's passwd shell: the marker program and
/// variables, PATH and `WSLPATH`, `SHELL`, a login launch that stays a login shell, and a
/// nested shell of the same kind that does not load the file again.
fn user_shell(shell: &str, login_check: &str, nested: &str) -> Result<()> {
    let name = shell.rsplit('/').next().unwrap_or(shell);
    let d = start(own(&format!("env-{name}")))?;
    let out = d.root_sh(&format!("chsh -s {shell} nixos && getent passwd nixos"))?;
    ensure!(
        out.code == 0 && out.out().trim_end().ends_with(&format!(":{shell}")),
        "chsh: {out}"
    );
    let path = nixos_session_path();
    let windows = windows_part();
    // Valid in sh, zsh and fish alike.
    let show = "nixos-marker; echo $NIXOS_MARKER; echo $NIXOS_MARKER_LOADS; printenv SHELL; \
                printenv PATH; printenv WSLPATH; hello-thing";
    let expected = [
        MARKER_PROGRAM_OUTPUT,
        MARKER,
        "x",
        shell,
        path.as_str(),
        windows.as_str(),
        "hello from thing",
    ];
    expect_lines(&d, &command(show), &expected)?;
    expect_lines(&d, &command("echo $NIXOS_MARKER"), &[MARKER])?;
    expect_lines(
        &d,
        &login(&format!("{login_check}\n{show}\n")),
        &[&["login-shell"], &expected[..]].concat(),
    )?;
    expect_lines(&d, &command(nested), &["x"])
}

fn zsh() -> Result<()> {
    user_shell(
        "/usr/bin/zsh",
        "[[ -o login ]] && echo login-shell",
        "zsh -c 'echo $NIXOS_MARKER_LOADS'",
    )
}

fn dash() -> Result<()> {
    user_shell(
        "/usr/bin/dash",
        "case $0 in -*) echo login-shell;; esac",
        "dash -lc 'echo $NIXOS_MARKER_LOADS'",
    )
}

fn fish() -> Result<()> {
    user_shell(
        "/usr/bin/fish",
        "status is-login; and echo login-shell",
        "fish -lc 'echo $NIXOS_MARKER_LOADS'",
    )
}

/// `include_path = false` (`wsl.interop.includePath = false`): PATH is NixOS' alone, the
/// Windows programs are not found by name, `WSLPATH` still has the Windows part.
fn include_path_false_drops_windows_entries() -> Result<()> {
    let d = start(own("env-no-windows").file("/etc/nixos-wsl.conf", "include_path = false\n"))?;
    let path = nixos_part("nixos", "/home/nixos");
    let windows = windows_part();
    let show = "printenv PATH; printenv WSLPATH; command -v hello-thing || echo not-found; \
                \"$(printenv WSLPATH | cut -d: -f3)/hello-thing\"";
    let expected = [
        path.as_str(),
        windows.as_str(),
        "not-found",
        "hello from thing",
    ];
    expect_lines(&d, &command(show), &expected)?;
    expect_lines(&d, &login(&format!("{show}\n")), &expected)?;
    expect_lines(&d, &command(&format!("bash -lc '{show}'")), &expected)
}

/// A file outside the fast path's subset (command substitution, a redirection) goes through
/// `/bin/sh`, as the session's user (NixOS' `extraInit` may run `id -u`, `mkdir` in `$HOME`),
/// once per launch, whatever nested shells follow.
fn fallback_shell_path_loads_once() -> Result<()> {
    let stand_in =
        std::fs::read_to_string(sim::rootfs::recipe_dir().join("files/etc/set-environment"))?;
    let file = format!(
        "{stand_in}\nexport NIXOS_MARKER_UID=\"$(id -u)\"\n\
         echo \"$(id -un)\" >> /tmp/set-environment-loads\n"
    );
    let d = start(own("env-fallback").file("/etc/set-environment", file))?;
    // Only the launches below count.
    let out = d.root_sh("rm -f /tmp/set-environment-loads")?;
    ensure!(out.code == 0, "{out}");
    let script = "nixos-marker; echo \"$NIXOS_MARKER_LOADS\" \"$NIXOS_MARKER_UID\"; \
                  printenv PATH; bash -lc true; zsh -c true; bash -ic true 2>/dev/null; \
                  cat /tmp/set-environment-loads";
    let path = nixos_session_path();
    expect_lines(
        &d,
        &command(script),
        &[MARKER_PROGRAM_OUTPUT, "x 1000", &path, "nixos"],
    )?;
    expect_lines(
        &d,
        &login(&format!("{script}\n")),
        &[MARKER_PROGRAM_OUTPUT, "x 1000", &path, "nixos", "nixos"],
    )
}

/// A launch that must work without NixOS' environment: exit 0, the command's output, WSL's
/// own PATH, exactly one line on stderr naming the file.
fn degraded(d: &Distro, launch: &Launch, expected: &[&str]) -> Result<()> {
    let out = d.run(launch)?;
    ensure!(
        out.code == 0 && out.stdout_lines() == expected,
        "{:?}: expected {expected:#?}\n{out}",
        launch.form
    );
    let err = out.err();
    ensure!(
        err.lines().count() == 1 && err.contains("/etc/set-environment"),
        "{:?}: expected one warning line naming /etc/set-environment\n{out}",
        launch.form
    );
    Ok(())
}

fn missing_file_one_warning() -> Result<()> {
    let d = start(own("env-missing"))?;
    let out = d.root_sh("rm /etc/set-environment")?;
    ensure!(out.code == 0, "{out}");
    let path = wsl_path();
    let show = "echo \"${NIXOS_MARKER-unset}\"; printenv PATH; hello-thing";
    let expected = ["unset", path.as_str(), "hello from thing"];
    degraded(&d, &command(show), &expected)?;
    degraded(&d, &login(&format!("{show}\n")), &expected)
}

fn broken_file_one_warning() -> Result<()> {
    let d = start(own("env-broken").file(
        "/etc/set-environment",
        "export __NIXOS_SET_ENVIRONMENT_DONE=1\nexport NIXOS_MARKER=\"half\"\n\
         if [ -e / ]; then\n  export PATH=\"/opt/nixos-marker/bin:$PATH\"\n",
    ))?;
    let path = wsl_path();
    let show = "echo \"${NIXOS_MARKER-unset}\"; printenv PATH; hello-thing";
    let expected = ["unset", path.as_str(), "hello from thing"];
    degraded(&d, &command(show), &expected)?;
    // Login shells and zsh source the file themselves when the marker is absent (as on
    // NixOS): the failure must not repeat there.
    degraded(&d, &login(&format!("{show}\n")), &expected)?;
    degraded(&d, &command(&format!("zsh -c '{show}'")), &expected)
}
