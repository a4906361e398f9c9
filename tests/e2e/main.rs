//! End-to-end tests in the WSL simulator (tests/sim), with real systemd in a Debian rootfs:
//! the login shell, nixos-wsl-init, the admin CLI, the installer, the module's features, and
//! the simulator itself.
//!
//! One test binary (`harness = false`, libtest-mimic), one module per behaviour; every
//! registered name is `<tier>::<function>` (tests of both ways systemd runs add
//! `namespace::` or `native::` before the function):
//! - [`unit`] (`unit::*`): pure logic of the simulator, no privileges;
//! - [`simulator`] (`sim::*`): the simulator itself, with `/bin/bash` as root's shell;
//! - [`lifecycle`] (`shell::*`): boots, concurrent first logins, poweroff, terminate, broken
//!   systemd, config and users, with the built `nixos-wsl-shell` as root's shell;
//! - [`native`] (`native::*`): WSL's own systemd mode: the built `nixos-wsl-init` as
//!   `/sbin/init`, nixos-wsl-shell as the default user's shell;
//! - [`session`]: the session contract, one table run once per [`Mode`], registered under
//!   `shell::*` and `native::*`;
//! - [`kill`] (`kill::*`), [`garbage`] (`garbage::*`), [`recovery`] (`systemd::*`,
//!   `user::*`, `bytes::*`, `recovery::*`): faults and hostile input;
//! - [`cli`] (`cli::*`), [`doctor`] (`doctor::*`), [`generations`] (`generations::*`): the
//!   admin CLI;
//! - [`installer`] (`installer::*`), [`image`] (`image::*`): the installer and the images;
//! - [`environment`] (`env::*`), [`features`] (`features::*`): the NixOS environment and the
//!   module's features.
//!
//! Tests that need root (namespaces, mounts, cgroups) are skipped with a note without it,
//! except under `CI`, where they fail. Environment:
//! - `NIXOS_WSL_TEST_ROOT_SHELL=/bin/bash` runs the `shell::*` tests with that program of the
//!   rootfs as root's shell instead of nixos-wsl-shell (the comparison floor);
//! - `NIXOS_WSL_TEST_SHELL_BIN`, `NIXOS_WSL_TEST_INIT_BIN`, `NIXOS_WSL_TEST_CLI_BIN`,
//!   `NIXOS_WSL_TEST_INSTALLER_BIN` install other builds than cargo's (sim/under_test.rs);
//! - `NIXOS_WSL_SIM_CACHE` (rootfs cache), `NIXOS_WSL_SIM_KEEP=1` (keep instance state);
//! - `NIXOS_WSL_TEST_BUDGET` seconds for the whole run (default 1800), then abort.

#[path = "../sim/mod.rs"]
mod sim;

/// `tests!["tier": a, b]`: `("tier::a", a)`, ...: every registered name is its function's.
macro_rules! tests {
    ($tier:literal: $($f:ident),* $(,)?) => {
        vec![$((format!("{}::{}", $tier, stringify!($f)), $f as TestFn)),*]
    };
}

/// `modes!["tier": a]`: `("tier::namespace::a", || a(Mode::Namespace))` and the same under
/// `native::`: a test run once per way systemd runs.
macro_rules! modes {
    ($tier:literal: $($f:ident),* $(,)?) => {
        vec![$(
            (format!("{}::namespace::{}", $tier, stringify!($f)), (|| $f(Mode::Namespace)) as TestFn),
            (format!("{}::native::{}", $tier, stringify!($f)), (|| $f(Mode::Native)) as TestFn),
        )*]
    };
}

mod cli;
mod doctor;
mod environment;
mod features;
mod garbage;
mod generations;
mod image;
mod installer;
mod kill;
mod lifecycle;
mod native;
mod recovery;
mod session;
mod simulator;
mod unit;

use lifecycle::*;
use native::*;
use session::*;

use sim::harness::{self, unprivileged, TestFn};
use sim::under_test::Mode;

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
    // The slowest, with distros of their own, first, so they overlap with the rest.
    let mut trials = root(kill::tests());
    trials.extend(installer::tests());
    trials.extend(lifecycle::tests());
    trials.extend(native::tests());
    trials.extend(root(features::tests()));
    trials.extend(root(generations::tests()));
    trials.extend(root(doctor::tests()));
    trials.extend(environment::tests());
    trials.extend(cli::tests());
    trials.extend(root(garbage::tests()));
    trials.extend(root(recovery::tests()));
    trials.extend(image::tests());
    trials.extend(simulator::tests());
    trials.extend(unit::tests());
    harness::start_watchdog("e2e", 1800, cleanup);
    let conclusion = libtest_mimic::run(&args, trials);
    cleanup();
    conclusion.exit();
}

/// What outlives a test unless stopped: the shared distros and the installer's fixture.
fn cleanup() {
    Shared::shutdown_all();
    installer::Fixture::cleanup();
}

/// Tests that need root.
fn root(list: Vec<(String, TestFn)>) -> Vec<Trial> {
    list.into_iter().map(|(n, f)| privileged(&n, f)).collect()
}

/// Tests that need no privileges.
fn unprivileged_all(list: Vec<(String, TestFn)>) -> Vec<Trial> {
    list.into_iter().map(|(n, f)| unprivileged(&n, f)).collect()
}

// ---------------------------------------------------------------------------------------
// Harness plumbing.

/// A test that needs root: fails under `CI` without it, skipped elsewhere.
fn privileged(name: &str, f: impl FnOnce() -> Result<()> + Send + 'static) -> Trial {
    harness::gated(name, f, || harness::needs_root("e2e"))
}

/// The login shell under test.
fn shell_under_test() -> RootShell {
    match std::env::var("NIXOS_WSL_TEST_ROOT_SHELL") {
        Ok(p) if !p.is_empty() => RootShell::Existing(p),
        _ => RootShell::NixosWslShell(sim::under_test::shell()),
    }
}

/// Distros shared by read-only tests, booted on first use, terminated after the run.
struct Shared {
    slot: Mutex<Option<std::result::Result<Arc<Distro>, String>>>,
    make: fn() -> Result<Distro>,
}

static SHARED_SHELL: Shared = Shared::new(make_shared_shell);
static SHARED_NATIVE: Shared = Shared::new(make_shared_native);
static SHARED_BASH: Shared = Shared::new(make_shared_bash);

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
    const fn new(make: fn() -> Result<Distro>) -> Self {
        Shared {
            slot: Mutex::new(None),
            make,
        }
    }

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
        for s in [
            &SHARED_SHELL,
            &SHARED_NATIVE,
            &SHARED_BASH,
            &environment::SHARED,
        ] {
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

/// The shared distro of a way systemd runs.
fn shared(mode: Mode) -> Result<Arc<Distro>> {
    match mode {
        Mode::Namespace => SHARED_SHELL.get(),
        Mode::Native => SHARED_NATIVE.get(),
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
