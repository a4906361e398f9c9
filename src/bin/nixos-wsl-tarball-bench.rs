//! `nixos-wsl-tarball-bench TARBALL [--work-dir DIR] [--runs N]`: see
//! `nixos_wsl::tarball::bench`. Built only with `--features bench`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: nixos-wsl-tarball-bench TARBALL [--work-dir DIR] [--runs N]\n";

fn parse(args: Vec<OsString>) -> Result<(PathBuf, Option<PathBuf>, u32), lexopt::Error> {
    use lexopt::prelude::*;
    let (mut tarball, mut work_dir, mut runs) = (None, None, 3);
    let mut p = lexopt::Parser::from_args(args);
    while let Some(arg) = p.next()? {
        match arg {
            Long("work-dir") => work_dir = Some(PathBuf::from(p.value()?)),
            Long("runs") => runs = p.value()?.parse::<u32>()?.max(1),
            Value(v) if tarball.is_none() => tarball = Some(PathBuf::from(v)),
            other => return Err(other.unexpected()),
        }
    }
    let tarball = tarball.ok_or(lexopt::Error::MissingValue { option: None })?;
    Ok((tarball, work_dir, runs))
}

fn main() -> ExitCode {
    nixos_wsl::logging::init_with_levels("nixos-wsl-tarball-bench");
    let (tarball, work_dir, runs) = match parse(std::env::args_os().skip(1).collect()) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprint!("nixos-wsl-tarball-bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match nixos_wsl::tarball::bench::bench(&tarball, work_dir, runs) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nixos-wsl-tarball-bench: {e:#}");
            ExitCode::from(1)
        }
    }
}
