//! `wsl-sim`: the WSL simulator of the test suite as a command, for demos and debugging
//! without Windows. Run as root (it creates namespaces, mounts and cgroups).
//!
//! ```text
//! cargo build --bin nixos-wsl-shell
//! cargo run --example wsl-sim -- run -- systemctl is-system-running   # wsl -d NixOS -- ...
//! cargo run --example wsl-sim -- shell                                 # wsl -d NixOS
//! ```
//!
//! Each invocation boots a throwaway distro (Debian bookworm with systemd, built once with
//! mmdebstrap and cached), installs nixos-wsl-shell as root's login shell, launches like
//! wsl.exe and terminates the distro afterwards. `--state DIR` keeps the distro's disk.

// Uses a part of the simulator; the e2e test binary uses all of it and reports its dead code.
#[allow(dead_code, unused_imports)]
#[path = "../tests/sim/mod.rs"]
mod sim;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use sim::{Distro, DistroOptions, Launch, RootShell, Stdio};

const USAGE: &str = "\
usage: wsl-sim [OPTIONS] COMMAND

commands:
  run [--] WORDS...   like `wsl -d NAME -- WORDS...`: root's shell runs `-c \"WORDS...\"`
  exec [--] CMD...    like `wsl -d NAME -e CMD...` (bypasses the login shell)
  shell               like `wsl -d NAME`: an interactive login shell on a terminal
  rootfs              build (or find) the cached Debian rootfs and print its path

options:
  --shell-binary PATH nixos-wsl-shell to install as root's shell
                      (default: target/<profile>/nixos-wsl-shell beside this example)
  --bash              make /bin/bash root's shell instead (the plain-WSL baseline)
  -u, --user NAME     like `wsl -u NAME`
  --cd DIR            like `wsl --cd DIR` (default: /mnt/c/Users/me)
  --name NAME         WSL_DISTRO_NAME (default: NixOS)
  --state DIR         keep the distro's disk in DIR across runs (default: throwaway)
  --env NAME=VALUE    a Windows variable passed through WSLENV (e.g. NIXOS_WSL_LOG=debug)
  --timeout SECONDS   give up after this long (default: 3600)
";

fn main() {
    if let Some(code) = sim::role_main() {
        std::process::exit(code);
    }
    match run() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("wsl-sim: {e:#}");
            std::process::exit(1);
        }
    }
}

fn run() -> Result<i32> {
    let mut args = std::env::args().skip(1).peekable();
    let mut shell_binary: Option<PathBuf> = None;
    let mut bash = false;
    let mut user = None;
    let mut cwd = None;
    let mut name = "NixOS".to_string();
    let mut state = None;
    let mut env = Vec::new();
    let mut timeout = 3600;
    let command = loop {
        let Some(a) = args.next() else {
            eprint!("{USAGE}");
            return Ok(2);
        };
        let mut value = |what: &str| args.next().with_context(|| format!("{what} needs a value"));
        match a.as_str() {
            "--shell-binary" => shell_binary = Some(PathBuf::from(value(&a)?)),
            "--bash" => bash = true,
            "-u" | "--user" => user = Some(value(&a)?),
            "--cd" => cwd = Some(value(&a)?),
            "--name" => name = value(&a)?,
            "--state" => state = Some(PathBuf::from(value(&a)?)),
            "--env" => {
                let kv = value(&a)?;
                let (k, v) = kv.split_once('=').context("--env takes NAME=VALUE")?;
                env.push((k.to_string(), v.to_string()));
            }
            "--timeout" => timeout = value(&a)?.parse().context("--timeout takes seconds")?,
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(0);
            }
            cmd @ ("run" | "exec" | "shell" | "rootfs") => break cmd.to_string(),
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    };
    if args.peek().map(String::as_str) == Some("--") {
        args.next();
    }
    let rest: Vec<String> = args.collect();
    if !nix::unistd::geteuid().is_root() {
        bail!("run me as root: the simulator creates namespaces, mounts and cgroups");
    }
    if command == "rootfs" {
        println!("{}", sim::rootfs::ensure()?.dir.display());
        return Ok(0);
    }
    let mut launch = match command.as_str() {
        "run" if rest.is_empty() => bail!("run needs a command"),
        // wsl.exe passes the rest of its command line as one string.
        "run" => Launch::command(rest.join(" ")),
        "exec" if rest.is_empty() => bail!("exec needs a command"),
        "exec" => Launch::exec(rest),
        _ => Launch::login(),
    };
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    launch = launch
        .stdio(if terminal {
            Stdio::Terminal
        } else {
            Stdio::Inherit
        })
        .timeout(Duration::from_secs(timeout));
    if command == "shell" && !terminal {
        // `wsl < script`: the login shell reads the piped stdin.
        launch = launch.stdio(Stdio::Inherit);
    }
    if let Some(u) = user {
        launch = launch.user(u);
    }
    if let Some(c) = cwd {
        launch = launch.cwd(c);
    }
    for (k, v) in env {
        launch = launch.wslenv(k, v);
    }

    let root_shell = if bash {
        RootShell::Existing("/bin/bash".into())
    } else {
        let bin = match shell_binary {
            Some(b) => b,
            None => std::env::current_exe()?
                .parent()
                .and_then(|examples| examples.parent())
                .map(|profile| profile.join("nixos-wsl-shell"))
                .context("locating target/<profile>/")?,
        };
        if !bin.is_file() {
            bail!("{} not found: build it with `cargo build --bin nixos-wsl-shell` or pass --shell-binary", bin.display());
        }
        RootShell::NixosWslShell(bin)
    };
    let mut opts = DistroOptions::new(name, root_shell);
    opts.state_dir = state;
    let distro = Distro::start(opts)?;

    let _raw = if launch.stdio == Stdio::Terminal {
        Some(RawTerminal::enter()?)
    } else {
        None
    };
    let out = distro.spawn(&launch)?.wait();
    drop(_raw);
    Ok(out?.code)
}

/// The caller's terminal in raw mode for the duration (the distro's pty does the line
/// discipline), restored on drop.
struct RawTerminal(nix::sys::termios::Termios);

impl RawTerminal {
    fn enter() -> Result<RawTerminal> {
        use nix::sys::termios::*;
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin)?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSANOW, &raw)?;
        Ok(RawTerminal(saved))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            std::io::stdin(),
            nix::sys::termios::SetArg::TCSANOW,
            &self.0,
        );
    }
}
