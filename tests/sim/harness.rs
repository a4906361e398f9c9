//! Plumbing of the simulator's test binary (tests/e2e/): privileged tests that fail in CI and
//! skip elsewhere, and a watchdog.

use std::time::Duration;

use libtest_mimic::{Completion, Failed, Trial};

pub type TestFn = fn() -> anyhow::Result<()>;

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Why the privileged tests of `suite` (the `--test` name) cannot run here: not root.
pub fn needs_root(suite: &str) -> Option<String> {
    (!is_root()).then(|| {
        format!("needs root (namespaces, mounts, cgroups): run `sudo -E cargo test --test {suite}`")
    })
}

/// A test that runs only when `cannot_run` says nothing: otherwise it FAILS under `CI` (CI
/// must run every privileged test) and is skipped, with the reason, elsewhere.
pub fn gated(
    name: &str,
    f: impl FnOnce() -> anyhow::Result<()> + Send + 'static,
    cannot_run: impl FnOnce() -> Option<String> + Send + 'static,
) -> Trial {
    Trial::ignorable_test(name, move || {
        if let Some(why) = cannot_run() {
            if std::env::var_os("CI").is_some() {
                return Err(format!("{why}; CI must run this test").into());
            }
            return Ok(Completion::ignored_with(why));
        }
        f().map(|()| Completion::Completed)
            .map_err(|e| Failed::from(format!("{e:#}")))
    })
}

pub fn unprivileged(name: &str, f: TestFn) -> Trial {
    Trial::test(name, move || {
        f().map_err(|e| Failed::from(format!("{e:#}")))
    })
}

/// Aborts the whole run if it exceeds its budget (`NIXOS_WSL_TEST_BUDGET` seconds, else
/// `default_secs`): no test may hang CI. Every launch and boot has its own timeout; this is the
/// backstop. Exiting drops the distros' control pipes, whose inits then kill them; `on_abort`
/// cleans up what exiting does not.
pub fn start_watchdog(suite: &'static str, default_secs: u64, on_abort: fn()) {
    let budget = std::env::var("NIXOS_WSL_TEST_BUDGET")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_secs);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(budget));
        eprintln!("tests/{suite}/: the run exceeded its budget of {budget} s; aborting");
        on_abort();
        std::process::exit(101);
    });
}
