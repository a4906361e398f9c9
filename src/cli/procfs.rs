//! Parsing what the admin CLI reads from `/proc` and `/run/nixos-wsl`. Pure functions.

/// Field 22 of `/proc/<pid>/stat`: start time in clock ticks after boot. Fields are counted
/// after the parenthesised command name, which may itself hold spaces and parentheses.
pub fn start_ticks(stat: &str) -> Option<u64> {
    let rest = stat.rsplit_once(')')?.1;
    // `rest` starts at field 3 (state), so field 22 is the 20th word.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Seconds since boot, the first number of `/proc/uptime`.
pub fn uptime_secs(uptime: &str) -> Option<f64> {
    uptime.split_whitespace().next()?.parse().ok()
}

/// How long ago a process started: `uptime - start_ticks / ticks_per_sec`, whole seconds.
pub fn started_ago(uptime: f64, start_ticks: u64, ticks_per_sec: u64) -> Option<u64> {
    if ticks_per_sec == 0 {
        return None;
    }
    let started = start_ticks as f64 / ticks_per_sec as f64;
    (uptime >= started).then_some((uptime - started) as u64)
}

/// The PID-namespace inode named by a readiness record (`<state> <inode>`).
pub fn readiness_ino(record: &str) -> Option<u64> {
    record.split_whitespace().nth(1)?.parse().ok()
}

/// The readiness record's state word, if it names the namespace `pid_ino`.
pub fn readiness_state(record: &str, pid_ino: u64) -> Option<&str> {
    let mut words = record.split_whitespace();
    let state = words.next()?;
    (words.next()?.parse::<u64>().ok()? == pid_ino).then_some(state)
}

/// True when a NUL-separated environment block (`/proc/<pid>/environ`) holds `key=value`.
pub fn environ_has(environ: &[u8], key: &str, value: &[u8]) -> bool {
    environ.split(|&b| b == 0).any(|entry| {
        entry.len() == key.len() + 1 + value.len()
            && entry.starts_with(key.as_bytes())
            && entry[key.len()] == b'='
            && &entry[key.len() + 1..] == value
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_ticks_after_tricky_comm() {
        let mut fields: Vec<String> = (3..=52).map(|n| n.to_string()).collect();
        fields[0] = "S".into();
        fields[19] = "123456".into(); // field 22
        let stat = format!("42 (a) (b c)) {}", fields.join(" "));
        assert_eq!(start_ticks(&stat), Some(123456));
        assert_eq!(start_ticks("42 (x) S 1 2"), None);
        assert_eq!(start_ticks("garbage"), None);
    }

    #[test]
    fn uptime_and_age() {
        assert_eq!(uptime_secs("350735.47 234388.90\n"), Some(350735.47));
        assert_eq!(uptime_secs(""), None);
        assert_eq!(started_ago(100.5, 5000, 100), Some(50));
        assert_eq!(started_ago(10.0, 5000, 100), None);
        assert_eq!(started_ago(10.0, 5, 0), None);
    }

    #[test]
    fn readiness_records() {
        assert_eq!(readiness_ino("ready 4026532\n"), Some(4026532));
        assert_eq!(readiness_ino("ready\n"), None);
        assert_eq!(readiness_ino("ready x\n"), None);
        assert_eq!(readiness_state("gave-up 7\n", 7), Some("gave-up"));
        assert_eq!(readiness_state("ready 7\n", 8), None);
        assert_eq!(readiness_state("", 8), None);
    }

    #[test]
    fn environ_entries() {
        let env = b"container=wsl\0NOTIFY_SOCKET=/run/nixos-wsl/notify\0";
        assert!(environ_has(env, "NOTIFY_SOCKET", b"/run/nixos-wsl/notify"));
        assert!(environ_has(env, "container", b"wsl"));
        assert!(!environ_has(env, "NOTIFY_SOCKET", b"/run/nixos-wsl"));
        assert!(!environ_has(
            env,
            "NOTIFY",
            b"_SOCKET=/run/nixos-wsl/notify"
        ));
        assert!(!environ_has(b"", "container", b"wsl"));
    }
}
