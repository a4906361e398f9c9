//! `nixos-wsl-shell`: root's login shell. The lifecycle, one module per stage:
//!
//! 1. [`config`](crate::config): read `/etc/nixos-wsl.conf`.
//! 2. Already inside a systemd namespace (or not root)? Exec the real shell, nothing else.
//! 3. Under the [`namespace::StateLock`]: [`activation`](crate::activation) once per boot,
//!    then survey the systemd namespace through its handles, and (as [`launch`] decides)
//!    join it, or [`systemd::spawn`] one and wait for `READY=1`.
//! 4. Join it, fork, and in the child become the user and exec their shell
//!    ([`session`](crate::session)); the parent [`supervise`](crate::supervise)s and exits
//!    like the shell.
//!
//! Whatever fails in 3, the user gets their shell without systemd and one line saying why.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use nix::unistd::{fork, ForkResult, Uid};

use crate::config::Config;
use crate::environment::{self, Env};
use crate::launch::{self, Namespace, Route};
use crate::namespace::{self, proc, Readiness, StateLock};
use crate::paths::{ACTIVATION_LOG, CONFIG_FILE, SET_ENVIRONMENT, SYSTEMD_LOG};
use crate::session::{self, Account, Invocation, Plan};
use crate::supervise::{self, Supervisor};
use crate::{activation, generation, systemd};

/// Recovery switches, read from the environment WSL passes (Windows users set them through
/// `WSLENV`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Overrides {
    /// `NIXOS_WSL_SYSTEMD=off`: do not start or enter systemd at all.
    pub(crate) systemd_off: bool,
    /// `NIXOS_WSL_USER=<name>`: run this user's shell instead of the configured user's.
    pub(crate) user: Option<String>,
    /// `NIXOS_WSL_GENERATION=<n>`: boot this generation if this launch starts the system.
    pub(crate) generation: Option<String>,
}

impl Overrides {
    pub(crate) fn from_env(env: &[(OsString, OsString)]) -> Overrides {
        let get = |key: &str| {
            env.iter()
                .find(|(k, _)| k.as_bytes() == key.as_bytes())
                .map(|(_, v)| v)
        };
        Overrides {
            systemd_off: get("NIXOS_WSL_SYSTEMD")
                .is_some_and(|v| matches!(v.as_bytes(), b"off" | b"0" | b"false" | b"no")),
            user: get("NIXOS_WSL_USER")
                .and_then(|v| v.to_str())
                .filter(|v| !v.is_empty())
                .map(str::to_owned),
            generation: get(generation::ENV_VAR).map(|v| v.to_string_lossy().into_owned()),
        }
    }
}

/// Runs the login shell; never returns.
pub fn main(argv: Vec<OsString>) -> ! {
    let invocation = Invocation::from_argv(argv);
    let mut config = Config::load(Path::new(CONFIG_FILE));
    let inherited: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let cwd = std::env::current_dir().ok();
    let overrides = Overrides::from_env(&inherited);

    // PID 1 is nixos-wsl-init while WSL's systemd mode activates the system: wait like
    // inside, never start a systemd of our own.
    let inside = namespace::inside_systemd() || crate::pid1::is_nixos_wsl_init();
    if inside && !activation::wait_for_current_system(Instant::now() + config.timeout) {
        log::warn!(
            "the NixOS activation has not finished after {} s; continuing (see {ACTIVATION_LOG})",
            config.timeout.as_secs()
        );
    } else if inside && activation::failed() {
        // WSL's systemd mode: nixos-wsl-init ran the activation, and it failed.
        log::error!(
            "the NixOS activation of this boot failed (see {ACTIVATION_LOG}){}",
            rollback_hint()
        );
    } else if inside && crate::pid1::systemd_failed_this_boot() {
        // It is done, and PID 1 fell back to the minimal init: systemd could not be started.
        // (Right after the activation PID 1 is still us for a moment, about to exec systemd.)
        log::error!(
            "systemd is not running this boot (see {}){}",
            crate::paths::INIT_LOG,
            rollback_hint()
        );
    }
    let route = launch::route(inside, Uid::effective().is_root(), overrides.systemd_off);
    if route == Route::Plain {
        // `sudo -i` / `su -` / ssh inside our namespace, WSL's own systemd mode, or a user
        // calling us directly: behave as a plain shell for whoever we already are.
        let account =
            Account::by_uid(Uid::current()).unwrap_or_else(|_| Account::wsl_fallback_root());
        let plan = plain_plan(&config, account, invocation, &inherited);
        fail_without_shell(session::exec(&plan))
    }

    let user = overrides
        .user
        .clone()
        .unwrap_or_else(|| config.user.clone());
    let account = Account::by_name(&user).unwrap_or_else(|e| {
        log::error!("{e:#}; opening root's shell instead (fix `user` in {CONFIG_FILE})");
        Account::by_uid(Uid::from_raw(0)).unwrap_or_else(|_| Account::wsl_fallback_root())
    });

    if route == Route::WithoutSystemd {
        log::info!("NIXOS_WSL_SYSTEMD=off: not starting systemd");
        let plan = session_plan(&config, account, invocation, &inherited, cwd.as_deref());
        fail_without_shell(session::exec(&plan))
    }

    match bring_up(&mut config, overrides.generation.as_deref()) {
        Ok(lock) => {
            let plan = session_plan(&config, account, invocation, &inherited, cwd.as_deref());
            enter(lock, plan)
        }
        Err(e) => {
            log::error!(
                "{e:#}; starting {}'s shell without systemd{}",
                account.name,
                rollback_hint()
            );
            let plan = session_plan(&config, account, invocation, &inherited, cwd.as_deref());
            fail_without_shell(session::exec(&plan))
        }
    }
}

/// Step 3: makes sure a live, booted systemd namespace exists and joins it (our mount
/// namespace, and the PID namespace of our next child). Returns the still-held lock.
/// `config` is re-read if the activation ran: it may have installed a newer generation's.
/// `generation`: `NIXOS_WSL_GENERATION` of this launch, for a cold start ([`generation`]).
pub(crate) fn bring_up(config: &mut Config, generation: Option<&str>) -> Result<StateLock> {
    let deadline = Instant::now() + config.timeout;
    namespace::prepare_state_dir()?;
    // Waiters allow for one holder's full wait plus its activation.
    let lock = StateLock::acquire(deadline + config.timeout)?;
    // Only a boot's first launch activates (and picks the generation); the others skip the
    // config comparison too.
    if config.activate.is_some() && activation::needed() {
        if let Err(e) = generation::activate_boot(config, generation) {
            log::error!("{e:#}; starting systemd anyway{}", rollback_hint());
        }
    } else if let Some(asked) = generation.filter(|g| !g.is_empty()) {
        let running = generation::booted()
            .map_or("its generation".into(), |(n, _)| format!("generation {n}"));
        log::warn!(
            "{} = {asked} applies when the distribution starts; it is running {running} (restart it with `wsl -t {}` first)",
            generation::ENV_VAR,
            session::distro_name()
        );
    }

    // Survey (reads only), then act on the plan.
    let handle = namespace::open_handle()?;
    let init = handle.as_ref().and_then(|h| proc::locate_init(h.pid_ino));
    let seen = match (&handle, &init) {
        (None, _) => Namespace::NoHandle,
        (Some(_), None) => Namespace::Dead,
        (Some(_), Some(init)) if init.shutting_down => Namespace::ShuttingDown,
        (Some(_), Some(_)) => Namespace::Alive,
    };
    let readiness = handle
        .as_ref()
        .map_or(Readiness::Unknown, |h| namespace::readiness(h.pid_ino));
    match (launch::plan(seen, readiness), &handle, &init) {
        (launch::Plan::Join { ask_systemd }, Some(handle), Some(init)) => {
            // `None`: it died just now; start a new one.
            if let Some(joined) = proc::join(handle, init)? {
                namespace::remember_init(&joined);
                if ask_systemd {
                    // Its starter was killed or gave up before recording anything.
                    let ready = systemd::wait_with_systemctl(&config.systemd, deadline);
                    if !ready {
                        log::warn!(
                            "systemd is not reporting a finished boot; continuing (log: {SYSTEMD_LOG})"
                        );
                    }
                    namespace::record_readiness(launch::asked(ready), joined.pid_ino)?;
                }
                return Ok(lock);
            }
        }
        (launch::Plan::AwaitShutdownThenStart, _, Some(init)) => {
            proc::wait_for_shutdown(init, deadline)
        }
        _ => {}
    }
    if handle.is_some() {
        log::info!("the systemd namespace of this boot is gone; starting a new one");
    }
    start_systemd(config, deadline)?;
    Ok(lock)
}

/// Starts a new systemd namespace, names it by its handle before systemd runs, waits for
/// `READY=1` and joins it.
fn start_systemd(config: &Config, deadline: Instant) -> Result<()> {
    namespace::clear_handle()?;
    namespace::prepare_handle_dir()?;
    let pending = systemd::spawn(&config.systemd)?;
    // Named before systemd runs: a launch killed from here on leaves a systemd the next
    // launch finds, never an orphan. (An error drops `pending`: its init exits.)
    namespace::bind_handle(pending.pid)?;
    let outcome = pending.release()?.wait(deadline);
    let handle = namespace::open_handle()?.context("the namespace handle vanished")?;
    let joined = match outcome {
        systemd::Outcome::Died => None,
        _ => namespace::join_if_alive(&handle)?,
    };
    let settled = launch::settle(&outcome, joined.is_some());
    let (Ok(settled), Some(joined)) = (settled, joined) else {
        namespace::clear_handle()?;
        anyhow::bail!("{}; see {SYSTEMD_LOG}", settled.err().unwrap_or_default());
    };
    if settled.warn_slow {
        log::warn!(
            "systemd did not finish booting within {} s; continuing anyway (log: {SYSTEMD_LOG})",
            config.timeout.as_secs()
        );
    }
    namespace::record_readiness(settled.record, joined.pid_ino)
}

/// Step 4: fork the session into the joined namespace, release the lock, supervise, and end
/// like the session ended.
pub(crate) fn enter(lock: StateLock, plan: Plan) -> ! {
    let supervisor = match Supervisor::prepare() {
        Ok(s) => s,
        Err(e) => {
            log::error!("{e:#}; running the shell unsupervised");
            drop(lock);
            fail_without_shell(session::exec(&plan))
        }
    };
    // SAFETY: single-threaded program; the child only execs (or exits).
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(lock);
            let e = session::exec(&plan);
            log::error!("{e:#}");
            // SAFETY: leave the child without running the parent's exit-time code.
            unsafe { libc::_exit(session::EXIT_NO_SHELL) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(lock);
            supervise::exit_like(supervisor.supervise(child))
        }
        Err(e) => {
            // ENOMEM here means the PID namespace died between the check and the fork.
            log::error!("cannot start a process in the systemd namespace ({e}); starting the shell without it");
            // `session::exec` restores the signal state the supervisor changed.
            drop((lock, supervisor));
            fail_without_shell(session::exec(&plan))
        }
    }
}

/// The plan for the configured user's session (root switches to them).
pub(crate) fn session_plan(
    config: &Config,
    account: Account,
    invocation: Invocation,
    inherited: &[(OsString, OsString)],
    cwd: Option<&Path>,
) -> Plan {
    let (shells, note) = candidates(config, &account);
    if let Some(note) = note {
        log::error!("{note}; using {}", shells[0].display());
    }
    let runtime_dir = Path::new("/run/user").join(account.uid.to_string());
    let runtime_dir = runtime_dir.is_dir().then_some(runtime_dir);
    let env = session::session_env(inherited, &account, &shells[0], runtime_dir.as_deref());
    Plan {
        switch_user: !account.uid.is_root() || !Uid::current().is_root(),
        cwds: session::cwd_candidates(cwd, &account),
        env: nixos_environment(env, inherited, config, Some(&account)),
        account,
        shells,
        welcome: config.welcome && invocation.login,
        invocation,
        command: None,
    }
}

/// NixOS' environment on top of the session's: `/etc/set-environment` loaded once (WSL runs
/// commands as `<shell> -c`, which no shell treats as a login shell, so nothing else would
/// load it), then PATH ordered NixOS first, Windows entries last (or dropped), the Windows
/// part exported as `WSLPATH`. A broken file costs a warning, never the session.
fn nixos_environment(
    env: Vec<(OsString, OsString)>,
    inherited: &[(OsString, OsString)],
    config: &Config,
    user: Option<&Account>,
) -> Vec<(OsString, OsString)> {
    let base: Env = env.into_iter().collect();
    // Shell code run for the user we are about to become runs as them, not as root.
    let user = user.map(environment::Credentials::of);
    let mut loaded = environment::load_set_environment_as(
        Path::new(SET_ENVIRONMENT),
        &base,
        Path::new(environment::FALLBACK_SHELL),
        user.as_ref(),
    )
    .unwrap_or_else(|e| {
        log::warn!("{e:#}; continuing without it");
        // Done all the same: NixOS' /etc/profile and /etc/zshenv source the file when the
        // marker is absent, so every nested shell would repeat the failure.
        let mut base = base;
        base.set(environment::DONE_MARKER, "1");
        base
    });
    let automount_root = std::fs::read("/etc/wsl.conf")
        .map(|text| environment::automount_root(&text))
        .unwrap_or_else(|_| environment::path::DEFAULT_AUTOMOUNT_ROOT.into());
    let wsl: Env = inherited.iter().cloned().collect();
    environment::apply_session_path(&wsl, &mut loaded, &automount_root, config.include_path);
    loaded.into_vec()
}

/// The plan for "just be a shell": no user switch, no directory change, the environment as
/// given except `SHELL`, which names the real shell.
fn plain_plan(
    config: &Config,
    account: Account,
    invocation: Invocation,
    inherited: &[(OsString, OsString)],
) -> Plan {
    let (shells, note) = candidates(config, &account);
    if let Some(note) = note {
        log::error!("{note}; using {}", shells[0].display());
    }
    let env = session::with_var(inherited.to_vec(), "SHELL", shells[0].as_os_str());
    Plan {
        switch_user: false,
        cwds: Vec::new(),
        env: nixos_environment(env, inherited, config, None),
        account,
        shells,
        welcome: config.welcome && invocation.login,
        invocation,
        command: None,
    }
}

fn candidates(config: &Config, account: &Account) -> (Vec<std::path::PathBuf>, Option<String>) {
    let me = session::self_identity();
    let is_self = |p: &Path| {
        session::is_same_file(p, me)
            || p.file_name()
                .is_some_and(|n| n.as_bytes() == b"nixos-wsl-shell")
    };
    session::shell_candidates(
        account,
        config.shell.as_deref(),
        &is_self,
        &session::wrapped_shell,
        &session::is_executable,
    )
}

/// "; to boot the previous generation N, run ..." for failure messages (empty without one).
pub(crate) fn rollback_hint() -> String {
    generation::rollback_hint(
        Path::new(generation::PROFILES),
        Some(&session::distro_name()),
    )
    .map_or_else(String::new, |hint| format!("; {hint}"))
}

fn fail_without_shell(e: anyhow::Error) -> ! {
    log::error!("no shell could be started: {e:#}");
    std::process::exit(session::EXIT_NO_SHELL)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    #[test]
    fn overrides() {
        assert_eq!(Overrides::from_env(&[]), Overrides::default());
        let o = Overrides::from_env(&env(&[
            ("NIXOS_WSL_SYSTEMD", "off"),
            ("NIXOS_WSL_USER", "root"),
        ]));
        assert!(o.systemd_off);
        assert_eq!(o.user.as_deref(), Some("root"));
        assert!(!Overrides::from_env(&env(&[("NIXOS_WSL_SYSTEMD", "on")])).systemd_off);
        assert_eq!(
            Overrides::from_env(&env(&[("NIXOS_WSL_USER", "")])).user,
            None
        );
    }
}
