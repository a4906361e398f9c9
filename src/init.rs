//! `nixos-wsl-init`: `/sbin/init` in WSL's own systemd mode (`[boot] systemd=true`, WSL
//! 0.67.6 and later).
//!
//! WSL execs `/sbin/init` as PID 1 of the distribution, argv `["/sbin/init"]`, environment
//! exactly `container=wsl`, `container_host_id=windows`, `container_host_version_id=<v>`, and
//! then polls `systemctl is-system-running` for up to `[boot] initTimeout`. A bare systemd
//! cannot boot NixOS: the activation (users, `/etc`, `/run/current-system`) has to run first,
//! which NixOS' stage 2 normally does. So this program is a short stage 2, one module per step:
//!
//! 1. [`logging`](crate::logging): our own lines go to `/dev/kmsg` (dmesg and the journal) and to
//!    [`INIT_LOG`]; nothing depends on either being there.
//! 2. [`mounts`]: `/dev/shm` becomes a real mount if it is a symlink (older WSL), and `/`
//!    becomes recursively shared (systemd does that itself only outside containers).
//! 3. [`activation`]: once per boot, output in `/run/nixos-wsl/activation.log`.
//! 4. [`exec`]: exec systemd with our arguments plus `--log-target=kmsg`, WSL's environment
//!    unchanged.
//! 5. [`reaper`]: only when systemd cannot be exec'd: a minimal PID 1 that reaps orphans, so
//!    WSL's sessions keep working (without services) instead of the distribution dying.
//!
//! Phase discipline (catatonit): everything before the exec may fail, and each failure is
//! logged and the boot goes on; nothing panics or exits, because PID 1 exiting ends the
//! distribution. Every fd we open is close-on-exec, so systemd inherits only WSL's 0-2.

pub(crate) mod exec;
pub(crate) mod mounts;
pub(crate) mod reaper;

use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::paths::{CONFIG_FILE, INIT_LOG, NO_SYSTEMD_MARKER};
use crate::pid1::COMM;
use crate::{activation, namespace};

/// Runs `/sbin/init`; never returns.
pub fn main(argv: Vec<OsString>) -> ! {
    if nix::unistd::getpid().as_raw() != 1 {
        // Someone ran `/sbin/init` by hand (`init 0`, a script): no activation, no mounts.
        // systemd itself, called as `init` outside PID 1, acts as `telinit`.
        crate::logging::init_pid1_stderr(COMM);
        let config = Config::load(Path::new(CONFIG_FILE));
        let e = exec::exec_as_telinit(&config.systemd, &argv);
        log::error!("cannot execute {}: {e}", config.systemd.display());
        std::process::exit(crate::session::EXIT_NO_SHELL)
    }
    set_comm();
    crate::logging::init_pid1(COMM);
    let started = Instant::now();
    log::info!(
        "starting (WSL {})",
        std::env::var("container_host_version_id").unwrap_or_else(|_| "unknown".into())
    );

    mounts::prepare();
    if let Err(e) = namespace::prepare_state_dir() {
        log::error!("{e:#}; the activation log will be missing");
    }
    crate::logging::attach_file(Path::new(INIT_LOG));

    let mut config = Config::load(Path::new(CONFIG_FILE));
    activate(&mut config);

    let argv = exec::systemd_argv(&config.systemd, argv.get(1..).unwrap_or_default());
    log::info!(
        "executing {} after {:.2?}",
        config.systemd.display(),
        started.elapsed()
    );
    let e = exec::exec_systemd(&config.systemd, &argv);
    log::error!(
        "cannot execute systemd at {}: {e}; running a minimal init instead (launches work, \
         services do not; fix `systemd` in {CONFIG_FILE} and restart the distribution with \
         `wsl -t <name>`)",
        config.systemd.display()
    );
    if let Err(write) = std::fs::write(NO_SYSTEMD_MARKER, format!("{e}\n")) {
        log::warn!("cannot write {NO_SYSTEMD_MARKER}: {write}");
    }
    reaper::run()
}

/// Step 3: the NixOS activation, once, under the same lock the login shell takes for it (so
/// a launch racing this boot cannot run it a second time). A failure is logged, never fatal:
/// a system that booted with a broken activation can still be repaired from a shell. The
/// configuration is re-read if the activation changed it (a newer generation's systemd).
fn activate(config: &mut Config) {
    if config.activate.is_none() {
        log::info!("activation disabled (`activate =` in {CONFIG_FILE})");
        return;
    }
    if !activation::needed() {
        log::info!("this boot is already activated");
        return;
    }
    let started = Instant::now();
    // Bounded so a stale holder cannot keep systemd from ever starting; nobody else should
    // hold it this early.
    let lock = namespace::StateLock::acquire(Instant::now() + Duration::from_secs(10))
        .map_err(|e| log::warn!("{e:#}; activating without the lock"))
        .ok();
    // The generation to boot: the one `nixos-wsl boot` chose (consumed now), or the current.
    match crate::generation::activate_boot(config, None) {
        Ok(()) => log::info!("activation finished in {:.2?}", started.elapsed()),
        Err(e) => log::error!("{e:#}; starting systemd anyway"),
    }
    drop(lock);
}

/// Names this process [`COMM`] (see there).
fn set_comm() {
    let name = std::ffi::CString::new(COMM).unwrap_or_default();
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes from the
    // pointer, which stays valid for the call.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0) };
}
