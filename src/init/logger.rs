//! Step 1: where PID 1's own messages go, before the journal exists.
//!
//! - `/dev/kmsg`, one record per line with the syslog priority of the level, so `dmesg`
//!   and (once it runs) the journal show them. Missing in some containers; then skipped.
//! - the boot's log file under `/run/nixos-wsl/`, attached once that directory exists (the
//!   lines logged before are kept and written then).
//! - stderr, only when there is no kernel log (WSL's console is not read by anyone).
//!
//! Every sink is best effort: a full `/run` or a missing `/dev/kmsg` costs messages, never
//! the boot (NixOS-WSL #486). The filter comes from `NIXOS_WSL_LOG` (a level name; default
//! `info`, since nobody sees these lines unless they look for them).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// The kernel truncates longer `/dev/kmsg` records; we split before it does.
const KMSG_MAX: usize = 900;

/// Lines kept for the log file until it is attached (a handful in practice).
const PENDING_MAX: usize = 64;

struct Sinks {
    kmsg: Option<File>,
    file: Option<File>,
    /// Lines for the file, until it is attached (`None` afterwards, whatever the outcome).
    pending: Option<Vec<String>>,
    stderr: bool,
}

struct InitLogger {
    sinks: Mutex<Sinks>,
}

static LOGGER: InitLogger = InitLogger {
    sinks: Mutex::new(Sinks {
        kmsg: None,
        file: None,
        pending: Some(Vec::new()),
        stderr: true,
    }),
};

/// Installs the logger for PID 1: `/dev/kmsg` if it can be opened, else stderr.
pub fn install() {
    let kmsg = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOCTTY)
        .open("/dev/kmsg")
        .ok();
    if let Ok(mut sinks) = LOGGER.sinks.lock() {
        sinks.stderr = kmsg.is_none();
        sinks.kmsg = kmsg;
    }
    set();
}

/// Installs the logger with stderr as its only sink (not PID 1: a person ran us).
pub fn install_stderr() {
    set();
}

fn set() {
    let level = std::env::var(crate::logging::LOG_ENV)
        .ok()
        .and_then(|v| v.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::Info);
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}

/// Adds the log file (appending, close-on-exec, never following a symlink). A failure is
/// reported through the other sinks.
pub fn attach_file(path: &Path) {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path);
    let mut sinks = LOGGER.sinks.lock().unwrap_or_else(|e| e.into_inner());
    let pending = sinks.pending.take().unwrap_or_default();
    match file {
        Ok(mut f) => {
            for line in pending {
                let _ = f.write_all(line.as_bytes());
            }
            sinks.file = Some(f);
        }
        Err(e) => {
            drop(sinks);
            log::warn!("cannot open {}: {e}", path.display());
        }
    }
}

/// The syslog priority of a level (`<3>` err, `<4>` warning, `<6>` info, `<7>` debug).
pub fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// The `/dev/kmsg` records for one message: one per line, each `<pri>nixos-wsl-init: ...`,
/// long lines cut at a character boundary.
pub fn kmsg_records(level: Level, message: &str) -> Vec<String> {
    let pri = priority(level);
    message
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut end = line.len().min(KMSG_MAX);
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            format!("<{pri}>nixos-wsl-init: {}\n", &line[..end])
        })
        .collect()
}

/// Seconds since boot, as `dmesg` shows them (CLOCK_BOOTTIME).
fn uptime() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the struct we own.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut t) } != 0 {
        return 0.0;
    }
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

impl Log for InitLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = record.args().to_string();
        // A poisoned lock only means another thread panicked mid-write; keep logging.
        let mut sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(kmsg) = sinks.kmsg.as_mut() {
            for rec in kmsg_records(record.level(), &message) {
                // One write per record: /dev/kmsg takes each write as one message.
                let _ = kmsg.write(rec.as_bytes());
            }
        }
        let line = format!(
            "[{:10.6}] {}: {message}\n",
            uptime(),
            record.level().as_str().to_ascii_lowercase()
        );
        if let Some(file) = sinks.file.as_mut() {
            let _ = file.write_all(line.as_bytes());
        } else if let Some(pending) = sinks.pending.as_mut() {
            if pending.len() < PENDING_MAX {
                pending.push(line);
            }
        }
        if sinks.stderr {
            let _ = writeln!(std::io::stderr(), "nixos-wsl-init: {message}");
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_carry_the_priority_and_our_name() {
        assert_eq!(
            kmsg_records(Level::Error, "activation failed"),
            vec!["<3>nixos-wsl-init: activation failed\n".to_string()]
        );
        assert_eq!(
            kmsg_records(Level::Info, "a\n\nb"),
            vec![
                "<6>nixos-wsl-init: a\n".to_string(),
                "<6>nixos-wsl-init: b\n".to_string()
            ]
        );
    }

    #[test]
    fn long_lines_are_cut_on_a_char_boundary() {
        let long = "é".repeat(KMSG_MAX);
        let rec = &kmsg_records(Level::Warn, &long)[0];
        assert!(rec.len() <= KMSG_MAX + 30, "{}", rec.len());
        assert!(rec.starts_with("<4>nixos-wsl-init: é"));
    }
}
