//! The readiness record `/run/nixos-wsl/ready`: `<ready|gave-up> <pid-namespace inode>`,
//! written by the launch that waited for systemd, read by later launches and the admin CLI.

use std::path::Path;

use anyhow::Result;

use crate::paths::READY_FILE;

/// What a previous launch recorded about systemd's readiness in the namespace `pid_ino`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// systemd reported that its boot finished.
    Ready,
    /// A launch gave up waiting; later launches do not wait again.
    GaveUp,
    /// Nothing recorded for this namespace: it is still booting, or its starter was killed.
    Unknown,
}

/// Reads the readiness record; records of another (older) namespace count as `Unknown`.
pub(crate) fn readiness(pid_ino: u64) -> Readiness {
    let text = std::fs::read_to_string(READY_FILE).unwrap_or_default();
    parse_readiness(&text, pid_ino)
}

fn parse_readiness(text: &str, pid_ino: u64) -> Readiness {
    let mut words = text.split_whitespace();
    let (state, ino) = (
        words.next(),
        words.next().and_then(|w| w.parse::<u64>().ok()),
    );
    match (state, ino) {
        (Some("ready"), Some(i)) if i == pid_ino => Readiness::Ready,
        (Some("gave-up"), Some(i)) if i == pid_ino => Readiness::GaveUp,
        _ => Readiness::Unknown,
    }
}

/// Records readiness atomically (write a temporary file, rename it into place).
pub(crate) fn record_readiness(state: Readiness, pid_ino: u64) -> Result<()> {
    let Some(word) = state.word() else {
        return Ok(());
    };
    let record = format!("{word} {pid_ino}\n");
    crate::sys::state::write_atomic(Path::new(READY_FILE), record.as_bytes())
}

/// The PID-namespace inode the record names, whatever its state: which namespace is ours.
pub(crate) fn recorded_namespace() -> Option<u64> {
    let text = std::fs::read_to_string(READY_FILE).ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

impl Readiness {
    /// The record's word, as `nixos-wsl status` shows it; `None` for [`Readiness::Unknown`].
    pub(crate) fn word(self) -> Option<&'static str> {
        match self {
            Readiness::Ready => Some("ready"),
            Readiness::GaveUp => Some("gave-up"),
            Readiness::Unknown => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_is_tied_to_the_namespace() {
        assert_eq!(parse_readiness("ready 42\n", 42), Readiness::Ready);
        assert_eq!(parse_readiness("gave-up 42\n", 42), Readiness::GaveUp);
        assert_eq!(parse_readiness("ready 41\n", 42), Readiness::Unknown);
        assert_eq!(parse_readiness("", 42), Readiness::Unknown);
        assert_eq!(parse_readiness("ready x", 42), Readiness::Unknown);
    }
}
