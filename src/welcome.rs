//! The welcome a user sees once, on their first interactive login to a new NixOS-WSL image
//! (`welcome = true` in /etc/nixos-wsl.conf, which the NixOS module writes): what this is,
//! where its configuration is, how to apply a change and how to rename the user the NixOS
//! way. Never for `wsl -- cmd` or piped input, never twice: a marker in the user's state
//! directory records that it was shown, and without a marker it is not shown at all.

use std::fs::{self, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// The text, for the distribution WSL calls `distro`.
pub(crate) fn text(distro: &str) -> String {
    format!(
        "Welcome to NixOS on WSL.\n\
         \n\
         This system is declared in /etc/nixos/configuration.nix. Change it, then apply it with\n\
         \x20   sudo nixos-rebuild switch\n\
         To rename your user, set wsl.defaultUser = \"<name>\"; there, rebuild, and restart the\n\
         distribution from Windows with\n\
         \x20   wsl -t {distro}\n\
         \n\
         (Shown once. NixOS' options: man configuration.nix)\n\n"
    )
}

/// The marker: `$XDG_STATE_HOME/nixos-wsl/welcome`, by default under `~/.local/state`.
pub(crate) fn marker(home: &Path, state_home: Option<&Path>) -> PathBuf {
    state_home
        .filter(|p| p.is_absolute())
        .map_or_else(|| home.join(".local/state"), Path::to_path_buf)
        .join("nixos-wsl/welcome")
}

/// Shows the welcome on stderr if stdin and stderr are terminals and the marker can be
/// created now (as the session's user, who owns it); says nothing otherwise.
pub(crate) fn show_once(home: &Path, state_home: Option<&Path>, distro: &str) {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return;
    }
    let marker = marker(home, state_home);
    let created = marker
        .parent()
        .is_some_and(|dir| fs::create_dir_all(dir).is_ok())
        && OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker)
            .is_ok();
    if created {
        let _ = std::io::stderr().write_all(text(distro).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_what_the_issue_asks() {
        let t = text("Work");
        for needle in [
            "NixOS on WSL",
            "/etc/nixos/configuration.nix",
            "sudo nixos-rebuild switch",
            "wsl.defaultUser",
            "wsl -t Work",
        ] {
            assert!(t.contains(needle), "{needle}");
        }
    }

    #[test]
    fn marker_follows_xdg_state_home() {
        let home = Path::new("/home/a");
        assert_eq!(
            marker(home, None),
            Path::new("/home/a/.local/state/nixos-wsl/welcome")
        );
        assert_eq!(
            marker(home, Some(Path::new("/s"))),
            Path::new("/s/nixos-wsl/welcome")
        );
        assert_eq!(
            marker(home, Some(Path::new("relative"))),
            Path::new("/home/a/.local/state/nixos-wsl/welcome")
        );
    }
}
