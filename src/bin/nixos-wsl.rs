//! `nixos-wsl`: the admin CLI. Subcommands are a table, so adding one is one line plus its
//! module's `main(args) -> exit status`.

use std::ffi::OsString;
use std::process::ExitCode;

/// A subcommand: its name, a one-line summary for `--help`, and its entry point (arguments
/// after the subcommand's name; returns the exit status).
struct Subcommand {
    name: &'static str,
    summary: &'static str,
    run: fn(&[OsString]) -> i32,
}

const SUBCOMMANDS: &[Subcommand] = &[
    Subcommand {
        name: "status",
        summary: "how systemd runs: mode, PIDs, state, failed units, activation, logs (--json)",
        run: nixos_wsl::cli::status::main,
    },
    Subcommand {
        name: "exec",
        summary: "run a command inside the systemd namespace (`exec [--user U] -- CMD...`)",
        run: nixos_wsl::cli::exec::main,
    },
    Subcommand {
        name: "stop",
        summary: "power off the namespace's systemd so the next launch boots afresh",
        run: nixos_wsl::cli::stop::main,
    },
    Subcommand {
        name: "logs",
        summary: "systemd's early output and the activation log of this boot",
        run: nixos_wsl::cli::logs::main,
    },
    Subcommand {
        name: "doctor",
        summary: "read-only checks of the distribution, each with its fix (--json)",
        run: nixos_wsl::cli::doctor::main,
    },
    Subcommand {
        name: "generations",
        summary: "the NixOS generations, and which is current and booted (--json)",
        run: nixos_wsl::cli::generations::list_main,
    },
    Subcommand {
        name: "boot",
        summary:
            "choose the generation the next start boots (`--generation N | --rollback | --default`)",
        run: nixos_wsl::cli::generations::boot_main,
    },
    Subcommand {
        name: "version",
        summary: "this program, its git revision, NixOS, the generation, the mode, the kernel, WSL (--json)",
        run: nixos_wsl::cli::version::main,
    },
    Subcommand {
        name: "tarball",
        summary: "build, wrap and verify distribution tarballs (`nixos-wsl tarball --help`)",
        run: nixos_wsl::tarball::cli::main,
    },
];

fn usage() -> String {
    let mut s =
        String::from("usage: nixos-wsl [--version | --help] <command> [args...]\n\ncommands:\n");
    for c in SUBCOMMANDS {
        s.push_str(&format!("  {:<10} {}\n", c.name, c.summary));
    }
    s
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    nixos_wsl::logging::init_with_levels("nixos-wsl");
    let Some(first) = args.first() else {
        eprint!("{}", usage());
        return ExitCode::from(2);
    };
    let code = match first.to_str() {
        Some("--version") | Some("-V") => {
            println!(
                "nixos-wsl {} ({})",
                env!("CARGO_PKG_VERSION"),
                nixos_wsl::cli::version::REV
            );
            0
        }
        Some("--help") | Some("-h") | Some("help") => {
            print!("{}", usage());
            0
        }
        name => match SUBCOMMANDS.iter().find(|c| Some(c.name) == name) {
            Some(c) => (c.run)(&args[1..]),
            None => {
                eprint!("nixos-wsl: unknown command {first:?}\n{}", usage());
                2
            }
        },
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
