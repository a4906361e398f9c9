//! Checking a tarball the way `wsl --import` and WSL's first start will see it
//! (wsl-behaviour.md section 4). The checks are pure functions of an [`Index`]; only
//! [`verify_file`] reads the tarball.

use std::fmt;
use std::path::Path;

use anyhow::Result;

use super::header::Kind;
use super::index::{display, Index, IndexEntry};
use super::wslconf::{self, DISTRIBUTION_CONF_KEYS, WSL_CONF_KEYS};
use crate::installer::handover::root_shell;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Ok,
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.severity {
            Severity::Ok => "ok",
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{tag}: {}", self.message)
    }
}

/// Files whose contents the checks need.
pub const WANTED: &[&[u8]] = &[b"etc/passwd", b"etc/wsl.conf", b"etc/wsl-distribution.conf"];

struct Report(Vec<Finding>);

impl Report {
    fn push(&mut self, severity: Severity, message: impl Into<String>) {
        self.0.push(Finding {
            severity,
            message: message.into(),
        });
    }
    fn ok(&mut self, m: impl Into<String>) {
        self.push(Severity::Ok, m)
    }
    fn warn(&mut self, m: impl Into<String>) {
        self.push(Severity::Warning, m)
    }
    fn error(&mut self, m: impl Into<String>) {
        self.push(Severity::Error, m)
    }
}

fn is_elf(e: &IndexEntry) -> bool {
    e.head.starts_with(b"\x7fELF")
}

/// The interpreter of a `#!` script, if any.
fn shebang(e: &IndexEntry) -> Option<Vec<u8>> {
    let rest = e.head.strip_prefix(b"#!")?;
    let line = rest.split(|&b| b == b'\n').next()?;
    let text = line.trim_ascii_start();
    let end = text
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(text.len());
    (end > 0).then(|| text[..end].to_vec())
}

/// Describes whether `path` resolves to an executable inside the tarball; `Err` says why not.
fn executable(index: &Index, path: &[u8]) -> Result<String, String> {
    let (target, e) = index.resolve(path)?;
    if e.kind != Kind::Regular {
        return Err(format!(
            "{} is a {}, not a regular file",
            display(&target),
            e.kind
        ));
    }
    if e.mode & 0o111 == 0 {
        return Err(format!(
            "{} is not executable (mode {:o})",
            display(&target),
            e.mode
        ));
    }
    if is_elf(e) {
        return Ok(format!("{} (ELF)", display(&target)));
    }
    if let Some(interp) = shebang(e) {
        let (it, ie) = index.resolve(&interp).map_err(|why| {
            format!(
                "{} is a script whose interpreter {} is missing: {why}",
                display(&target),
                String::from_utf8_lossy(&interp)
            )
        })?;
        if ie.kind != Kind::Regular || ie.mode & 0o111 == 0 {
            return Err(format!(
                "the interpreter {} of {} is not an executable file",
                display(&it),
                display(&target)
            ));
        }
        return Ok(format!(
            "{} (script for {})",
            display(&target),
            display(&it)
        ));
    }
    Ok(format!(
        "{} (executable, neither ELF nor script?)",
        display(&target)
    ))
}

fn check_config(
    r: &mut Report,
    index: &Index,
    path: &[u8],
    keys: &[(&'static str, wslconf::ValueType)],
) -> Option<wslconf::Parsed> {
    let name = display(path);
    let data = match index.resolve(path) {
        Ok((target, _)) => index.contents.get(&target)?,
        Err(_) => return None,
    };
    let parsed = wslconf::parse(data, keys);
    let mut errors = 0;
    for p in &parsed.problems {
        if p.is_error() {
            errors += 1;
            r.error(p.message(&name));
        } else {
            r.warn(p.message(&name));
        }
    }
    if errors == 0 {
        r.ok(format!(
            "{name} parses with WSL's rules ({} settings)",
            parsed.settings.len()
        ));
    }
    Some(parsed)
}

/// Runs every check on an indexed tarball.
pub fn check(index: &Index) -> Vec<Finding> {
    let mut r = Report(Vec::new());
    r.ok(format!(
        "{} entries, {:.1} MB unpacked",
        index.count,
        index.unpacked as f64 / 1e6
    ));

    // Hard links: bsdtar inside WSL fails the whole import on the first one.
    if index.hard_links.is_empty() {
        r.ok("no hard links");
    } else {
        let examples: Vec<String> = index
            .hard_links
            .iter()
            .take(3)
            .map(|(p, t)| format!("{p} => {t}"))
            .collect();
        r.error(format!(
            "{} hard link(s); `wsl --import` fails with 0x80004005 on them (e.g. {})",
            index.hard_links.len(),
            examples.join(", ")
        ));
    }
    for (p, why) in &index.bad_paths {
        r.error(format!("entry {p:?}: {why}"));
    }
    for (p, e) in &index.entries {
        if let Kind::Other(flag) = e.kind {
            r.error(format!(
                "{}: unsupported entry type {:?}",
                display(p),
                flag as char
            ));
        }
    }

    let etc = index
        .resolve(b"/etc")
        .ok()
        .filter(|(_, e)| e.kind == Kind::Directory);
    let sh = index.resolve(b"/bin/sh").ok();
    if etc.is_none() && sh.is_none() {
        r.error("neither /etc nor /bin/sh is present; WSL refuses such a tarball");
    }

    // Root's login shell: WSL starts it on every launch.
    match index.resolve(b"/etc/passwd") {
        Err(why) => r.error(format!("no /etc/passwd ({why}); WSL cannot start a shell")),
        Ok((target, _)) => match index.contents.get(&target) {
            None => r.error("/etc/passwd is too large or unreadable"),
            Some(data) => check_passwd(&mut r, index, data),
        },
    }

    // Microsoft's store validator wants these to be ELF executables.
    for p in [&b"/bin/sh"[..], b"/bin/bash"] {
        match executable(index, p) {
            Ok(d) if d.ends_with("(ELF)") => r.ok(format!("{} resolves to {d}", String::from_utf8_lossy(p))),
            Ok(d) => r.warn(format!(
                "{} resolves to {d}; Microsoft's store validator wants an ELF executable",
                String::from_utf8_lossy(p)
            )),
            Err(why) => r.warn(format!(
                "{} does not resolve to an executable ({why}); Microsoft's store validator wants one",
                String::from_utf8_lossy(p)
            )),
        }
    }

    match check_config(&mut r, index, b"etc/wsl.conf", WSL_CONF_KEYS) {
        None => r.warn("no /etc/wsl.conf; WSL uses its defaults"),
        Some(conf) => {
            if conf.get("boot.systemd").and_then(wslconf::parse_bool) == Some(true) {
                if let Err(why) = executable(index, b"/sbin/init") {
                    r.warn(format!("boot.systemd is true but /sbin/init is not executable ({why}); WSL disables systemd"));
                }
            }
            if let Some(user) = conf.get("user.default") {
                let known = index
                    .resolve(b"/etc/passwd")
                    .ok()
                    .and_then(|(t, _)| index.contents.get(&t))
                    .is_some_and(|pw| {
                        pw.split(|&b| b == b'\n')
                            .any(|l| l.split(|&b| b == b':').next() == Some(user.as_bytes()))
                    });
                if !known {
                    r.warn(format!(
                        "user.default is {user:?}, which /etc/passwd does not list"
                    ));
                }
            }
        }
    }

    if let Some(e) = index.entries.get(&b"etc/wsl-distribution.conf"[..]) {
        if e.uid != 0 || e.gid != 0 || e.mode != 0o644 || e.kind != Kind::Regular {
            r.error(format!(
                "/etc/wsl-distribution.conf must be a root:root 0644 regular file (it is a {} {}:{} {:o})",
                e.kind, e.uid, e.gid, e.mode
            ));
        }
        if let Some(conf) = check_config(
            &mut r,
            index,
            b"etc/wsl-distribution.conf",
            DISTRIBUTION_CONF_KEYS,
        ) {
            for key in ["shortcut.icon", "windowsterminal.profileTemplate"] {
                if let Some(path) = conf.get(key) {
                    if let Err(why) = index.resolve(path.as_bytes()) {
                        r.warn(format!(
                            "{key} names {path}, which is not in the tarball ({why})"
                        ));
                    }
                }
            }
        }
    }
    r.0
}

fn check_passwd(r: &mut Report, index: &Index, data: &[u8]) {
    let mut bad = 0;
    let mut root_line = None;
    for (n, line) in data.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&[u8]> = line.split(|&b| b == b':').collect();
        if fields.len() != 7
            || fields[0].is_empty()
            || std::str::from_utf8(fields[2]).map_or(true, |u| u.parse::<u32>().is_err())
        {
            bad += 1;
            r.error(format!("/etc/passwd:{}: malformed entry", n + 1));
            continue;
        }
        if fields[2] == b"0" && root_line.is_none() {
            root_line = Some((n + 1, fields[0].to_vec()));
        }
    }
    match root_line {
        None => r.error("/etc/passwd has no uid 0 entry"),
        Some((n, name)) if name != b"root" => r.error(format!(
            "/etc/passwd:{n}: uid 0 is named {:?}, not root",
            String::from_utf8_lossy(&name)
        )),
        Some(_) => {
            if bad == 0 {
                r.ok("/etc/passwd parses; uid 0 is root");
            }
            let shell = root_shell(data).unwrap_or_else(|| b"/bin/sh".to_vec());
            let s = String::from_utf8_lossy(&shell).into_owned();
            match executable(index, &shell) {
                Ok(d) => r.ok(format!("root's shell {s} resolves to {d}")),
                Err(why) => r.error(format!(
                    "root's shell {s} does not resolve to an executable file: {why}"
                )),
            }
        }
    }
}

/// Indexes the tarball at `path` and checks it.
pub fn verify_file(path: &Path) -> Result<Vec<Finding>> {
    let first = Index::scan(path, &|p| WANTED.contains(&p), &mut |_| Ok(()))?;
    // Wanted files may be symlinks (into /nix/store, say): fetch their targets in a second pass.
    let mut targets: Vec<Vec<u8>> = Vec::new();
    for w in WANTED {
        let mut abs = b"/".to_vec();
        abs.extend_from_slice(w);
        if let Ok((t, e)) = first.resolve(&abs) {
            if e.kind == Kind::Regular && !first.contents.contains_key(&t) {
                targets.push(t);
            }
        }
    }
    let index = if targets.is_empty() {
        first
    } else {
        Index::scan(
            path,
            &|p| WANTED.contains(&p) || targets.iter().any(|t| t == p),
            &mut |_| Ok(()),
        )?
    };
    Ok(check(&index))
}

/// Whether any finding is an error.
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}
