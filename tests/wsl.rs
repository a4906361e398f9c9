//! End-to-end tests of `nixos-wsl-shell` as root's login shell in the WSL simulator
//! (tests/sim), with real systemd in a Debian rootfs, plus the simulator's own tests.
//!
//! One test binary (`harness = false`, libtest-mimic). Tiers:
//! - `unit::*`: pure logic of the simulator, no privileges;
//! - `sim::*`: the simulator itself, with `/bin/bash` as root's shell (no systemd);
//! - `shell::*`: issue 2's contract, with the built `nixos-wsl-shell` as root's shell.
//! - `native::*`: issue 5, WSL's own systemd mode: the built `nixos-wsl-init` as
//!   `/sbin/init`, nixos-wsl-shell as the default user's shell; the session tests of
//!   `shell::*` run here again unchanged (`Mode`).
//!
//! `sim::*`, `shell::*` and `native::*` need root (namespaces, mounts, cgroups). Without root they are
//! skipped with a note, except under `CI`, where they fail. Environment:
//! - `NIXOS_WSL_TEST_ROOT_SHELL=/bin/bash` runs the `shell::*` tests with that program of the
//!   rootfs as root's shell instead of nixos-wsl-shell (the comparison floor);
//! - `NIXOS_WSL_TEST_SHELL_BIN=PATH` installs that nixos-wsl-shell build instead of the one
//!   cargo built for this test binary; `NIXOS_WSL_TEST_INIT_BIN=PATH` the same for
//!   nixos-wsl-init;
//! - `NIXOS_WSL_SIM_CACHE` (rootfs cache), `NIXOS_WSL_SIM_KEEP=1` (keep instance state);
//! - `NIXOS_WSL_TEST_BUDGET` seconds for the whole run (default 1500), then abort.

mod sim;

use sim::harness::{self, unprivileged, TestFn};

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use libtest_mimic::{Arguments, Trial};
use nix::sys::signal::Signal;

use sim::{Distro, DistroOptions, Launch, Output, RootShell};

fn main() {
    if let Some(code) = sim::role_main() {
        std::process::exit(code);
    }
    let args = Arguments::from_args();
    let mut tests = unit_tests();
    tests.extend(shell_tests());
    tests.extend(native_tests());
    tests.extend(sim_tests());
    harness::start_watchdog("wsl", 1500, || {});
    let conclusion = libtest_mimic::run(&args, tests);
    Shared::shutdown_all();
    conclusion.exit();
}

// ---------------------------------------------------------------------------------------
// Harness plumbing.

/// `tests!["tier": a, b]`: `("tier::a", a)`, ...: every registered name is its function's.
macro_rules! tests {
    ($tier:literal: $($f:ident),* $(,)?) => {
        vec![$((format!("{}::{}", $tier, stringify!($f)), $f as TestFn)),*]
    };
}

/// Issue 2's session contract: each runs once per [`Mode`], as `shell::<name>` against the
/// login shell's namespace and `native::<name>` under WSL's own systemd.
/// A test of the session contract, for one mode.
type SessionTest = fn(Mode) -> Result<()>;

const SESSION_CONTRACT: &[(&str, SessionTest)] = &[
    ("exit_codes_0_to_255", exit_codes_0_to_255),
    (
        "users_own_shells_set_the_nixos_way",
        users_own_shells_set_the_nixos_way,
    ),
    (
        "welcome_once_on_the_first_interactive_login",
        welcome_once_on_the_first_interactive_login,
    ),
    ("pid1_is_systemd_and_running", pid1_is_systemd_and_running),
    ("identity_and_groups", identity_and_groups),
    ("environment", environment),
    ("path_with_spaces", path_with_spaces),
    (
        "working_directory_kept_or_replaced",
        working_directory_kept_or_replaced,
    ),
    ("death_by_signal", death_by_signal),
    ("verbatim_command_strings", verbatim_command_strings),
    (
        "binary_stdin_stdout_byte_exact",
        binary_stdin_stdout_byte_exact,
    ),
    ("stderr_is_separate", stderr_is_separate),
    (
        "interactive_login_shell_from_piped_stdin",
        interactive_login_shell_from_piped_stdin,
    ),
    ("systemctl_user_works", systemctl_user_works),
    ("terminal_belongs_to_the_user", terminal_belongs_to_the_user),
    (
        "no_capabilities_and_no_extra_fds",
        no_capabilities_and_no_extra_fds,
    ),
    ("no_launcher_fds_in_systemd", no_launcher_fds_in_systemd),
    (
        "sigterm_and_sighup_reach_the_command",
        sigterm_and_sighup_reach_the_command,
    ),
    ("sudo_i_inside", sudo_i_inside),
];

fn session_trials(tier: &str, mode: Mode) -> Vec<Trial> {
    SESSION_CONTRACT
        .iter()
        .map(|&(name, f)| privileged(&format!("{tier}::{name}"), move || f(mode)))
        .collect()
}

/// A test that needs root: fails under `CI` without it, skipped elsewhere.
fn privileged(name: &str, f: impl FnOnce() -> Result<()> + Send + 'static) -> Trial {
    harness::gated(name, f, || harness::needs_root("wsl"))
}

/// The login shell under test.
fn shell_under_test() -> RootShell {
    match std::env::var("NIXOS_WSL_TEST_ROOT_SHELL") {
        Ok(p) if !p.is_empty() => RootShell::Existing(p),
        _ => RootShell::NixosWslShell(match std::env::var_os("NIXOS_WSL_TEST_SHELL_BIN") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => PathBuf::from(env!("CARGO_BIN_EXE_nixos-wsl-shell")),
        }),
    }
}

/// Distros shared by read-only tests, booted on first use, terminated after the run.
struct Shared {
    slot: Mutex<Option<std::result::Result<Arc<Distro>, String>>>,
    make: fn() -> Result<Distro>,
}

static SHARED_SHELL: Shared = Shared {
    slot: Mutex::new(None),
    make: make_shared_shell,
};
static SHARED_NATIVE: Shared = Shared {
    slot: Mutex::new(None),
    make: make_shared_native,
};
static SHARED_BASH: Shared = Shared {
    slot: Mutex::new(None),
    make: make_shared_bash,
};

fn make_shared_shell() -> Result<Distro> {
    let d = Distro::start(DistroOptions::new("NixOS", shell_under_test()))?;
    prepare_windows_side(&d)?;
    Ok(d)
}

fn make_shared_bash() -> Result<Distro> {
    let d = Distro::start(DistroOptions::new(
        "Bash",
        RootShell::Existing("/bin/bash".into()),
    ))?;
    prepare_windows_side(&d)?;
    Ok(d)
}

/// A program on the Windows side, in a PATH entry with a space, and a folder the user
/// cannot enter.
fn prepare_windows_side(d: &Distro) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let c = d.state_dir().join("c");
    let thing = c.join("Program Files/Thing/hello-thing");
    std::fs::write(&thing, "#!/bin/sh\necho hello from thing\n")?;
    std::fs::set_permissions(&thing, std::fs::Permissions::from_mode(0o755))?;
    let private = c.join("Users/private");
    std::fs::create_dir_all(&private)?;
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700))?;
    std::fs::create_dir_all(c.join("Users/me/My Documents"))?;
    Ok(())
}

impl Shared {
    fn get(&'static self) -> Result<Arc<Distro>> {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some((self.make)().map(Arc::new).map_err(|e| format!("{e:#}")));
        }
        match slot.as_ref().unwrap() {
            Ok(d) => Ok(d.clone()),
            Err(e) => bail!("the shared distro failed to boot: {e}"),
        }
    }

    fn shutdown_all() {
        for s in [&SHARED_SHELL, &SHARED_NATIVE, &SHARED_BASH] {
            let taken = s.slot.lock().unwrap_or_else(|e| e.into_inner()).take();
            drop(taken);
        }
    }
}

fn shell() -> Result<Arc<Distro>> {
    SHARED_SHELL.get()
}

fn bash() -> Result<Arc<Distro>> {
    SHARED_BASH.get()
}

/// Which way systemd runs: started by root's login shell in a namespace (issue 2), or by
/// WSL itself with nixos-wsl-init as `/sbin/init` (issue 5). Tests of the session contract
/// run in both, against the shared distro of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Namespace,
    Native,
}

impl Mode {
    fn shared(self) -> Result<Arc<Distro>> {
        match self {
            Mode::Namespace => SHARED_SHELL.get(),
            Mode::Native => SHARED_NATIVE.get(),
        }
    }
}

/// A distro of its own for a lifecycle test.
fn own(name: &str) -> DistroOptions {
    DistroOptions::new(name, shell_under_test())
}

/// Runs `cmd` (the `-c` form) and demands the happy path: exit 0, nothing on stderr.
fn happy(d: &Distro, launch: &Launch) -> Result<Output> {
    let out = d.run(launch)?;
    out.ok()
        .with_context(|| format!("launch {:?}", launch.form))?;
    Ok(out)
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

// ---------------------------------------------------------------------------------------
// unit::*: pure logic, no root.

fn unit_tests() -> Vec<Trial> {
    vec![
        unprivileged("unit::argv_forms", unit_argv_forms),
        unprivileged("unit::environment_order", unit_environment_order),
        unprivileged("unit::userdb_parsing", unit_userdb_parsing),
        unprivileged("unit::sim_refuses_the_host_root", unit_refuses_host_root),
        unprivileged("unit::recipe_hash_is_stable", unit_recipe_hash),
        unprivileged("unit::wsl_systemd_mode", unit_wsl_systemd_mode),
    ]
}

fn unit_wsl_systemd_mode() -> Result<()> {
    use sim::native::{session_env, systemd_enabled, LaunchArgs};
    ensure!(systemd_enabled("[boot]\nsystemd=true\n"));
    ensure!(systemd_enabled(
        "[Boot] # c\n SystemD = \"TRUE\"\n[user]\ndefault=x\n"
    ));
    ensure!(!systemd_enabled("[boot]\nsystemd=false\n"));
    ensure!(!systemd_enabled("[user]\nsystemd=true\n"));
    ensure!(!systemd_enabled(""));
    let wsl = vec![("PATH".to_string(), "/bin".to_string())];
    let native = LaunchArgs {
        wsl_systemd: true,
        ..Default::default()
    };
    let env = native.environment(wsl.clone(), 1000);
    ensure!(env[0] == wsl[0] && env[1..] == session_env(1000), "{env:?}");
    ensure!(env[2] == ("XDG_RUNTIME_DIR".into(), "/run/user/1000".into()));
    let exact = LaunchArgs {
        exact_env: Some(Vec::new()),
        ..native
    };
    ensure!(
        exact.environment(wsl, 1000).is_empty(),
        "no PATH for WSL's helpers"
    );
    Ok(())
}

fn unit_argv_forms() -> Result<()> {
    use sim::session::{program_and_argv, Form};
    let u = sim::userdb::Passwd {
        name: "n".into(),
        uid: 1000,
        gid: 100,
        home: "/h".into(),
        shell: "/bin/zsh".into(),
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let none = |_: &str| false;
    ensure!(program_and_argv(&Form::Login, &u, none).unwrap() == ("/bin/zsh".into(), s(&["-zsh"])));
    ensure!(
        program_and_argv(&Form::Command("a 'b c'".into()), &u, none).unwrap()
            == ("/bin/zsh".into(), s(&["/bin/zsh", "-c", "a 'b c'"]))
    );
    ensure!(
        program_and_argv(&Form::LoginCommand("x".into()), &u, none).unwrap()
            == ("/bin/zsh".into(), s(&["-zsh", "-c", "x"]))
    );
    let only_bin = |p: &str| p == "/bin/ls";
    ensure!(
        program_and_argv(&Form::Exec(s(&["ls", "a b"])), &u, only_bin).unwrap()
            == ("/bin/ls".into(), s(&["ls", "a b"]))
    );
    ensure!(program_and_argv(&Form::Exec(s(&["nope"])), &u, only_bin).is_err());
    let empty = sim::userdb::Passwd {
        shell: String::new(),
        ..u
    };
    ensure!(
        program_and_argv(&Form::Login, &empty, none).unwrap() == ("/bin/sh".into(), s(&["-sh"]))
    );
    Ok(())
}

fn unit_environment_order() -> Result<()> {
    use sim::session::{wsl_environment, EnvInputs};
    let u = sim::userdb::Passwd {
        name: "nixos".into(),
        uid: 1000,
        gid: 100,
        home: "/home/nixos".into(),
        shell: "/bin/bash".into(),
    };
    let env = wsl_environment(&EnvInputs {
        lang: "en_US.UTF-8",
        windows_path: &[
            "/mnt/c/Windows/system32".into(),
            "/mnt/c/Program Files/Thing".into(),
        ],
        wslenv: &[("WT_SESSION".into(), "abc".into())],
        interop_pid: 7,
        hostname: "host",
        distro: "NixOS",
        user: &u,
    });
    let keys: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    ensure!(
        keys == [
            "HOSTTYPE",
            "LANG",
            "PATH",
            "TERM",
            "WSLENV",
            "WT_SESSION",
            "WSL_INTEROP",
            "NAME",
            "WSL_DISTRO_NAME",
            "HOME",
            "USER",
            "LOGNAME",
            "SHELL"
        ],
        "{keys:?}"
    );
    ensure!(env[2]
        .1
        .ends_with(":/usr/local/games:/mnt/c/Windows/system32:/mnt/c/Program Files/Thing"));
    ensure!(env[4].1 == "WT_SESSION" && env[6].1 == "/run/WSL/7_interop");
    Ok(())
}

fn unit_userdb_parsing() -> Result<()> {
    use sim::userdb::*;
    let p =
        parse_passwd("root:x:0:0:root:/root:/bin/bash\nbad line\nnixos:x:1000:100::/home/nixos:\n");
    ensure!(p.len() == 2 && p[1].shell_or_sh() == "/bin/sh");
    ensure!(
        groups_of(
            "sudo:x:27:nixos\nusers:x:100:\nwheel:x:10:a,nixos\n",
            "nixos",
            100
        ) == [100, 27, 10]
    );
    ensure!(
        wsl_conf_default_user("[boot]\ndefault=x\n[User] # c\n Default = \"nixos\"\n").as_deref()
            == Some("nixos")
    );
    ensure!(wsl_conf_default_user("[user]\n").is_none());
    ensure!(lang_from("# c\nLANG=\"C.UTF-8\"\n").as_deref() == Some("C.UTF-8"));
    Ok(())
}

fn unit_refuses_host_root() -> Result<()> {
    use sim::safety::*;
    let host = HostRoot::record()?;
    let err = check_root(host)
        .err()
        .context("check_root accepted the host's /")?;
    ensure!(format!("{err}").contains("refusing"), "{err}");
    // A directory that is not the host root but lacks the marker is refused too.
    let err = check_root_at(std::path::Path::new("/tmp"), host)
        .err()
        .context("accepted /tmp")?;
    ensure!(format!("{err}").contains("marker"), "{err}");
    Ok(())
}

fn unit_recipe_hash() -> Result<()> {
    let dir = sim::rootfs::recipe_dir();
    ensure!(sim::rootfs::recipe_hash(&dir)? == sim::rootfs::recipe_hash(&dir)?);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// shell::*: issue 2, with real systemd.

fn shell_tests() -> Vec<Trial> {
    // Lifecycle tests (own distros) first, so they overlap with the shared ones.
    let own = tests!["shell": simultaneous_first_logins_start_one_systemd, activation_runs_once_per_boot, first_login_and_later_logins, poweroff_inside_then_next_login, launch_while_shutting_down_waits_then_boots, terminate_then_next_login, missing_systemd_still_gives_a_shell, hung_systemd_still_gives_a_shell, broken_config_still_gives_a_shell, missing_user_still_gives_a_shell, recovery_variables];
    let mut trials: Vec<Trial> = own.into_iter().map(|(n, f)| privileged(&n, f)).collect();
    trials.extend(session_trials("shell", Mode::Namespace));
    trials
}

/// What identifies PID 1 to a user's command: its comm and its start time (field 22 of
/// /proc/1/stat), which tells one systemd instance from the next (a user may not read
/// another user's /proc/1/ns/pid).
const PID1_CMD: &str = "cat /proc/1/comm; cut -d' ' -f22 /proc/1/stat";

/// The comm and start time of PID 1, as seen by a user's command.
fn pid1_of(d: &Distro) -> Result<(String, String)> {
    let out = happy(d, &Launch::command(PID1_CMD))?;
    let l = lines(&out.out());
    ensure!(l.len() == 2, "unexpected output: {out}");
    Ok((l[0].clone(), l[1].clone()))
}

/// Lines of the persistent activation log.
fn activations(d: &Distro) -> Result<usize> {
    let out = d.root_sh("cat /var/log/activations 2>/dev/null || true")?;
    Ok(out.out().lines().count())
}

/// Host pids of processes in `d` that are PID 1 of a nested PID namespace and run systemd.
fn systemd_inits(d: &Distro) -> Vec<i32> {
    nested_inits(d, "systemd")
}

/// Host pids of processes in `d` that are PID 1 of a nested PID namespace, named `comm`.
fn nested_inits(d: &Distro, name: &str) -> Vec<i32> {
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

fn first_login_and_later_logins() -> Result<()> {
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

fn pid1_is_systemd_and_running(mode: Mode) -> Result<()> {
    let d = mode.shared()?;
    let (comm, _) = pid1_of(&d)?;
    ensure!(comm == "systemd", "PID 1 is {comm}");
    let out = d.run(&Launch::command("systemctl is-system-running"))?;
    ensure!(
        out.out().trim() == "running" && out.code == 0,
        "is-system-running: {out}"
    );
    Ok(())
}

fn identity_and_groups(mode: Mode) -> Result<()> {
    let d = mode.shared()?;
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

fn parse_env(s: &str) -> Vec<(String, String)> {
    s.split('\0')
        .filter(|e| !e.is_empty())
        .filter_map(|e| {
            e.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

fn environment(mode: Mode) -> Result<()> {
    let d = mode.shared()?;
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

fn path_with_spaces(mode: Mode) -> Result<()> {
    let d = mode.shared()?;
    let out = happy(&d, &Launch::command("hello-thing; command -v hello-thing"))?;
    ensure!(
        out.out() == "hello from thing\n/mnt/c/Program Files/Thing/hello-thing\n",
        "{out}"
    );
    Ok(())
}

fn working_directory_kept_or_replaced(mode: Mode) -> Result<()> {
    let d = mode.shared()?;
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

fn exit_codes_0_to_255(mode: Mode) -> Result<()> {
    let d = mode.shared()?;
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

fn death_by_signal(mode: Mode) -> Result<()> {
    let d = mode.shared()?;
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

fn verbatim_command_strings(mode: Mode) -> Result<()> {
    let d = mode.shared()?;
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

fn binary_stdin_stdout_byte_exact(mode: Mode) -> Result<()> {
    let d = mode.shared()?;
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

fn stderr_is_separate(mode: Mode) -> Result<()> {
    let d = mode.shared()?;
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

fn interactive_login_shell_from_piped_stdin(mode: Mode) -> Result<()> {
    let d = mode.shared()?;
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
fn users_own_shells_set_the_nixos_way(mode: Mode) -> Result<()> {
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
fn welcome_once_on_the_first_interactive_login(mode: Mode) -> Result<()> {
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

fn systemctl_user_works(mode: Mode) -> Result<()> {
    let d = mode.shared()?;
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

fn terminal_belongs_to_the_user(mode: Mode) -> Result<()> {
    let d = mode.shared()?;
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

fn no_capabilities_and_no_extra_fds(mode: Mode) -> Result<()> {
    let d = mode.shared()?;
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

fn no_launcher_fds_in_systemd(mode: Mode) -> Result<()> {
    let d = mode.shared()?;
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

fn sigterm_and_sighup_reach_the_command(mode: Mode) -> Result<()> {
    let d = mode.shared()?;
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

fn sudo_i_inside(mode: Mode) -> Result<()> {
    let d = mode.shared()?;
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

fn recovery_variables() -> Result<()> {
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

fn activation_runs_once_per_boot() -> Result<()> {
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

fn poweroff_inside_then_next_login() -> Result<()> {
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
fn launch_while_shutting_down_waits_then_boots() -> Result<()> {
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
        out.exit == sim::Exit::Code(0)
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

fn terminate_then_next_login() -> Result<()> {
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

fn simultaneous_first_logins_start_one_systemd() -> Result<()> {
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
fn degraded_launch(d: &Distro, bound: Duration) -> Result<Output> {
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

fn missing_systemd_still_gives_a_shell() -> Result<()> {
    let d = Distro::start(
        own("no-systemd").file("/etc/nixos-wsl.conf", "systemd = /nonexistent/systemd\n"),
    )?;
    let out = degraded_launch(&d, Duration::from_secs(15))?;
    ensure!(
        out.err().lines().count() == 1,
        "expected one line on stderr: {out}"
    );
    Ok(())
}

fn hung_systemd_still_gives_a_shell() -> Result<()> {
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

fn broken_config_still_gives_a_shell() -> Result<()> {
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
    let warnings = out.err().lines().count();
    ensure!(
        warnings == 2,
        "expected one warning per bad line (2): {out}"
    );
    Ok(())
}

fn missing_user_still_gives_a_shell() -> Result<()> {
    let d = Distro::start(own("missing-user").file("/etc/nixos-wsl.conf", "user = nobody-here\n"))?;
    let out = d.run(&Launch::command("echo still-a-shell").timeout(Duration::from_secs(90)))?;
    ensure!(out.code == 0 && out.out() == "still-a-shell\n", "{out}");
    ensure!(
        out.err().lines().count() == 1 && out.err().contains("nobody-here"),
        "one line naming the user: {out}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// native::*: issue 5, WSL's own systemd mode: nixos-wsl-init as /sbin/init, WSL's readiness
// poll and `login -f`, the login shell as the default user's passwd shell.

/// The init under test, installed as `/sbin/init` (`NIXOS_WSL_TEST_INIT_BIN` overrides).
fn init_under_test() -> PathBuf {
    match std::env::var_os("NIXOS_WSL_TEST_INIT_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_nixos-wsl-init")),
    }
}

/// A distro in WSL's systemd mode, configured as `wsl.nativeSystemd` does.
fn native_opts(name: &str, mode: sim::WslSystemd) -> DistroOptions {
    DistroOptions::new(name, shell_under_test()).wsl_systemd(mode)
}

fn native_mode() -> sim::WslSystemd {
    sim::WslSystemd::new(init_under_test())
}

fn make_shared_native() -> Result<Distro> {
    let d = Distro::start(native_opts("NixOS", native_mode()))?;
    prepare_windows_side(&d)?;
    Ok(d)
}

fn native_tests() -> Vec<Trial> {
    // Lifecycle tests (own distros) first, so they overlap with the shared ones.
    let own = tests!["native": launch_during_slow_activation_waits_then_runs, missing_systemd_leaves_a_reaping_init, broken_activation_still_boots, activation_runs_before_systemd_once_per_boot, first_launch, nixos_environment_loaded_once, poweroff_inside_then_next_boot, old_wsl_dev_shm_symlink_and_private_root, pid1_is_systemd_and_no_second_systemd];
    let mut trials: Vec<Trial> = own.into_iter().map(|(n, f)| privileged(&n, f)).collect();
    trials.extend(session_trials("native", Mode::Native));
    trials
}

/// Reads a file of the distro as text (as root).
fn read_text(d: &Distro, path: &str) -> Result<String> {
    Ok(String::from_utf8_lossy(&d.read_file(path)?).into_owned())
}

/// The activation stand-in's records: (realtime seconds, boot pid namespace, own pid
/// namespace) per run.
fn activation_records(d: &Distro) -> Result<Vec<(f64, String, String)>> {
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
fn systemd_started_at(d: &Distro) -> Result<f64> {
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

fn first_launch() -> Result<()> {
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
fn nixos_environment_loaded_once() -> Result<()> {
    let d = Mode::Native.shared()?;
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

fn pid1_is_systemd_and_no_second_systemd() -> Result<()> {
    let d = Mode::Native.shared()?;
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

fn activation_runs_before_systemd_once_per_boot() -> Result<()> {
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

fn launch_during_slow_activation_waits_then_runs() -> Result<()> {
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

fn broken_activation_still_boots() -> Result<()> {
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
fn native_conf(extra: &str) -> String {
    sim::native::nixos_wsl_conf(extra)
}

fn missing_systemd_leaves_a_reaping_init() -> Result<()> {
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
            && out.err().lines().count() == 1
            && out
                .err()
                .contains("systemd is not running this boot (see /run/nixos-wsl/init.log)"),
        "next boot: {out}"
    );
    Ok(())
}

fn poweroff_inside_then_next_boot() -> Result<()> {
    let d = Distro::start(native_opts("native-poweroff", native_mode()))?;
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

fn old_wsl_dev_shm_symlink_and_private_root() -> Result<()> {
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

// ---------------------------------------------------------------------------------------
// sim::*: the simulator, with /bin/bash as root's shell.

fn sim_tests() -> Vec<Trial> {
    let own = tests!["sim": refuses_a_rootfs_without_its_marker, terminate_and_boot_give_a_fresh_run, user_resolution, exit_codes_and_signals, pid1_is_wsl_init_and_reaps, no_harness_fds_in_the_distro, wsl_mounts, environment_in_wsl_order, argv_forms, cwd, pty_and_session, fresh_signal_state, stdio_pipes_byte_exact, cgroup_is_private_v2];
    let trials: Vec<Trial> = own.into_iter().map(|(n, f)| privileged(&n, f)).collect();
    trials
}

fn refuses_a_rootfs_without_its_marker() -> Result<()> {
    // A lower dir that looks like a distro but lacks the marker.
    let tmp = sim::rootfs::cache_dir().join(format!("unmarked-{}", std::process::id()));
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
            out.code == n && out.exit == sim::Exit::Signal(n),
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

fn fd_targets(pid: i32) -> Result<Vec<(String, String)>> {
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
        host_cg.exists() && sim::cgroup::pids(&host_cg).contains(&d.init_pid()?),
        "PID 1 not in {}",
        host_cg.display()
    );
    Ok(())
}
