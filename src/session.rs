//! The user's session: which user, which shell, which argv, environment and working
//! directory. Deciding (pure functions, unit-tested) is separate from doing (`exec`).

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use nix::unistd::{Gid, Group, Uid, User};

/// Exit code when not even a fallback shell could be exec'd (as shells use for "not found").
pub(crate) const EXIT_NO_SHELL: i32 = 127;

/// How WSL (or sudo, su, ssh, an editor) invoked us, as far as the shell we exec cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invocation {
    /// `argv[0]` started with `-`: a login shell (`wsl -d X`, `su -`, `sudo -i`).
    pub(crate) login: bool,
    /// Everything after `argv[0]`, verbatim (`-c <string>` for `wsl -- cmd`).
    pub(crate) args: Vec<OsString>,
}

impl Invocation {
    pub(crate) fn from_argv(argv: impl IntoIterator<Item = OsString>) -> Invocation {
        let mut argv = argv.into_iter();
        let login = argv
            .next()
            .is_some_and(|a0| a0.as_bytes().starts_with(b"-"));
        Invocation {
            login,
            args: argv.collect(),
        }
    }

    /// The argv for `shell`: `-<basename>` for a login shell (as WSL and login(1) do), else the
    /// shell's path; then our arguments unchanged, so `-c <string>` reaches the shell exactly
    /// as WSL passed it (no re-quoting, no `exec` prefix, no joining: NixOS-WSL #3, #167).
    pub(crate) fn argv_for(&self, shell: &Path) -> Vec<OsString> {
        let argv0 = if self.login {
            let mut a0 = OsString::from("-");
            a0.push(shell.file_name().unwrap_or(shell.as_os_str()));
            a0
        } else {
            shell.as_os_str().to_owned()
        };
        std::iter::once(argv0)
            .chain(self.args.iter().cloned())
            .collect()
    }
}

/// A passwd entry, as much of it as a session needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Account {
    pub(crate) name: String,
    pub(crate) uid: Uid,
    pub(crate) gid: Gid,
    pub(crate) home: PathBuf,
    pub(crate) shell: PathBuf,
}

impl Account {
    /// Looks the login name up in `/etc/passwd` (at run time: a renamed user takes effect on
    /// the next launch, NixOS-WSL #147, #434).
    pub(crate) fn by_name(name: &str) -> Result<Account> {
        let user = User::from_name(name)
            .with_context(|| format!("looking up user {name:?}"))?
            .ok_or_else(|| anyhow!("user {name:?} does not exist in /etc/passwd"))?;
        Ok(Account::from(user))
    }

    pub(crate) fn by_uid(uid: Uid) -> Result<Account> {
        let user = User::from_uid(uid)
            .with_context(|| format!("looking up uid {uid}"))?
            .ok_or_else(|| anyhow!("uid {uid} does not exist in /etc/passwd"))?;
        Ok(Account::from(user))
    }

    /// What WSL itself uses when no passwd entry resolves: root, home `/`, shell `/bin/sh`.
    pub(crate) fn wsl_fallback_root() -> Account {
        Account {
            name: "root".into(),
            uid: Uid::from_raw(0),
            gid: Gid::from_raw(0),
            home: "/".into(),
            shell: "/bin/sh".into(),
        }
    }
}

impl From<User> for Account {
    fn from(u: User) -> Account {
        Account {
            name: u.name,
            uid: u.uid,
            gid: u.gid,
            home: u.dir,
            shell: u.shell,
        }
    }
}

/// Shells tried, in order, when the passwd shell is ours, missing or not executable.
pub(crate) const FALLBACK_SHELLS: [&str; 4] = [
    "/run/current-system/sw/bin/bash",
    "/bin/bash",
    "/usr/bin/bash",
    "/bin/sh",
];

/// The shell a per-shell link stands for. The NixOS module writes a user's own shell
/// (`users.users.<name>.shell = pkgs.zsh;`) to passwd as `<dir>/bin/zsh`, a link to this
/// program, and records the real shell as the link `<dir>/shell` next to `bin/`: WSL's argv[0]
/// (`-zsh`) and `$SHELL` then name the user's shell, and the passwd entry alone says which
/// one to run, whatever generation wrote it. `None` when `passwd` is not laid out that way.
pub(crate) fn wrapped_shell(passwd: &Path) -> Option<PathBuf> {
    let bin = passwd.parent()?;
    if bin.file_name()? != "bin" {
        return None;
    }
    let real = std::fs::read_link(bin.parent()?.join("shell")).ok()?;
    real.is_absolute().then_some(real)
}

/// The shells to try for `account`, best first. `is_self` recognises this program (exec'ing
/// ourselves would loop), `wrapped` reads the real shell behind a per-shell link
/// ([`wrapped_shell`]), `usable` an executable file. The passwd shell wins when usable; an
/// empty one means `/bin/sh` (WSL's rule); ours is replaced by the shell its link stands for,
/// else by the configured real shell (`shell` of configurations written before per-shell
/// links). Returns the candidates and, when the passwd shell could not be used, why.
pub(crate) fn shell_candidates(
    account: &Account,
    configured: Option<&Path>,
    is_self: &dyn Fn(&Path) -> bool,
    wrapped: &dyn Fn(&Path) -> Option<PathBuf>,
    usable: &dyn Fn(&Path) -> bool,
) -> (Vec<PathBuf>, Option<String>) {
    let passwd = if account.shell.as_os_str().is_empty() {
        Path::new("/bin/sh")
    } else {
        &account.shell
    };
    let mut note = None;
    let mut first = Vec::new();
    if is_self(passwd) {
        first.extend(wrapped(passwd).or_else(|| configured.map(Path::to_owned)));
    } else if usable(passwd) {
        first.push(passwd.to_owned());
    } else {
        note = Some(format!(
            "{}'s shell {} is not executable",
            account.name,
            passwd.display()
        ));
    }
    let mut all: Vec<PathBuf> = Vec::new();
    for candidate in first
        .into_iter()
        .chain(FALLBACK_SHELLS.iter().map(PathBuf::from))
    {
        if all.contains(&candidate) || is_self(&candidate) {
            continue;
        }
        // Checked until one is usable (it names `$SHELL`); the rest stay unchecked fallbacks
        // for an exec that fails anyway, so the common case costs one check.
        if !all.is_empty() || usable(&candidate) {
            all.push(candidate);
        }
    }
    if all.is_empty() {
        // Nothing usable: try /bin/sh anyway, so the failure names a real path.
        all.push(PathBuf::from("/bin/sh"));
    }
    (all, note)
}

/// Variables that describe the user and are recomputed for the target user.
const PER_USER: [&str; 7] = [
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "MAIL",
    "XDG_RUNTIME_DIR",
    "DBUS_SESSION_BUS_ADDRESS",
];

/// The session environment: everything WSL passed (interop, WSLENV and what it names, TERM,
/// LANG, WSLg, PATH with the Windows entries) minus the per-user variables, which are set for
/// `account`. `runtime_dir` is `/run/user/<uid>` when it exists (the user manager runs), so
/// `systemctl --user` works in interactive and `-c` sessions; otherwise none is set (never
/// root's, never WSLg's).
pub(crate) fn session_env(
    inherited: &[(OsString, OsString)],
    account: &Account,
    shell: &Path,
    runtime_dir: Option<&Path>,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = inherited
        .iter()
        .filter(|(k, _)| !PER_USER.iter().any(|p| k.as_bytes() == p.as_bytes()))
        .cloned()
        .collect();
    let mut set = |k: &str, v: &OsStr| env.push((k.into(), v.to_owned()));
    set("HOME", account.home.as_os_str());
    set("USER", OsStr::new(&account.name));
    set("LOGNAME", OsStr::new(&account.name));
    set("SHELL", shell.as_os_str());
    if let Some(dir) = runtime_dir {
        set("XDG_RUNTIME_DIR", dir.as_os_str());
        let mut bus = OsString::from("unix:path=");
        bus.push(dir.join("bus"));
        set("DBUS_SESSION_BUS_ADDRESS", &bus);
    }
    env
}

/// Replaces (or adds) one variable, keeping the others' order.
pub(crate) fn with_var(
    mut env: Vec<(OsString, OsString)>,
    key: &str,
    value: &OsStr,
) -> Vec<(OsString, OsString)> {
    env.retain(|(k, _)| k.as_bytes() != key.as_bytes());
    env.push((key.into(), value.to_owned()));
    env
}

/// Directories to try as the working directory, in order: the caller's (unless it is root's
/// home and the target is not root), the user's home, `/`. Each is tried *as the user*, so a
/// directory the user cannot enter is skipped silently (NixOS-WSL #72).
pub(crate) fn cwd_candidates(caller: Option<&Path>, account: &Account) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(cwd) = caller {
        if !cwd.starts_with("/root") || account.uid.is_root() {
            out.push(cwd.to_owned());
        }
    }
    out.push(account.home.clone());
    out.push(PathBuf::from("/"));
    out
}

/// Everything needed to start the session; built before the fork, performed by `exec`.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) account: Account,
    /// Switch from root to `account` (initgroups, setgid, setuid) and hand it the terminal.
    pub(crate) switch_user: bool,
    pub(crate) shells: Vec<PathBuf>,
    pub(crate) invocation: Invocation,
    /// The environment without `SHELL`, which is set per tried shell.
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) cwds: Vec<PathBuf>,
    /// Run this command (argv, looked up in the session's PATH) instead of a shell
    /// (`nixos-wsl exec`).
    pub(crate) command: Option<Vec<OsString>>,
    /// A login shell of an image that welcomes its users: show the welcome if this is the
    /// user's first interactive login ([`crate::welcome`]).
    pub(crate) welcome: bool,
}

/// When the session could only start in `/` although something else was tried first, and the
/// user's home was among the candidates: why (a user without a usable home should hear it).
fn home_note(cwds: &[PathBuf], landed: Option<&PathBuf>, account: &Account) -> Option<String> {
    let fell_to_root = landed.map_or(true, |d| d == Path::new("/"))
        && cwds.first().is_some_and(|d| d != Path::new("/"));
    if !fell_to_root || !cwds.contains(&account.home) || account.home == Path::new("/") {
        return None;
    }
    Some(if account.home.as_os_str().is_empty() {
        format!("{} has no home directory; starting in /", account.name)
    } else {
        format!(
            "{}'s home {} is missing or not accessible; starting in /",
            account.name,
            account.home.display()
        )
    })
}

/// Performs the plan: terminal, credentials, working directory, signals, exec. Returns only on
/// failure (every shell failed to exec), with the reason.
pub(crate) fn exec(plan: &Plan) -> anyhow::Error {
    if plan.switch_user {
        if let Err(e) = become_user(&plan.account) {
            return e;
        }
    }
    let landed = plan
        .cwds
        .iter()
        .find(|dir| nix::unistd::chdir(dir.as_path()).is_ok());
    if let Some(note) = home_note(&plan.cwds, landed, &plan.account) {
        log::warn!("{note}");
    }
    let var = |key: &str| {
        plan.env
            .iter()
            .find(|(k, _)| k.as_bytes() == key.as_bytes())
            .map(|(_, v)| v.as_os_str())
    };
    // Only in sessions WSL starts, which carry WSL_DISTRO_NAME. In WSL's systemd mode WSL
    // also runs `login -f <user>` on a pty nobody reads, and login starts the user's shell
    // with its own environment: that one must not take the welcome.
    if let Some(distro) = var("WSL_DISTRO_NAME").and_then(|v| v.to_str()) {
        if plan.welcome && plan.command.is_none() {
            crate::welcome::show_once(
                &plan.account.home,
                var("XDG_STATE_HOME").map(Path::new),
                distro,
            );
        }
    }
    crate::sys::signals::reset_for_exec();
    if let Some(command) = &plan.command {
        let Some(program) = command
            .first()
            .and_then(|p| find_program(Path::new(p), &plan.env))
        else {
            return anyhow!(
                "command not found: {:?}",
                command.first().unwrap_or(&OsString::new())
            );
        };
        return match exec_one(&program, command, &plan.env) {
            Ok(never) => match never {},
            Err(e) => e.context(format!("running {}", program.display())),
        };
    }
    // The error is made only when an exec failed: an `anyhow` error captures a backtrace
    // when RUST_BACKTRACE is set, which would cost every launch far more than the exec.
    let mut last = None;
    for shell in &plan.shells {
        // The session's environment with `SHELL` naming this shell, moved last (as
        // [`with_var`] does), by reference: nothing of it is copied before the exec.
        let env: Vec<(&OsStr, &OsStr)> = plan
            .env
            .iter()
            .filter(|(k, _)| k.as_bytes() != b"SHELL")
            .map(|(k, v)| (k.as_os_str(), v.as_os_str()))
            .chain(std::iter::once((OsStr::new("SHELL"), shell.as_os_str())))
            .collect();
        match exec_one(shell, &plan.invocation.argv_for(shell), &env) {
            Ok(never) => match never {},
            Err(e) => {
                log::error!("cannot run {}: {e:#}", shell.display());
                last = Some(e);
            }
        }
    }
    last.unwrap_or_else(|| anyhow!("no shell to run"))
}

fn exec_one<K: AsRef<OsStr>, V: AsRef<OsStr>>(
    shell: &Path,
    argv: &[OsString],
    env: &[(K, V)],
) -> Result<std::convert::Infallible> {
    let nul = |s: &OsStr| s.as_bytes().contains(&0);
    if nul(shell.as_os_str())
        || argv.iter().any(|a| nul(a))
        || env.iter().any(|(k, v)| nul(k.as_ref()) || nul(v.as_ref()))
    {
        return Err(anyhow!("NUL byte in argument or environment"));
    }
    Err(crate::sys::exec::exec_with_env(shell, argv, env).into())
}

/// `execvp`'s lookup against the session's PATH (not ours): a name with a slash is used as is.
fn find_program(name: &Path, env: &[(OsString, OsString)]) -> Option<PathBuf> {
    if name.as_os_str().as_bytes().contains(&b'/') {
        return Some(name.to_owned());
    }
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// Hands the terminal to the user (as login(1) does: owner uid, group tty, mode 0620), then
/// drops root: supplementary groups, gid, uid. Changing uid away from 0 clears every
/// capability, so none are left.
fn become_user(account: &Account) -> Result<()> {
    let tty_gid = Group::from_name("tty")
        .ok()
        .flatten()
        .map_or(Gid::from_raw(5), |g| g.gid);
    let mut seen = Vec::new();
    for fd in 0..=2 {
        if nix::unistd::isatty(fd).unwrap_or(false) {
            if let Ok(meta) = std::fs::metadata(format!("/proc/self/fd/{fd}")) {
                if seen.contains(&meta.ino()) {
                    continue;
                }
                seen.push(meta.ino());
            }
            let _ = nix::unistd::fchown(fd, Some(account.uid), Some(tty_gid));
            let _ = nix::sys::stat::fchmod(fd, nix::sys::stat::Mode::from_bits_truncate(0o620));
        }
    }
    let name = CString::new(account.name.as_bytes()).context("user name")?;
    nix::unistd::initgroups(&name, account.gid)
        .with_context(|| format!("setting the groups of {}", account.name))?;
    nix::unistd::setgid(account.gid)
        .with_context(|| format!("switching to gid {}", account.gid))?;
    nix::unistd::setuid(account.uid)
        .with_context(|| format!("switching to uid {}", account.uid))?;
    Ok(())
}

/// The distribution's name WSL passes (`WSL_DISTRO_NAME`), for messages (`wsl -t <name>`).
pub(crate) fn distro_name() -> String {
    std::env::var("WSL_DISTRO_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "<distro>".into())
}

/// Recognises this program by file identity (device + inode of `/proc/self/exe`), so a
/// symlink or another path to it is caught too.
pub(crate) fn self_identity() -> Option<(u64, u64)> {
    std::fs::metadata("/proc/self/exe")
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

pub(crate) fn is_same_file(path: &Path, identity: Option<(u64, u64)>) -> bool {
    match (std::fs::metadata(path), identity) {
        (Ok(m), Some(id)) => (m.dev(), m.ino()) == id,
        _ => false,
    }
}

/// An existing regular file the current process may execute.
pub(crate) fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
        && nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::os;
    use std::os::unix::ffi::OsStringExt;

    fn alice() -> Account {
        Account {
            name: "alice".into(),
            uid: Uid::from_raw(1000),
            gid: Gid::from_raw(100),
            home: "/home/alice".into(),
            shell: "/bin/zsh".into(),
        }
    }

    #[test]
    fn login_invocation() {
        let inv = Invocation::from_argv(os(&["-nixos-wsl-shell"]));
        assert!(inv.login);
        assert_eq!(
            inv.argv_for(Path::new("/run/current-system/sw/bin/bash")),
            os(&["-bash"])
        );
    }

    #[test]
    fn command_invocation_is_verbatim() {
        let cmd = "exec echo 'a  b' \"$HOME\"; exit 3";
        let inv = Invocation::from_argv(os(&["/bin/nixos-wsl-shell", "-c", cmd]));
        assert!(!inv.login);
        assert_eq!(
            inv.argv_for(Path::new("/bin/zsh")),
            os(&["/bin/zsh", "-c", cmd])
        );
        // The login form with a command (`--shell-type login`) keeps both.
        let inv = Invocation::from_argv(os(&["-nixos-wsl-shell", "-c", "true"]));
        assert_eq!(
            inv.argv_for(Path::new("/bin/zsh")),
            os(&["-zsh", "-c", "true"])
        );
    }

    #[test]
    fn empty_argv_is_not_login() {
        let inv = Invocation::from_argv(Vec::new());
        assert!(!inv.login && inv.args.is_empty());
    }

    #[test]
    fn passwd_shell_is_preferred() {
        let (c, note) = shell_candidates(&alice(), None, &|_| false, &|_| None, &|_| true);
        assert_eq!(c[0], Path::new("/bin/zsh"));
        assert!(note.is_none());
    }

    #[test]
    fn our_own_shell_is_never_a_candidate() {
        let mut root = alice();
        root.shell = "/run/current-system/sw/bin/nixos-wsl-shell".into();
        let is_self = |p: &Path| p.ends_with("nixos-wsl-shell");
        let (c, _) = shell_candidates(
            &root,
            Some(Path::new("/bin/fish")),
            &is_self,
            &|_| None,
            &|_| true,
        );
        assert_eq!(c[0], Path::new("/bin/fish"));
        assert!(c.iter().all(|p| !is_self(p)));
        let (c, _) = shell_candidates(&root, None, &is_self, &|_| None, &|_| true);
        assert_eq!(c[0], Path::new(FALLBACK_SHELLS[0]));
    }

    #[test]
    fn a_per_shell_link_runs_the_shell_it_stands_for() {
        let mut alice = alice();
        alice.shell = "/nix/store/h-nixos-wsl-shell-zsh/bin/zsh".into();
        let is_self = |p: &Path| p.starts_with("/nix/store/h-nixos-wsl-shell-zsh");
        let wrapped = |p: &Path| {
            (p == Path::new("/nix/store/h-nixos-wsl-shell-zsh/bin/zsh"))
                .then(|| PathBuf::from("/run/current-system/sw/bin/zsh"))
        };
        let (c, note) = shell_candidates(
            &alice,
            Some(Path::new("/bin/fish")),
            &is_self,
            &wrapped,
            &|_| true,
        );
        assert_eq!(c[0], Path::new("/run/current-system/sw/bin/zsh"));
        assert!(note.is_none());
        // A link that stands for this program again is skipped, never exec'd in a loop.
        let (c, _) = shell_candidates(&alice, None, &is_self, &|p| Some(p.into()), &|_| true);
        assert_eq!(c[0], Path::new(FALLBACK_SHELLS[0]));
    }

    #[test]
    fn wrapped_shell_reads_the_link_next_to_bin() {
        let dir = std::env::temp_dir().join(format!("nixos-wsl-wrapped-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::os::unix::fs::symlink(
            "/nix/store/x-nixos-wsl/bin/nixos-wsl-shell",
            dir.join("bin/zsh"),
        )
        .unwrap();
        assert_eq!(wrapped_shell(&dir.join("bin/zsh")), None);
        std::os::unix::fs::symlink("relative/zsh", dir.join("shell")).unwrap();
        assert_eq!(wrapped_shell(&dir.join("bin/zsh")), None);
        std::fs::remove_file(dir.join("shell")).unwrap();
        std::os::unix::fs::symlink("/run/current-system/sw/bin/zsh", dir.join("shell")).unwrap();
        assert_eq!(
            wrapped_shell(&dir.join("bin/zsh")),
            Some(PathBuf::from("/run/current-system/sw/bin/zsh"))
        );
        assert_eq!(wrapped_shell(Path::new("/bin")), None);
        assert_eq!(wrapped_shell(&dir.join("zsh")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unusable_shell_falls_back_with_a_reason() {
        let usable = |p: &Path| p == Path::new("/bin/sh");
        let (c, note) = shell_candidates(&alice(), None, &|_| false, &|_| None, &usable);
        assert_eq!(c, vec![PathBuf::from("/bin/sh")]);
        assert!(note.unwrap().contains("/bin/zsh"));
        let (c, _) = shell_candidates(&alice(), None, &|_| false, &|_| None, &|_| false);
        assert_eq!(c, vec![PathBuf::from("/bin/sh")]);
    }

    #[test]
    fn empty_passwd_shell_means_bin_sh() {
        let mut a = alice();
        a.shell = PathBuf::new();
        let (c, _) = shell_candidates(&a, None, &|_| false, &|_| None, &|_| true);
        assert_eq!(c[0], Path::new("/bin/sh"));
    }

    #[test]
    fn environment_is_recomputed_per_user() {
        let inherited: Vec<(OsString, OsString)> = [
            ("HOSTTYPE", "x86_64"),
            ("HOME", "/root"),
            ("USER", "root"),
            ("WSL_DISTRO_NAME", "NixOS"),
            ("XDG_RUNTIME_DIR", "/mnt/wslg/runtime-dir"),
            ("PATH", "/usr/bin:/mnt/c/Program Files/x"),
            ("MAIL", "/var/mail/root"),
        ]
        .iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
        let env = session_env(
            &inherited,
            &alice(),
            Path::new("/bin/zsh"),
            Some(Path::new("/run/user/1000")),
        );
        let get = |k: &str| {
            env.iter()
                .find(|(kk, _)| kk == k)
                .map(|(_, v)| v.to_str().unwrap())
        };
        assert_eq!(get("HOME"), Some("/home/alice"));
        assert_eq!(get("USER"), Some("alice"));
        assert_eq!(get("LOGNAME"), Some("alice"));
        assert_eq!(get("SHELL"), Some("/bin/zsh"));
        assert_eq!(get("MAIL"), None);
        assert_eq!(get("XDG_RUNTIME_DIR"), Some("/run/user/1000"));
        assert_eq!(
            get("DBUS_SESSION_BUS_ADDRESS"),
            Some("unix:path=/run/user/1000/bus")
        );
        assert_eq!(get("PATH"), Some("/usr/bin:/mnt/c/Program Files/x"));
        assert_eq!(get("WSL_DISTRO_NAME"), Some("NixOS"));
        assert_eq!(env.iter().filter(|(k, _)| k == "HOME").count(), 1);
        let env = session_env(&inherited, &alice(), Path::new("/bin/zsh"), None);
        assert!(env
            .iter()
            .all(|(k, _)| k != "XDG_RUNTIME_DIR" && k != "DBUS_SESSION_BUS_ADDRESS"));
    }

    #[test]
    fn non_utf8_environment_survives() {
        let inherited = vec![(OsString::from("X"), OsString::from_vec(vec![0xff, b'a']))];
        let env = session_env(&inherited, &alice(), Path::new("/bin/sh"), None);
        assert_eq!(env[0].1.as_bytes(), &[0xff, b'a']);
    }

    #[test]
    fn a_missing_home_is_reported_once() {
        let a = alice();
        let cwds = cwd_candidates(Some(Path::new("/root")), &a);
        let root = PathBuf::from("/");
        assert!(home_note(&cwds, Some(&root), &a)
            .unwrap()
            .contains("/home/alice"));
        assert_eq!(home_note(&cwds, Some(&cwds[0]), &a), None);
        let mut homeless = alice();
        homeless.home = PathBuf::new();
        let cwds = cwd_candidates(None, &homeless);
        assert!(home_note(&cwds, Some(&root), &homeless)
            .unwrap()
            .contains("no home"));
        // Starting in `/` because the caller was there is not news.
        assert_eq!(
            home_note(std::slice::from_ref(&root), Some(&root), &a),
            None
        );
    }

    #[test]
    fn roots_home_becomes_the_users_home() {
        assert_eq!(
            cwd_candidates(Some(Path::new("/root")), &alice()),
            vec![PathBuf::from("/home/alice"), PathBuf::from("/")]
        );
        assert_eq!(
            cwd_candidates(Some(Path::new("/mnt/c/My Documents")), &alice())[0],
            PathBuf::from("/mnt/c/My Documents")
        );
        let mut root = alice();
        root.uid = Uid::from_raw(0);
        assert_eq!(
            cwd_candidates(Some(Path::new("/root")), &root)[0],
            PathBuf::from("/root")
        );
        assert_eq!(
            cwd_candidates(None, &alice())[0],
            PathBuf::from("/home/alice")
        );
    }
}
