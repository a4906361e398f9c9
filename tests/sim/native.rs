//! WSL's own systemd mode (`[boot] systemd=true`, wsl-behaviour.md section 3), as the NixOS
//! module configures it with `wsl.nativeSystemd` (nix/modules/native-systemd.nix).
//!
//! What WSL does, and where the simulator does it:
//! - at distro start, exec `/sbin/init` as PID 1 with argv `["/sbin/init"]` and exactly the
//!   `container*` environment, instead of staying PID 1 itself ([`exec_init`], called by the
//!   `init` role once the distro is set up; if `/sbin/init` is not executable or wsl.conf
//!   does not enable systemd, the mode is silently off, as in WSL);
//! - poll `systemctl is-system-running | grep -E "running|degraded"` through `/bin/sh` with
//!   no `PATH` every 250 ms, up to `[boot] initTimeout`, and continue on timeout
//!   ([`after_boot`], at the end of `Distro::boot`);
//! - before a user's first session, run `/bin/login -f <user>` on a pty of its own with every
//!   signal ignored (it stays for the rest of the boot), then wait the same way for
//!   `systemctl is-active user@<uid>.service` ([`prepare_launch`], from `Distro::spawn`);
//! - start sessions as usual plus `DBUS_SESSION_BUS_ADDRESS` and `XDG_RUNTIME_DIR` of the
//!   user (the launcher, when `Launch::wsl_systemd` is set).
//!
//! WSL's own helper commands (the polls, `login`) run as launches that bypass these hooks.

use std::collections::HashMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::distro::{write_under, Distro, DistroOptions, RootShell, SHELL_PATH};
use super::launch::{Launch, Process, Stdio};
use super::userdb::{self, Passwd};
use super::{sys, RoleArgs};

/// What WSL execs as PID 1.
pub const INIT_PATH: &str = "/sbin/init";

/// Where `/sbin/init` lands on the merged-/usr rootfs (`/sbin` is a symlink to `usr/sbin`,
/// and the Debian systemd-sysv symlink there is replaced).
const INIT_FILE: &str = "/usr/sbin/init";

/// WSL's readiness poll, verbatim.
pub const READY_POLL: &str = r#"systemctl is-system-running | grep -E "running|degraded""#;

/// How often WSL polls.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// The user WSL's systemd mode logs in by default (`[user] default`, wsl.defaultUser).
pub const DEFAULT_USER: &str = "nixos";

/// A distro in WSL's systemd mode.
#[derive(Clone, Debug)]
pub struct WslSystemd {
    /// The program installed as `/sbin/init` (the built `nixos-wsl-init`), on the host.
    pub init: PathBuf,
    /// `[boot] initTimeout` (WSL's default: 10 s). Also bounds the wait for a user manager.
    pub init_timeout: Duration,
    /// `container_host_version_id`.
    pub host_version: String,
    /// WSL before 2.0: `/` mounted private and `/dev/shm` a symlink to `/run/shm`.
    pub old_wsl: bool,
}

impl WslSystemd {
    pub fn new(init: impl Into<PathBuf>) -> WslSystemd {
        WslSystemd {
            init: init.into(),
            init_timeout: Duration::from_secs(10),
            host_version: "2.4.13.0".into(),
            old_wsl: false,
        }
    }

    pub fn init_timeout(mut self, timeout: Duration) -> WslSystemd {
        self.init_timeout = timeout;
        self
    }

    pub fn old_wsl(mut self) -> WslSystemd {
        self.old_wsl = true;
        self
    }
}

impl DistroOptions {
    /// WSL's systemd mode, with the disk configured as `wsl.nativeSystemd` does: `/sbin/init`
    /// = `mode.init`, wsl.conf `[boot] systemd=true` and `[user] default=nixos`, and (when
    /// root's shell is nixos-wsl-shell) the default user's passwd shell = nixos-wsl-shell with
    /// `shell = /bin/bash` in /etc/nixos-wsl.conf. Files added with `file` come later and win.
    pub fn wsl_systemd(mut self, mode: WslSystemd) -> DistroOptions {
        self.wsl_systemd = Some(mode);
        self
    }
}

impl Launch {
    /// Adds the user's `XDG_RUNTIME_DIR` and `DBUS_SESSION_BUS_ADDRESS` (set by
    /// `Distro::spawn` for distros in WSL's systemd mode).
    pub fn with_user_bus(mut self) -> Launch {
        self.wsl_systemd = true;
        self
    }

    /// Runs with exactly this environment instead of a session's (WSL's helper commands).
    pub fn exact_env(mut self, env: Vec<(String, String)>) -> Launch {
        self.exact_env = Some(env);
        self
    }

    /// Starts the program with every signal ignored (WSL's `login -f`).
    pub fn ignore_signals(mut self) -> Launch {
        self.ignore_signals = true;
        self
    }
}

/// The `/etc/nixos-wsl.conf` the module writes in this mode (the rest are defaults).
pub fn nixos_wsl_conf(extra: &str) -> String {
    format!("# as written by wsl.nativeSystemd\nuser = {DEFAULT_USER}\nshell = /bin/bash\n{extra}")
}

/// Installs `/sbin/init` (at every instance creation, so a kept disk runs the current build).
pub fn install_init(upper: &Path, lower: &Path, mode: &WslSystemd) -> Result<()> {
    let bytes =
        std::fs::read(&mode.init).with_context(|| format!("reading {}", mode.init.display()))?;
    write_under(upper, lower, INIT_FILE, &bytes, 0o755)
}

/// The first-boot configuration of the disk (after `/etc/passwd` was written, before the
/// options' own files).
pub fn configure_disk(
    upper: &Path,
    lower: &Path,
    mode: &WslSystemd,
    root_shell: &RootShell,
) -> Result<()> {
    let wsl_conf = format!(
        "[boot]\nsystemd=true\ninitTimeout={}\n\n[user]\ndefault={DEFAULT_USER}\n",
        mode.init_timeout.as_millis()
    );
    write_under(upper, lower, "/etc/wsl.conf", wsl_conf.as_bytes(), 0o644)?;
    if matches!(root_shell, RootShell::NixosWslShell(_)) {
        let passwd = std::fs::read_to_string(upper.join("etc/passwd"))?;
        let passwd: String = passwd
            .lines()
            .map(|l| {
                let mut f: Vec<&str> = l.split(':').collect();
                if f.first() == Some(&DEFAULT_USER) && f.len() == 7 {
                    f[6] = SHELL_PATH;
                }
                f.join(":") + "\n"
            })
            .collect();
        write_under(upper, lower, "/etc/passwd", passwd.as_bytes(), 0o644)?;
        let conf = nixos_wsl_conf("");
        write_under(upper, lower, "/etc/nixos-wsl.conf", conf.as_bytes(), 0o644)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Inside the distro: PID 1 becomes /sbin/init.

/// What the `init` role needs to exec `/sbin/init`, passed on its command line.
#[derive(Clone, Debug)]
pub struct Boot {
    pub host_version: String,
    pub old_wsl: bool,
}

impl Boot {
    pub fn push_args(&self, a: &mut RoleArgs) {
        a.push("wsl-systemd", &self.host_version);
        if self.old_wsl {
            a.push("old-wsl", "1");
        }
    }

    pub fn from_args(a: &RoleArgs) -> Option<Boot> {
        Some(Boot {
            host_version: a.opt("wsl-systemd")?,
            old_wsl: a.opt("old-wsl").is_some(),
        })
    }
}

/// `[boot] systemd` of wsl.conf text (case-insensitive section and key, `true`/`1`).
pub fn systemd_enabled(wsl_conf: &str) -> bool {
    let mut section = String::new();
    let mut on = false;
    for raw in wsl_conf.lines() {
        let line = raw.split(['#', ';']).next().unwrap_or("").trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_ascii_lowercase();
        } else if let Some((k, v)) = line.split_once('=') {
            if section == "boot" && k.trim().eq_ignore_ascii_case("systemd") {
                let v = v.trim().trim_matches('"').to_ascii_lowercase();
                on = v == "true" || v == "1";
            }
        }
    }
    on
}

/// PID 1 of the distro, set up and holding only fds 0-2 (on /dev/null): execs `/sbin/init`
/// as WSL does. Returns if systemd mode is off (no `[boot] systemd=true`, or `/sbin/init` not
/// executable) or the exec failed; the caller then stays WSL's reaping init.
pub fn exec_init(boot: &Boot) {
    let conf = std::fs::read_to_string("/etc/wsl.conf").unwrap_or_default();
    let executable = nix::unistd::access(INIT_PATH, nix::unistd::AccessFlags::X_OK).is_ok();
    if !systemd_enabled(&conf) || !executable {
        return;
    }
    // WSL mounts binfmt_misc (with its WSLInterop entry) before anything of the distro runs.
    let binfmt = Path::new("/proc/sys/fs/binfmt_misc");
    if binfmt.is_dir() {
        let flags = nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV
            | nix::mount::MsFlags::MS_NOEXEC;
        let _ = nix::mount::mount(
            Some("binfmt_misc"),
            binfmt,
            Some("binfmt_misc"),
            flags,
            None::<&str>,
        );
    }
    if boot.old_wsl {
        old_wsl_layout();
    }
    let env: Vec<CString> = [
        "container=wsl".to_string(),
        "container_host_id=windows".to_string(),
        format!("container_host_version_id={}", boot.host_version),
    ]
    .into_iter()
    .filter_map(|v| CString::new(v).ok())
    .collect();
    let path = sys::cpath(Path::new(INIT_PATH));
    // Default dispositions (this process ignored SIGPIPE, like every Rust program) and an
    // empty mask, as for every program WSL starts.
    sys::reset_all_signal_dispositions();
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
    let _ = nix::unistd::execve(&path, std::slice::from_ref(&path), &env);
}

/// WSL before 2.0: `/dev/shm` a symlink to `/run/shm`, and `/` private.
fn old_wsl_layout() {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    let _ = umount2("/dev/shm", MntFlags::MNT_DETACH);
    let _ = std::fs::remove_dir("/dev/shm");
    let _ = std::os::unix::fs::symlink("/run/shm", "/dev/shm");
    let _ = mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    );
}

// ---------------------------------------------------------------------------------------
// Harness side: WSL's waits and login sessions.

/// Per-boot state of WSL's systemd handling in a [`Distro`].
#[derive(Default)]
pub struct State(Mutex<Sessions>);

#[derive(Default)]
struct Sessions {
    /// Resolved users by the `-u` of the launch (`None`: the default user), as (name, uid).
    users: HashMap<Option<String>, (String, u32)>,
    /// The `login -f` of every user who had a session this boot.
    logins: HashMap<String, Process>,
    /// How the boot-time poll ended: whether systemd reported up, and after how long.
    boot: Option<(bool, Duration)>,
}

impl State {
    /// Ends this boot's login sessions (at terminate) and forgets everything.
    pub fn reset(&self) {
        let taken = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        drop(taken);
    }

    /// Whether WSL's boot-time poll saw systemd up, and how long it waited.
    pub fn boot_wait(&self) -> Option<(bool, Duration)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).boot
    }
}

/// Runs one of WSL's own helper commands: `/bin/sh -c <script>` as root in `/`, with no
/// environment at all (so no `PATH`: `/bin/sh` must find `systemctl` by itself), bypassing
/// the distro's session hooks. True when it exits 0.
fn helper(d: &Distro, script: &str, timeout: Duration) -> bool {
    let launch = Launch::exec(["/bin/sh", "-c", script])
        .user("root")
        .cwd("/")
        .exact_env(Vec::new())
        .timeout(timeout.max(Duration::from_secs(1)));
    let Ok(target) = d.target() else {
        return false;
    };
    Process::spawn(&target, &launch)
        .and_then(|p| p.wait())
        .is_ok_and(|out| out.code == 0)
}

/// Polls `script` every [`POLL_INTERVAL`] until it succeeds or `timeout` passes. Returns
/// whether it succeeded and how long that took.
fn poll(d: &Distro, script: &str, timeout: Duration) -> (bool, Duration) {
    let started = Instant::now();
    let deadline = started + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if helper(d, script, left.min(Duration::from_secs(30))) {
            return (true, started.elapsed());
        }
        if Instant::now() + POLL_INTERVAL > deadline {
            return (false, started.elapsed());
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// End of `Distro::boot`: WSL waits for systemd (and continues anyway on timeout).
pub fn after_boot(d: &Distro, mode: &WslSystemd) {
    d.wsl_systemd_state().reset();
    let outcome = poll(d, READY_POLL, mode.init_timeout);
    d.wsl_systemd_state()
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .boot = Some(outcome);
}

/// From `Distro::spawn`: the user's `login -f` session on their first launch of this boot,
/// then the launch with the user's bus variables. A user that cannot be resolved is left to
/// the launcher, which reports it as WSL does.
pub fn prepare_launch(d: &Distro, mode: &WslSystemd, launch: &Launch) -> Result<Launch> {
    let state = d.wsl_systemd_state();
    let mut sessions = state.0.lock().unwrap_or_else(|e| e.into_inner());
    let user = match sessions.users.get(&launch.user) {
        Some(u) => Some(u.clone()),
        None => {
            let resolved = resolve_user(d, launch.user.as_deref());
            if let Some(u) = &resolved {
                sessions.users.insert(launch.user.clone(), u.clone());
            }
            resolved
        }
    };
    if let Some((name, uid)) = user {
        if !sessions.logins.contains_key(&name) {
            let login = Launch::exec(["/bin/login", "-f", name.as_str()])
                .user("root")
                .cwd("/")
                .stdio(Stdio::Pty)
                .keep_stdin_open()
                .ignore_signals();
            let process = Process::spawn(&d.target()?, &login)
                .with_context(|| format!("WSL's `login -f {name}`"))?;
            sessions.logins.insert(name.clone(), process);
            let script = format!("systemctl is-active user@{uid}.service");
            poll(d, &script, mode.init_timeout);
        }
    }
    Ok(launch.clone().with_user_bus())
}

/// The user a launch runs as, resolved as the launcher does (reading the distro's files).
fn resolve_user(d: &Distro, requested: Option<&str>) -> Option<(String, u32)> {
    let target = d.target().ok()?;
    let read = Launch::exec([
        "/bin/sh",
        "-c",
        "cat /etc/wsl.conf 2>/dev/null; echo '@@passwd@@'; cat /etc/passwd",
    ])
    .user("root")
    .cwd("/")
    .exact_env(Vec::new());
    let out = Process::spawn(&target, &read).and_then(|p| p.wait()).ok()?;
    let text = out.out();
    let (conf, passwd) = text.split_once("@@passwd@@\n")?;
    let users = userdb::parse_passwd(passwd);
    let user: Passwd = match requested {
        Some(name) => users.into_iter().find(|u| u.name == name)?,
        None => userdb::wsl_conf_default_user(conf)
            .and_then(|d| users.iter().find(|u| u.name == d).cloned())
            .or_else(|| users.iter().find(|u| u.uid == 0).cloned())
            .unwrap_or_else(Passwd::fallback_root),
    };
    Some((user.name, user.uid))
}

/// The variables WSL adds to sessions in this mode, in its order.
pub fn session_env(uid: u32) -> [(String, String); 2] {
    [
        (
            "DBUS_SESSION_BUS_ADDRESS".into(),
            format!("unix:path=/run/user/{uid}/bus"),
        ),
        ("XDG_RUNTIME_DIR".into(), format!("/run/user/{uid}")),
    ]
}

/// Every signal ignored (WSL's `login -f` runs so), realtime ones included.
pub fn ignore_all_signals() {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_IGN runs no code of ours; libc may refuse its two internal
        // realtime signals, which is harmless.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
}

/// The launch options of this mode on the launcher's command line (launch.rs).
pub fn push_launch_args(launch: &Launch, args: &mut RoleArgs) {
    if launch.wsl_systemd {
        args.push("wsl-systemd", "1");
    }
    if let Some(env) = &launch.exact_env {
        args.push("exact-env", "1");
        for (k, v) in env {
            args.push("exact-env-var", format!("{k}={v}"));
        }
    }
    if launch.ignore_signals {
        args.push("ignore-signals", "1");
    }
}

/// The launcher's side of [`push_launch_args`].
#[derive(Clone, Debug, Default)]
pub struct LaunchArgs {
    pub wsl_systemd: bool,
    pub exact_env: Option<Vec<(String, String)>>,
    pub ignore_signals: bool,
}

impl LaunchArgs {
    pub fn parse(args: &RoleArgs) -> LaunchArgs {
        LaunchArgs {
            wsl_systemd: args.opt("wsl-systemd").is_some(),
            exact_env: args.opt("exact-env").map(|_| {
                args.all("exact-env-var")
                    .into_iter()
                    .filter_map(|kv| {
                        kv.split_once('=')
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                    })
                    .collect()
            }),
            ignore_signals: args.opt("ignore-signals").is_some(),
        }
    }

    /// The environment of the launched program: `session` (WSL's, computed by the
    /// launcher) plus this mode's bus variables, or the exact one.
    pub fn environment(&self, session: Vec<(String, String)>, uid: u32) -> Vec<(String, String)> {
        if let Some(env) = &self.exact_env {
            return env.clone();
        }
        let mut env = session;
        if self.wsl_systemd {
            env.extend(session_env(uid));
        }
        env
    }
}
