//! Logging: `log` + `env_logger`, filtered by `NIXOS_WSL_LOG` (default `warn`), always to
//! stderr, each line prefixed with the program name. Nothing is ever logged to stdout: the
//! login shell's stdout belongs to the user's command (`wsl -- cmd > file`).

use std::io::Write;

/// The environment variable holding the log filter (`env_logger` syntax, e.g. `debug`).
pub const LOG_ENV: &str = "NIXOS_WSL_LOG";

/// Installs the logger. Safe to call once per process; later calls are ignored.
pub fn init(program: &'static str) {
    let filter = std::env::var(LOG_ENV).unwrap_or_else(|_| "warn".to_owned());
    let _ = env_logger::Builder::new()
        .parse_filters(&filter)
        .target(env_logger::Target::Stderr)
        .format(move |buf, record| writeln!(buf, "{program}: {}", record.args()))
        .try_init();
}
