//! `nixos-wsl doctor`: read-only checks of everything a NixOS-WSL distribution needs, each
//! `ok`, `warn` or `fail`, and every warn or fail with the exact fix. For "wsl -d NixOS
//! hangs, which logs should I send?": run `wsl -d NixOS -u root -e /bin/nixos-wsl doctor`.
//!
//! It never hangs: every program it asks (systemctl) is bounded, and the whole run has a
//! budget of [`BUDGET`]. It changes no file (from outside the namespace it joins it, as root,
//! to ask systemd, like `status`).

use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

use super::render::json_string;
use super::status::{self, Mode};
use super::UsageError;
use crate::config::Config;
use crate::generation;
use crate::paths::{ACTIVATION_LOG, CONFIG_FILE, STATE_DIR};
use crate::wslconf;

pub(crate) const USAGE: &str = "\
usage: nixos-wsl doctor [--json]

Checks the distribution, read-only, and says for each check ok, warn or fail, with the fix
for every warn and fail: the WSL kernel and interop, the systemd mode, the programs WSL and
Windows tools run by absolute path, /etc/wsl.conf, the activation, systemd and its failed
units, the default user's systemd instance, the .exe handler, free space, /etc/resolv.conf,
the booted generation, and this boot's state in /run/nixos-wsl. Finishes within 2 s.

Exit status: 0 all ok, 1 warnings, 2 failures (and 2 for usage errors).
";

/// The whole run's bound for the programs it asks (systemctl), well under 2 s.
pub(crate) const BUDGET: Duration = Duration::from_millis(1600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "fail",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Check {
    pub(crate) name: &'static str,
    pub(crate) level: Level,
    pub(crate) message: String,
    /// What to do, for warn and fail.
    pub(crate) fix: Option<String>,
}

fn ok(name: &'static str, message: impl Into<String>) -> Check {
    Check {
        name,
        level: Level::Ok,
        message: message.into(),
        fix: None,
    }
}

fn bad(
    name: &'static str,
    level: Level,
    message: impl Into<String>,
    fix: impl Into<String>,
) -> Check {
    Check {
        name,
        level,
        message: message.into(),
        fix: Some(fix.into()),
    }
}

pub(crate) fn parse(args: &[OsString]) -> Result<Option<bool>, UsageError> {
    super::json_flag(args)
}

pub fn main(args: &[OsString]) -> i32 {
    super::dispatch("doctor", USAGE, args, parse, run)
}

fn run(json: bool) -> i32 {
    let checks = checks();
    print!(
        "{}",
        if json {
            render_json(&checks)
        } else {
            render_text(&checks)
        }
    );
    exit_code(&checks)
}

/// 0 all ok, 1 warnings, 2 failures.
pub(crate) fn exit_code(checks: &[Check]) -> i32 {
    match checks.iter().map(|c| c.level).max() {
        Some(Level::Fail) => 2,
        Some(Level::Warn) => 1,
        _ => 0,
    }
}

pub(crate) fn render_text(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        out.push_str(&format!(
            "{:<5} {}: {}\n",
            c.level.as_str(),
            c.name,
            c.message
        ));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("      fix: {fix}\n"));
        }
    }
    let count = |l| checks.iter().filter(|c| c.level == l).count();
    out.push_str(&format!(
        "{} ok, {} warn, {} fail\n",
        count(Level::Ok),
        count(Level::Warn),
        count(Level::Fail)
    ));
    out
}

pub(crate) fn render_json(checks: &[Check]) -> String {
    let items: Vec<String> = checks
        .iter()
        .map(|c| {
            format!(
                "{{\"name\":{},\"status\":{},\"message\":{},\"fix\":{}}}",
                json_string(c.name),
                json_string(c.level.as_str()),
                json_string(&c.message),
                c.fix.as_deref().map_or("null".into(), json_string)
            )
        })
        .collect();
    let count = |l| checks.iter().filter(|c| c.level == l).count();
    format!(
        "{{\"checks\":[{}],\"summary\":{{\"ok\":{},\"warn\":{},\"fail\":{}}}}}\n",
        items.join(","),
        count(Level::Ok),
        count(Level::Warn),
        count(Level::Fail)
    )
}

/// Every check, in order.
fn checks() -> Vec<Check> {
    let started = Instant::now();
    let config = Config::load(Path::new(CONFIG_FILE));
    let wsl_conf = std::fs::read("/etc/wsl.conf").ok();
    let parsed = wsl_conf
        .as_deref()
        .map(|t| wslconf::parse(t, wslconf::WSL_CONF_KEYS));
    let native = parsed
        .as_ref()
        .and_then(|p| p.get("boot.systemd"))
        .and_then(wslconf::parse_bool)
        .unwrap_or(false);
    // status' own inspection: the mode, systemd's state, failed units (joining the namespace
    // from outside, so the systemctl calls below run there too).
    let (st, known) = status::inspect_with(BUDGET / 4);
    let systemctl = crate::systemd::systemctl_for(&config.systemd);
    let ask = |args: &[&str]| -> Result<(i32, String), String> {
        let left = BUDGET.saturating_sub(started.elapsed()).min(BUDGET / 4);
        let program = systemctl.as_deref().ok_or("no systemctl found")?;
        if left.is_zero() {
            return Err("no time left to ask systemctl".into());
        }
        super::run_bounded(program, args, left).map_err(|e| format!("{e:#}"))
    };

    let mut out = vec![kernel(), interop(), mode(native, &st, known)];
    out.push(paths(native));
    out.push(wsl_conf_check(wsl_conf.as_deref(), parsed.as_ref()));
    out.push(activation());
    out.push(systemd(&st, &ask));
    out.push(user_session(&config, &st, &ask));
    out.push(binfmt());
    out.push(disk());
    out.push(resolv_conf(parsed.as_ref()));
    out.push(generations());
    out.push(state());
    out
}

fn kernel() -> Check {
    let version = std::fs::read_to_string("/proc/version").unwrap_or_default();
    let release = version.split_whitespace().nth(2).unwrap_or("?").to_owned();
    if version.to_ascii_lowercase().contains("microsoft") {
        ok("kernel", format!("WSL 2 kernel {release}"))
    } else {
        bad(
            "kernel",
            Level::Warn,
            format!("{release} is not WSL's kernel"),
            "NixOS-WSL runs in WSL 2 (`wsl --status` on Windows says which kernel WSL uses); elsewhere the WSL checks below do not apply",
        )
    }
}

fn interop() -> Check {
    match std::env::var_os("WSL_INTEROP") {
        Some(path) if Path::new(&path).exists() => ok("interop", format!("WSL's interop socket {}", Path::new(&path).display())),
        Some(path) => bad(
            "interop",
            Level::Warn,
            format!("WSL_INTEROP names {}, which does not exist", Path::new(&path).display()),
            "run this from a session WSL started (wsl -d <distro>); `wsl -t <distro>` renews the socket",
        ),
        None => bad(
            "interop",
            Level::Warn,
            "WSL_INTEROP is not set: Windows programs cannot be started from here",
            "run this from a session WSL started; check [interop] enabled in /etc/wsl.conf (wsl.wslConf.interop.enabled)",
        ),
    }
}

fn mode(native: bool, st: &status::Status, known: bool) -> Check {
    match (native, st.mode) {
        (true, Mode::WslSystemd) => ok("mode", "WSL starts systemd ([boot] systemd=true), and it is PID 1"),
        (false, Mode::Namespace) => ok("mode", "the login shell's systemd namespace (no [boot] systemd)"),
        (false, Mode::None) if known => bad(
            "mode",
            Level::Warn,
            "no systemd runs yet (no launch has started it this boot)",
            "start a session (wsl -d <distro>); if systemd does not come up, see `nixos-wsl logs`",
        ),
        (true, found) => bad(
            "mode",
            Level::Fail,
            format!("/etc/wsl.conf asks WSL to start systemd, but {} runs", found.as_str()),
            "WSL runs /sbin/init only if it is executable: check /sbin/init -> nixos-wsl-init (`sudo nixos-rebuild switch` recreates it), then `wsl -t <distro>`",
        ),
        (false, found) => bad(
            "mode",
            if known { Level::Fail } else { Level::Warn },
            format!("/etc/wsl.conf has no [boot] systemd=true, but the mode found is {}", found.as_str()),
            if known {
                "set wsl.nativeSystemd to match how the system runs, rebuild, and restart with `wsl -t <distro>`"
            } else {
                "run the doctor as root to see inside: wsl -d <distro> -u root -e /bin/nixos-wsl doctor"
            },
        ),
    }
}

/// The programs WSL and Windows-side tools run by absolute path (nix/README.md's table),
/// plus every link the module recorded.
fn paths(native: bool) -> Check {
    let mut wanted: Vec<String> = [
        "/bin/sh",
        "/bin/bash",
        "/bin/mount",
        "/bin/true",
        "/bin/login",
        "/bin/nixos-wsl",
    ]
    .iter()
    .map(|p| p.to_string())
    .collect();
    if native {
        wanted.extend(["/sbin/init", "/bin/systemctl", "/bin/grep"].map(String::from));
    }
    if let Ok(manifest) = std::fs::read_to_string("/var/lib/nixos-wsl/links") {
        for line in manifest.lines() {
            // WSL's own /init-based links exist only while WSL runs the distribution.
            if line.starts_with('/') && line != "/bin/wslpath" && !wanted.iter().any(|w| w == line)
            {
                wanted.push(line.to_owned());
            }
        }
    }
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|p| !crate::session::is_executable(Path::new(p.as_str())))
        .collect();
    if missing.is_empty() {
        ok(
            "paths",
            format!(
                "{} programs WSL and Windows tools call are there",
                wanted.len()
            ),
        )
    } else {
        let list: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        bad(
            "paths",
            Level::Fail,
            format!("missing or not executable: {}", list.join(", ")),
            "`sudo nixos-rebuild switch` recreates the module's links (wsl.links); add your own with wsl.extraBin",
        )
    }
}

fn wsl_conf_check(text: Option<&[u8]>, parsed: Option<&wslconf::Parsed>) -> Check {
    let (Some(_), Some(parsed)) = (text, parsed) else {
        return bad(
            "wsl.conf",
            Level::Warn,
            "no /etc/wsl.conf: WSL uses its defaults",
            "the module writes it (wsl.wslConf); run `sudo nixos-rebuild switch`",
        );
    };
    if let Some(p) = parsed
        .problems
        .iter()
        .find(|p| matches!(p, wslconf::Problem::Syntax { .. }))
    {
        return bad(
            "wsl.conf",
            Level::Fail,
            p.message("/etc/wsl.conf"),
            "WSL stops reading /etc/wsl.conf at a syntax error: set the keys with wsl.wslConf and rebuild",
        );
    }
    if let Some(p) = parsed.problems.first() {
        return bad(
            "wsl.conf",
            Level::Warn,
            p.message("/etc/wsl.conf"),
            "remove the key (WSL prints this at every start); our own settings go to /etc/nixos-wsl.conf",
        );
    }
    ok(
        "wsl.conf",
        format!(
            "parses as WSL reads it ({} settings)",
            parsed.settings.len()
        ),
    )
}

fn activation() -> Check {
    if crate::activation::failed() {
        return bad(
            "activation",
            Level::Fail,
            format!("the NixOS activation of this boot failed (see {ACTIVATION_LOG})"),
            format!(
                "fix the configuration and rebuild; meanwhile {}",
                generation::rollback_hint(
                    Path::new(generation::PROFILES),
                    Some(&crate::session::distro_name())
                )
                .unwrap_or_else(|| "boot an earlier generation with `nixos-wsl boot`".into())
            ),
        );
    }
    if std::fs::symlink_metadata("/run/current-system").is_err() {
        return bad(
            "activation",
            Level::Warn,
            "this boot is not activated yet (/run/current-system is missing)",
            "start a session (wsl -d <distro>): its first launch activates the system",
        );
    }
    let log = std::fs::read_to_string(ACTIVATION_LOG).unwrap_or_default();
    match log
        .lines()
        .find(|l| l.to_ascii_lowercase().contains("error"))
    {
        Some(line) => bad(
            "activation",
            Level::Warn,
            format!("finished, but its log reports: {}", line.trim()),
            format!("read {ACTIVATION_LOG} (`nixos-wsl logs`) and fix what it names"),
        ),
        None => ok("activation", "finished this boot, no errors in its log"),
    }
}

type Ask<'a> = dyn Fn(&[&str]) -> Result<(i32, String), String> + 'a;

fn systemd(st: &status::Status, ask: &Ask) -> Check {
    let state = st.systemd.as_ref().and_then(|s| s.state.clone());
    match state.as_deref() {
        Some("running") => ok("systemd", "running, no failed units"),
        Some("degraded") => {
            let failed = ask(&[
                "list-units",
                "--failed",
                "--plain",
                "--no-legend",
                "--no-pager",
            ])
            .map(|(_, out)| {
                out.lines()
                    .filter_map(|l| l.split_whitespace().next())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_else(|why| format!("(cannot list them: {why})"));
            bad(
                "systemd",
                Level::Warn,
                format!("degraded; failed units: {failed}"),
                "`systemctl status <unit>` and `journalctl -b -u <unit>` say why; fix or disable the unit (systemd.services.<name>.enable = false;)",
            )
        }
        Some(other) => bad(
            "systemd",
            Level::Fail,
            format!("is-system-running says {other}"),
            "see `nixos-wsl status` and `nixos-wsl logs`; `wsl -t <distro>` restarts it",
        ),
        None if st.systemd.is_some() => bad(
            "systemd",
            Level::Fail,
            "systemd did not answer within the doctor's time (is it hung?)",
            "see `nixos-wsl logs`; restart the distribution with `wsl -t <distro>`",
        ),
        None => bad(
            "systemd",
            Level::Fail,
            "systemd is not running",
            "start a session (wsl -d <distro>); if it does not come up, see `nixos-wsl logs`",
        ),
    }
}

fn user_session(config: &Config, st: &status::Status, ask: &Ask) -> Check {
    let Ok(account) = crate::session::Account::by_name(&config.user) else {
        return bad(
            "user-session",
            Level::Fail,
            format!("the default user {} does not exist", config.user),
            "users.users.<name> for wsl.defaultUser; rebuild",
        );
    };
    if st.systemd.is_none() {
        return bad(
            "user-session",
            Level::Warn,
            "systemd is not running",
            "see the systemd check",
        );
    }
    let unit = format!("user@{}.service", account.uid);
    match ask(&["is-active", &unit]) {
        Ok((0, _)) => ok("user-session", format!("{unit} is active (`systemctl --user` works)")),
        Ok((_, state)) => bad(
            "user-session",
            Level::Warn,
            format!("{unit} is {} (\"Failed to start the systemd user session\")", state.trim()),
            format!(
                "keep lingering on (users.users.{}.linger = true, the module's default), or `sudo loginctl enable-linger {}`; then `wsl -t <distro>`",
                account.name, account.name
            ),
        ),
        Err(why) => bad("user-session", Level::Warn, format!("cannot ask systemd: {why}"), "see the systemd check"),
    }
}

fn binfmt() -> Check {
    match std::fs::read_to_string("/proc/sys/fs/binfmt_misc/WSLInterop") {
        Ok(text) if text.starts_with("enabled") => ok("binfmt", "WSL's WSLInterop entry runs .exe files"),
        Ok(_) => bad(
            "binfmt",
            Level::Warn,
            "WSL's WSLInterop entry is disabled: .exe files do not run",
            "enable it: echo 1 | sudo tee /proc/sys/fs/binfmt_misc/WSLInterop",
        ),
        Err(_) => bad(
            "binfmt",
            Level::Warn,
            "no WSLInterop entry in binfmt_misc: .exe files do not run (systemd-binfmt may have flushed it)",
            "`wsl --shutdown` restores it; with boot.binfmt.registrations set wsl.interop.register = true;",
        ),
    }
}

/// Free space on a file system: (bytes free to users).
fn free_bytes(path: &str) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    Some(s.blocks_available() as u64 * s.fragment_size() as u64)
}

fn disk() -> Check {
    const FAIL: u64 = 512 << 20;
    const WARN: u64 = 2 << 30;
    let mut worst = Level::Ok;
    let mut parts = Vec::new();
    for path in ["/", "/nix/store"] {
        match free_bytes(path) {
            Some(free) => {
                let level = if free < FAIL {
                    Level::Fail
                } else if free < WARN {
                    Level::Warn
                } else {
                    Level::Ok
                };
                worst = worst.max(level);
                parts.push(format!(
                    "{path} {:.1} GiB free",
                    free as f64 / (1u64 << 30) as f64
                ));
            }
            None => parts.push(format!("{path} unknown")),
        }
    }
    let message = parts.join(", ");
    if worst == Level::Ok {
        ok("disk", message)
    } else {
        bad(
            "disk",
            worst,
            message,
            "`sudo nix-collect-garbage -d` deletes old generations and unused store paths (then `sudo nixos-rebuild boot` to tidy the profile)",
        )
    }
}

fn resolv_conf(parsed: Option<&wslconf::Parsed>) -> Check {
    let wsl_writes = parsed
        .and_then(|p| p.get("network.generateResolvConf"))
        .and_then(wslconf::parse_bool)
        .unwrap_or(true);
    let link = std::fs::read_link("/etc/resolv.conf").ok();
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let by_wsl = link.as_deref() == Some(Path::new("/mnt/wsl/resolv.conf"))
        || text.contains("This file was automatically generated by WSL");
    match (wsl_writes, by_wsl) {
        (true, true) => ok("resolv.conf", "WSL writes it ([network] generateResolvConf)"),
        (false, false) => ok("resolv.conf", "NixOS manages it (generateResolvConf=false)"),
        (true, false) => bad(
            "resolv.conf",
            Level::Warn,
            "WSL is to write /etc/resolv.conf, but something else did",
            "leave it to WSL (no networking.nameservers, no services.resolved), or set wsl.wslConf.network.generateResolvConf = false; and let NixOS own it",
        ),
        (false, true) => bad(
            "resolv.conf",
            Level::Warn,
            "generateResolvConf is false, yet /etc/resolv.conf is still WSL's",
            "set networking.nameservers or services.resolved.enable = true; and rebuild, so NixOS writes it",
        ),
    }
}

fn generations() -> Check {
    let profiles = Path::new(generation::PROFILES);
    let current = generation::current(profiles);
    match (generation::booted().map(|(n, _)| n), current) {
        (Some(b), Some(c)) if b == c => {
            ok("generation", format!("booted the current generation {c}"))
        }
        (Some(b), Some(c)) => bad(
            "generation",
            Level::Warn,
            format!("booted generation {b}, but the current one is {c}"),
            "`wsl -t <distro>` boots the current one (or `nixos-wsl boot --generation N` another)",
        ),
        (None, Some(c)) => ok(
            "generation",
            format!("current generation {c} (this boot recorded none yet)"),
        ),
        (_, None) => bad(
            "generation",
            Level::Warn,
            format!("{}/system names no generation", generation::PROFILES),
            "`sudo nixos-rebuild switch` makes one",
        ),
    }
}

/// What may be in /run/nixos-wsl, and of which type.
const STATE_FILES: &[(&str, bool)] = &[
    ("lock", false),
    ("ns", true),
    ("notify", false),
    ("ready", false),
    ("systemd.log", false),
    ("activation.log", false),
    ("activated", false),
    ("init.log", false),
    ("generation", false),
];

fn state() -> Check {
    let Ok(meta) = std::fs::symlink_metadata(STATE_DIR) else {
        return ok(
            "state",
            format!("{STATE_DIR} does not exist yet (no launch this boot)"),
        );
    };
    if !meta.is_dir() {
        return bad(
            "state",
            Level::Fail,
            format!("{STATE_DIR} is not a directory"),
            "the next launch moves it aside; or `wsl -t <distro>` (it lives in /run)",
        );
    }
    let mut odd = Vec::new();
    for entry in std::fs::read_dir(STATE_DIR).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(ft) = entry.file_type() else { continue };
        match STATE_FILES.iter().find(|(n, _)| *n == name) {
            _ if ft.is_symlink() => odd.push(format!("{name} (a symlink)")),
            Some((_, dir)) if *dir != ft.is_dir() => odd.push(format!("{name} (wrong type)")),
            Some(_) => {}
            None => odd.push(name),
        }
    }
    if odd.is_empty() {
        ok(
            "state",
            format!("{STATE_DIR} holds only this boot's own files"),
        )
    } else {
        odd.sort();
        bad(
            "state",
            Level::Warn,
            format!("unexpected in {STATE_DIR}: {}", odd.join(", ")),
            "harmless to the login shell (it never follows them); `wsl -t <distro>` clears /run",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_and_renderings() {
        let checks = vec![ok("a", "fine"), bad("b", Level::Warn, "meh \"x\"", "do y")];
        assert_eq!(exit_code(&checks), 1);
        assert_eq!(exit_code(&checks[..1]), 0);
        let mut worse = checks.clone();
        worse.push(bad("c", Level::Fail, "no", "yes"));
        assert_eq!(exit_code(&worse), 2);
        let text = render_text(&checks);
        assert!(
            text.contains("ok    a: fine\n")
                && text.contains("warn  b: meh \"x\"\n      fix: do y\n"),
            "{text}"
        );
        assert!(text.ends_with("1 ok, 1 warn, 0 fail\n"));
        assert_eq!(
            render_json(&checks),
            "{\"checks\":[{\"name\":\"a\",\"status\":\"ok\",\"message\":\"fine\",\"fix\":null},{\"name\":\"b\",\"status\":\"warn\",\"message\":\"meh \\\"x\\\"\",\"fix\":\"do y\"}],\"summary\":{\"ok\":1,\"warn\":1,\"fail\":0}}\n"
        );
    }

    #[test]
    fn arguments() {
        assert_eq!(parse(&[]), Ok(Some(false)));
        assert_eq!(parse(&[OsString::from("--json")]), Ok(Some(true)));
        assert!(parse(&[OsString::from("-x")]).is_err());
    }
}
