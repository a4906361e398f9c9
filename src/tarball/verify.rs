//! Checking a tarball the way `wsl --import` and WSL's first start will see it
//! (wsl-behaviour.md section 4), and, for store distributions, the way Microsoft's
//! distribution validator sees it (`distributions/validate-modern.py` in microsoft/WSL, run
//! as `--tar FILE`). The checks are pure functions of an [`Index`]; only [`verify_file`] and
//! [`verify_file_with`] read the tarball.
//!
//! Microsoft's rules are checked with Microsoft's severity or a stricter one, and with its
//! reading of the archive: `validate_mode` looks files up without following symlinks unless
//! told to, its configuration files go through Python's `configparser` (not WSL's parser), its
//! ELF test is libmagic's description of the first bytes. Where WSL reads a file differently,
//! both readings are reported, each naming whose rule it is.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use anyhow::Result;

use super::index::{display, Index, IndexEntry};
use crate::installer::handover::root_shell;
use crate::tar::header::Kind;
use crate::wslconf::{self, DISTRIBUTION_CONF_KEYS, WSL_CONF_KEYS};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Severity {
    Ok,
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub(crate) severity: Severity,
    pub(crate) message: String,
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

/// The machine the distribution is for; its ELF checks want 64-bit executables of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// Parses the `--arch` value.
    pub(crate) fn parse(name: &str) -> Option<Arch> {
        match name {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// `e_machine` of its executables (`EM_X86_64`, `EM_AARCH64`).
    pub(crate) fn machine(self) -> u16 {
        match self {
            Arch::X86_64 => 62,
            Arch::Aarch64 => 183,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        })
    }
}

/// What to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Options {
    /// Apply Microsoft's store validator rules; without them only what `wsl --import` and
    /// WSL's first start depend on is checked.
    pub(crate) store: bool,
    /// The tarball is a `.wsl` distribution: `/etc/wsl-distribution.conf` is required and
    /// `/etc/wsl.conf` may only hold the keys Microsoft's validator knows.
    pub(crate) modern: bool,
    pub(crate) arch: Arch,
}

impl Options {
    /// What `wsl --import` and the first start need, nothing of the store's rules. The
    /// installer tarball is checked with this: it is a bootstrap image without `/etc/shadow`
    /// or `/sbin/init`, which Microsoft's validator would refuse.
    pub(crate) const IMPORT: Options = Options {
        store: false,
        modern: false,
        arch: Arch::X86_64,
    };
}

/// Files whose contents the checks need.
pub(crate) const WANTED: &[&[u8]] = &[b"etc/passwd", b"etc/wsl.conf", b"etc/wsl-distribution.conf"];

const USR_LIB_WSL: &str = "/usr/lib/wsl";
const USR_LIBEXEC_WSL: &str = "/usr/libexec/wsl";
const USR_SHARE_WSL: &str = "/usr/share/wsl";

/// validate-modern.py's size limit for the icon and the terminal profile (WSL reads at most
/// that much of them, `UtilReadFileRaw(path, 1024 * 1024)`).
const MAX_ASSET: u64 = 1024 * 1024;

/// Keys validate-modern.py accepts in `/etc/wsl-distribution.conf` (compared lower-cased).
const MS_DISTRIBUTION_CONF_KEYS: &[&str] = &[
    "oobe.command",
    "oobe.defaultuid",
    "shortcut.icon",
    "shortcut.enabled",
    "oobe.defaultname",
    "windowsterminal.profiletemplate",
    "windowsterminal.enabled",
];

/// validate-modern.py's `WSL_CONF_KEYS`: fewer than WSL itself reads ([`WSL_CONF_KEYS`] has
/// `boot.initTimeout`, `fileServer.logFile`, ...), and `general.hostname`, which WSL does not.
const MS_WSL_CONF_KEYS: &[&str] = &[
    "automount.cgroups",
    "automount.enabled",
    "automount.ldconfig",
    "automount.mountfstab",
    "automount.options",
    "automount.root",
    "boot.command",
    "boot.protectbinfmt",
    "boot.systemd",
    "fileserver.enabled",
    "filesystem.umask",
    "general.hostname",
    "gpu.appendlibpath",
    "gpu.enabled",
    "interop.appendwindowspath",
    "interop.enabled",
    "network.generatehosts",
    "network.generateresolvconf",
    "network.hostname",
    "time.usewindowstimezone",
    "user.default",
];

/// validate-modern.py's `DISCOURAGED_SYSTEM_UNITS`: units that fight WSL over networking,
/// `/tmp`, the console or `/dev`.
const DISCOURAGED_SYSTEM_UNITS: &[&str] = &[
    "systemd-resolved.service",
    "systemd-networkd.service",
    "systemd-networkd-wait-online.service",
    "systemd-tmpfiles-setup.service",
    "systemd-tmpfiles-clean.service",
    "systemd-tmpfiles-setup-dev-early.service",
    "systemd-tmpfiles-setup-dev.service",
    "systemd-vconsole-setup.service",
    "tmp.mount",
    "NetworkManager.service",
    "NetworkManager-wait-online.service",
    "console-getty.service",
    "networking.service",
    "hypervkvpd.service",
];

/// Where validate-modern.py looks for `*.target.wants` (normalised, no leading `/`).
const SYSTEMD_CONFIG_DIRS: &[&str] = &[
    "usr/local/lib/systemd/system",
    "usr/lib/systemd/system",
    "etc/systemd/system",
];

/// validate-modern.py's `WSL1_UNSUPPORTED_XATTRS`.
const WSL1_UNSUPPORTED_XATTRS: &[&str] = &["security.selinux", "security.ima", "security.evm"];

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

/// `e_machine` of a 64-bit ELF file whose `e_version` is 1, from its first bytes: what
/// validate-modern.py's regexes on libmagic's description (`^ELF 64-bit.* x86-64, version 1`,
/// `^ELF 64-bit.* ARM aarch64, version 1`) accept. libmagic's "version 1" is `e_version` (offset
/// 20), not `EI_VERSION` (which it ignores), and it reads both byte orders; so do we, so that
/// nothing libmagic accepts is refused here. `Err` says what the bytes are instead.
pub(crate) fn elf64_machine(head: &[u8]) -> Result<u16, String> {
    if !head.starts_with(b"\x7fELF") {
        return Err("not an ELF file".into());
    }
    match head.get(4) {
        Some(2) => {}
        Some(1) => return Err("a 32-bit ELF file".into()),
        _ => return Err("an ELF file of invalid class".into()),
    }
    let big = match head.get(5) {
        Some(1) => false,
        Some(2) => true,
        _ => return Err("an ELF file of invalid byte order".into()),
    };
    let (Some(m), Some(v)) = (head.get(18..20), head.get(20..24)) else {
        return Err("an ELF file with a truncated header".into());
    };
    let (m, v) = ([m[0], m[1]], [v[0], v[1], v[2], v[3]]);
    let (machine, version) = if big {
        (u16::from_be_bytes(m), u32::from_be_bytes(v))
    } else {
        (u16::from_le_bytes(m), u32::from_le_bytes(v))
    };
    if version != 1 {
        return Err(format!("an ELF file of version {version}"));
    }
    Ok(machine)
}

fn machine_name(machine: u16) -> String {
    match machine {
        62 => "x86-64".into(),
        183 => "aarch64".into(),
        3 => "i386".into(),
        40 => "arm".into(),
        243 => "riscv".into(),
        m => format!("machine {m}"),
    }
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

/// The contents of the file `path` resolves to, if it is a regular file the index kept.
fn contents<'a>(index: &'a Index, path: &[u8]) -> Option<&'a [u8]> {
    let (target, e) = index.resolve(path).ok()?;
    (e.kind == Kind::Regular)
        .then(|| index.contents.get(&target))
        .flatten()
        .map(Vec::as_slice)
}

/// Parses a configuration file with WSL's rules and reports what WSL would complain about.
fn check_config(
    r: &mut Report,
    path: &str,
    data: &[u8],
    keys: &[(&'static str, wslconf::ValueType)],
) -> wslconf::Parsed {
    let parsed = wslconf::parse(data, keys);
    let mut errors = 0;
    for p in &parsed.problems {
        if p.is_error() {
            errors += 1;
            r.error(p.message(path));
        } else {
            r.warn(p.message(path));
        }
    }
    if errors == 0 {
        r.ok(format!(
            "{path} parses with WSL's rules ({} settings)",
            parsed.settings.len()
        ));
    }
    parsed
}

fn modes_text(modes: &[u32]) -> String {
    let v: Vec<String> = modes.iter().map(|m| format!("{m:04o}")).collect();
    v.join(" or ")
}

/// One call of validate-modern.py's `validate_mode`: the file must be in the tarball (unless
/// `optional`), with one of `modes`, owned by root, at most `max_size` bytes.
struct Expect<'a> {
    path: &'a str,
    /// The rule, named in every message (`shortcut.icon`, `/etc/passwd`, ...).
    rule: &'a str,
    modes: &'a [u32],
    /// Whether the group must be root too (not for `/etc/shadow`).
    gid: bool,
    /// Follow symlinks (validate_mode's default does not: a symlink is checked as itself).
    follow: bool,
    optional: bool,
    max_size: Option<u64>,
    /// Severity of a wrong mode or owner; Microsoft's is a warning.
    owner: Severity,
    /// Why `owner` is stricter than Microsoft's, appended to those messages.
    stricter: &'a str,
}

impl Expect<'_> {
    fn new<'a>(path: &'a str, rule: &'a str, modes: &'a [u32]) -> Expect<'a> {
        Expect {
            path,
            rule,
            modes,
            gid: true,
            follow: false,
            optional: false,
            max_size: None,
            owner: Severity::Warning,
            stricter: "",
        }
    }
}

/// A value from a configuration file on one line of output.
fn one_line(s: &str) -> String {
    s.replace('\n', "\\n").replace('\r', "\\r")
}

impl Expect<'_> {
    /// The file and its rule as messages name them: `/etc/shadow`, or
    /// `"/usr/share/wsl/x.ico" (shortcut.icon)` for a path a setting names (quoted, as read).
    fn subject(&self) -> String {
        if self.rule == self.path {
            self.path.to_string()
        } else {
            format!("{:?} ({})", self.path, one_line(self.rule))
        }
    }

    /// The mode a fix should set: the usual one among those allowed.
    fn usual_mode(&self) -> u32 {
        [0o644, 0o755, 0o640, 0o600]
            .into_iter()
            .find(|m| self.modes.contains(m))
            .unwrap_or(self.modes[0])
    }
}

/// Checks one file like `validate_mode`; returns the entry found (and its normalised path).
fn validate<'i>(r: &mut Report, index: &'i Index, x: &Expect) -> Option<(Vec<u8>, &'i IndexEntry)> {
    let subject = x.subject();
    let found = if x.follow {
        index.resolve(x.path.as_bytes())
    } else {
        // Microsoft's lookup tries the path as `/p`, `./p` and `p`, and nothing else: no
        // symlink is followed, not even in a parent directory, and implied directories are not
        // archive members.
        let p = x.path.strip_prefix("./").unwrap_or(x.path);
        let norm = p.trim_start_matches('/').as_bytes().to_vec();
        match index.get(&norm).filter(|e| !e.implicit) {
            Some(e) => Ok((norm, e)),
            None => Err("no archive member has this path; symlinks are not followed here".into()),
        }
    };
    let (real, e) = match found {
        Ok(f) => f,
        Err(why) => {
            if !x.optional {
                r.error(format!(
                    "{subject} is not in the tarball ({why}); Microsoft's validator requires it"
                ));
            }
            return None;
        }
    };
    if !x.modes.contains(&e.mode) {
        let what = if e.kind == Kind::Symlink {
            format!(
                "is a symlink to {:?} (mode {:04o}); Microsoft's validator checks the link itself and wants mode {}: put the file itself there",
                String::from_utf8_lossy(&e.link),
                e.mode,
                modes_text(x.modes)
            )
        } else {
            format!(
                "has mode {:04o}; Microsoft's validator wants {}: chmod {:o} {}",
                e.mode,
                modes_text(x.modes),
                x.usual_mode(),
                display(&real)
            )
        };
        r.push(x.owner, format!("{subject} {what}{}", x.stricter));
    }
    if e.uid != 0 || (x.gid && e.gid != 0) {
        let (want, fix) = if x.gid {
            ("uid 0 and gid 0", "chown 0:0")
        } else {
            ("uid 0", "chown 0")
        };
        r.push(
            x.owner,
            format!(
                "{subject} is owned by {}:{}; Microsoft's validator wants {want}: {fix} {}{}",
                e.uid,
                e.gid,
                display(&real),
                x.stricter
            ),
        );
    }
    if let Some(max) = x.max_size {
        if e.size > max {
            r.error(format!(
                "{subject} is {} bytes, over Microsoft's 1 MiB limit ({max} bytes) for {}; shrink it",
                e.size,
                x.rule
            ));
        }
    }
    Some((real, e))
}

/// The ELF part of `validate_mode(..., magic=elf_magic)`: an error unless the file is a 64-bit
/// ELF executable for `arch`.
fn check_elf(r: &mut Report, x: &Expect, real: &[u8], e: &IndexEntry, arch: Arch) {
    let subject = x.subject();
    let resolved = if real == x.path.trim_start_matches('/').as_bytes() {
        String::new()
    } else {
        format!(" (resolved to {})", display(real))
    };
    let what = if e.kind != Kind::Regular {
        format!("is a {}", e.kind)
    } else {
        match elf64_machine(&e.head) {
            Ok(m) if m == arch.machine() => {
                r.ok(format!(
                    "{subject}{resolved} is a 64-bit {} ELF executable",
                    machine_name(m)
                ));
                return;
            }
            Ok(m) => format!("is a 64-bit {} ELF file", machine_name(m)),
            Err(what) => format!("is {what}"),
        }
    };
    r.error(format!(
        "{subject}{resolved} {what}; Microsoft's validator wants a 64-bit {arch} ELF executable (--arch names the other architecture)"
    ));
}

/// What validate-modern.py's `validate_config` reads: Python `configparser`'s view of a file.
fn ms_config(data: &[u8]) -> Result<Vec<(String, String)>, String> {
    let text = std::str::from_utf8(data).map_err(|_| "it is not UTF-8".to_string())?;
    pyini::keys(text)
}

/// `config.get(key)` on validate-modern.py's key dictionary (sections as written, so
/// `[OOBE]` does not answer `oobe.command`; a later duplicate wins).
fn ms_get<'a>(keys: &'a [(String, String)], key: &str) -> Option<&'a str> {
    keys.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn unexpected_keys(keys: &[(String, String)], valid: &[&str]) -> Vec<String> {
    keys.iter()
        .filter(|(k, _)| !valid.contains(&k.to_lowercase().as_str()))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Runs every check on an indexed tarball.
pub(crate) fn check(index: &Index, opts: &Options) -> Vec<Finding> {
    let mut r = Report(Vec::new());
    r.ok(format!(
        "{} entries, {:.1} MB unpacked",
        index.count,
        index.unpacked as f64 / 1e6
    ));
    check_archive(&mut r, index);

    let default_uid = check_distribution_conf(&mut r, index, opts);
    check_wsl_conf(&mut r, index, opts);

    // Root's login shell: WSL starts it on every launch.
    if opts.store {
        validate(
            &mut r,
            index,
            &Expect::new("/etc/passwd", "/etc/passwd", &[0o664, 0o644]),
        );
    }
    match index.resolve(b"/etc/passwd") {
        Err(why) => r.error(format!("no /etc/passwd ({why}); WSL cannot start a shell")),
        Ok(_) => match contents(index, b"/etc/passwd") {
            None => r.error("/etc/passwd is too large (over 1 MiB) or not a regular file"),
            Some(data) => check_passwd(&mut r, index, data, default_uid.as_deref()),
        },
    }
    if !opts.store {
        return r.0;
    }

    let mut shadow = Expect::new("/etc/shadow", "/etc/shadow", &[0o640, 0o600, 0]);
    shadow.gid = false;
    if validate(&mut r, index, &shadow).is_some() {
        r.ok("/etc/shadow is present");
    }
    for (path, optional) in [("/bin/bash", true), ("/bin/sh", false)] {
        let mut x = Expect::new(path, path, &[0o755, 0o775, 0o555]);
        x.follow = true;
        x.optional = optional;
        if let Some((real, e)) = validate(&mut r, index, &x) {
            check_elf(&mut r, &x, &real, e, opts.arch);
        }
    }
    check_units(&mut r, index);
    check_xattrs(&mut r, index);
    r.0
}

/// Our own checks of the archive itself.
fn check_archive(r: &mut Report, index: &Index) {
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
    index.visit(&mut |p, e| {
        if let Kind::Other(flag) = e.kind {
            r.error(format!(
                "{}: unsupported entry type {:?}",
                display(p),
                flag as char
            ));
        }
    });
    let etc = index
        .resolve(b"/etc")
        .ok()
        .filter(|(_, e)| e.kind == Kind::Directory);
    let sh = index.resolve(b"/bin/sh").ok();
    if etc.is_none() && sh.is_none() {
        r.error("neither /etc nor /bin/sh is present; WSL refuses such a tarball");
    }
}

/// `/etc/wsl-distribution.conf`: WSL's reading, our ownership rule, and Microsoft's rules for
/// its keys and the files they name. Returns `oobe.defaultUid` as Python's `int` reads it.
///
/// Long on purpose: one check per rule, in `validate-modern.py`'s order, so the two read side
/// by side (each rule is a few lines against one shared, parsed file).
fn check_distribution_conf(r: &mut Report, index: &Index, opts: &Options) -> Option<String> {
    const PATH: &str = "/etc/wsl-distribution.conf";
    // Stricter than Microsoft (a warning there): WSL runs oobe.command from this file as root
    // on the first start, so a file anyone but root can change is a way to root.
    let mut x = Expect::new(PATH, PATH, &[0o664, 0o644]);
    x.follow = true;
    x.optional = !opts.modern;
    x.owner = Severity::Error;
    x.stricter =
        " (an error here, not just Microsoft's warning: WSL runs its oobe.command as root)";
    let found = if opts.store {
        validate(r, index, &x)
    } else {
        index.resolve(PATH.as_bytes()).ok()
    };
    let Some((real, e)) = found else {
        if !opts.modern {
            r.ok(format!("no {PATH} (fine for `wsl --import`; a .wsl distribution needs one: check it with --modern)"));
        }
        return None;
    };
    if !opts.store && (e.uid != 0 || e.gid != 0 || !matches!(e.mode, 0o644 | 0o664)) {
        r.error(format!(
            "{PATH} must be owned by root:root with mode 0644 or 0664 (it is {}:{} {:04o}): WSL runs its oobe.command as root",
            e.uid, e.gid, e.mode
        ));
    }
    let data = match (e.kind, index.contents.get(&real)) {
        (Kind::Regular, Some(data)) => data,
        (Kind::Regular, None) => {
            r.error(format!("{PATH} is over 1 MiB; it cannot be checked"));
            return None;
        }
        (kind, _) => {
            r.error(format!(
                "{PATH} resolves to {}, a {kind}; it must be a regular file",
                display(&real)
            ));
            return None;
        }
    };
    check_config(r, PATH, data, DISTRIBUTION_CONF_KEYS);
    if !opts.store {
        return None;
    }

    let keys = match ms_config(data) {
        Ok(keys) => keys,
        Err(why) => {
            r.error(format!(
                "{PATH}: Microsoft's validator (Python configparser) cannot read it: {why}"
            ));
            return None;
        }
    };
    let unexpected = unexpected_keys(&keys, MS_DISTRIBUTION_CONF_KEYS);
    if unexpected.is_empty() {
        r.ok(format!("{PATH} has only keys Microsoft's validator knows"));
    } else {
        r.error(format!(
            "{PATH} has keys Microsoft's validator rejects: {}; it allows only {}",
            unexpected.join(", "),
            MS_DISTRIBUTION_CONF_KEYS.join(", ")
        ));
    }

    if let Some(cmd) = ms_get(&keys, "oobe.command").filter(|v| !v.is_empty()) {
        validate(r, index, &Expect::new(cmd, "oobe.command", &[0o775, 0o755]));
        if !cmd.starts_with(USR_LIB_WSL) && !cmd.starts_with(USR_LIBEXEC_WSL) {
            r.warn(format!(
                "oobe.command {cmd:?} is not under {USR_LIB_WSL} or {USR_LIBEXEC_WSL}, as Microsoft's validator wants; move it there"
            ));
        }
    }

    let mut default_uid = None;
    if let Some(uid) = ms_get(&keys, "oobe.defaultuid").filter(|v| !v.is_empty()) {
        if uid != "1000" {
            r.warn(format!(
                "{PATH}: oobe.defaultUid is {uid:?}; Microsoft's validator wants 1000"
            ));
        }
        match py_int(uid) {
            Some(n) => default_uid = Some(n),
            None => r.error(format!(
                "{PATH}: oobe.defaultUid {uid:?} is not an integer; Microsoft's validator fails on it"
            )),
        }
    }

    match ms_get(&keys, "shortcut.icon").filter(|v| !v.is_empty()) {
        Some(icon) => {
            let mut x = Expect::new(icon, "shortcut.icon", &[0o664, 0o644]);
            x.max_size = Some(MAX_ASSET);
            validate(r, index, &x);
            if !icon.starts_with(USR_LIB_WSL) && !icon.starts_with(USR_SHARE_WSL) {
                r.warn(format!(
                    "shortcut.icon {icon:?} is not under {USR_LIB_WSL} or {USR_SHARE_WSL}, as Microsoft's validator wants; move it there"
                ));
            }
        }
        None => r.warn(format!(
            "{PATH} has no shortcut.icon; Microsoft's validator wants one (an .ico file under {USR_SHARE_WSL})"
        )),
    }

    if let Some(profile) =
        ms_get(&keys, "windowsterminal.profiletemplate").filter(|v| !v.is_empty())
    {
        let mut x = Expect::new(profile, "windowsterminal.profileTemplate", &[0o660, 0o640]);
        x.max_size = Some(MAX_ASSET);
        validate(r, index, &x);
        if !profile.starts_with(USR_LIB_WSL) {
            r.warn(format!(
                "windowsterminal.profileTemplate {profile:?} is not under {USR_LIB_WSL}, as Microsoft's validator wants; move it there"
            ));
        }
    }
    default_uid
}

/// `/etc/wsl.conf`: WSL's reading (its parser and keys), Microsoft's key list, and the
/// `/sbin/init` that `boot.systemd` asks for.
///
/// Long on purpose, like [`check_distribution_conf`]: the rules in the validator's order.
fn check_wsl_conf(r: &mut Report, index: &Index, opts: &Options) {
    const PATH: &str = "/etc/wsl.conf";
    let found = if opts.store {
        let mut x = Expect::new(PATH, PATH, &[0o664, 0o644]);
        x.follow = true;
        x.optional = true;
        validate(r, index, &x)
    } else {
        index.resolve(PATH.as_bytes()).ok()
    };
    let Some((real, e)) = found else {
        r.ok(format!("no {PATH}; WSL uses its defaults"));
        return;
    };
    let Some(data) = (e.kind == Kind::Regular)
        .then(|| index.contents.get(&real))
        .flatten()
    else {
        r.error(format!(
            "{PATH} resolves to {} ({}, {} bytes); it must be a regular file of at most 1 MiB",
            display(&real),
            e.kind,
            e.size
        ));
        return;
    };
    let conf = check_config(r, PATH, data, WSL_CONF_KEYS);
    if conf.get("boot.systemd").and_then(wslconf::parse_bool) == Some(true) {
        match executable(index, b"/sbin/init") {
            // With the store rules, the ELF check below says so.
            Ok(d) if !opts.store => {
                r.ok(format!("boot.systemd is true and /sbin/init resolves to {d}"))
            }
            Ok(_) => {}
            Err(why) => r.error(format!(
                "boot.systemd is true but /sbin/init is not executable ({why}); WSL disables systemd"
            )),
        }
    }
    if let Some(user) = conf.get("user.default") {
        let known = contents(index, b"/etc/passwd").is_some_and(|pw| {
            pw.split(|&b| b == b'\n')
                .any(|l| l.split(|&b| b == b':').next() == Some(user.as_bytes()))
        });
        if !known {
            r.warn(format!(
                "{PATH}: user.default is {user:?}, which /etc/passwd does not list"
            ));
        }
    }
    if !opts.store {
        return;
    }

    // Microsoft's reading. Without --modern the tarball is for `wsl --import`, where WSL's
    // own rules decide; what only Microsoft's validator refuses is then a warning.
    let severity = if opts.modern {
        Severity::Error
    } else {
        Severity::Warning
    };
    let keys = match ms_config(data) {
        Ok(keys) => keys,
        Err(why) => {
            r.push(
                severity,
                format!(
                    "{PATH}: Microsoft's validator (Python configparser) cannot read it: {why}"
                ),
            );
            return;
        }
    };
    let unexpected = unexpected_keys(&keys, MS_WSL_CONF_KEYS);
    if !unexpected.is_empty() {
        if opts.modern {
            r.error(format!(
                "{PATH} has keys Microsoft's validator rejects: {}; remove them from a .wsl distribution",
                unexpected.join(", ")
            ));
        } else {
            // Keys WSL does not know are errors of WSL's reading already.
            let wsl_knows: Vec<String> = unexpected
                .into_iter()
                .filter(|k| WSL_CONF_KEYS.iter().any(|(w, _)| w.eq_ignore_ascii_case(k)))
                .collect();
            if !wsl_knows.is_empty() {
                r.warn(format!(
                    "{PATH} has keys WSL reads but Microsoft's validator rejects: {}; a .wsl distribution must not set them",
                    wsl_knows.join(", ")
                ));
            }
        }
    }

    // `if config.get('boot.systemd', False)`: any non-empty value, "false" included.
    if let Some(systemd) = ms_get(&keys, "boot.systemd").filter(|v| !v.is_empty()) {
        let rule = format!("boot.systemd={}", one_line(systemd));
        let mut x = Expect::new("/sbin/init", &rule, &[0o775, 0o755, 0o555]);
        x.follow = true;
        if let Some((real, e)) = validate(r, index, &x) {
            check_elf(r, &x, &real, e, opts.arch);
        }
    }
    if let Some(user) = ms_get(&keys, "user.default") {
        r.warn(format!(
            "{PATH} sets user.default={}, which Microsoft's validator discourages: let oobe.defaultUid or the OOBE command pick the user",
            one_line(user)
        ));
    }
}

/// What Microsoft's `read_passwd` reports about `/etc/passwd`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Passwd {
    /// Errors, with the line number where there is one.
    errors: Vec<String>,
    /// The line that already has `oobe.defaultUid`, if any.
    default_entry: Option<String>,
    /// Whether there is a uid 0 entry (named root or not).
    has_root: bool,
}

/// `read_passwd` of validate-modern.py: Python's `readlines()` (a final newline ends the last
/// line; a blank line is an entry of one field), seven `:`-separated fields, an `int()` uid,
/// unique uids, uid 0 named root. `default_uid` is `oobe.defaultUid` in [`py_int`] form.
fn read_passwd(data: &[u8], default_uid: Option<&str>) -> Passwd {
    let mut out = Passwd::default();
    // uid -> (line number, name, line) of its first entry.
    let mut entries: BTreeMap<String, (usize, String, String)> = BTreeMap::new();
    for (i, raw) in data.split_inclusive(|&b| b == b'\n').enumerate() {
        let n = i + 1;
        let Ok(line) = std::str::from_utf8(raw) else {
            out.errors.push(format!(
                "/etc/passwd:{n} is not UTF-8; Microsoft's validator fails on it"
            ));
            continue;
        };
        let fields: Vec<&str> = line.split(':').collect();
        let uid = (fields.len() == 7).then(|| py_int(fields[2])).flatten();
        let Some(uid) = uid else {
            out.errors.push(format!(
                "/etc/passwd:{n}: invalid entry {:?} (Microsoft's validator wants 7 ':'-separated fields with a numeric uid{})",
                line.trim_end_matches('\n'),
                if line.trim().is_empty() { "; remove blank lines" } else { "" }
            ));
            continue;
        };
        match entries.get(&uid) {
            Some((first, _, _)) => out.errors.push(format!(
                "/etc/passwd:{n}: uid {uid} is already used on line {first}; Microsoft's validator refuses duplicated uids"
            )),
            None => {
                let line = line.trim_end_matches(['\n', '\r']).to_string();
                entries.insert(uid, (n, fields[0].to_string(), line));
            }
        }
    }
    match entries.get("0") {
        None => out
            .errors
            .push("/etc/passwd has no uid 0 entry; WSL and Microsoft's validator need root".into()),
        Some((n, name, _)) => {
            out.has_root = true;
            if name != "root" {
                out.errors.push(format!(
                    "/etc/passwd:{n}: uid 0 is named {name:?}, not root; Microsoft's validator refuses that"
                ));
            }
        }
    }
    if let Some((_, _, line)) = default_uid.and_then(|u| entries.get(u)) {
        out.default_entry = Some(line.clone());
    }
    out
}

fn check_passwd(r: &mut Report, index: &Index, data: &[u8], default_uid: Option<&str>) {
    let p = read_passwd(data, default_uid);
    for e in &p.errors {
        r.error(e.clone());
    }
    if let (Some(line), Some(uid)) = (&p.default_entry, default_uid) {
        r.warn(format!(
            "/etc/passwd already has an entry for oobe.defaultUid {uid} ({line:?}); Microsoft's validator warns: the OOBE creates that user"
        ));
    }
    if !p.has_root {
        return;
    }
    if p.errors.is_empty() {
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

/// Python's `int(text)` for a str: surrounding whitespace, a sign, decimal digits with single
/// `_` between them. Returns the value in canonical form (no sign for zero, no leading zeros),
/// so equal numbers compare equal however large.
fn py_int(text: &str) -> Option<String> {
    let t = text.trim();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let b = digits.as_bytes();
    let ok = !b.is_empty()
        && b[0].is_ascii_digit()
        && b[b.len() - 1].is_ascii_digit()
        && b.iter().all(|c| c.is_ascii_digit() || *c == b'_')
        && !digits.contains("__");
    if !ok {
        return None;
    }
    let plain: String = digits.chars().filter(|&c| c != '_').collect();
    let trimmed = plain.trim_start_matches('0');
    Some(match (trimmed.is_empty(), neg) {
        (true, _) => "0".to_string(),
        (false, true) => format!("-{trimmed}"),
        (false, false) => trimmed.to_string(),
    })
}

/// Lexical normalisation of an absolute path, like validate-modern.py's `linux_real_path`
/// (`..` drops the previous component, symlinks are not looked at). No leading `/`.
fn lexical(path: &[u8]) -> Vec<u8> {
    let mut out: Vec<&[u8]> = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join(&b'/')
}

/// validate-modern.py's `is_dev_null(link_target(path))` for the member at `path`
/// (normalised): `None` if there is no such member. Its `link_target` resolves the link
/// lexically, then through the archive; the result is `/dev/null` when the archive has no
/// `dev/null` member, or has one spelled `./dev/null` or `/dev/null` (a bare `dev/null`
/// member does not count, which we reproduce).
fn links_to_dev_null(index: &Index, path: &[u8]) -> Option<bool> {
    let e = index.get(path).filter(|e| !e.implicit)?;
    if e.kind != Kind::Symlink {
        return Some(false);
    }
    let joined = if e.link.starts_with(b"/") {
        e.link.clone()
    } else {
        let dir = path
            .iter()
            .rposition(|&b| b == b'/')
            .map_or(&b""[..], |i| &path[..i]);
        [dir, b"/", &e.link].concat()
    };
    let resolved = lexical(&joined);
    let absolute = [b"/", &resolved[..]].concat();
    Some(match index.resolve(&absolute) {
        Ok((real, t)) if !t.implicit => real == b"dev/null" && !t.bare,
        _ => resolved == b"dev/null",
    })
}

/// The enabled units validate-modern.py's `read_systemd_enabled_units` finds: every archive
/// member below a `*.target.wants` member below one of [`SYSTEMD_CONFIG_DIRS`], unless it
/// links to `/dev/null` or `/etc/systemd/system/UNIT` masks it. `(unit, path)` pairs.
fn enabled_units(index: &Index) -> BTreeMap<String, String> {
    // Members below `dir` (relative paths, sorted), walked in the index's tree rather than
    // by listing every path of the archive.
    let below = |dir: &[u8]| -> Vec<Vec<u8>> {
        let mut found = Vec::new();
        index.visit_below(dir, &mut |rest, e| {
            if !e.implicit {
                found.push(rest.to_vec());
            }
        });
        found.sort_unstable();
        found
    };
    let mut units = BTreeMap::new();
    for dir in SYSTEMD_CONFIG_DIRS {
        let dir = dir.as_bytes();
        for target in below(dir)
            .into_iter()
            .filter(|t| t.ends_with(b".target.wants"))
        {
            let tdir = [dir, b"/", &target[..]].concat();
            for unit in below(&tdir) {
                let full = [&tdir[..], b"/", &unit[..]].concat();
                let masked_at = [&b"etc/systemd/system/"[..], &unit[..]].concat();
                if links_to_dev_null(index, &full) != Some(true)
                    && links_to_dev_null(index, &masked_at) != Some(true)
                {
                    units.insert(String::from_utf8_lossy(&unit).into_owned(), display(&full));
                }
            }
        }
    }
    units
}

fn check_units(r: &mut Report, index: &Index) {
    let mut clean = true;
    for (unit, path) in enabled_units(index) {
        if DISCOURAGED_SYSTEM_UNITS.contains(&unit.as_str()) {
            clean = false;
            r.warn(format!(
                "{path} enables {unit}, which Microsoft's validator discourages in WSL; disable it or mask it (/etc/systemd/system/{unit} -> /dev/null)"
            ));
        }
    }
    if clean {
        r.ok("no discouraged systemd units enabled");
    }
}

fn check_xattrs(r: &mut Report, index: &Index) {
    let found: Vec<_> = index
        .xattrs
        .iter()
        .filter(|(name, _)| {
            WSL1_UNSUPPORTED_XATTRS
                .iter()
                .any(|x| name.starts_with(x.as_bytes()))
        })
        .collect();
    let Some((_, first)) = found.iter().min_by_key(|(_, u)| u.first) else {
        return;
    };
    let names: Vec<String> = found
        .iter()
        .map(|(n, u)| {
            let noun = if u.entries == 1 { "entry" } else { "entries" };
            format!("{} ({} {noun})", String::from_utf8_lossy(n), u.entries)
        })
        .collect();
    r.warn(format!(
        "extended attributes WSL1 cannot store: {}, e.g. on {}; Microsoft's validator warns: pack without them (tar --no-xattrs)",
        names.join(", "),
        first.sample
    ));
}

/// Indexes the tarball at `path` and checks what `wsl --import` needs ([`Options::IMPORT`]).
pub fn verify_file(path: &Path) -> Result<Vec<Finding>> {
    verify_file_with(path, &Options::IMPORT)
}

/// Indexes the tarball at `path` and checks it.
pub(crate) fn verify_file_with(path: &Path, opts: &Options) -> Result<Vec<Finding>> {
    let first = Index::scan(path, &|p| WANTED.contains(&p), &mut |_| Ok(()))?;
    // Wanted files may be symlinks (into /nix/store, say), and the executables checked for ELF
    // may lack the execute bit (so the first pass kept none of their bytes): a second pass
    // fetches those targets.
    let mut targets: Vec<Vec<u8>> = Vec::new();
    for w in WANTED {
        let abs = [b"/", *w].concat();
        if let Ok((t, e)) = first.resolve(&abs) {
            if e.kind == Kind::Regular && !first.contents.contains_key(&t) {
                targets.push(t);
            }
        }
    }
    for exe in [&b"/bin/sh"[..], b"/bin/bash", b"/sbin/init"] {
        if let Ok((t, e)) = first.resolve(exe) {
            if e.kind == Kind::Regular && e.head.is_empty() && e.size > 0 {
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
    Ok(check(&index, opts))
}

/// Whether any finding is an error.
pub(crate) fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

/// Python's `configparser.ConfigParser()` with its defaults, as validate-modern.py uses it
/// (`read_string`, then `config[section][key]` for every key): only what decides which keys
/// it sees, their values, and when it raises.
mod pyini {
    /// One option: its name (lower-cased by `optionxform`) and value lines.
    type Opt = (String, Vec<String>);
    /// Sections in file order, with their options.
    type Sections = Vec<(String, Vec<Opt>)>;

    /// `section.key` (section as written, key lower-cased) and value, in file order; `Err`
    /// when configparser raises.
    pub(crate) fn keys(text: &str) -> Result<Vec<(String, String)>, String> {
        let (sections, defaults) = read(text)?;
        let join = |v: &[String]| v.join("\n").trim_end().to_string();
        let defaults: Vec<(String, String)> =
            defaults.iter().map(|(k, v)| (k.clone(), join(v))).collect();
        let mut out = Vec::new();
        for (name, opts) in &sections {
            // A section's options, then the DEFAULT ones it does not override.
            let mut map: Vec<(String, String)> =
                opts.iter().map(|(k, v)| (k.clone(), join(v))).collect();
            for (k, v) in &defaults {
                if !map.iter().any(|(m, _)| m == k) {
                    map.push((k.clone(), v.clone()));
                }
            }
            for (k, raw) in &map {
                let value =
                    interpolate(raw, &map, 1).map_err(|why| format!("[{name}] {k}: {why}"))?;
                out.push((format!("{name}.{k}"), value));
            }
        }
        Ok(out)
    }

    /// `BasicInterpolation.before_get`: `%%` is `%`, `%(name)s` another option's value,
    /// any other `%` raises.
    fn interpolate(value: &str, map: &[(String, String)], depth: u32) -> Result<String, String> {
        if depth > 10 {
            return Err("interpolation deeper than 10 levels".into());
        }
        let mut out = String::new();
        let mut rest = value;
        while let Some(p) = rest.find('%') {
            out.push_str(&rest[..p]);
            rest = &rest[p..];
            if let Some(r) = rest.strip_prefix("%%") {
                out.push('%');
                rest = r;
            } else if let Some(r) = rest.strip_prefix("%(") {
                let end = r
                    .find(')')
                    .filter(|&e| e > 0 && r[e + 1..].starts_with('s'))
                    .ok_or_else(|| format!("bad interpolation in {value:?}; write %% for %"))?;
                let var = r[..end].to_lowercase();
                rest = &r[end + 2..];
                let v = map
                    .iter()
                    .find(|(k, _)| *k == var)
                    .map(|(_, v)| v)
                    .ok_or_else(|| format!("{value:?} refers to the missing option {var:?}"))?;
                if v.contains('%') {
                    out.push_str(&interpolate(v, map, depth + 1)?);
                } else {
                    out.push_str(v);
                }
            } else {
                return Err(format!(
                    "'%' must be followed by '%' or '(' in {value:?}; write %% for %"
                ));
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The options of the section being read (`cur`: see [`read`]).
    fn current<'a>(
        sections: &'a mut [(String, Vec<Opt>)],
        defaults: &'a mut Vec<Opt>,
        cur: Option<Option<usize>>,
    ) -> Option<&'a mut Vec<Opt>> {
        match cur? {
            None => Some(defaults),
            Some(i) => Some(&mut sections[i].1),
        }
    }

    /// `RawConfigParser._read` (strict, `=` and `:` delimiters, `#` and `;` whole-line
    /// comments, no inline comments, indented continuation lines): sections in order with
    /// their options, and the DEFAULT section's options.
    ///
    /// Long on purpose: a transcription of CPython's `_read` loop, branch for branch, so it
    /// can be checked against that source.
    fn read(text: &str) -> Result<(Sections, Vec<Opt>), String> {
        let mut sections: Sections = Vec::new();
        let mut defaults: Vec<Opt> = Vec::new();
        // None: before any section; Some(None): DEFAULT; Some(Some(i)): sections[i].
        let mut cur: Option<Option<usize>> = None;
        let mut optname: Option<String> = None;
        let mut indent_level = 0usize;
        let mut bad_lines: Vec<usize> = Vec::new();
        for (i, line) in text.split_inclusive('\n').enumerate() {
            let lineno = i + 1;
            let stripped = line.trim();
            let comment = stripped.starts_with('#') || stripped.starts_with(';');
            let value = if comment { "" } else { stripped };
            if value.is_empty() {
                // An empty line inside a value is kept (empty_lines_in_values), unless it
                // is a comment.
                if !comment {
                    if let (Some(opts), Some(name)) =
                        (current(&mut sections, &mut defaults, cur), &optname)
                    {
                        if let Some((_, v)) = opts.iter_mut().find(|(k, _)| k == name) {
                            v.push(String::new());
                        }
                    }
                }
                continue;
            }
            let cur_indent = line.chars().take_while(|c| c.is_whitespace()).count();
            if cur.is_some() && optname.is_some() && cur_indent > indent_level {
                if let (Some(opts), Some(name)) =
                    (current(&mut sections, &mut defaults, cur), &optname)
                {
                    if let Some((_, v)) = opts.iter_mut().find(|(k, _)| k == name) {
                        v.push(value.to_string());
                    }
                }
                continue;
            }
            indent_level = cur_indent;
            // SECTCRE `\[(?P<header>.+)\]`, matched at the start: up to the last ']'.
            let header = value
                .strip_prefix('[')
                .and_then(|r| r.rfind(']').filter(|&e| e > 0).map(|e| &r[..e]));
            if let Some(header) = header {
                if header == "DEFAULT" {
                    cur = Some(None);
                } else if sections.iter().any(|(n, _)| n == header) {
                    return Err(format!(
                        "line {lineno}: section [{header}] appears twice (DuplicateSectionError)"
                    ));
                } else {
                    sections.push((header.to_string(), Vec::new()));
                    cur = Some(Some(sections.len() - 1));
                }
                optname = None;
                continue;
            }
            let Some(opts) = current(&mut sections, &mut defaults, cur) else {
                return Err(format!(
                    "line {lineno}: {value:?} comes before any [section] (MissingSectionHeaderError)"
                ));
            };
            // OPTCRE: the option name is what precedes the first '=' or ':'.
            let Some(d) = value.find(['=', ':']) else {
                bad_lines.push(lineno);
                continue;
            };
            let name = value[..d].trim_end().to_lowercase();
            if name.is_empty() {
                bad_lines.push(lineno);
            }
            if opts.iter().any(|(k, _)| *k == name) {
                return Err(format!(
                    "line {lineno}: option {name:?} appears twice in its section (DuplicateOptionError)"
                ));
            }
            opts.push((name.clone(), vec![value[d + 1..].trim().to_string()]));
            optname = Some(name);
        }
        if !bad_lines.is_empty() {
            let lines: Vec<String> = bad_lines.iter().map(|n| n.to_string()).collect();
            return Err(format!(
                "line(s) {} are neither [section], comment nor key = value (ParsingError)",
                lines.join(", ")
            ));
        }
        Ok((sections, defaults))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn k(v: &[(&str, &str)]) -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        }

        #[test]
        fn reads_like_configparser() {
            assert_eq!(
                keys("# c\n[oobe]\ndefaultUid = 1000\n; c\ncommand: /x # not a comment\n[Shortcut]\nicon=\"/i\"\n").unwrap(),
                k(&[
                    ("oobe.defaultuid", "1000"),
                    ("oobe.command", "/x # not a comment"),
                    ("Shortcut.icon", "\"/i\"")
                ])
            );
            assert_eq!(
                keys("[a]\nx = 1\n  more\n\n  last\ny=2\n").unwrap(),
                k(&[("a.x", "1\nmore\n\nlast"), ("a.y", "2")])
            );
            assert_eq!(
                keys("[DEFAULT]\nd=%(x)s!\n[a]\nx=50%%\n").unwrap(),
                k(&[("a.x", "50%"), ("a.d", "50%!")])
            );
            assert_eq!(
                keys("[boot] trailing\nsystemd=true\n").unwrap(),
                k(&[("boot.systemd", "true")])
            );
        }

        #[test]
        fn raises_like_configparser() {
            for bad in [
                "x=1\n",
                "[a]\nx=1\n[a]\n",
                "[a]\nx=1\nX=2\n",
                "[a]\njunk\n",
                "[a]\n=1\n",
                "[a]\nc=date +%s\n",
                "[a]\nc=%(nope)s\n",
            ] {
                assert!(keys(bad).is_err(), "{bad:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(class: u8, data: u8, machine: u16, version: u32) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = class;
        h[5] = data;
        h[6] = 1;
        if data == 2 {
            h[18..20].copy_from_slice(&machine.to_be_bytes());
            h[20..24].copy_from_slice(&version.to_be_bytes());
        } else {
            h[18..20].copy_from_slice(&machine.to_le_bytes());
            h[20..24].copy_from_slice(&version.to_le_bytes());
        }
        h
    }

    #[test]
    fn elf_machine_like_libmagic() {
        assert_eq!(elf64_machine(&elf(2, 1, 62, 1)), Ok(62));
        assert_eq!(elf64_machine(&elf(2, 1, 183, 1)), Ok(183));
        assert_eq!(
            elf64_machine(&elf(2, 2, 62, 1)),
            Ok(62),
            "MSB: libmagic says x86-64 too"
        );
        let mut no_ei_version = elf(2, 1, 62, 1);
        no_ei_version[6] = 0;
        assert_eq!(
            elf64_machine(&no_ei_version),
            Ok(62),
            "libmagic ignores EI_VERSION"
        );
        assert!(elf64_machine(&elf(1, 1, 3, 1))
            .unwrap_err()
            .contains("32-bit"));
        assert!(elf64_machine(&elf(2, 1, 62, 0))
            .unwrap_err()
            .contains("version 0"));
        assert!(elf64_machine(&elf(2, 0, 62, 1)).is_err());
        assert!(elf64_machine(b"#!/bin/sh\n")
            .unwrap_err()
            .contains("not an ELF"));
        assert!(elf64_machine(&elf(2, 1, 62, 1)[..20])
            .unwrap_err()
            .contains("truncated"));
    }

    #[test]
    fn python_int() {
        assert_eq!(py_int("1000").as_deref(), Some("1000"));
        assert_eq!(py_int(" +01_000\n").as_deref(), Some("1000"));
        assert_eq!(py_int("-0").as_deref(), Some("0"));
        assert_eq!(py_int("-5").as_deref(), Some("-5"));
        for bad in ["", "x", "1__0", "_1", "1_", "0x10", "1.0", "- 1"] {
            assert_eq!(py_int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn passwd_like_read_passwd() {
        let ok = read_passwd(
            b"root:x:0:0::/root:/bin/sh\nu:x:1000:100::/home/u:/bin/sh\n",
            None,
        );
        assert_eq!(ok.errors, Vec::<String>::new());
        assert!(ok.has_root);
        let d = read_passwd(
            b"root:x:0:0::/root:/bin/sh\nu:x:1000:100::/home/u:/bin/sh\n",
            Some("1000"),
        );
        assert_eq!(
            d.default_entry.as_deref(),
            Some("u:x:1000:100::/home/u:/bin/sh")
        );

        let blank = read_passwd(b"root:x:0:0::/root:/bin/sh\n\nu:x:1:1::/:/bin/sh", None);
        assert_eq!(blank.errors.len(), 1, "{:?}", blank.errors);
        assert!(blank.errors[0].starts_with("/etc/passwd:2: invalid entry"));
        assert!(blank.errors[0].contains("blank lines"));

        let dup = read_passwd(
            b"root:x:0:0::/root:/bin/sh\na:x:5:5::/:/x\nb:x:05:5::/:/x\n",
            None,
        );
        assert!(
            dup.errors[0].contains("uid 5 is already used on line 2"),
            "{:?}",
            dup.errors
        );

        let toor = read_passwd(b"toor:x:0:0::/root:/bin/sh\n", None);
        assert!(toor.errors[0].contains("named \"toor\""));
        assert!(toor.has_root);

        let none = read_passwd(b"a:x:1:1::/:/bin/sh\nbad:x:y:1::/:/bin/sh\n", None);
        assert_eq!(none.errors.len(), 2);
        assert!(none.errors[0].contains("invalid entry"));
        assert!(none.errors[1].contains("no uid 0"));
        assert!(!none.has_root);

        assert!(read_passwd(b"", None).errors[0].contains("no uid 0"));
    }

    #[test]
    fn lexical_paths() {
        assert_eq!(
            lexical(b"/etc/systemd/system/x.wants/../../../../dev/null"),
            b"dev/null"
        );
        assert_eq!(lexical(b"/../a/./b//c"), b"a/b/c");
    }
}
