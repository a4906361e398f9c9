//! The distro's init: what WSL2's `/init` does when a distribution starts (wsl-behaviour.md
//! section 2), as the `init` role of the simulator's executable.
//!
//! Two processes:
//! - the *outer* process stays in the host's namespaces. It moves the distro into its
//!   cgroup, reports `ready <pid>` (the host pid of the distro's PID 1) on stdout, and then
//!   waits: EOF on its stdin (the harness dropped the distro, or died) means `wsl -t`, so it
//!   SIGKILLs PID 1 (the kernel then kills the whole PID namespace), waits for the cgroup
//!   to empty, removes it and exits.
//! - PID 1 of the distro: new mount, UTS, IPC, network and cgroup namespaces, the distro
//!   root mounted (overlayfs over the cached rootfs) and pivoted into, WSL's mounts, and then
//!   nothing but reaping orphans. It never execs anything.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::{chdir, fork, pivot_root, sethostname, ForkResult, Pid};

use super::safety::{check_root, HostRoot};
use super::sys::{self, pidfd_open, pipe, read_line_timeout, send};
use super::{cgroup, RoleArgs};

/// Everything the init role needs, passed on its command line.
#[derive(Clone, Debug)]
pub struct InitSpec {
    /// The hostname (WSL uses the Windows computer name; `NAME` in launches).
    pub hostname: String,
    /// The instance's state directory: `upper/`, `work/`, `root/` (mount point), `c/`.
    pub state: PathBuf,
    /// The cached rootfs (overlayfs lower dir).
    pub lower: PathBuf,
    /// The distro's cgroup2 directory on the host.
    pub cgroup: PathBuf,
    /// Host directory shared between all distros as `/mnt/wsl`.
    pub mnt_wsl: PathBuf,
    /// WSL's systemd mode: PID 1 execs `/sbin/init` once the distro is set up (native.rs).
    pub wsl_systemd: Option<super::native::Boot>,
}

impl InitSpec {
    pub fn to_args(&self) -> Vec<std::ffi::OsString> {
        let mut a = RoleArgs::default();
        a.push("hostname", &self.hostname);
        a.push("state", &self.state);
        a.push("lower", &self.lower);
        a.push("cgroup", &self.cgroup);
        a.push("mnt-wsl", &self.mnt_wsl);
        if let Some(boot) = &self.wsl_systemd {
            boot.push_args(&mut a);
        }
        a.into_vec()
    }

    pub fn from_args(a: &RoleArgs) -> Result<InitSpec> {
        Ok(InitSpec {
            hostname: a.string("hostname")?,
            state: a.path("state")?,
            lower: a.path("lower")?,
            cgroup: a.path("cgroup")?,
            mnt_wsl: a.path("mnt-wsl")?,
            wsl_systemd: super::native::Boot::from_args(a),
        })
    }
}

/// Entry point of the `init` role (single-threaded: called before anything else in main).
pub fn main(args: &RoleArgs) -> i32 {
    match InitSpec::from_args(args).and_then(|spec| outer(&spec)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wsl-sim init: {e:#}");
            1
        }
    }
}

fn outer(spec: &InitSpec) -> Result<i32> {
    let host = HostRoot::record()?;
    let (mut go_r, mut go_w) = pipe()?;
    let (mut st_r, mut st_w) = pipe()?;
    unshare(CloneFlags::CLONE_NEWPID).context("unsharing the PID namespace")?;
    // SAFETY: this role process is single-threaded (role dispatch happens first in main).
    match unsafe { fork() }.context("forking the distro's PID 1")? {
        ForkResult::Child => {
            drop(go_w);
            drop(st_r);
            // Die with the outer process, whatever kills it.
            // SAFETY: prctl with integer arguments.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            let mut b = [0u8];
            if go_r.read_exact(&mut b).is_err() {
                std::process::exit(1); // the outer died before moving us into the cgroup
            }
            drop(go_r);
            if let Err(e) = pid1_setup(spec, host).and_then(|()| detach_fds(st_w.as_raw_fd())) {
                send(&mut st_w, &format!("error {e:#}\n"));
                std::process::exit(1);
            }
            // The outer process reports the distro ready only once this pipe is closed, so
            // from then on PID 1 holds nothing but fds 0-2.
            send(&mut st_w, "ok\n");
            drop(st_w);
            if let Some(boot) = &spec.wsl_systemd {
                // Returns only if systemd mode is off or /sbin/init cannot be exec'd.
                super::native::exec_init(boot);
            }
            reap_forever()
        }
        ForkResult::Parent { child } => {
            drop(go_r);
            drop(st_w);
            let pid1 = child.as_raw();
            let fail = |e: anyhow::Error| -> Result<i32> {
                let _ = sys::kill(pid1, Signal::SIGKILL);
                let _ = waitpid(child, None);
                let _ = cgroup::remove(&spec.cgroup, Duration::from_secs(10));
                Err(e)
            };
            if let Err(e) = cgroup::enter(&spec.cgroup, pid1) {
                return fail(e);
            }
            let _ = go_w.write_all(b"g");
            drop(go_w);
            match read_line_timeout(&mut st_r, Duration::from_secs(60)) {
                Ok(Some(l)) if l == "ok" => {}
                Ok(Some(l)) => {
                    let msg = l.strip_prefix("error ").unwrap_or(&l).to_string();
                    return fail(anyhow::anyhow!("the distro's PID 1 failed to start: {msg}"));
                }
                Ok(None) => return fail(anyhow::anyhow!("the distro's PID 1 died during setup")),
                Err(e) => return fail(e.context("waiting for the distro's PID 1")),
            }
            // Ready once PID 1 closed its end (see detach_fds).
            if !matches!(
                read_line_timeout(&mut st_r, Duration::from_secs(10)),
                Ok(None)
            ) {
                return fail(anyhow::anyhow!(
                    "the distro's PID 1 did not close its status pipe"
                ));
            }
            drop(st_r);
            let mut out = std::io::stdout().lock();
            writeln!(out, "ready {pid1}")?;
            out.flush()?;
            supervise(pid1, child)?;
            cgroup::remove(&spec.cgroup, Duration::from_secs(30))?;
            Ok(0)
        }
    }
}

/// Waits for EOF on stdin (terminate) or for PID 1 to die; then makes sure it is dead.
fn supervise(pid1: i32, child: Pid) -> Result<()> {
    let pidfd = pidfd_open(pid1).context("pidfd_open on PID 1")?;
    let mut stdin = std::io::stdin().lock();
    loop {
        let mut fds = [
            libc::pollfd {
                fd: 0,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            if Errno::last() == Errno::EINTR {
                continue;
            }
            bail!("poll: {}", Errno::last());
        }
        if fds[1].revents != 0 {
            break; // PID 1 is gone (killed from outside)
        }
        if fds[0].revents != 0 {
            let mut buf = [0u8; 64];
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break, // terminate
                Ok(_) => {}              // ignore chatter
            }
        }
    }
    // `wsl -t`: killing PID 1 makes the kernel kill every process of the namespace.
    sys::kill(pid1, Signal::SIGKILL)?;
    waitpid(child, None).context("waiting for PID 1")?;
    Ok(())
}

/// PID 1 after setup: reap every orphan, forever. All signals stay blocked, so only a
/// SIGKILL from outside (terminate) ends it, as for WSL's init.
fn reap_forever() -> ! {
    let _ = SigSet::all().thread_block();
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    loop {
        loop {
            match waitpid(
                Pid::from_raw(-1),
                Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL),
            ) {
                Ok(nix::sys::wait::WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = chld.wait();
    }
}

/// Everything WSL's init does before the first launch, ending with `/` being the distro.
fn pid1_setup(spec: &InitSpec, host: HostRoot) -> Result<()> {
    unshare(
        CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWNET
            | CloneFlags::CLONE_NEWCGROUP,
    )
    .context("unsharing mount, UTS, IPC, network and cgroup namespaces")?;
    // Before mounting anything: nothing we mount may propagate back to the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("making all mounts private (mount --make-rprivate /)")?;

    let root = spec.state.join("root");
    mount_overlay(spec, &root)?;
    mount_wsl_filesystems(spec, &root)?;
    sethostname(&spec.hostname).context("setting the hostname")?;
    sys::loopback_up().context("bringing up lo")?;

    // pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves
    // only the distro visible (the classic runc sequence).
    chdir(&root).with_context(|| format!("chdir {}", root.display()))?;
    pivot_root(".", ".").context("pivot_root into the distro")?;
    umount2(".", MntFlags::MNT_DETACH).context("detaching the host root")?;
    chdir("/").context("chdir /")?;
    check_root(host)?;

    // WSL >= 2.0 mounts / shared (new peer groups: this namespace's mounts are all private
    // with respect to the host after the rprivate above).
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SHARED,
        None::<&str>,
    )
    .context("making / shared")?;

    // WSL rewrites these at every start (generateHosts=true). Written after pivot_root so a
    // symlink in the distro cannot point the write at a host file.
    fs::write("/etc/hostname", format!("{}\n", spec.hostname)).context("writing /etc/hostname")?;
    fs::write(
        "/etc/hosts",
        format!(
            "# Generated by the WSL simulator (like WSL's generateHosts).\n\
             127.0.0.1\tlocalhost\n127.0.1.1\t{h}.localdomain\t{h}\n\
             ::1\tip6-localhost ip6-loopback\n",
            h = spec.hostname
        ),
    )
    .context("writing /etc/hosts")?;
    Ok(())
}

/// Leaves PID 1 with only fds 0-2, on /dev/null, and `keep` (the status pipe, closed right
/// after): nothing of the harness leaks into the distro.
fn detach_fds(keep: i32) -> Result<()> {
    let null = File::options().read(true).write(true).open("/dev/null")?;
    for fd in 0..3 {
        nix::unistd::dup2(null.as_raw_fd(), fd)?;
    }
    drop(null);
    let keep = keep as u32;
    if keep > 3 {
        sys::close_range(3, keep - 1).context("closing inherited fds")?;
    }
    sys::close_range(keep + 1, u32::MAX).context("closing inherited fds")?;
    Ok(())
}

/// The distro's disk: overlayfs with the cached rootfs below and the instance's `upper/`
/// above, so instances are cheap, independent and persistent across boots.
fn mount_overlay(spec: &InitSpec, root: &Path) -> Result<()> {
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        spec.lower.display(),
        spec.state.join("upper").display(),
        spec.state.join("work").display()
    );
    // The previous boot's mount namespace may still be tearing down (the kernel releases it
    // asynchronously), and overlayfs refuses an upper dir that is still in use: retry.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match mount(
            Some("overlay"),
            root,
            Some("overlay"),
            MsFlags::empty(),
            Some(opts.as_str()),
        ) {
            Ok(()) => return Ok(()),
            Err(Errno::EBUSY) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => return Err(e).with_context(|| format!("mounting the overlay ({opts})")),
        }
    }
}

/// Creates `rel` under `root` refusing symlinks on the way: before pivot_root, a symlink in
/// the distro tree would resolve against the host's `/`.
fn dir_in(root: &Path, rel: &str, mode: u32) -> Result<PathBuf> {
    let mut path = root.to_path_buf();
    for comp in Path::new(rel).components() {
        let Component::Normal(name) = comp else {
            continue;
        };
        path.push(name);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                bail!("refusing to mount on {}: it is a symlink", path.display())
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!("{} is not a directory", path.display()),
            Err(_) => {
                fs::create_dir(&path).with_context(|| format!("mkdir {}", path.display()))?;
                fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
            }
        }
    }
    Ok(path)
}

fn mnt(
    src: &str,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    mount(Some(src), target, fstype, flags, data).with_context(|| {
        format!(
            "mounting {src} on {} ({fstype:?}, {data:?})",
            target.display()
        )
    })
}

fn bind(src: &Path, target: &Path) -> Result<()> {
    mount(
        Some(src),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| format!("bind-mounting {} on {}", src.display(), target.display()))
}

/// The mounts of wsl-behaviour.md section 2, made under `root` before pivoting.
fn mount_wsl_filesystems(spec: &InitSpec, root: &Path) -> Result<()> {
    let nosuid_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    let nne = nosuid_nodev | MsFlags::MS_NOEXEC;

    // /proc of the distro's PID namespace (we are its PID 1).
    mnt(
        "proc",
        &dir_in(root, "proc", 0o555)?,
        Some("proc"),
        nne,
        None,
    )?;

    // /sys read-only: it is the host kernel's, and nothing a distro does should reach it
    // (WSL's is read-write; systemd copes with a read-only one as in any container). The
    // distro's own cgroup2 tree is mounted read-write on top.
    let sys_dir = dir_in(root, "sys", 0o555)?;
    mnt(
        "sysfs",
        &sys_dir,
        Some("sysfs"),
        nne | MsFlags::MS_RDONLY,
        None,
    )?;
    mnt(
        "cgroup2",
        &sys_dir.join("fs/cgroup"),
        Some("cgroup2"),
        nne,
        None,
    )?;

    // /dev: a tmpfs with the host's harmless character devices bound in, rather than the
    // host's devtmpfs (whose changes would be the host's). devpts is a private instance.
    let dev = dir_in(root, "dev", 0o755)?;
    mnt(
        "tmpfs",
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID,
        Some("mode=755,size=65536k"),
    )?;
    for node in ["null", "zero", "full", "random", "urandom", "tty"] {
        let target = dev.join(node);
        File::create(&target)?;
        bind(&Path::new("/dev").join(node), &target)?;
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        symlink(to, dev.join(link))?;
    }
    let pts = dir_in(root, "dev/pts", 0o755)?;
    mnt(
        "devpts",
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,gid=5,mode=620,ptmxmode=666"),
    )?;
    let dev_shm = dir_in(root, "dev/shm", 0o1777)?;

    // /run: a fresh tmpfs at every boot, with WSL's sub-mounts.
    let run = dir_in(root, "run", 0o755)?;
    mnt("tmpfs", &run, Some("tmpfs"), nosuid_nodev, Some("mode=755"))?;
    mnt(
        "tmpfs",
        &dir_in(root, "run/lock", 0o1777)?,
        Some("tmpfs"),
        nne,
        Some("mode=1777"),
    )?;
    let run_shm = dir_in(root, "run/shm", 0o1777)?;
    mnt(
        "tmpfs",
        &run_shm,
        Some("tmpfs"),
        nosuid_nodev,
        Some("mode=1777"),
    )?;
    mnt(
        "tmpfs",
        &dir_in(root, "run/user", 0o755)?,
        Some("tmpfs"),
        nosuid_nodev,
        Some("mode=755"),
    )?;
    bind(&run_shm, &dev_shm)?;
    let run_wsl = dir_in(root, "run/WSL", 0o777)?;
    fs::set_permissions(&run_wsl, fs::Permissions::from_mode(0o777))?;

    // /mnt/wsl: shared between distros, propagation shared.
    let mnt_wsl = dir_in(root, "mnt/wsl", 0o755)?;
    bind(&spec.mnt_wsl, &mnt_wsl)?;
    mount(
        None::<&str>,
        &mnt_wsl,
        None::<&str>,
        MsFlags::MS_SHARED,
        None::<&str>,
    )
    .context("making /mnt/wsl shared")?;

    // /mnt/c: a host directory standing in for the 9p drive mount.
    bind(&spec.state.join("c"), &dir_in(root, "mnt/c", 0o755)?)?;
    Ok(())
}
