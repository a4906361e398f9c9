//! End-to-end tests of `nixos-wsl-shell` as root's login shell in the WSL simulator
//! (tests/sim), with real systemd in a Debian rootfs, plus the simulator's own tests.
//!
//! One test binary (`harness = false`, libtest-mimic), one module per behaviour:
//! - [`unit`] (`unit::*`): pure logic of the simulator, no privileges;
//! - [`simulator`] (`sim::*`): the simulator itself, with `/bin/bash` as root's shell;
//! - [`lifecycle`] (`shell::*`): boots, concurrent first logins, poweroff, terminate, broken
//!   systemd, config and users, with the built `nixos-wsl-shell` as root's shell;
//! - [`native`] (`native::*`): issue 5, WSL's own systemd mode: the built `nixos-wsl-init` as
//!   `/sbin/init`, nixos-wsl-shell as the default user's shell;
//! - [`session`]: issue 2's session contract, one table run once per [`Mode`], registered
//!   under `shell::*` and `native::*`.
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

#[path = "../sim/mod.rs"]
mod sim;

/// `tests!["tier": a, b]`: `("tier::a", a)`, ...: every registered name is its function's.
macro_rules! tests {
    ($tier:literal: $($f:ident),* $(,)?) => {
        vec![$((format!("{}::{}", $tier, stringify!($f)), $f as TestFn)),*]
    };
}

mod lifecycle;
mod native;
mod session;
mod simulator;
mod unit;

use lifecycle::*;
use native::*;
use session::*;
use simulator::*;
use unit::*;

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
