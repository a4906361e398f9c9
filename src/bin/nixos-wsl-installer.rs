//! `nixos-wsl-installer`: root's login shell in the installer tarball. Unpacks the embedded
//! NixOS root filesystem over `/` on the first launch (see `nixos_wsl::installer`), then
//! becomes root's new login shell with the same arguments.
//!
//! Hidden option for tests (as the first argument only, since every other argument belongs to
//! the shell): `--root DIR` installs into DIR instead of `/` and executes the new shell from
//! inside DIR. `NIXOS_WSL_INSTALLER_TEST_STOP_AFTER=N` kills the process with SIGKILL after N
//! steps, to test that the next launch completes the install.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::exit;

use nixos_wsl::installer::{self, handover, Damaged, Options};

/// Separates the hidden `--root DIR` from the shell's arguments.
fn split_root(mut argv: Vec<OsString>) -> (PathBuf, Vec<OsString>) {
    if argv.len() >= 3 && argv[1] == "--root" {
        let root = PathBuf::from(argv[2].clone());
        argv.drain(1..3);
        (root, argv)
    } else {
        (PathBuf::from("/"), argv)
    }
}

/// Without a working installation: an interactive user still gets a shell if one exists.
fn fail(root: &Path, argv: &[OsString]) -> ! {
    if argv.len() <= 1 && std::io::stdin().is_terminal() {
        for (shell, arg0) in handover::fallback_shells(root) {
            eprintln!("nixos-wsl-installer: starting {} instead", shell.display());
            handover::exec(&shell, &[arg0]);
        }
    }
    exit(1)
}

fn main() {
    let (root, argv) = split_root(std::env::args_os().collect());
    nixos_wsl::logging::init_with_levels("nixos-wsl-installer");
    let mut opts = Options::default();
    if let Ok(n) = std::env::var("NIXOS_WSL_INSTALLER_TEST_STOP_AFTER") {
        opts.stop_after = n.parse().ok();
        opts.kill_at_stop = true;
    }
    if let Err(e) = installer::install(&root, &opts) {
        eprintln!("nixos-wsl-installer: error: {e:#}");
        if e.downcast_ref::<Damaged>().is_some() {
            eprintln!(
                "nixos-wsl-installer: download the NixOS distribution again and re-import it \
                 (wsl --unregister NAME, then wsl --import)."
            );
        } else {
            eprintln!(
                "nixos-wsl-installer: the installation did not finish; fix the cause above and start \
                 the distribution again: it resumes where it stopped."
            );
        }
        fail(&root, &argv);
    }

    let passwd_path = root.join("etc/passwd");
    let shell = match std::fs::read(&passwd_path)
        .ok()
        .and_then(|pw| handover::root_shell(&pw))
    {
        Some(shell) => shell,
        None => {
            eprintln!(
                "nixos-wsl-installer: error: no root entry in {}",
                passwd_path.display()
            );
            fail(&root, &argv);
        }
    };
    let new_argv = handover::shell_argv(&argv, &shell);
    let err = handover::exec(&handover::program_path(&root, &shell), &new_argv);
    // WSL itself falls back to /bin/sh when root's shell cannot be started.
    let sh = handover::program_path(&root, b"/bin/sh");
    let sh_argv = handover::shell_argv(&argv, b"/bin/sh");
    let err2 = handover::exec(&sh, &sh_argv);
    eprintln!(
        "nixos-wsl-installer: error: cannot start root's shell {} ({err}) nor /bin/sh ({err2})",
        String::from_utf8_lossy(&shell)
    );
    exit(if err == nix::Error::ENOENT { 127 } else { 126 });
}
