//! `nixos-wsl exec [--user U] -- CMD...`: runs a command inside the systemd namespace with the
//! login shell's own entry code (`shell::bring_up` starts systemd if needed, then
//! `shell::session_plan` and `shell::enter`), so what works here works for every launch.

use std::ffi::OsString;
use std::path::Path;

use nix::unistd::Uid;

use super::{Place, UsageError};
use crate::config::Config;
use crate::paths::CONFIG_FILE;
use crate::session::{self, Account, Invocation};
use crate::shell;

pub(crate) const USAGE: &str = "\
usage: nixos-wsl exec [--user USER] [--] COMMAND [ARG...]

Runs COMMAND inside the systemd namespace, as root unless --user is given, starting systemd
first if it is not running (exactly as a login does). COMMAND is looked up in the session's
PATH; its arguments are passed as they are. Must run as root, e.g. from Windows:
  wsl -d NixOS -u root -e nixos-wsl exec -- systemctl status

  -u, --user USER   run as USER (initgroups, setgid, setuid; no capabilities left)

Exit status: COMMAND's; 125 when nixos-wsl itself failed; 127 when COMMAND could not be run.
";

/// `nixos-wsl exec` itself failed (as `env`, `chroot` and container runners use it).
pub(crate) const EXIT_FAILED: i32 = 125;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Args {
    pub(crate) user: Option<String>,
    pub(crate) command: Vec<OsString>,
}

/// Options come first; `--` or the first argument that is not an option starts COMMAND.
pub(crate) fn parse(args: &[OsString]) -> Result<Option<Args>, UsageError> {
    let mut user = None;
    let mut command = Vec::new();
    let mut p = super::parser(args);
    while let Some(a) = p.next()? {
        match a {
            a if super::is_help(&a) => return Ok(None),
            lexopt::Arg::Short('u') | lexopt::Arg::Long("user") => {
                let v = p.value()?;
                let name = v
                    .to_str()
                    .map(str::to_owned)
                    .ok_or_else(|| UsageError(format!("user name {v:?} is not UTF-8")))?;
                user = Some(name);
            }
            // The command and its arguments, verbatim (`--` before it is optional).
            lexopt::Arg::Value(program) => {
                command.push(program);
                command.extend(p.raw_args()?);
                break;
            }
            a => return Err(a.unexpected().into()),
        }
    }
    if command.is_empty() {
        return Err(UsageError("no command given".into()));
    }
    if user.as_deref() == Some("") {
        return Err(UsageError("empty user name".into()));
    }
    Ok(Some(Args { user, command }))
}

pub fn main(args: &[OsString]) -> i32 {
    super::dispatch("exec", USAGE, args, parse, run)
}

fn run(args: Args) -> i32 {
    if !Uid::effective().is_root() {
        eprintln!(
            "nixos-wsl exec: needs root; from Windows: wsl -d {} -u root -e nixos-wsl exec -- ...",
            super::distro_name()
        );
        return EXIT_FAILED;
    }
    let mut config = Config::load(Path::new(CONFIG_FILE));
    let name = args.user.as_deref().unwrap_or("root");
    let account = match Account::by_name(name) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("nixos-wsl exec: {e:#}");
            return EXIT_FAILED;
        }
    };
    let inherited: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let cwd = std::env::current_dir().ok();
    let plan_for = |config: &Config, account: Account| {
        let mut plan = shell::session_plan(
            config,
            account,
            Invocation::from_argv(Vec::new()),
            &inherited,
            cwd.as_deref(),
        );
        plan.command = Some(args.command.clone());
        plan
    };
    if super::place() != Place::Outside {
        // Already in systemd's PID namespace (ours, or WSL's own systemd): just run it.
        let e = session::exec(&plan_for(&config, account));
        eprintln!("nixos-wsl exec: {e:#}");
        return crate::session::EXIT_NO_SHELL;
    }
    match shell::bring_up(&mut config, None) {
        Ok(lock) => shell::enter(lock, plan_for(&config, account)),
        Err(e) => {
            eprintln!(
                "nixos-wsl exec: cannot reach systemd's namespace: {e:#}\n\
                 (to run it without systemd: wsl -d {} -u root -e {})",
                super::distro_name(),
                args.command
                    .iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            EXIT_FAILED
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::os;
    use std::os::unix::ffi::OsStringExt;

    fn ok(user: Option<&str>, command: &[&str]) -> Result<Option<Args>, UsageError> {
        Ok(Some(Args {
            user: user.map(str::to_owned),
            command: os(command),
        }))
    }

    #[test]
    fn forms() {
        assert_eq!(parse(&os(&["--", "id", "-u"])), ok(None, &["id", "-u"]));
        assert_eq!(parse(&os(&["id", "-u"])), ok(None, &["id", "-u"]));
        assert_eq!(
            parse(&os(&["--user", "nixos", "--", "id"])),
            ok(Some("nixos"), &["id"])
        );
        assert_eq!(
            parse(&os(&["-u", "nixos", "id"])),
            ok(Some("nixos"), &["id"])
        );
        assert_eq!(
            parse(&os(&["--user=nixos", "--", "--weird", "--"])),
            ok(Some("nixos"), &["--weird", "--"])
        );
        assert_eq!(parse(&os(&["--help", "--", "x"])), Ok(None));
        // After `--`, --help belongs to the command.
        assert_eq!(
            parse(&os(&["--", "ls", "--help"])),
            ok(None, &["ls", "--help"])
        );
    }

    #[test]
    fn mistakes() {
        for bad in [
            &[][..],
            &["--"][..],
            &["--user"][..],
            &["--user", "x"][..],
            &["--bogus", "--", "id"][..],
            &["--user=", "id"][..],
        ] {
            assert!(parse(&os(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn non_utf8_arguments_pass_through() {
        let raw = OsString::from_vec(vec![b'a', 0xff, 0xfe]);
        let parsed = parse(&[OsString::from("--"), OsString::from("printf"), raw.clone()]);
        assert_eq!(
            parsed,
            Ok(Some(Args {
                user: None,
                command: vec![OsString::from("printf"), raw.clone()],
            }))
        );
        assert!(parse(&[OsString::from("--user"), raw, OsString::from("id")]).is_err());
    }
}
