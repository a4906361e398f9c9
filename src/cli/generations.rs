//! `nixos-wsl generations` lists the system profile's generations; `nixos-wsl boot` records
//! which one the next start of the distribution boots ([`crate::generation`]): WSL has no boot
//! menu, so this is it. Both work from Windows with nothing of the system but the static
//! binary: `wsl -d NixOS -u root -e /bin/nixos-wsl boot --rollback`.

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;

use super::render::json_string;
use super::UsageError;
use crate::generation::{self, Generation, CHOICE_FILE, PROFILES};

pub(crate) const LIST_USAGE: &str = "\
usage: nixos-wsl generations [--json]

Lists the NixOS generations of the system profile (/nix/var/nix/profiles/system-N-link):
number, date, NixOS version, and which one is current (what a normal start boots) and which
one this start booted.
";

pub(crate) const BOOT_USAGE: &str = "\
usage: nixos-wsl boot --generation N | --rollback | --default

Chooses the NixOS generation the next start of the distribution boots (once; the start
after that boots the current one again):
  --generation N  generation N (see `nixos-wsl generations`)
  --rollback      the generation before the current one
  --default       forget a choice made before: the current generation
The choice takes effect when the distribution starts again: `wsl -t <distro>` from Windows.
In the namespace mode, NIXOS_WSL_GENERATION=N in a launch's environment (from Windows:
WSLENV=NIXOS_WSL_GENERATION/u) picks a generation for that start only.

Exit status: 0 recorded, 1 refused (no such generation, incomplete, not root), 2 usage.
";

/// `--json` or nothing.
pub(crate) fn parse_list(args: &[OsString]) -> Result<Option<bool>, UsageError> {
    super::json_flag(args)
}

/// What `boot` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BootChoice {
    Generation(u32),
    Rollback,
    Default,
}

pub(crate) fn parse_boot(args: &[OsString]) -> Result<Option<BootChoice>, UsageError> {
    let one_of = || UsageError("give one of --generation N, --rollback, --default".into());
    let mut p = super::parser(args);
    let mut choice = None;
    while let Some(a) = p.next()? {
        let this = match a {
            a if super::is_help(&a) => return Ok(None),
            lexopt::Arg::Long("rollback") => BootChoice::Rollback,
            lexopt::Arg::Long("default") => BootChoice::Default,
            lexopt::Arg::Long("generation") => {
                let n = p.value()?;
                let n = generation::parse_number(n.to_str().unwrap_or("")).map_err(UsageError)?;
                BootChoice::Generation(n)
            }
            _ => return Err(one_of()),
        };
        if choice.replace(this).is_some() {
            return Err(one_of());
        }
    }
    choice.map(Some).ok_or_else(one_of)
}

pub fn list_main(args: &[OsString]) -> i32 {
    super::dispatch("generations", LIST_USAGE, args, parse_list, list)
}

pub fn boot_main(args: &[OsString]) -> i32 {
    super::dispatch("boot", BOOT_USAGE, args, parse_boot, boot)
}

/// `YYYY-MM-DD HH:MM` (UTC) of seconds since the epoch (Howard Hinnant's civil_from_days).
pub(crate) fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// The listing, as text or JSON.
pub(crate) fn render(
    gens: &[Generation],
    current: Option<u32>,
    booted: Option<u32>,
    json: bool,
) -> String {
    let mut out = String::new();
    if json {
        out.push('[');
        for (i, g) in gens.iter().enumerate() {
            let opt = |v: Option<String>| v.map_or("null".into(), |s| json_string(&s));
            out.push_str(&format!(
                "{}{{\"number\":{},\"created\":{},\"version\":{},\"toplevel\":{},\"current\":{},\"booted\":{},\"bootable\":{}}}",
                if i > 0 { "," } else { "" },
                g.number,
                g.created.map_or("null".into(), |t| generation::epoch_secs(t).to_string()),
                opt(g.version.clone()),
                opt(g.toplevel.as_ref().map(|t| t.display().to_string())),
                current == Some(g.number),
                booted == Some(g.number),
                g.check().is_ok(),
            ));
        }
        out.push_str("]\n");
        return out;
    }
    out.push_str("generation  created (UTC)      NixOS version\n");
    for g in gens {
        let mut marks = Vec::new();
        if current == Some(g.number) {
            marks.push("current");
        }
        if booted == Some(g.number) {
            marks.push("booted");
        }
        if g.check().is_err() {
            marks.push("incomplete");
        }
        out.push_str(&format!(
            "{:>10}  {:<16}  {}{}\n",
            g.number,
            g.created
                .map_or("?".into(), |t| utc(generation::epoch_secs(t))),
            g.version.as_deref().unwrap_or("?"),
            if marks.is_empty() {
                String::new()
            } else {
                format!("  ({})", marks.join(", "))
            }
        ));
    }
    out
}

fn list(json: bool) -> i32 {
    let profiles = Path::new(PROFILES);
    let gens = generation::list(profiles);
    let text = render(
        &gens,
        generation::current(profiles),
        generation::booted().map(|(n, _)| n),
        json,
    );
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    0
}

fn boot(choice: BootChoice) -> i32 {
    match record(choice, Path::new(PROFILES)) {
        Ok(message) => {
            println!("{message}");
            0
        }
        Err(why) => {
            eprintln!("nixos-wsl boot: {why}");
            1
        }
    }
}

/// Validates and records the choice; returns what to tell the user.
fn record(choice: BootChoice, profiles: &Path) -> Result<String, String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Err(format!(
            "recording the next boot writes {CHOICE_FILE}: run it as root (sudo, or wsl -u root)"
        ));
    }
    let distro = super::distro_name();
    let gens = generation::list(profiles);
    let current = generation::current(profiles);
    let number = match choice {
        BootChoice::Default => {
            return match std::fs::remove_file(CHOICE_FILE) {
                Ok(()) => Ok(format!(
                    "the next start boots the current generation again (restart: wsl -t {distro})"
                )),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Ok("no generation was chosen; the next start boots the current one".into())
                }
                Err(e) => Err(format!("cannot remove {CHOICE_FILE}: {e}")),
            };
        }
        BootChoice::Generation(n) => n,
        BootChoice::Rollback => {
            let Some(current) = current else {
                return Err(format!(
                    "{} does not name a generation; nothing to roll back from",
                    profiles.join("system").display()
                ));
            };
            generation::previous(&gens, current).ok_or_else(|| {
                format!("generation {current} is the oldest; there is nothing before it")
            })?
        }
    };
    let Some(g) = gens.iter().find(|g| g.number == number) else {
        let have: Vec<String> = gens.iter().map(|g| g.number.to_string()).collect();
        return Err(format!(
            "there is no generation {number} (there are: {}); see `nixos-wsl generations`",
            if have.is_empty() {
                "none".into()
            } else {
                have.join(", ")
            }
        ));
    };
    g.check()?;
    let dir = Path::new(CHOICE_FILE).parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    crate::sys::state::write_atomic(Path::new(CHOICE_FILE), format!("{number}\n").as_bytes())
        .map_err(|e| format!("cannot write {CHOICE_FILE}: {e:#}"))?;
    Ok(format!(
        "the next start of the distribution boots generation {number}{}, once; restart it from Windows with: wsl -t {distro}",
        if current == Some(number) { " (the current one)" } else { "" }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::os;

    #[test]
    fn parses_boot() {
        assert_eq!(
            parse_boot(&os(&["--rollback"])),
            Ok(Some(BootChoice::Rollback))
        );
        assert_eq!(
            parse_boot(&os(&["--default"])),
            Ok(Some(BootChoice::Default))
        );
        assert_eq!(
            parse_boot(&os(&["--generation", "12"])),
            Ok(Some(BootChoice::Generation(12)))
        );
        assert_eq!(
            parse_boot(&os(&["--generation=3"])),
            Ok(Some(BootChoice::Generation(3)))
        );
        assert_eq!(parse_boot(&os(&["--help"])), Ok(None));
        for bad in [
            &["--generation", "x"][..],
            &["--generation", "-1"],
            &["--generation", "0"],
            &[],
            &["--rollback", "--default"],
        ] {
            assert!(parse_boot(&os(bad)).is_err(), "{bad:?}");
        }
        assert_eq!(parse_list(&os(&["--json"])), Ok(Some(true)));
        assert!(parse_list(&os(&["--jsn"])).is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00");
        assert_eq!(utc(1_796_238_720), "2026-12-02 19:12");
    }
}
