//! A distro instance: its disk (an overlayfs upper dir over the cached rootfs), boots and
//! terminations (`wsl -t`), and launches into it.

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context, Result};
use nix::sys::signal::Signal;

use super::init::InitSpec;
use super::launch::{Launch, Output, Process, Target};
use super::rootfs::{self, Rootfs};
use super::sys::{self, pidfd_open, read_line_timeout, wait_readable};
use super::{cgroup, ROLE_VAR};

/// Where the login shell under test is installed in every instance.
pub const SHELL_PATH: &str = "/usr/local/bin/nixos-wsl-shell";

/// Root's login shell in `/etc/passwd`.
#[derive(Clone, Debug)]
pub enum RootShell {
    /// Install this binary as /usr/local/bin/nixos-wsl-shell and make it root's shell.
    NixosWslShell(PathBuf),
    /// A program already in the rootfs, e.g. `/bin/bash` (the simulator's own tests, and the
    /// floor for benchmarks).
    Existing(String),
}

/// How to create an instance.
#[derive(Clone, Debug)]
pub struct DistroOptions {
    /// `WSL_DISTRO_NAME`.
    pub name: String,
    /// The hostname (`NAME`).
    pub hostname: String,
    pub root_shell: RootShell,
    /// Files put on the distro's disk before the first boot: (absolute path, contents, mode).
    pub files: Vec<(String, Vec<u8>, u32)>,
    /// Keep the instance's state dir after drop (also: `NIXOS_WSL_SIM_KEEP=1`).
    pub keep: bool,
    /// Use this state dir instead of a fresh one (persistent distro, e.g. for the CLI).
    pub state_dir: Option<PathBuf>,
    /// WSL's own systemd mode (`DistroOptions::wsl_systemd`, native.rs); `None`: WSL's init
    /// stays PID 1.
    pub wsl_systemd: Option<super::native::WslSystemd>,
    /// Users' own shells as the NixOS module writes them (`DistroOptions::user_shell`).
    pub user_shells: Vec<(String, String)>,
    /// Symlinks put on the disk before the first boot, after `files`: (path, target).
    pub links: Vec<(String, String)>,
}

impl DistroOptions {
    pub fn new(name: impl Into<String>, root_shell: RootShell) -> DistroOptions {
        DistroOptions {
            name: name.into(),
            hostname: "nixos-wsl-sim".into(),
            root_shell,
            files: Vec::new(),
            keep: std::env::var_os("NIXOS_WSL_SIM_KEEP").is_some_and(|v| v == "1"),
            state_dir: None,
            wsl_systemd: None,
            user_shells: Vec::new(),
            links: Vec::new(),
        }
    }

    /// Adds a symlink to the disk before the first boot (replacing what the rootfs has there).
    pub fn link(mut self, path: &str, target: &str) -> DistroOptions {
        self.links.push((path.into(), target.into()));
        self
    }

    /// `users.users.<user>.shell = <real>` the way the NixOS module writes it to passwd: a
    /// per-shell link `/nix/store/<hash>-nixos-wsl-shell-<name>/bin/<name>` to the shell
    /// under test, with `shell` next to `bin/` linking the real one. A user missing from
    /// passwd is added (uid 1001 on, group 100, home `/home/<user>`). Needs
    /// `RootShell::NixosWslShell`.
    pub fn user_shell(mut self, user: &str, real: &str) -> DistroOptions {
        self.user_shells.push((user.into(), real.into()));
        self
    }

    /// Adds a file (mode 0644) to the disk before the first boot.
    pub fn file(self, path: &str, contents: impl Into<Vec<u8>>) -> DistroOptions {
        self.file_mode(path, contents, 0o644)
    }

    pub fn file_mode(
        mut self,
        path: &str,
        contents: impl Into<Vec<u8>>,
        mode: u32,
    ) -> DistroOptions {
        self.files.push((path.to_string(), contents.into(), mode));
        self
    }
}

struct Booted {
    outer: Child,
    control: Option<ChildStdin>,
    _ready: ChildStdout,
    init_pid: i32,
}

/// A simulated WSL distro.
pub struct Distro {
    opts: DistroOptions,
    rootfs: Rootfs,
    id: String,
    state: PathBuf,
    fresh_state: bool,
    booted: Mutex<Option<Booted>>,
    /// WSL's systemd mode: this boot's login sessions and waits (native.rs).
    wsl_systemd: super::native::State,
    /// The disk is an imported tarball (import.rs): no root shell install, no passwd edit.
    imported: bool,
}

static INSTANCES: AtomicU32 = AtomicU32::new(0);

impl Distro {
    /// Creates an instance (building the rootfs first if needed) without booting it.
    pub fn new(opts: DistroOptions) -> Result<Distro> {
        Distro::with_rootfs(opts, rootfs::ensure()?, false)
    }

    /// An instance over an arbitrary lower dir (the simulator's own safety tests).
    pub fn new_with_lower(opts: DistroOptions, lower: PathBuf) -> Result<Distro> {
        Distro::with_rootfs(
            opts,
            Rootfs {
                dir: lower,
                cache: rootfs::cache_dir(),
            },
            false,
        )
    }

    /// An instance whose disk the caller fills before the first boot (`wsl --import`, see
    /// import.rs, which extracts into [`Distro::state_dir`]`/upper`). `lower` holds only the
    /// simulator's marker; `opts.root_shell` and `opts.files` are not applied: the imported
    /// tree alone decides root's shell.
    pub fn new_for_import(opts: DistroOptions, lower: PathBuf) -> Result<Distro> {
        Distro::with_rootfs(
            opts,
            Rootfs {
                dir: lower,
                cache: rootfs::cache_dir(),
            },
            true,
        )
    }

    fn with_rootfs(opts: DistroOptions, rootfs: Rootfs, imported: bool) -> Result<Distro> {
        let safe: String = opts
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let id = format!(
            "{safe}-{}-{}",
            std::process::id(),
            INSTANCES.fetch_add(1, Ordering::SeqCst)
        );
        let (state, fresh_state) = match &opts.state_dir {
            Some(dir) => (dir.clone(), !dir.join("upper").exists()),
            None => (rootfs.cache.join("state").join(&id), true),
        };
        let d = Distro {
            opts,
            rootfs,
            id,
            state,
            fresh_state,
            booted: Mutex::new(None),
            wsl_systemd: Default::default(),
            imported,
        };
        d.prepare()
            .with_context(|| format!("preparing distro instance {}", d.state.display()))?;
        Ok(d)
    }

    /// [`Distro::new`] and [`Distro::boot`].
    pub fn start(opts: DistroOptions) -> Result<Distro> {
        let d = Distro::new(opts)?;
        d.boot()?;
        Ok(d)
    }

    pub fn name(&self) -> &str {
        &self.opts.name
    }

    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    /// The distro's cgroup2 directory on the host.
    pub fn cgroup(&self) -> Result<PathBuf> {
        Ok(cgroup::sim_root()?.join(&self.id))
    }

    /// The instance's disk: state dir layout and root's shell.
    fn prepare(&self) -> Result<()> {
        let s = &self.state;
        for d in [
            "upper",
            "work",
            "root",
            "c/Windows/system32",
            "c/Program Files/Thing",
            "c/Users/me",
        ] {
            fs::create_dir_all(s.join(d))?;
        }
        let mnt_wsl = self.mnt_wsl();
        fs::create_dir_all(&mnt_wsl)?;
        if self.imported {
            return Ok(());
        }
        let upper = s.join("upper");
        // The shell binary is (re)installed on every start, so a kept disk (`state_dir`) runs
        // the current build; the rest is the disk's first-boot content.
        let shell = match &self.opts.root_shell {
            RootShell::NixosWslShell(bin) => {
                let bytes = fs::read(bin).with_context(|| format!("reading {}", bin.display()))?;
                write_under(&upper, &self.rootfs.dir, SHELL_PATH, &bytes, 0o755)?;
                SHELL_PATH.to_string()
            }
            RootShell::Existing(p) => p.clone(),
        };
        if let Some(mode) = &self.opts.wsl_systemd {
            super::native::install_init(&upper, &self.rootfs.dir, mode)?;
        }
        if !self.fresh_state {
            return Ok(());
        }
        let passwd = fs::read_to_string(self.rootfs.dir.join("etc/passwd"))?;
        let passwd: String = passwd
            .lines()
            .map(|l| {
                let mut f: Vec<&str> = l.split(':').collect();
                if f.first() == Some(&"root") && f.len() == 7 {
                    f[6] = &shell;
                }
                f.join(":") + "\n"
            })
            .collect();
        write_under(
            &upper,
            &self.rootfs.dir,
            "/etc/passwd",
            passwd.as_bytes(),
            0o644,
        )?;
        if let Some(mode) = &self.opts.wsl_systemd {
            let shell = &self.opts.root_shell;
            super::native::configure_disk(&upper, &self.rootfs.dir, mode, shell)?;
        }
        self.write_user_shells(&upper)?;
        for (path, contents, mode) in &self.opts.files {
            write_under(&upper, &self.rootfs.dir, path, contents, *mode)?;
        }
        for (path, target) in &self.opts.links {
            symlink_under(&upper, &self.rootfs.dir, path, target)?;
        }
        Ok(())
    }

    /// Applies `user_shells` to the disk (see [`DistroOptions::user_shell`]).
    fn write_user_shells(&self, upper: &Path) -> Result<()> {
        if self.opts.user_shells.is_empty() {
            return Ok(());
        }
        let lower = &self.rootfs.dir;
        let passwd = fs::read_to_string(upper.join("etc/passwd"))?;
        let mut lines: Vec<String> = passwd.lines().map(str::to_owned).collect();
        for (i, (user, real)) in self.opts.user_shells.iter().enumerate() {
            let name = Path::new(real)
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("shell {real} has no file name"))?;
            let dir = format!("/nix/store/{i:032}-nixos-wsl-shell-{name}");
            let link = format!("{dir}/bin/{name}");
            symlink_under(upper, lower, &link, SHELL_PATH)?;
            symlink_under(upper, lower, &format!("{dir}/shell"), real)?;
            match lines
                .iter_mut()
                .find(|l| l.split(':').next() == Some(user.as_str()))
            {
                Some(line) => {
                    let mut fields: Vec<&str> = line.split(':').collect();
                    ensure!(fields.len() == 7, "malformed passwd line for {user}");
                    fields[6] = &link;
                    *line = fields.join(":");
                }
                None => {
                    let uid = 1001 + i as u32;
                    lines.push(format!("{user}:x:{uid}:100::/home/{user}:{link}"));
                    let home = parents_under(upper, lower, &format!("/home/{user}/.keep"))?;
                    let home = home.parent().context("home")?;
                    std::os::unix::fs::lchown(home, Some(uid), Some(100))?;
                    fs::set_permissions(home, fs::Permissions::from_mode(0o700))?;
                }
            }
        }
        let passwd = lines.join("\n") + "\n";
        write_under(upper, lower, "/etc/passwd", passwd.as_bytes(), 0o644)
    }

    fn mnt_wsl(&self) -> PathBuf {
        self.rootfs.cache.join("state").join("mnt-wsl")
    }

    /// Boots the distro: namespaces, mounts, PID 1 (WSL's init). A fresh boot every time:
    /// fresh `/run`, same disk.
    pub fn boot(&self) -> Result<()> {
        let mut booted = self.booted.lock().unwrap();
        if booted.is_some() {
            bail!("distro {} is already running", self.opts.name);
        }
        let cgroup = cgroup::create(&self.id)?;
        let spec = InitSpec {
            hostname: self.opts.hostname.clone(),
            state: self.state.clone(),
            lower: self.rootfs.dir.clone(),
            cgroup,
            mnt_wsl: self.mnt_wsl(),
            wsl_systemd: self.opts.wsl_systemd.as_ref().map(|m| super::native::Boot {
                host_version: m.host_version.clone(),
                old_wsl: m.old_wsl,
            }),
        };
        let log_path = self.state.join("init.log");
        let log = File::create(&log_path)?;
        let mut outer = Command::new(std::env::current_exe()?)
            .env(ROLE_VAR, "init")
            .args(spec.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("spawning the distro init")?;
        let control = outer.stdin.take();
        let stdout = outer.stdout.take().unwrap();
        let mut ready = File::from(std::os::fd::OwnedFd::from(stdout));
        let line = read_line_timeout(&mut ready, Duration::from_secs(90));
        let init_pid = match line {
            Ok(Some(l)) if l.starts_with("ready ") => l[6..].trim().parse::<i32>()?,
            other => {
                drop(control);
                let _ = outer.kill();
                let _ = outer.wait();
                let log = fs::read_to_string(&log_path).unwrap_or_default();
                bail!(
                    "booting distro {} failed ({}): {}",
                    self.opts.name,
                    match other {
                        Err(e) => format!("{e:#}"),
                        Ok(l) => format!("{l:?}"),
                    },
                    log.trim()
                );
            }
        };
        *booted = Some(Booted {
            outer,
            control,
            _ready: ChildStdout::from(std::os::fd::OwnedFd::from(ready)),
            init_pid,
        });
        drop(booted);
        if let Some(mode) = &self.opts.wsl_systemd {
            super::native::after_boot(self, mode);
        }
        Ok(())
    }

    /// `wsl -t`: kills the distro's PID namespace and waits until it and its cgroup are gone.
    pub fn terminate(&self) -> Result<()> {
        // WSL's `login -f` sessions end with the distro.
        self.wsl_systemd.reset();
        let Some(mut b) = self.booted.lock().unwrap().take() else {
            return Ok(());
        };
        drop(b.control.take()); // EOF: the init role kills PID 1 and cleans up
        let pidfd = pidfd_open(b.outer.id() as i32)?;
        if !wait_readable(pidfd.as_raw_fd(), Some(Duration::from_secs(30)))? {
            let _ = sys::kill(b.init_pid, Signal::SIGKILL);
            let _ = b.outer.kill();
            let _ = b.outer.wait();
            bail!(
                "terminating {} took more than 30 s; killed it",
                self.opts.name
            );
        }
        let st = b.outer.wait()?;
        if !st.success() {
            let log = fs::read_to_string(self.state.join("init.log")).unwrap_or_default();
            bail!(
                "the init of {} exited with {st} on terminate: {}",
                self.opts.name,
                log.trim()
            );
        }
        Ok(())
    }

    /// Whether the distro's PID 1 is alive.
    pub fn is_running(&self) -> bool {
        let g = self.booted.lock().unwrap();
        g.as_ref()
            .is_some_and(|b| Path::new(&format!("/proc/{}", b.init_pid)).exists())
    }

    /// Host pid of the distro's PID 1 (WSL's init).
    pub fn init_pid(&self) -> Result<i32> {
        self.booted
            .lock()
            .unwrap()
            .as_ref()
            .map(|b| b.init_pid)
            .ok_or_else(|| anyhow!("distro {} is not running", self.opts.name))
    }

    /// Host pids of every process of the distro (from its cgroup; includes launchers).
    pub fn host_pids(&self) -> Vec<i32> {
        self.cgroup().map(|c| cgroup::pids(&c)).unwrap_or_default()
    }

    pub(super) fn target(&self) -> Result<Target> {
        Ok(Target {
            init_pid: self.init_pid()?,
            cgroup: self.cgroup()?,
            distro: self.opts.name.clone(),
            hostname: self.opts.hostname.clone(),
        })
    }

    /// Starts a launch and returns while it runs.
    pub fn spawn(&self, launch: &Launch) -> Result<Process> {
        if let Some(mode) = &self.opts.wsl_systemd {
            let launch = super::native::prepare_launch(self, mode, launch)?;
            return Process::spawn(&self.target()?, &launch);
        }
        Process::spawn(&self.target()?, launch)
    }

    /// WSL's systemd mode: this boot's sessions and waits (native.rs).
    pub fn wsl_systemd_state(&self) -> &super::native::State {
        &self.wsl_systemd
    }

    /// Runs a launch to completion (bounded by its timeout).
    pub fn run(&self, launch: &Launch) -> Result<Output> {
        self.spawn(launch)?.wait()
    }

    /// Reads a file of the running distro as root (`wsl -u root -e cat PATH`).
    pub fn read_file(&self, path: &str) -> Result<Vec<u8>> {
        let out = self.run(&Launch::exec(["cat", path]).user("root").cwd("/"))?;
        if out.code != 0 {
            bail!("reading {path} in {}: {}", self.opts.name, out.err());
        }
        Ok(out.stdout)
    }

    /// Writes a file: on the disk directly while the distro is down, through a root launch
    /// (`wsl -u root -e sh -c 'cat > PATH'`) while it runs.
    pub fn write_file(&self, path: &str, contents: &[u8], mode: u32) -> Result<()> {
        if !self.is_running() {
            return write_under(
                &self.state.join("upper"),
                &self.rootfs.dir,
                path,
                contents,
                mode,
            );
        }
        let script = r#"mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1""#;
        let out = self.run(
            &Launch::exec(["/bin/sh", "-c", script, "sh", path, &format!("{mode:o}")])
                .user("root")
                .cwd("/")
                .stdin(contents.to_vec()),
        )?;
        if out.code != 0 {
            bail!("writing {path} in {}: {}", self.opts.name, out.err());
        }
        Ok(())
    }

    /// Runs `sh -c script` as root, bypassing the login shell (`wsl -u root -e sh -c`).
    pub fn root_sh(&self, script: &str) -> Result<Output> {
        self.run(
            &Launch::exec(["/bin/sh", "-c", script])
                .user("root")
                .cwd("/"),
        )
    }
}

impl Drop for Distro {
    fn drop(&mut self) {
        if let Err(e) = self.terminate() {
            let _ = writeln!(std::io::stderr(), "wsl-sim: {e:#}");
        }
        if !self.opts.keep && self.opts.state_dir.is_none() {
            let _ = fs::remove_dir_all(&self.state);
        }
    }
}

/// Writes `contents` at the absolute distro path `path` inside an upper dir (distro not
/// running), creating parents with the mode and owner they have in the rootfs (overlayfs
/// shows the upper dir's attributes), refusing to follow symlinks out of it.
pub(super) fn write_under(
    upper: &Path,
    lower: &Path,
    path: &str,
    contents: &[u8],
    mode: u32,
) -> Result<()> {
    let dst = parents_under(upper, lower, path)?;
    if fs::symlink_metadata(&dst).is_ok_and(|m| m.file_type().is_symlink()) {
        fs::remove_file(&dst)?;
    }
    fs::write(&dst, contents).with_context(|| format!("writing {}", dst.display()))?;
    fs::set_permissions(&dst, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Creates the symlink `path` -> `target` on the disk (replacing what is there).
pub(super) fn symlink_under(upper: &Path, lower: &Path, path: &str, target: &str) -> Result<()> {
    let dst = parents_under(upper, lower, path)?;
    if fs::symlink_metadata(&dst).is_ok() {
        fs::remove_file(&dst)?;
    }
    std::os::unix::fs::symlink(target, &dst).with_context(|| format!("linking {}", dst.display()))
}

/// The upper-dir path of `path`, with its missing parent directories created like the
/// rootfs' (mode and owner), never through a symlink.
fn parents_under(upper: &Path, lower: &Path, path: &str) -> Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let rel = path.trim_start_matches('/');
    let dst = upper.join(rel);
    let mut cur = upper.to_path_buf();
    let mut low = lower.to_path_buf();
    for comp in Path::new(rel)
        .parent()
        .into_iter()
        .flat_map(|p| p.components())
    {
        cur.push(comp);
        low.push(comp);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => bail!("{} is a symlink", cur.display()),
            Ok(_) => {}
            Err(_) => {
                fs::create_dir(&cur)?;
                let (mode, uid, gid) = match fs::symlink_metadata(&low) {
                    Ok(m) if m.is_dir() => (m.mode() & 0o7777, m.uid(), m.gid()),
                    Ok(_) => bail!("{} is not a directory in the rootfs", low.display()),
                    Err(_) => (0o755, 0, 0),
                };
                fs::set_permissions(&cur, fs::Permissions::from_mode(mode))?;
                std::os::unix::fs::lchown(&cur, Some(uid), Some(gid))?;
            }
        }
    }
    Ok(dst)
}
