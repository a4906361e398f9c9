//! `nixos-wsl version`: what runs, for bug reports: this program's version and the git
//! revision it was built from (the flake passes `self.rev`), the NixOS version and generation
//! of the running system, the mode, the kernel, and WSL's version where the distribution can
//! see it (PID 1's `container_host_version_id` in WSL's systemd mode, else `wslinfo`).

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use super::render::json_string;
use super::UsageError;
use crate::generation;

pub(crate) const USAGE: &str = "\
usage: nixos-wsl version [--json]

Prints this program's version and git revision, the running NixOS version and generation,
the mode (namespace or WSL's systemd), the kernel, and WSL's version when the distribution
can see it.
";

/// The git revision the build was made from (`NIXOS_WSL_REV` at build time).
pub const REV: &str = match option_env!("NIXOS_WSL_REV") {
    Some(rev) => rev,
    None => "unknown",
};

pub(crate) fn parse(args: &[OsString]) -> Result<Option<bool>, UsageError> {
    super::json_flag(args)
}

pub fn main(args: &[OsString]) -> i32 {
    super::dispatch("version", USAGE, args, parse, run)
}

/// `(key, value)` pairs of the report, in order.
fn facts() -> Vec<(&'static str, Option<String>)> {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let mode = match super::place() {
        super::Place::WslSystemd => "wsl-systemd",
        super::Place::InsideOurs => "namespace",
        super::Place::Outside if crate::pid1::is_nixos_wsl_init() => "wsl-systemd",
        super::Place::Outside => "namespace",
    };
    vec![
        ("nixos-wsl", Some(env!("CARGO_PKG_VERSION").to_owned())),
        ("revision", Some(REV.to_owned())),
        ("nixos", read("/run/current-system/nixos-version")),
        (
            "generation",
            generation::booted().map(|(n, _)| n.to_string()),
        ),
        ("mode", Some(mode.to_owned())),
        ("kernel", read("/proc/sys/kernel/osrelease")),
        ("wsl", wsl_version()),
    ]
}

/// WSL's version: PID 1's environment in WSL's systemd mode (readable by root), else
/// `wslinfo --wsl-version` (WSL 2.3 and later link it to /init), bounded.
fn wsl_version() -> Option<String> {
    if let Ok(environ) = std::fs::read("/proc/1/environ") {
        for var in environ.split(|&b| b == 0) {
            if let Some(v) = var.strip_prefix(b"container_host_version_id=") {
                return Some(String::from_utf8_lossy(v).into_owned());
            }
        }
    }
    ["/usr/bin/wslinfo", "/bin/wslinfo"]
        .iter()
        .map(Path::new)
        .find(|p| p.exists())
        .and_then(|p| super::run_bounded(p, &["--wsl-version"], Duration::from_secs(1)).ok())
        .map(|(_, out)| out.trim().to_owned())
        .filter(|v| !v.is_empty())
}

pub(crate) fn render(facts: &[(&str, Option<String>)], json: bool) -> String {
    if json {
        let items: Vec<String> = facts
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}:{}",
                    json_string(k),
                    v.as_deref().map_or("null".into(), json_string)
                )
            })
            .collect();
        return format!("{{{}}}\n", items.join(","));
    }
    facts
        .iter()
        .map(|(k, v)| {
            format!(
                "{:<11} {}\n",
                format!("{k}:"),
                v.as_deref().unwrap_or("unknown")
            )
        })
        .collect()
}

fn run(json: bool) -> i32 {
    print!("{}", render(&facts(), json));
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders() {
        let f = vec![("nixos-wsl", Some("0.1.0".to_owned())), ("wsl", None)];
        assert_eq!(
            render(&f, false),
            "nixos-wsl:  0.1.0\nwsl:        unknown\n"
        );
        assert_eq!(render(&f, true), "{\"nixos-wsl\":\"0.1.0\",\"wsl\":null}\n");
    }
}
