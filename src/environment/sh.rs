//! The fallback: sources the file with a real shell and reads back the environment it exports.
//!
//! Used only when [`super::script`] refuses the file (an `extraInit` with loops, command
//! substitution...). Costs a fork and two execs, about a millisecond, and is bounded in time
//! so a file that blocks cannot hang every launch.

use std::ffi::{CString, OsString};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{PollFd, PollFlags};
use nix::unistd::{Gid, Uid};

use super::script::is_name;
use super::Env;
use crate::session::Account;
use crate::sys::deadline::Deadline;

/// One shell run: the file sourced with its own output on stderr, so that stdout carries
/// nothing but what the shell itself then prints of its exported variables (`export -p`, a
/// builtin: no second program). `$1` is the file. A syntax error makes dash exit; bash, even
/// as `sh`, reports it and carries on, which would hand back half an environment, so its
/// message counts as a failure ([`syntax_error`]).
const SCRIPT: &str = r#". "$1" >&2; export -p"#;

/// The same, for exported values `export -p`'s quoting is not read back for: `env -0`
/// prints them as bytes. `$2` is `env`. A second run, only then.
const SCRIPT_ENV0: &str = r#". "$1" >&2; exec "$2" -0"#;

/// `env` by absolute path, so a file that empties PATH still reports its environment.
const ENV_PROGRAMS: &[&str] = &["/run/current-system/sw/bin/env", "/usr/bin/env", "/bin/env"];

/// Variables the shell itself sets or changes; the session gets the values it was given.
const SHELL_OWNED: &[&str] = &["_", "SHLVL", "PWD", "OLDPWD"];

/// Beyond this, the output is not an environment.
const MAX_OUTPUT: usize = 16 << 20;
/// Enough of stderr for a one-line reason.
const MAX_STDERR: usize = 4096;

/// Who the fallback shell runs as: the session's user. The file is shell code run for that
/// user (NixOS' `extraInit` may compute `$(id -u)` or create directories in `$HOME`); run as
/// root, it would compute root's values and leave root-owned files in the user's home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) uid: Uid,
    pub(crate) gid: Gid,
    /// Supplementary groups, as initgroups(3) sets them for a session.
    pub(crate) groups: Vec<Gid>,
}

impl Credentials {
    /// `account`'s uid and gid, with its groups from `/etc/group` (only the primary group if
    /// that lookup fails: the file just assigns variables).
    pub(crate) fn of(account: &Account) -> Credentials {
        let groups = CString::new(account.name.as_bytes())
            .ok()
            .and_then(|name| nix::unistd::getgrouplist(&name, account.gid).ok())
            .unwrap_or_else(|| vec![account.gid]);
        Credentials {
            uid: account.uid,
            gid: account.gid,
            groups,
        }
    }
}

/// Runs `shell -c '. file; export -p'` with exactly `env` (nothing of our own environment)
/// and returns the environment it exports, in `env`'s order, new names after.
///
/// `user`, when it is not who we already are, is who the shell runs as (dropping root needs
/// root). Variables the shell manages (`_`, `SHLVL`, `PWD`, `OLDPWD`) keep their values
/// from `env` or stay absent; names that are not shell names (`A-B`), which some shells drop
/// on import, are carried over from `env`. `Err` has a one-line reason: a syntax error (the
/// shell's first message), a non-zero exit, or no answer within `timeout` (the shell is
/// killed; background jobs the file started are left alone).
pub(crate) fn source(
    shell: &Path,
    file: &Path,
    env: &Env,
    timeout: Duration,
    user: Option<&Credentials>,
) -> anyhow::Result<Env> {
    // `.` searches PATH for a name without a slash.
    let file = if file.is_absolute() {
        file.to_owned()
    } else {
        Path::new(".").join(file)
    };
    let printed = run(shell, SCRIPT, &file, &[], env, timeout, user)?;
    if let Some(after) = read_export_p(&printed) {
        return Ok(merge(env, after));
    }
    log::debug!("cannot read back `export -p`; asking `env -0`");
    let env_program = ENV_PROGRAMS
        .iter()
        .map(Path::new)
        .find(|p| p.exists())
        .with_context(|| format!("no `env` program in {}", ENV_PROGRAMS.join(", ")))?;
    let printed = run(
        shell,
        SCRIPT_ENV0,
        &file,
        &[env_program.as_os_str()],
        env,
        timeout,
        user,
    )?;
    Ok(merge(env, parse_env0(&printed)))
}

/// Runs `shell -c script sh file args...` as [`source`] describes; its stdout.
fn run(
    shell: &Path,
    script: &str,
    file: &Path,
    args: &[&std::ffi::OsStr],
    env: &Env,
    timeout: Duration,
    user: Option<&Credentials>,
) -> anyhow::Result<Vec<u8>> {
    let mut command = Command::new(shell);
    command
        .args(["-c", script, "sh"])
        .arg(file)
        .args(args)
        .env_clear()
        .envs(env.iter())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(user) = user.filter(|u| u.uid != Uid::effective()) {
        let user = user.clone();
        // SAFETY: between fork and exec only setgroups(2), setgid(2) and setuid(2), which
        // are async-signal-safe and do not allocate; groups before ids, ids before exec.
        unsafe {
            command.pre_exec(move || {
                nix::unistd::setgroups(&user.groups)?;
                nix::unistd::setgid(user.gid)?;
                nix::unistd::setuid(user.uid)?;
                Ok(())
            });
        }
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", shell.display()))?;
    let outcome = collect(&mut child, timeout);
    if outcome.is_err() {
        // Our own child, by pid; it may already be gone.
        let _ = child.kill();
        let _ = child.wait();
    }
    let (status, stdout, stderr) = outcome?;
    let reason = String::from_utf8_lossy(&stderr);
    if let Some(line) = syntax_error(&reason, file) {
        bail!("{line}");
    }
    if !status.success() {
        match reason.lines().map(str::trim).find(|l| !l.is_empty()) {
            Some(line) => bail!("{line}"),
            None => bail!("{} exited with {status}", shell.display()),
        }
    }
    Ok(stdout)
}

/// bash's report of a syntax error in `file` itself among what the shell wrote on stderr:
/// `FILE: line N: syntax error ...`, after which bash goes on with half the file read. (dash
/// exits on one, which the exit status reports.) Only that form counts: whatever the file's
/// own commands print, or a syntax error in a file it sources, is not this file's.
fn syntax_error<'a>(stderr: &'a str, file: &Path) -> Option<&'a str> {
    let prefix = format!("{}: line ", file.display());
    stderr
        .lines()
        .find(|l| l.starts_with(&prefix) && l.contains(": syntax error"))
}

/// The exported variables from `export -p`'s output: dash's `export NAME='value'`, bash's
/// `export NAME="value"` (as `sh`) or `declare -x NAME="value"`, with `$'...'` for control
/// characters, all of which the in-process evaluator reads. `None` when it cannot (an
/// exported `IFS`, `declare -rx`, an escape it does not decode): the caller asks `env -0`.
fn read_export_p(printed: &[u8]) -> Option<Env> {
    let text: std::borrow::Cow<[u8]> = if printed.starts_with(b"declare ") {
        // bash, not as `sh`: one variable per line, control characters are `$'...'`.
        let mut out = Vec::with_capacity(printed.len());
        for line in printed.split_inclusive(|&b| b == b'\n') {
            out.extend_from_slice(b"export ");
            out.extend_from_slice(line.strip_prefix(b"declare -x ")?);
        }
        out.into()
    } else {
        printed.into()
    };
    super::script::evaluate(&text, &Env::new()).ok()
}

/// Reads stdout to its end and stderr as far as it goes, then reaps the child.
fn collect(
    child: &mut Child,
    timeout: Duration,
) -> anyhow::Result<(std::process::ExitStatus, Vec<u8>, Vec<u8>)> {
    let mut deadline = Deadline::after(timeout);
    let timed_out = || anyhow::anyhow!("no answer within {timeout:?}");
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        bail!("the shell's pipes are missing");
    };
    // Non-blocking: a background job the file started may hold stderr open for ever.
    set_nonblocking(&stdout).context("setting up the shell's stdout")?;
    set_nonblocking(&stderr).context("setting up the shell's stderr")?;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut stderr_open = true;
    loop {
        if deadline.passed() {
            return Err(timed_out());
        }
        let mut fds = vec![PollFd::new(stdout.as_fd(), PollFlags::POLLIN)];
        if stderr_open {
            fds.push(PollFd::new(stderr.as_fd(), PollFlags::POLLIN));
        }
        // A timeout shows as no readiness below; the deadline check above ends the wait.
        deadline
            .poll(&mut fds)
            .context("waiting for the shell's output")?;
        let ready: Vec<bool> = fds.iter().map(|f| f.any() == Some(true)).collect();
        drop(fds);
        if ready.get(1) == Some(&true) {
            stderr_open = read_available(&mut stderr, &mut err, MAX_STDERR)?;
        }
        if ready[0] && !read_available(&mut stdout, &mut out, MAX_OUTPUT)? {
            break;
        }
        if out.len() >= MAX_OUTPUT {
            bail!("more than {MAX_OUTPUT} bytes of environment");
        }
    }
    // stdout is closed: the shell printed its variables and exits now (or exec'd `env`).
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for the shell")? {
            break status;
        }
        if deadline.passed() {
            return Err(timed_out());
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    if stderr_open {
        read_available(&mut stderr, &mut err, MAX_STDERR)?;
    }
    Ok((status, out, err))
}

fn set_nonblocking(pipe: &impl AsRawFd) -> nix::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(pipe.as_raw_fd(), FcntlArg::F_GETFL)?);
    fcntl(
        pipe.as_raw_fd(),
        FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK),
    )?;
    Ok(())
}

/// Appends what a non-blocking pipe has now, up to `limit` bytes kept; `false` at its end.
fn read_available(pipe: &mut impl Read, buf: &mut Vec<u8>, limit: usize) -> io::Result<bool> {
    let mut chunk = [0u8; 8192];
    loop {
        match pipe.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                let keep = n.min(limit.saturating_sub(buf.len()));
                buf.extend_from_slice(&chunk[..keep]);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// `NAME=value\0...` as `env -0` prints it; entries without `=` are skipped.
pub(crate) fn parse_env0(output: &[u8]) -> Env {
    output
        .split(|&b| b == 0)
        .filter_map(|entry| {
            let eq = entry.iter().position(|&b| b == b'=')?;
            Some((
                OsString::from_vec(entry[..eq].to_vec()),
                OsString::from_vec(entry[eq + 1..].to_vec()),
            ))
        })
        .collect()
}

/// The shell's result, ordered like `before` with new names after, shell-owned variables
/// as in `before`, and non-shell names from `before` kept.
fn merge(before: &Env, mut after: Env) -> Env {
    for name in SHELL_OWNED {
        after.remove(name);
    }
    let mut merged = Env::new();
    for (name, value) in before.iter() {
        let keep_before =
            SHELL_OWNED.contains(&name.to_str().unwrap_or_default()) || !is_name(name.as_bytes());
        match after.remove(name) {
            Some(new) if !keep_before => merged.set(name, new),
            _ if keep_before => merged.set(name, value),
            _ => {}
        }
    }
    for (name, value) in after.into_vec() {
        merged.set(name, value);
    }
    merged
}
