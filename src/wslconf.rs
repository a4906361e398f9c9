//! WSL's configuration file syntax (`/etc/wsl.conf`, `/etc/wsl-distribution.conf`), parsed
//! the way WSL's own parser (`src/shared/configfile/configfile.cpp` in microsoft/WSL) does:
//!
//! - a line is blank, a `#` comment, `[section]` (a letter, then letters/digits), or
//!   `key = value` (a letter, then letters/digits: no `-` or `_`);
//! - values run to the end of the line; `"` toggles quoting, `#` outside quotes starts a
//!   comment, `\\ \" \b \n \t` and a backslash-newline continuation are the only escapes;
//! - keys are `section.key`, matched case-insensitively; an unknown key is reported
//!   (`Unknown key 'x.y' in /etc/wsl.conf:N`) and ignored; a repeated key is ignored;
//! - the first syntax error stops parsing: every later key keeps its default.

use std::fmt;

/// The type of a known key's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueType {
    Bool,
    /// `strtol(value, 0)`: decimal, `0x` hex or `0` octal.
    Int,
    String,
    /// One of a fixed set (case-sensitive, as WSL compares them).
    Choice(&'static [&'static str]),
}

/// Keys of `/etc/wsl.conf`, from WSL's `WslDistributionConfig.cpp`.
pub(crate) const WSL_CONF_KEYS: &[(&str, ValueType)] = &[
    ("automount.enabled", ValueType::Bool),
    ("automount.root", ValueType::String),
    ("automount.options", ValueType::String),
    ("automount.mountFsTab", ValueType::Bool),
    ("automount.ldconfig", ValueType::Bool),
    ("automount.cgroups", ValueType::Choice(&["v1", "v2"])),
    ("filesystem.umask", ValueType::Int),
    ("interop.enabled", ValueType::Bool),
    ("interop.appendWindowsPath", ValueType::Bool),
    ("network.generateHosts", ValueType::Bool),
    ("network.generateResolvConf", ValueType::Bool),
    ("network.hostname", ValueType::String),
    ("time.useWindowsTimezone", ValueType::Bool),
    ("fileServer.enabled", ValueType::Bool),
    ("fileServer.logFile", ValueType::String),
    ("fileServer.logLevel", ValueType::Int),
    ("fileServer.logTruncate", ValueType::Bool),
    ("gpu.enabled", ValueType::Bool),
    ("gpu.appendLibPath", ValueType::Bool),
    ("user.default", ValueType::String),
    ("boot.command", ValueType::String),
    ("boot.systemd", ValueType::Bool),
    ("boot.initTimeout", ValueType::Int),
    ("boot.protectBinfmt", ValueType::Bool),
    ("general.guiApplications", ValueType::Bool),
];

/// Keys of `/etc/wsl-distribution.conf` (WSL >= 2.4.4 `.wsl` files).
pub(crate) const DISTRIBUTION_CONF_KEYS: &[(&str, ValueType)] = &[
    ("oobe.command", ValueType::String),
    ("oobe.defaultUid", ValueType::Int),
    ("oobe.defaultName", ValueType::String),
    ("shortcut.enabled", ValueType::Bool),
    ("shortcut.icon", ValueType::String),
    ("windowsterminal.enabled", ValueType::Bool),
    ("windowsterminal.profileTemplate", ValueType::String),
];

/// A parsed setting: the canonical key name (as in the key table) and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Setting {
    pub(crate) key: &'static str,
    pub(crate) value: String,
    pub(crate) line: usize,
}

/// Something WSL would print about the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    /// Parsing stopped here; later lines are ignored by WSL.
    Syntax {
        line: usize,
        what: String,
    },
    UnknownKey {
        line: usize,
        key: String,
    },
    Duplicate {
        line: usize,
        key: String,
        first: usize,
    },
    InvalidValue {
        line: usize,
        key: &'static str,
        value: String,
        expected: String,
    },
}

impl Problem {
    /// Syntax errors and unknown keys are errors (WSL ignores the rest of the file, or the
    /// setting); duplicates and invalid values only lose that one setting.
    pub(crate) fn is_error(&self) -> bool {
        matches!(self, Problem::Syntax { .. } | Problem::UnknownKey { .. })
    }

    /// The message, in WSL's words where WSL has some.
    pub(crate) fn message(&self, file: &str) -> String {
        match self {
            Problem::Syntax { line, what } => {
                format!("{file}:{line}: syntax error ({what}); WSL ignores this line and everything after it")
            }
            Problem::UnknownKey { line, key } => format!("Unknown key '{key}' in {file}:{line}"),
            Problem::Duplicate { line, key, first } => {
                format!(
                    "{file}:{line}: key '{key}' already set on line {first}; WSL ignores this one"
                )
            }
            Problem::InvalidValue {
                line,
                key,
                value,
                expected,
            } => {
                format!("{file}:{line}: invalid value '{value}' for '{key}' (expected {expected}); WSL uses the default")
            }
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message("wsl.conf"))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub(crate) settings: Vec<Setting>,
    pub(crate) problems: Vec<Problem>,
}

impl Parsed {
    /// The value of `key` (canonical spelling), if set.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|s| s.key.eq_ignore_ascii_case(key))
            .map(|s| s.value.as_str())
    }
}

/// WSL's boolean: `1`, `0`, `true`, `false` (case-insensitive).
pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    if value == "1" || value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value == "0" || value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// `strtol(value, &end, 0)` with the whole string consumed and an `int` result.
pub(crate) fn parse_int(value: &str) -> Option<i32> {
    let t = value.trim_start();
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (16, h)
    } else if t.len() > 1 && t.starts_with('0') {
        (8, &t[1..])
    } else {
        (10, t)
    };
    if digits.is_empty() {
        return None;
    }
    let v = i64::from_str_radix(digits, radix).ok()?;
    i32::try_from(if neg { -v } else { v }).ok()
}

fn check_value(ty: ValueType, value: &str) -> Option<String> {
    match ty {
        ValueType::Bool => parse_bool(value)
            .is_none()
            .then(|| "true or false".to_string()),
        ValueType::Int => parse_int(value).is_none().then(|| "an integer".to_string()),
        ValueType::String => None,
        ValueType::Choice(options) => (!options.contains(&value)).then(|| options.join(" or ")),
    }
}

/// Parses `text` against `keys`: a line at a time, as WSL's own parser reads it; the first
/// syntax error ends the file (WSL ignores the rest).
pub(crate) fn parse(text: &[u8], keys: &[(&'static str, ValueType)]) -> Parsed {
    let mut out = Parsed::default();
    let mut seen: Vec<(&'static str, usize)> = Vec::new();
    let mut section = String::new();
    let mut sc = Scanner {
        s: text,
        i: 0,
        line: 1,
    };
    loop {
        sc.skip_blanks();
        let Some(c) = sc.peek() else {
            break;
        };
        let step = match c {
            b'\n' => {
                sc.line += 1;
                sc.i += 1;
                Ok(())
            }
            b'\r' => {
                sc.i += 1;
                Ok(())
            }
            b'#' => {
                sc.skip_to_end_of_line();
                Ok(())
            }
            b'[' => sc.section().map(|name| section = name),
            _ => {
                let line = sc.line;
                sc.assignment().map(|(name, value)| {
                    let full = if section.is_empty() {
                        name
                    } else {
                        format!("{section}.{name}")
                    };
                    record(&mut out, &mut seen, keys, full, value, line);
                })
            }
        };
        if let Err(what) = step {
            out.problems.push(Problem::Syntax {
                line: sc.line,
                what: what.to_string(),
            });
            return out;
        }
    }
    out
}

/// Adds one `key = value` of line `line`: unknown keys, repeats (the first wins, as in WSL)
/// and values of the wrong type are problems; the rest are settings.
fn record(
    out: &mut Parsed,
    seen: &mut Vec<(&'static str, usize)>,
    keys: &[(&'static str, ValueType)],
    full: String,
    value: String,
    line: usize,
) {
    let Some(&(key, ty)) = keys.iter().find(|(k, _)| k.eq_ignore_ascii_case(&full)) else {
        out.problems.push(Problem::UnknownKey { line, key: full });
        return;
    };
    if let Some(&(_, first)) = seen.iter().find(|(k, _)| *k == key) {
        out.problems.push(Problem::Duplicate {
            line,
            key: full,
            first,
        });
        return;
    }
    seen.push((key, line));
    if let Some(expected) = check_value(ty, &value) {
        out.problems.push(Problem::InvalidValue {
            line,
            key,
            value: value.clone(),
            expected,
        });
    }
    out.settings.push(Setting { key, value, line });
}

/// A position in a wsl.conf-style text.
struct Scanner<'a> {
    s: &'a [u8],
    i: usize,
    /// 1-based, counting line continuations.
    line: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// Spaces and tabs.
    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_to_end_of_line(&mut self) {
        while self.peek().is_some_and(|c| c != b'\n') {
            self.i += 1;
        }
    }

    /// Letters and digits (the caller checked the first is a letter).
    fn name(&mut self) -> String {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    /// `[name]`, at the `[`, up to the end of its line.
    fn section(&mut self) -> Result<String, &'static str> {
        self.i += 1;
        if !self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            return Err("a section name starts with a letter");
        }
        let name = self.name();
        if self.peek() != Some(b']') {
            return Err("expected ']'");
        }
        self.i += 1;
        self.skip_blanks();
        match self.peek() {
            None | Some(b'\n' | b'\r' | b'#') => Ok(name),
            Some(_) => Err("expected the end of the line after ']'"),
        }
    }

    /// `key = value`, at the key, up to the end of its line (or a comment).
    fn assignment(&mut self) -> Result<(String, String), &'static str> {
        if !self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            return Err("a key starts with a letter");
        }
        let name = self.name();
        self.skip_blanks();
        if self.peek() != Some(b'=') {
            return Err("expected '='");
        }
        self.i += 1;
        self.skip_blanks();
        Ok((name, self.value()?))
    }

    /// A value: `"` toggles quoting (a `#` outside quotes starts a comment), backslash
    /// escapes `\\ \" \b \n \t` and line continuations, trailing blanks dropped.
    fn value(&mut self) -> Result<String, &'static str> {
        let mut value: Vec<u8> = Vec::new();
        let mut trimmed = 0;
        let mut quoted = false;
        while let Some(ch) = self.peek().filter(|&c| c != b'\n' && c != b'\r') {
            match ch {
                b'"' => quoted = !quoted,
                b'\\' => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'\\') => value.push(b'\\'),
                        Some(b'"') => value.push(b'"'),
                        Some(b'b') => value.push(8),
                        Some(b'n') => value.push(b'\n'),
                        Some(b't') => value.push(b'\t'),
                        Some(b'\n') => self.line += 1,
                        _ => return Err("invalid escape sequence"),
                    }
                }
                b'#' if !quoted => break,
                _ => value.push(ch),
            }
            if ch != b' ' && ch != b'\t' {
                trimmed = value.len();
            }
            self.i += 1;
        }
        if quoted {
            return Err("unterminated quote");
        }
        value.truncate(trimmed);
        Ok(String::from_utf8_lossy(&value).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wsl(text: &str) -> Parsed {
        parse(text.as_bytes(), WSL_CONF_KEYS)
    }

    #[test]
    fn parses_the_usual_file() {
        let p = wsl("# NixOS\n[boot]\nsystemd = false\ncommand = \"echo # not a comment\"  # but this is\n\n[User]\nDEFAULT=nixos\n[automount]\nmountfstab=true\n");
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(p.get("boot.systemd"), Some("false"));
        assert_eq!(p.get("boot.command"), Some("echo # not a comment"));
        assert_eq!(p.get("user.default"), Some("nixos"));
        assert_eq!(p.settings[3].key, "automount.mountFsTab");
    }

    #[test]
    fn unknown_keys_are_reported_with_their_line() {
        let p = wsl("[boot]\nsystemd=true\n[nixos]\nshell=x\n");
        assert_eq!(
            p.problems,
            vec![Problem::UnknownKey {
                line: 4,
                key: "nixos.shell".into()
            }]
        );
        assert_eq!(
            p.problems[0].message("/etc/wsl.conf"),
            "Unknown key 'nixos.shell' in /etc/wsl.conf:4"
        );
        assert!(p.problems[0].is_error());
        let p = wsl("systemd=true\n");
        assert!(matches!(&p.problems[0], Problem::UnknownKey { key, .. } if key == "systemd"));
    }

    #[test]
    fn syntax_errors_stop_parsing() {
        let p = wsl("[boot]\nsystemd=true\nmount-fs-tab = 1\n[user]\ndefault=x\n");
        assert_eq!(p.problems.len(), 1);
        assert!(matches!(p.problems[0], Problem::Syntax { line: 3, .. }));
        assert_eq!(
            p.get("user.default"),
            None,
            "later keys keep their defaults"
        );
        assert!(matches!(
            wsl("[boot\n").problems[0],
            Problem::Syntax { line: 1, .. }
        ));
        assert!(matches!(
            wsl("[boot] x\n").problems[0],
            Problem::Syntax { .. }
        ));
        assert!(matches!(
            wsl("[boot]\ncommand=\"x\n").problems[0],
            Problem::Syntax { .. }
        ));
        assert!(matches!(
            wsl("[boot]\ncommand=a\\q\n").problems[0],
            Problem::Syntax { .. }
        ));
        assert!(matches!(
            wsl("[1boot]\n").problems[0],
            Problem::Syntax { .. }
        ));
    }

    #[test]
    fn escapes_continuations_and_crlf() {
        let p = wsl("[boot]\r\ncommand = a\\\nb \\\"c\\\" \r\n[network]\r\nhostname=h\r\n");
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(p.get("boot.command"), Some("ab \"c\""));
        assert_eq!(p.get("network.hostname"), Some("h"));
    }

    #[test]
    fn values_are_checked() {
        let p = wsl("[boot]\nsystemd=yes\ninitTimeout=0x10\n[automount]\ncgroups=v3\n[filesystem]\numask=0022\n");
        assert_eq!(p.problems.len(), 2, "{:?}", p.problems);
        assert!(!p.problems[0].is_error());
        assert_eq!(parse_int("0x10"), Some(16));
        assert_eq!(parse_int("0022"), Some(18));
        assert_eq!(parse_int("-5"), Some(-5));
        assert_eq!(parse_int("5x"), None);
        assert_eq!(parse_int(""), None);
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool("yes"), None);
    }

    #[test]
    fn duplicates_keep_the_first() {
        let p = wsl("[boot]\nsystemd=true\nsystemd=false\n");
        assert_eq!(p.get("boot.systemd"), Some("true"));
        assert!(matches!(
            p.problems[0],
            Problem::Duplicate {
                line: 3,
                first: 2,
                ..
            }
        ));
    }

    #[test]
    fn distribution_conf_keys() {
        let p = parse(b"[oobe]\ndefaultUid=1000\ncommand=/etc/oobe.sh\n[shortcut]\nicon=/usr/share/nixos.ico\n[windowsterminal]\nprofileTemplate=/usr/share/t.json\n", DISTRIBUTION_CONF_KEYS);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        let p = parse(b"[oobe]\nfoo=1\n", DISTRIBUTION_CONF_KEYS);
        assert!(p.problems[0].is_error());
    }
}
