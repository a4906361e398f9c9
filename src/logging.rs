//! Logging: `log` + `env_logger`, filtered by `NIXOS_WSL_LOG` (default `warn`), always to
//! stderr, each line prefixed with the program name. Nothing is ever logged to stdout: the
//! login shell's stdout belongs to the user's command (`wsl -- cmd > file`).

use std::io::Write;

/// The environment variable holding the log filter (`env_logger` syntax, e.g. `debug`).
pub const LOG_ENV: &str = "NIXOS_WSL_LOG";

/// Installs the logger: lines `<program>: <message>`. Safe to call once per process; later
/// calls are ignored.
pub fn init(program: &'static str) {
    install(program, false);
}

/// As [`init`], with the level in each line (`<program>: warn: <message>`): for the installer
/// and the admin CLI, whose messages are read as reports rather than one-line reasons.
pub fn init_with_levels(program: &'static str) {
    install(program, true);
}

fn install(program: &'static str, levels: bool) {
    let filter = std::env::var(LOG_ENV).unwrap_or_else(|_| "warn".to_owned());
    let _ = env_logger::Builder::new()
        .parse_filters(&filter)
        .target(env_logger::Target::Stderr)
        .format(move |buf, record| {
            if levels {
                let level = record.level().as_str().to_lowercase();
                writeln!(buf, "{program}: {level}: {}", record.args())
            } else {
                writeln!(buf, "{program}: {}", record.args())
            }
        })
        .try_init();
}
