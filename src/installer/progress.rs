//! Progress on stderr: a redrawn line when stderr is a terminal, a single summary line
//! otherwise (a log or a pipe gets no carriage-return noise).

use std::io::Write;
use std::time::{Duration, Instant};

const MB: f64 = 1_000_000.0;
const REDRAW: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Redraw `\r`-style while working, then a final line.
    Terminal,
    /// One line when done.
    Line,
}

impl Mode {
    pub(crate) fn for_stderr() -> Mode {
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            Mode::Terminal
        } else {
            Mode::Line
        }
    }
}

/// The progress line for `done` of `total` bytes after `elapsed` (pure, for tests).
pub(crate) fn render(done: u64, total: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-3);
    let rate = done as f64 / MB / secs;
    if total > 0 {
        let pct = (done.min(total) as f64 * 100.0 / total as f64).floor();
        format!(
            "unpacking NixOS: {pct:3.0}% {:.1}/{:.1} MB {rate:.1} MB/s",
            done as f64 / MB,
            total as f64 / MB
        )
    } else {
        format!("unpacking NixOS: {:.1} MB {rate:.1} MB/s", done as f64 / MB)
    }
}

/// The summary line printed when the extraction is complete.
pub(crate) fn summary(bytes: u64, entries: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-3);
    format!(
        "unpacked NixOS: {:.1} MB, {entries} entries in {secs:.1} s ({:.1} MB/s)",
        bytes as f64 / MB,
        bytes as f64 / MB / secs
    )
}

pub(crate) struct Progress {
    mode: Mode,
    total: u64,
    start: Instant,
    last: Instant,
    drawn: bool,
}

impl Progress {
    pub(crate) fn new(mode: Mode, total: u64) -> Progress {
        let now = Instant::now();
        Progress {
            mode,
            total,
            start: now,
            last: now,
            drawn: false,
        }
    }

    pub(crate) fn update(&mut self, done: u64) {
        if self.mode != Mode::Terminal {
            return;
        }
        let now = Instant::now();
        if now.duration_since(self.last) < REDRAW {
            return;
        }
        self.last = now;
        self.drawn = true;
        let line = render(done, self.total, now.duration_since(self.start));
        let _ = write!(std::io::stderr(), "\r\x1b[K{line}");
    }

    pub(crate) fn finish(&mut self, bytes: u64, entries: u64) {
        let line = summary(bytes, entries, self.start.elapsed());
        let mut err = std::io::stderr();
        match self.mode {
            Mode::Terminal => {
                let _ = writeln!(err, "\r\x1b[K{line}");
            }
            Mode::Line => {
                let _ = writeln!(err, "nixos-wsl-installer: {line}");
            }
        }
    }

    /// Ends a redrawn line before an error message is printed.
    pub(crate) fn abandon(&mut self) {
        if self.mode == Mode::Terminal && self.drawn {
            let _ = writeln!(std::io::stderr());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_percent_mb_and_rate() {
        let s = render(50_000_000, 200_000_000, Duration::from_secs(2));
        assert_eq!(s, "unpacking NixOS:  25% 50.0/200.0 MB 25.0 MB/s");
        assert_eq!(
            render(5, 0, Duration::from_secs(1)),
            "unpacking NixOS: 0.0 MB 0.0 MB/s"
        );
        assert!(render(300, 200, Duration::from_secs(1)).contains("100%"));
        assert!(summary(10_000_000, 3, Duration::from_secs(1)).contains("10.0 MB, 3 entries"));
    }
}
