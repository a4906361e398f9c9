//! The one logger of every program: `log` records filtered by `NIXOS_WSL_LOG`, to stderr,
//! and for PID 1 (`nixos-wsl-init`) to the kernel log and the boot's log file instead.
//! Nothing is ever logged to stdout: the login shell's stdout belongs to the user's command
//! (`wsl -- cmd > file`).
//!
//! - stderr: `<program>: <message>` (with `init_with_levels`, `<program>: <level>: <message>`,
//!   for the installer and the admin CLI, whose messages are read as reports).
//! - PID 1: `/dev/kmsg`, one record per line with the syslog priority of the level, so
//!   `dmesg` and (once it runs) the journal show them; and the boot's log file under
//!   `/run/nixos-wsl/`, attached once that directory exists (the lines logged before are kept
//!   and written then). stderr only when there is no kernel log (nobody reads WSL's console).
//!   Every sink is best effort: a full `/run` or a missing `/dev/kmsg` costs messages, never
//!   the boot (NixOS-WSL #486).
//!
//! `NIXOS_WSL_LOG` is a comma-separated list of a level (`debug`) and `target=level`
//! directives (`nixos_wsl::systemd=trace`), the subset of `env_logger`'s syntax anyone uses;
//! the most specific directive wins. Unreadable items are ignored.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// The environment variable holding the log filter.
pub(crate) const LOG_ENV: &str = "NIXOS_WSL_LOG";

/// The kernel truncates longer `/dev/kmsg` records; we split before it does.
const KMSG_MAX: usize = 900;

/// Lines kept for the log file until it is attached (a handful in practice).
const PENDING_MAX: usize = 64;

/// A parsed `NIXOS_WSL_LOG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Filter {
    level: LevelFilter,
    /// `(target prefix, level)`, longest prefix first.
    directives: Vec<(String, LevelFilter)>,
}

impl Filter {
    /// Parses `text`; `default` applies where it names no level.
    pub(crate) fn parse(text: &str, default: LevelFilter) -> Filter {
        let mut filter = Filter {
            level: default,
            directives: Vec::new(),
        };
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item.split_once('=') {
                None => match item.parse() {
                    Ok(level) => filter.level = level,
                    // A bare target enables everything of it, as env_logger reads it.
                    Err(_) => filter
                        .directives
                        .push((item.to_owned(), LevelFilter::Trace)),
                },
                Some((target, level)) => {
                    if let Ok(level) = level.trim().parse() {
                        filter.directives.push((target.trim().to_owned(), level));
                    }
                }
            }
        }
        filter
            .directives
            .sort_by_key(|(target, _)| std::cmp::Reverse(target.len()));
        filter
    }

    /// The level for records of `target`.
    fn level_for(&self, target: &str) -> LevelFilter {
        self.directives
            .iter()
            .find(|(prefix, _)| {
                target
                    .strip_prefix(prefix.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
            })
            .map_or(self.level, |(_, level)| *level)
    }

    /// The most verbose level any target gets.
    fn max(&self) -> LevelFilter {
        self.directives
            .iter()
            .map(|(_, l)| *l)
            .fold(self.level, Ord::max)
    }
}

struct Sinks {
    program: &'static str,
    /// stderr lines carry the level.
    levels: bool,
    filter: Option<Filter>,
    stderr: bool,
    kmsg: Option<File>,
    file: Option<File>,
    /// Lines for the file, until it is attached (`None` afterwards, whatever the outcome).
    pending: Option<Vec<String>>,
}

struct Logger {
    sinks: Mutex<Sinks>,
}

static LOGGER: Logger = Logger {
    sinks: Mutex::new(Sinks {
        program: "nixos-wsl",
        levels: false,
        filter: None,
        stderr: true,
        kmsg: None,
        file: None,
        pending: None,
    }),
};

/// Installs the logger for a program run by a person or by WSL: lines `<program>: <message>`
/// on stderr, `warn` and worse unless `NIXOS_WSL_LOG` says otherwise. Later calls are ignored.
pub fn init(program: &'static str) {
    install(program, false, LevelFilter::Warn, None);
}

/// As [`init`], with the level in each line (`<program>: warn: <message>`).
pub fn init_with_levels(program: &'static str) {
    install(program, true, LevelFilter::Warn, None);
}

/// Installs the logger for PID 1: `/dev/kmsg` if it can be opened, else stderr; `info` and
/// worse by default (nobody sees these lines unless they look for them); lines for the log
/// file are kept until [`attach_file`].
pub(crate) fn init_pid1(program: &'static str) {
    let kmsg = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOCTTY)
        .open("/dev/kmsg")
        .ok();
    install(program, false, LevelFilter::Info, Some(kmsg));
}

/// PID 1's defaults, with stderr as the only sink (not PID 1: a person ran it).
pub(crate) fn init_pid1_stderr(program: &'static str) {
    install(program, false, LevelFilter::Info, None);
}

fn install(program: &'static str, levels: bool, default: LevelFilter, kmsg: Option<Option<File>>) {
    let filter = Filter::parse(&std::env::var(LOG_ENV).unwrap_or_default(), default);
    let max = filter.max();
    if let Ok(mut sinks) = LOGGER.sinks.lock() {
        if sinks.filter.is_some() {
            return;
        }
        sinks.program = program;
        sinks.levels = levels;
        sinks.filter = Some(filter);
        if let Some(kmsg) = kmsg {
            // PID 1: its boot log file is attached later (`attach_file`); keep lines till then.
            sinks.pending = Some(Vec::new());
            sinks.stderr = kmsg.is_none();
            sinks.kmsg = kmsg;
        }
    }
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(max);
    }
}

/// Adds the log file (appending, close-on-exec, only a regular file: never through a link,
/// never blocking on a FIFO). A failure is reported through the other sinks.
pub(crate) fn attach_file(path: &Path) {
    let file = crate::sys::state::open_log(path);
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
            log::warn!("cannot open {}: {e:#}", path.display());
        }
    }
}

/// The syslog priority of a level (`<3>` err, `<4>` warning, `<6>` info, `<7>` debug).
pub(crate) fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// The `/dev/kmsg` records for one message: one per line, each `<pri><program>: ...`, long
/// lines cut at a character boundary.
pub(crate) fn kmsg_records(program: &str, level: Level, message: &str) -> Vec<String> {
    let pri = priority(level);
    message
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut end = line.len().min(KMSG_MAX);
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            format!("<{pri}>{program}: {}\n", &line[..end])
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

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        let sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        sinks
            .filter
            .as_ref()
            .is_some_and(|f| metadata.level() <= f.level_for(metadata.target()))
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = record.args().to_string();
        let level = record.level().as_str().to_ascii_lowercase();
        // A poisoned lock only means another thread panicked mid-write; keep logging.
        let mut sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        let program = sinks.program;
        if let Some(kmsg) = sinks.kmsg.as_mut() {
            for rec in kmsg_records(program, record.level(), &message) {
                // One write per record: /dev/kmsg takes each write as one message.
                let _ = kmsg.write(rec.as_bytes());
            }
        }
        if sinks.file.is_some() || sinks.pending.is_some() {
            let line = format!("[{:10.6}] {level}: {message}\n", uptime());
            if let Some(file) = sinks.file.as_mut() {
                let _ = file.write_all(line.as_bytes());
            } else if let Some(pending) = sinks.pending.as_mut() {
                if pending.len() < PENDING_MAX {
                    pending.push(line);
                }
            }
        }
        if sinks.stderr {
            let line = if sinks.levels {
                format!("{program}: {level}: {message}\n")
            } else {
                format!("{program}: {message}\n")
            };
            let _ = std::io::stderr().write_all(line.as_bytes());
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
            kmsg_records("nixos-wsl-init", Level::Error, "activation failed"),
            vec!["<3>nixos-wsl-init: activation failed\n".to_string()]
        );
        assert_eq!(
            kmsg_records("nixos-wsl-init", Level::Info, "a\n\nb"),
            vec![
                "<6>nixos-wsl-init: a\n".to_string(),
                "<6>nixos-wsl-init: b\n".to_string()
            ]
        );
    }

    #[test]
    fn long_lines_are_cut_on_a_char_boundary() {
        let long = "é".repeat(KMSG_MAX);
        let rec = &kmsg_records("nixos-wsl-init", Level::Warn, &long)[0];
        assert!(rec.len() <= KMSG_MAX + 30, "{}", rec.len());
        assert!(rec.starts_with("<4>nixos-wsl-init: é"));
    }

    #[test]
    fn filters_read_levels_and_directives() {
        let f = Filter::parse("", LevelFilter::Warn);
        assert_eq!(f.level_for("nixos_wsl::shell"), LevelFilter::Warn);
        let f = Filter::parse("debug", LevelFilter::Warn);
        assert_eq!(f.level_for("nixos_wsl::shell"), LevelFilter::Debug);
        assert_eq!(f.max(), LevelFilter::Debug);
        let f = Filter::parse(
            "info, nixos_wsl=warn,nixos_wsl::systemd=trace,bogus=loud",
            LevelFilter::Warn,
        );
        assert_eq!(f.level_for("nixos_wsl::systemd"), LevelFilter::Trace);
        assert_eq!(f.level_for("nixos_wsl::systemdx"), LevelFilter::Warn);
        assert_eq!(f.level_for("nixos_wsl::shell"), LevelFilter::Warn);
        assert_eq!(f.level_for("other"), LevelFilter::Info);
        assert_eq!(f.max(), LevelFilter::Trace);
        let f = Filter::parse("off", LevelFilter::Info);
        assert_eq!(f.level_for("nixos_wsl::init"), LevelFilter::Off);
    }
}
