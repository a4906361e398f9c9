//! `/etc/nixos-wsl.conf`: the login shell's configuration, written by the NixOS module.
//!
//! Format: one `key = value` per line, `#` starts a comment line, blank lines are ignored.
//! Nothing in this file may lock a user out: a missing file means defaults, and every bad
//! line produces one warning and leaves that key at its default.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where NixOS' system profile keeps systemd (`config.systemd.package` of the current generation).
pub(crate) const DEFAULT_SYSTEMD: &str = "/nix/var/nix/profiles/system/systemd/lib/systemd/systemd";
/// The current generation's activation script.
pub(crate) const DEFAULT_ACTIVATE: &str = "/nix/var/nix/profiles/system/activate";
/// The login name the launch lands in.
pub(crate) const DEFAULT_USER: &str = "nixos";
/// How long to wait for systemd to report that its boot finished.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest accepted timeout: a day is already far beyond any sane boot.
const MAX_TIMEOUT_SECS: u64 = 86_400;

/// The parsed configuration, with defaults for everything absent or invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    /// Login name of the user whose shell every launch runs.
    pub(crate) user: String,
    /// Absolute path of the systemd binary to run as PID 1 of the namespace.
    pub(crate) systemd: PathBuf,
    /// Absolute path of the NixOS activation script; `None` disables activation.
    pub(crate) activate: Option<PathBuf>,
    /// Bound on the wait for systemd's readiness.
    pub(crate) timeout: Duration,
    /// The real shell for users whose passwd shell is this program (NixOS' `users.users.*.shell`).
    pub(crate) shell: Option<PathBuf>,
    /// Keep the Windows `%PATH%` entries WSL appends (after NixOS' own); `wsl.interop.includePath`.
    pub(crate) include_path: bool,
    /// Show the one-time welcome on a user's first interactive login (`welcome`).
    pub(crate) welcome: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            user: DEFAULT_USER.to_owned(),
            systemd: PathBuf::from(DEFAULT_SYSTEMD),
            activate: Some(PathBuf::from(DEFAULT_ACTIVATE)),
            timeout: DEFAULT_TIMEOUT,
            shell: None,
            include_path: true,
            welcome: false,
        }
    }
}

impl Config {
    /// Parses the file's bytes. Returns the configuration and one message per rejected line;
    /// messages name the line (`<path>:<line>: ...`) so the user can fix it.
    pub(crate) fn parse(text: &[u8], origin: &str) -> (Config, Vec<String>) {
        let mut config = Config::default();
        let mut warnings = Vec::new();
        for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
            let line_no = index + 1;
            let line = raw.trim_ascii();
            if line.is_empty() || line.starts_with(b"#") {
                continue;
            }
            let Ok(line) = std::str::from_utf8(line) else {
                warnings.push(format!("{origin}:{line_no}: not UTF-8, line ignored"));
                continue;
            };
            let Some((key, value)) = line.split_once('=') else {
                warnings.push(format!(
                    "{origin}:{line_no}: expected `key = value`, line ignored"
                ));
                continue;
            };
            if let Err(reason) = config.set(key.trim(), value.trim()) {
                warnings.push(format!("{origin}:{line_no}: {reason}"));
            }
        }
        (config, warnings)
    }

    /// Applies one setting; on error the field keeps its previous value.
    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "user" => {
                if !valid_login_name(value) {
                    return Err(format!("invalid user name {value:?}, using {:?}", self.user));
                }
                self.user = value.to_owned();
            }
            "systemd" => self.systemd = absolute_path(key, value)?,
            "activate" if value.is_empty() => self.activate = None,
            "activate" => self.activate = Some(absolute_path(key, value)?),
            "shell" => self.shell = Some(absolute_path(key, value)?),
            "include_path" => self.include_path = boolean(key, value, self.include_path)?,
            "welcome" => self.welcome = boolean(key, value, self.welcome)?,
            "timeout" => match value.parse::<u64>() {
                Ok(secs) if (1..=MAX_TIMEOUT_SECS).contains(&secs) => {
                    self.timeout = Duration::from_secs(secs)
                }
                _ => {
                    return Err(format!(
                        "timeout must be whole seconds from 1 to {MAX_TIMEOUT_SECS}, got {value:?}; using {}",
                        self.timeout.as_secs()
                    ))
                }
            },
            _ => return Err(format!("unknown key {key:?}, ignored")),
        }
        Ok(())
    }

    /// Reads `path`; a missing file gives the defaults silently, any other problem (unreadable,
    /// bad lines) is logged as one warning per problem and falls back to defaults.
    pub(crate) fn load(path: &Path) -> Config {
        match std::fs::read(path) {
            Ok(text) => {
                let (config, warnings) = Config::parse(&text, &path.display().to_string());
                for warning in warnings {
                    log::warn!("{warning}");
                }
                config
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Config::default(),
            Err(e) => {
                log::warn!("cannot read {}: {e}; using defaults", path.display());
                Config::default()
            }
        }
    }
}

/// A `true`/`false` setting; an error keeps (and names) the current value.
fn boolean(key: &str, value: &str, current: bool) -> Result<bool, String> {
    match value {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(format!(
            "{key} must be true or false, got {value:?}; using {current}"
        )),
    }
}

fn absolute_path(key: &str, value: &str) -> Result<PathBuf, String> {
    let path = Path::new(value);
    if path.is_absolute() && !path.as_os_str().as_bytes().contains(&0) {
        Ok(path.to_owned())
    } else {
        Err(format!(
            "{key} must be an absolute path, got {value:?}; using the default"
        ))
    }
}

/// A name `getpwnam` could return: non-empty, no separators or whitespace, not `.`/`..`.
fn valid_login_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name != "."
        && name != ".."
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b':' | b'/' | b',' | b'\\'))
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Config, Vec<String>) {
        Config::parse(text.as_bytes(), "test.conf")
    }

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(parse(""), (Config::default(), vec![]));
        assert_eq!(parse("\n\n# comment\n   \n"), (Config::default(), vec![]));
    }

    #[test]
    fn all_keys() {
        let (c, w) = parse(
            "user = alice\nsystemd=/s/systemd\n  activate =   /a/activate  \ntimeout = 5\nshell = /bin/zsh\ninclude_path = false\n",
        );
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.user, "alice");
        assert_eq!(c.systemd, Path::new("/s/systemd"));
        assert_eq!(c.activate.as_deref(), Some(Path::new("/a/activate")));
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(c.shell.as_deref(), Some(Path::new("/bin/zsh")));
        assert!(!c.include_path);
    }

    #[test]
    fn empty_activate_disables_activation() {
        let (c, w) = parse("activate =\n");
        assert!(w.is_empty());
        assert_eq!(c.activate, None);
    }

    #[test]
    fn bad_lines_warn_once_each_and_keep_defaults() {
        let (c, w) = parse(
            "bogus = 1\nuser = bad:name\ntimeout = soon\ntimeout = 0\nsystemd = relative\nno equals sign\n",
        );
        assert_eq!(c, Config::default());
        assert_eq!(w.len(), 6, "{w:?}");
        assert!(w[0].starts_with("test.conf:1: unknown key"), "{}", w[0]);
        assert!(w[5].starts_with("test.conf:6: expected"), "{}", w[5]);
    }

    #[test]
    fn non_utf8_line_is_rejected_alone() {
        let (c, w) = Config::parse(b"user = \xff\xfe\nuser = bob\n", "t");
        assert_eq!(c.user, "bob");
        assert_eq!(w, vec!["t:1: not UTF-8, line ignored".to_owned()]);
    }

    #[test]
    fn later_lines_win() {
        let (c, _) = parse("user = a\nuser = b\n");
        assert_eq!(c.user, "b");
    }

    #[test]
    fn login_names() {
        for ok in ["nixos", "a", "user.name", "u_1", "x-y"] {
            assert!(valid_login_name(ok), "{ok}");
        }
        for bad in ["", "-x", "a b", "a:b", "a/b", ".", "..", "tab\t"] {
            assert!(!valid_login_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn missing_file_is_defaults() {
        assert_eq!(
            Config::load(Path::new("/nonexistent/nixos-wsl.conf")),
            Config::default()
        );
    }
}
