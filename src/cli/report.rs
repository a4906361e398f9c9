//! What `nixos-wsl status` found: the model its renderers and `doctor` read. Data only.

use std::path::PathBuf;

/// Exit status when systemd is not up.
pub(crate) const EXIT_NOT_RUNNING: i32 = 3;
/// Exit status when the state cannot be inspected.
pub(crate) const EXIT_UNKNOWN: i32 = 4;

/// How systemd runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// In the PID + mount namespace the login shell started.
    Namespace,
    /// As PID 1 of the distribution (WSL's `[boot] systemd=true`).
    WslSystemd,
    /// Not at all (or the namespace of this boot is dead).
    None,
}

impl Mode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Mode::Namespace => "namespace",
            Mode::WslSystemd => "wsl-systemd",
            Mode::None => "none",
        }
    }
}

/// What `status` found about systemd itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Systemd {
    /// Its PID in its own namespace (1).
    pub(crate) pid_inside: Option<i32>,
    /// Its PID as WSL's init sees it (only known when run from outside the namespace).
    pub(crate) pid_outside: Option<i32>,
    pub(crate) started_secs_ago: Option<u64>,
    /// `systemctl is-system-running`: running, degraded, starting, stopping, ...
    pub(crate) state: Option<String>,
    pub(crate) failed_units: Option<u64>,
    /// The login shell's readiness record for this namespace: ready, gave-up.
    pub(crate) readiness: Option<String>,
}

/// Everything `status` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Status {
    pub(crate) mode: Mode,
    /// This command runs inside systemd's PID namespace.
    pub(crate) inside: bool,
    pub(crate) systemd: Option<Systemd>,
    /// Something worth a sentence (a dead namespace, a permission problem).
    pub(crate) note: Option<String>,
    /// `/run/current-system` exists.
    pub(crate) current_system: bool,
    /// `/run/nixos-wsl/activated` exists: the login shell ran the activation this boot.
    pub(crate) activated: bool,
    /// (name, path, exists)
    pub(crate) logs: Vec<(&'static str, PathBuf, bool)>,
    /// The generation this boot runs (as recorded) and the current one.
    pub(crate) generation: (Option<u32>, Option<u32>),
}

impl Status {
    /// Up = `running` or `degraded`, as WSL's own systemd wait and the login shell count it.
    pub(crate) fn up(&self) -> bool {
        self.systemd
            .as_ref()
            .and_then(|s| s.state.as_deref())
            .is_some_and(|s| matches!(s, "running" | "degraded"))
    }

    pub(crate) fn exit_code(&self, known: bool) -> i32 {
        if self.up() {
            0
        } else if known {
            EXIT_NOT_RUNNING
        } else {
            EXIT_UNKNOWN
        }
    }
}
