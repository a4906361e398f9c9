//! `nixos-wsl tarball ...`: argument parsing (pure) and dispatch.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::build::{self, BuildOptions};
use super::image::{self, ImageOptions};
use super::{ico, manifest, rootfs, verify};

pub(crate) const USAGE: &str = "\
usage: nixos-wsl tarball build --source DIR --output OUT.tar.gz [--store-paths FILE]
                               [--mtime SECS] [--keep-owners] [--level 0-9]
       nixos-wsl tarball installer --rootfs ROOTFS.tar.gz --installer PATH --output OUT.tar.gz
                               [--mtime SECS]
       nixos-wsl tarball verify [--modern] [--arch x86_64|aarch64] [--strict] FILE
       nixos-wsl tarball rootfs --spec FILE --work DIR --output OUT.tar.gz [--mtime SECS]
                               [--store-root DIR]
       nixos-wsl tarball ico --output OUT.ico PNG...
       nixos-wsl tarball manifest --flavor F --name N --friendly-name TEXT --output FILE
                               [--amd64 FILE.wsl --amd64-url URL] [--arm64 FILE.wsl --arm64-url URL]

  build      pack DIR as / plus the store paths listed in FILE, reproducibly (sorted entries,
             fixed mtime: --mtime, else $SOURCE_DATE_EPOCH, else 1; owners root:root unless
             --keep-owners; hard links kept)
  installer  wrap a root filesystem tarball in the hard-link-free installer tarball WSL imports
  verify     check a tarball as WSL would import and start it, and against every rule of
             Microsoft's distribution validator (validate-modern.py); prints findings, exits 1
             on errors (with --strict on warnings too); --modern: a .wsl distribution (needs
             /etc/wsl-distribution.conf); --arch: the ELF machine wanted (default x86_64)
  rootfs     lay out a NixOS root filesystem from a spec in a new DIR (files, links, the Nix
             database of a closure, the system profile) and pack it like `build`; --store-root:
             the store paths are in a chroot store there
  ico        a Windows icon holding the given PNG images (at most 256x256)
  manifest   a DistributionInfo.json entry for `wsl --install`, hashing the .wsl files
";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    Build {
        source: PathBuf,
        output: PathBuf,
        store_paths: Option<PathBuf>,
        mtime: Option<i64>,
        keep_owners: bool,
        level: u32,
    },
    Installer {
        rootfs: PathBuf,
        installer: PathBuf,
        output: PathBuf,
        mtime: Option<i64>,
    },
    Verify {
        file: PathBuf,
        modern: bool,
        arch: verify::Arch,
        strict: bool,
    },
    Rootfs {
        spec: PathBuf,
        work: PathBuf,
        output: PathBuf,
        mtime: Option<i64>,
        store_root: Option<PathBuf>,
    },
    Ico {
        output: PathBuf,
        images: Vec<PathBuf>,
    },
    Manifest {
        options: manifest::ManifestOptions,
        output: PathBuf,
    },
    Help,
}

pub(crate) use crate::cli::UsageError;

/// Options and positionals of one subcommand.
struct Args {
    values: Vec<(String, OsString)>,
    flags: Vec<String>,
    positionals: Vec<OsString>,
}

/// Splits `args` by the subcommand's known `valued` options and `flags` (the admin CLI's one
/// parser, [`crate::cli::parser`]); `None` for `-h`/`--help`.
fn split(args: &[OsString], valued: &[&str], flags: &[&str]) -> Result<Option<Args>, UsageError> {
    let mut out = Args {
        values: Vec::new(),
        flags: Vec::new(),
        positionals: Vec::new(),
    };
    let mut p = crate::cli::parser(args);
    while let Some(arg) = p.next()? {
        let name = match arg {
            a if crate::cli::is_help(&a) => return Ok(None),
            lexopt::Arg::Value(v) => {
                out.positionals.push(v);
                continue;
            }
            lexopt::Arg::Long(name) => format!("--{name}"),
            lexopt::Arg::Short(c) => return Err(UsageError(format!("unknown option -{c}"))),
        };
        if valued.contains(&name.as_str()) {
            let value = p
                .value()
                .map_err(|_| UsageError(format!("{name} needs a value")))?;
            if out.values.iter().any(|(n, _)| *n == name) {
                return Err(UsageError(format!("{name} given twice")));
            }
            out.values.push((name, value));
        } else if flags.contains(&name.as_str()) {
            out.flags.push(name);
        } else {
            return Err(UsageError(format!("unknown option {name}")));
        }
    }
    Ok(Some(out))
}

impl Args {
    fn get(&self, name: &str) -> Option<PathBuf> {
        self.values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| PathBuf::from(v))
    }
    fn need(&self, name: &str) -> Result<PathBuf, UsageError> {
        self.get(name)
            .ok_or_else(|| UsageError(format!("{name} is required")))
    }
    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, UsageError> {
        match self.values.iter().find(|(n, _)| n == name) {
            None => Ok(None),
            Some((_, v)) => v
                .to_str()
                .and_then(|s| s.parse().ok())
                .map(Some)
                .ok_or_else(|| UsageError(format!("{name} needs a number, not {v:?}"))),
        }
    }
    fn no_positionals(&self) -> Result<(), UsageError> {
        match self.positionals.first() {
            Some(p) => Err(UsageError(format!("unexpected argument {p:?}"))),
            None => Ok(()),
        }
    }
}

/// Parses the arguments after `tarball`: the subcommand, then its own parser.
pub(crate) fn parse(args: &[OsString]) -> Result<Command, UsageError> {
    let Some(sub) = args.first() else {
        return Err(UsageError("missing subcommand".into()));
    };
    let rest = &args[1..];
    match sub.to_string_lossy().as_ref() {
        "build" => parse_build(rest),
        "installer" => parse_installer(rest),
        "verify" => parse_verify(rest),
        "rootfs" => parse_rootfs(rest),
        "ico" => parse_ico(rest),
        "manifest" => parse_manifest(rest),
        "--help" | "-h" | "help" => Ok(Command::Help),
        other => Err(UsageError(format!("unknown subcommand {other:?}"))),
    }
}

fn parse_build(rest: &[OsString]) -> Result<Command, UsageError> {
    let Some(a) = split(
        rest,
        &[
            "--source",
            "--output",
            "--store-paths",
            "--mtime",
            "--level",
        ],
        &["--keep-owners"],
    )?
    else {
        return Ok(Command::Help);
    };
    a.no_positionals()?;
    let level = a.number::<u32>("--level")?.unwrap_or(6);
    if level > 9 {
        return Err(UsageError("--level is 0 to 9".into()));
    }
    Ok(Command::Build {
        source: a.need("--source")?,
        output: a.need("--output")?,
        store_paths: a.get("--store-paths"),
        mtime: a.number("--mtime")?,
        keep_owners: a.flags.iter().any(|f| f == "--keep-owners"),
        level,
    })
}

fn parse_installer(rest: &[OsString]) -> Result<Command, UsageError> {
    let Some(a) = split(
        rest,
        &["--rootfs", "--installer", "--output", "--mtime"],
        &[],
    )?
    else {
        return Ok(Command::Help);
    };
    a.no_positionals()?;
    Ok(Command::Installer {
        rootfs: a.need("--rootfs")?,
        installer: a.need("--installer")?,
        output: a.need("--output")?,
        mtime: a.number("--mtime")?,
    })
}

fn parse_verify(rest: &[OsString]) -> Result<Command, UsageError> {
    let Some(a) = split(rest, &["--arch"], &["--modern", "--strict"])? else {
        return Ok(Command::Help);
    };
    let arch = match a.values.iter().find(|(n, _)| n == "--arch") {
        None => verify::Arch::X86_64,
        Some((_, v)) => v
            .to_str()
            .and_then(verify::Arch::parse)
            .ok_or_else(|| UsageError(format!("--arch is x86_64 or aarch64, not {v:?}")))?,
    };
    match a.positionals.as_slice() {
        [file] => Ok(Command::Verify {
            file: PathBuf::from(file),
            modern: a.flags.iter().any(|f| f == "--modern"),
            arch,
            strict: a.flags.iter().any(|f| f == "--strict"),
        }),
        _ => Err(UsageError("verify takes exactly one FILE".into())),
    }
}

fn parse_rootfs(rest: &[OsString]) -> Result<Command, UsageError> {
    let Some(a) = split(
        rest,
        &["--spec", "--work", "--output", "--mtime", "--store-root"],
        &[],
    )?
    else {
        return Ok(Command::Help);
    };
    a.no_positionals()?;
    Ok(Command::Rootfs {
        spec: a.need("--spec")?,
        work: a.need("--work")?,
        output: a.need("--output")?,
        mtime: a.number("--mtime")?,
        store_root: a.get("--store-root"),
    })
}

fn parse_ico(rest: &[OsString]) -> Result<Command, UsageError> {
    let Some(a) = split(rest, &["--output"], &[])? else {
        return Ok(Command::Help);
    };
    if a.positionals.is_empty() {
        return Err(UsageError("ico takes one or more PNG files".into()));
    }
    Ok(Command::Ico {
        output: a.need("--output")?,
        images: a.positionals.iter().map(PathBuf::from).collect(),
    })
}

fn parse_manifest(rest: &[OsString]) -> Result<Command, UsageError> {
    let Some(a) = split(
        rest,
        &[
            "--flavor",
            "--name",
            "--friendly-name",
            "--output",
            "--amd64",
            "--amd64-url",
            "--arm64",
            "--arm64-url",
        ],
        &[],
    )?
    else {
        return Ok(Command::Help);
    };
    a.no_positionals()?;
    let text = |name: &str| -> Result<String, UsageError> {
        a.need(name)?
            .into_os_string()
            .into_string()
            .map_err(|v| UsageError(format!("{name} {v:?} is not UTF-8")))
    };
    let mut downloads = Vec::new();
    for (file, url, key) in [
        ("--amd64", "--amd64-url", "Amd64Url"),
        ("--arm64", "--arm64-url", "Arm64Url"),
    ] {
        match (a.get(file), a.get(url)) {
            (None, None) => {}
            (Some(file), Some(_)) => downloads.push(manifest::Download {
                key,
                file,
                url: text(url)?,
            }),
            _ => return Err(UsageError(format!("{file} and {url} go together"))),
        }
    }
    Ok(Command::Manifest {
        options: manifest::ManifestOptions {
            flavor: text("--flavor")?,
            name: text("--name")?,
            friendly_name: text("--friendly-name")?,
            downloads,
        },
        output: a.need("--output")?,
    })
}

fn mtime(given: Option<i64>) -> Result<i64> {
    match given {
        Some(m) => Ok(m),
        None => build::default_mtime(std::env::var("SOURCE_DATE_EPOCH").ok().as_deref()),
    }
}

/// Runs a parsed command; returns the exit status.
pub(crate) fn run(cmd: Command) -> Result<i32> {
    match cmd {
        Command::Help => {
            print!("{USAGE}");
            Ok(0)
        }
        Command::Build {
            source,
            output,
            store_paths,
            mtime: m,
            keep_owners,
            level,
        } => {
            let store_paths = match store_paths {
                None => Vec::new(),
                Some(f) => read_store_paths(&f)?,
            };
            build::build(&BuildOptions {
                source,
                store_paths,
                output,
                mtime: mtime(m)?,
                keep_owners,
                level,
                ..Default::default()
            })?;
            Ok(0)
        }
        Command::Installer {
            rootfs,
            installer,
            output,
            mtime: m,
        } => {
            image::build_installer(&ImageOptions {
                rootfs,
                installer,
                output,
                mtime: mtime(m)?,
            })?;
            Ok(0)
        }
        Command::Verify {
            file,
            modern,
            arch,
            strict,
        } => run_verify(&file, modern, arch, strict),
        Command::Rootfs {
            spec,
            work,
            output,
            mtime: m,
            store_root,
        } => {
            rootfs::rootfs(&spec, &work, &output, mtime(m)?, store_root)?;
            Ok(0)
        }
        Command::Ico { output, images } => {
            let icon = read_icon(&images)?;
            build::write_atomically(&output, |w| Ok(w.write_all(&icon)?))?;
            Ok(0)
        }
        Command::Manifest { options, output } => {
            let text = manifest::render(&options)?;
            build::write_atomically(&output, |w| Ok(w.write_all(text.as_bytes())?))?;
            Ok(0)
        }
    }
}

fn read_store_paths(file: &std::path::Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    build::parse_store_paths(&text).with_context(|| format!("parsing {}", file.display()))
}

/// `tarball verify`: every finding, a summary, and 1 on errors (or, `strict`, warnings).
fn run_verify(
    file: &std::path::Path,
    modern: bool,
    arch: verify::Arch,
    strict: bool,
) -> Result<i32> {
    let opts = verify::Options {
        store: true,
        modern,
        arch,
    };
    let findings = verify::verify_file_with(file, &opts)?;
    let mut out = std::io::stdout().lock();
    for f in &findings {
        writeln!(out, "{f}")?;
    }
    let count = |s| findings.iter().filter(|f| f.severity == s).count();
    let (errors, warnings) = (
        count(verify::Severity::Error),
        count(verify::Severity::Warning),
    );
    writeln!(out, "summary: {errors} errors, {warnings} warnings")?;
    Ok(i32::from(errors > 0 || (strict && warnings > 0)))
}

/// `tarball ico`: the PNGs, each checked, packed into one `.ico`.
fn read_icon(images: &[PathBuf]) -> Result<Vec<u8>> {
    let mut pngs = Vec::new();
    for path in images {
        let png = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        ico::png_size(&png).with_context(|| format!("{}", path.display()))?;
        pngs.push(png);
    }
    ico::from_pngs(&pngs)
}

/// `nixos-wsl tarball ARGS...` as a whole: usage errors print the usage on stderr and give 2.
pub fn main(args: &[OsString]) -> i32 {
    match parse(args) {
        Err(e) => {
            eprintln!("nixos-wsl tarball: {e}\n{USAGE}");
            2
        }
        Ok(cmd) => match run(cmd) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("nixos-wsl tarball: error: {e:#}");
                1
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_the_contract() {
        assert_eq!(
            parse(&args(&[
                "build",
                "--source",
                "s",
                "--output=o.tar.gz",
                "--store-paths",
                "f",
                "--mtime",
                "5"
            ]))
            .unwrap(),
            Command::Build {
                source: "s".into(),
                output: "o.tar.gz".into(),
                store_paths: Some("f".into()),
                mtime: Some(5),
                keep_owners: false,
                level: 6
            }
        );
        assert!(matches!(
            parse(&args(&[
                "build",
                "--source",
                "s",
                "--output",
                "o",
                "--keep-owners"
            ]))
            .unwrap(),
            Command::Build {
                keep_owners: true,
                ..
            }
        ));
        assert_eq!(
            parse(&args(&[
                "installer",
                "--rootfs",
                "r",
                "--installer",
                "i",
                "--output",
                "o"
            ]))
            .unwrap(),
            Command::Installer {
                rootfs: "r".into(),
                installer: "i".into(),
                output: "o".into(),
                mtime: None
            }
        );
        assert_eq!(
            parse(&args(&["verify", "x.tar.gz"])).unwrap(),
            Command::Verify {
                file: "x.tar.gz".into(),
                modern: false,
                arch: verify::Arch::X86_64,
                strict: false
            }
        );
        assert_eq!(
            parse(&args(&[
                "verify",
                "--modern",
                "--arch=aarch64",
                "--strict",
                "x.wsl"
            ]))
            .unwrap(),
            Command::Verify {
                file: "x.wsl".into(),
                modern: true,
                arch: verify::Arch::Aarch64,
                strict: true
            }
        );
    }

    #[test]
    fn usage_errors() {
        for bad in [
            &["build", "--source", "s"][..],
            &["build", "--source", "s", "--output", "o", "--mtime", "soon"],
            &["build", "--source", "s", "--output", "o", "--frobnicate"],
            &["build", "--source", "s", "--output", "o", "extra"],
            &["build", "--source"],
            &["verify"],
            &["verify", "a", "b"],
            &["verify", "--arch", "x86-64", "a"],
            &["verify", "--arch"],
            &["explode"],
            &[],
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad:?}");
        }
    }
}
