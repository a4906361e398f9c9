//! NixOS generations at boot. WSL has no boot menu, so the choice of a generation is made
//! from Windows or a shell and applies to the next start of the distribution:
//!
//! - `nixos-wsl boot --generation N | --rollback` records a one-shot choice in
//!   [`CHOICE_FILE`]; the next cold start consumes it (renames it away) and boots N; the start
//!   after that boots the current generation again.
//! - `NIXOS_WSL_GENERATION=N` in a launch's environment (namespace mode) picks N for that cold
//!   start only.
//!
//! Booting generation N means running N's `activate` and N's systemd
//! (`<toplevel>/systemd/lib/systemd/systemd`), as a boot loader entry would. The generation a
//! boot runs is recorded in [`BOOTED_FILE`] for `nixos-wsl status` and the doctor. Deciding is
//! pure ([`choose`]); reading the profile directory is [`list`].

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::config::Config;

/// Where NixOS keeps the system profile's generations (`system-N-link`).
pub(crate) const PROFILES: &str = "/nix/var/nix/profiles";

/// The one-shot choice for the next start: a generation number and a newline.
pub(crate) const CHOICE_FILE: &str = "/var/lib/nixos-wsl/next-generation";

/// The generation this boot runs: `<number> <toplevel>`.
pub(crate) const BOOTED_FILE: &str = "/run/nixos-wsl/generation";

/// The environment variable that picks a generation for one cold start.
pub(crate) const ENV_VAR: &str = "NIXOS_WSL_GENERATION";

/// One `system-N-link` of the profile directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Generation {
    pub(crate) number: u32,
    /// `/nix/var/nix/profiles/system-N-link`.
    pub(crate) link: PathBuf,
    /// What the link resolves to, if it resolves.
    pub(crate) toplevel: Option<PathBuf>,
    /// When the generation was made (the link's own mtime, as nixos-rebuild lists it).
    pub(crate) created: Option<SystemTime>,
    /// `<toplevel>/nixos-version`.
    pub(crate) version: Option<String>,
}

impl Generation {
    /// Its activation script.
    pub(crate) fn activate(&self) -> PathBuf {
        self.link.join("activate")
    }

    /// Its systemd (NixOS' toplevel links the systemd package as `systemd`).
    pub(crate) fn systemd(&self) -> PathBuf {
        self.link.join("systemd/lib/systemd/systemd")
    }

    /// Why this generation cannot boot, if it cannot: it must resolve into the Nix store and
    /// have an executable `activate` and systemd.
    pub(crate) fn check(&self) -> Result<(), String> {
        let n = self.number;
        let Some(toplevel) = &self.toplevel else {
            return Err(format!(
                "generation {n} ({}) does not resolve",
                self.link.display()
            ));
        };
        if !toplevel.starts_with("/nix/store/") {
            return Err(format!(
                "generation {n} points outside the Nix store ({}), refusing to boot it",
                toplevel.display()
            ));
        }
        for program in [self.activate(), self.systemd()] {
            let ok = fs::metadata(&program).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0);
            if !ok {
                return Err(format!(
                    "generation {n} is incomplete: {} is missing or not executable",
                    program.display()
                ));
            }
        }
        Ok(())
    }
}

/// `system-N-link` → N (no leading zeros, no sign: what Nix writes).
pub(crate) fn link_number(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("system-")?.strip_suffix("-link")?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Every generation in `profiles`, oldest first. Unreadable entries are skipped.
pub(crate) fn list(profiles: &Path) -> Vec<Generation> {
    let mut out: Vec<Generation> = fs::read_dir(profiles)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let number = link_number(entry.file_name().to_str()?)?;
            let link = entry.path();
            let toplevel = fs::canonicalize(&link).ok();
            let created = fs::symlink_metadata(&link).and_then(|m| m.modified()).ok();
            let version = toplevel
                .as_ref()
                .and_then(|t| fs::read_to_string(t.join("nixos-version")).ok())
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty() && v.len() < 200);
            Some(Generation {
                number,
                link,
                toplevel,
                created,
                version,
            })
        })
        .collect();
    out.sort_by_key(|g| g.number);
    out
}

/// The current generation: the one `system` links to.
pub(crate) fn current(profiles: &Path) -> Option<u32> {
    let target = fs::read_link(profiles.join("system")).ok()?;
    link_number(target.file_name()?.to_str()?)
}

/// The generation before the current one (what `--rollback` boots).
pub(crate) fn previous(generations: &[Generation], current: u32) -> Option<u32> {
    generations
        .iter()
        .map(|g| g.number)
        .filter(|&n| n < current)
        .max()
}

/// A generation number as a user writes it (argument, environment, choice file); the error
/// says what is wrong.
pub(crate) fn parse_number(text: &str) -> Result<u32, String> {
    let t = text.trim();
    match t.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "{t:?} is not a generation number (a whole number from 1, see `nixos-wsl generations`)"
        )),
    }
}

/// What a cold start boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Choice {
    /// The current generation, as configured.
    Current,
    /// Generation N, asked for by `source` (the environment or the recorded choice).
    Generation { number: u32, source: &'static str },
}

/// Decides what a cold start boots from the launch's `NIXOS_WSL_GENERATION` (namespace mode;
/// it wins) and the recorded choice file's contents. A bad value is reported (the returned
/// message) and the current generation boots: nothing is guessed.
pub(crate) fn choose(env: Option<&str>, recorded: Option<&str>) -> (Choice, Option<String>) {
    if let Some(v) = env.filter(|v| !v.is_empty()) {
        return match parse_number(v) {
            Ok(number) => (
                Choice::Generation {
                    number,
                    source: ENV_VAR,
                },
                None,
            ),
            Err(why) => (
                Choice::Current,
                Some(format!("{ENV_VAR}: {why}; booting the current generation")),
            ),
        };
    }
    match recorded {
        None => (Choice::Current, None),
        Some(text) => match parse_number(text) {
            Ok(number) => (
                Choice::Generation {
                    number,
                    source: CHOICE_FILE,
                },
                None,
            ),
            Err(why) => (
                Choice::Current,
                Some(format!(
                    "{CHOICE_FILE}: {why}; booting the current generation (`nixos-wsl boot --default` clears it)"
                )),
            ),
        },
    }
}

/// Takes the one-shot choice, if any: renamed aside before it is used, so it applies to this
/// start only. An unreadable file is reported and left alone.
pub(crate) fn take_recorded() -> Result<Option<String>, String> {
    let path = Path::new(CHOICE_FILE);
    match fs::symlink_metadata(path) {
        Err(_) => return Ok(None),
        Ok(m) if !m.is_file() || m.len() > 64 => {
            return Err(format!(
                "{CHOICE_FILE} is not a small regular file; ignoring it (remove it, or run `nixos-wsl boot --default`)"
            ))
        }
        Ok(_) => {}
    }
    let text = fs::read_to_string(path)
        .map_err(|e| format!("{CHOICE_FILE} cannot be read ({e}); ignoring it"))?;
    let used = path.with_extension("used");
    fs::rename(path, &used).map_err(|e| {
        format!("{CHOICE_FILE} cannot be consumed ({e}); booting the current generation")
    })?;
    Ok(Some(text))
}

/// What a cold start boots, decided before its activation ([`prepare`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Boot {
    pub(crate) number: Option<u32>,
    pub(crate) toplevel: Option<PathBuf>,
    /// A chosen generation's systemd (after its activation, which may reload the config).
    systemd: Option<PathBuf>,
}

/// At a cold start, before the activation: decides the generation (see [`choose`]; the
/// recorded choice is consumed unless the environment overrides it) and points `config` at
/// its activation. A choice that cannot boot is reported and the current generation boots.
pub(crate) fn prepare(config: &mut Config, env: Option<&str>) -> Boot {
    let profiles = Path::new(PROFILES);
    let recorded = if env.is_some_and(|v| !v.is_empty()) {
        None
    } else {
        take_recorded().unwrap_or_else(|why| {
            log::error!("{why}");
            None
        })
    };
    let (choice, why) = choose(env, recorded.as_deref());
    if let Some(why) = why {
        log::error!("{why}");
    }
    let current = current(profiles);
    if let Choice::Generation { number, source } = choice {
        match list(profiles).into_iter().find(|g| g.number == number) {
            None => log::error!(
                "{source} asks for generation {number}, which does not exist; booting the current generation"
            ),
            Some(g) => match g.check() {
                Err(why) => log::error!("{source}: {why}; booting the current generation"),
                Ok(()) => {
                    if current != Some(number) {
                        log::warn!(
                            "booting generation {number} ({source}), not the current {}",
                            current.map_or("one".into(), |c| c.to_string())
                        );
                    }
                    config.activate = Some(g.activate());
                    return Boot {
                        number: Some(number),
                        systemd: Some(g.systemd()),
                        toplevel: g.toplevel,
                    };
                }
            },
        }
    }
    Boot {
        number: current,
        toplevel: fs::canonicalize(profiles.join("system")).ok(),
        systemd: None,
    }
}

impl Boot {
    /// After the activation: a chosen generation's systemd, and the record of this boot.
    pub(crate) fn finish(&self, config: &mut Config) {
        if let Some(systemd) = &self.systemd {
            config.systemd = systemd.clone();
        }
        if let (Some(number), Some(toplevel)) = (self.number, &self.toplevel) {
            record_booted(number, toplevel);
        }
    }
}

/// A cold start's activation, the same for the login shell and `nixos-wsl-init`: picks the
/// generation ([`prepare`]), runs its activation once, re-reads `config` if the activation
/// linked a different file (a newer generation's), and records the boot. The activation's
/// failure is returned for the caller to report: the boot goes on either way.
pub(crate) fn activate_boot(config: &mut Config, env: Option<&str>) -> anyhow::Result<()> {
    let before = fs::read(crate::paths::CONFIG_FILE).ok();
    let boot = prepare(config, env);
    let result = match config.activate.clone() {
        Some(activate) => {
            log::info!("running the NixOS activation ({})", activate.display());
            crate::activation::run_once(&activate)
        }
        None => Ok(()),
    };
    // Its warnings, if any, were already shown for an unchanged file.
    if fs::read(crate::paths::CONFIG_FILE).ok() != before {
        *config = Config::load(Path::new(crate::paths::CONFIG_FILE));
    }
    boot.finish(config);
    result
}

/// Records the generation this boot runs.
pub(crate) fn record_booted(number: u32, toplevel: &Path) {
    let line = format!("{number} {}\n", toplevel.display());
    if let Err(e) = crate::sys::state::write_atomic(Path::new(BOOTED_FILE), line.as_bytes()) {
        log::warn!("cannot record the booted generation: {e:#}");
    }
}

/// The generation this boot runs, as recorded: `(number, toplevel)`.
pub(crate) fn booted() -> Option<(u32, PathBuf)> {
    let text = fs::read_to_string(BOOTED_FILE).ok()?;
    let (n, path) = text.trim_end().split_once(' ')?;
    Some((n.parse().ok()?, PathBuf::from(path)))
}

/// The sentence a failure message ends with: how to boot the previous generation (from
/// Windows, through the static CLI, which needs neither PATH nor the user's shell).
pub(crate) fn rollback_hint(profiles: &Path, distro: Option<&str>) -> Option<String> {
    let current = current(profiles)?;
    let previous = previous(&list(profiles), current)?;
    let distro = distro.unwrap_or("NixOS");
    Some(format!(
        "to boot the previous generation {previous}, run from Windows: wsl -d {distro} -u root -e /bin/nixos-wsl boot --generation {previous}; wsl -t {distro}"
    ))
}

/// Seconds since the epoch of a time, for listings.
pub(crate) fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_names() {
        assert_eq!(link_number("system-1-link"), Some(1));
        assert_eq!(link_number("system-42-link"), Some(42));
        for bad in [
            "system",
            "system-0-link",
            "system-01-link",
            "system--1-link",
            "system-x-link",
            "system-1",
            "user-1-link",
            "system-99999999999-link",
        ] {
            assert_eq!(link_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn choices() {
        assert_eq!(choose(None, None), (Choice::Current, None));
        assert_eq!(
            choose(Some("3"), Some("2\n")).0,
            Choice::Generation {
                number: 3,
                source: ENV_VAR
            }
        );
        assert_eq!(
            choose(None, Some("2\n")).0,
            Choice::Generation {
                number: 2,
                source: CHOICE_FILE
            }
        );
        for bad in ["x", "-1", "0", "1.5", "", " "] {
            let (c, why) = choose(None, Some(bad));
            assert_eq!(c, Choice::Current, "{bad:?}");
            assert!(why.unwrap().contains("not a generation number"), "{bad:?}");
        }
        let (c, why) = choose(Some("two"), Some("2"));
        assert_eq!(c, Choice::Current);
        assert!(why.unwrap().starts_with(ENV_VAR));
    }

    #[test]
    fn previous_is_the_highest_below_current() {
        let g = |number| Generation {
            number,
            link: PathBuf::new(),
            toplevel: None,
            created: None,
            version: None,
        };
        let gens = [g(1), g(3), g(4), g(7)];
        assert_eq!(previous(&gens, 7), Some(4));
        assert_eq!(previous(&gens, 4), Some(3));
        assert_eq!(previous(&gens, 1), None);
    }

    #[test]
    fn a_generation_outside_the_store_is_refused() {
        let g = Generation {
            number: 2,
            link: "/tmp/x".into(),
            toplevel: Some("/tmp/evil".into()),
            created: None,
            version: None,
        };
        assert!(g.check().unwrap_err().contains("outside the Nix store"));
        let g = Generation {
            toplevel: None,
            ..g
        };
        assert!(g.check().unwrap_err().contains("does not resolve"));
    }
}
