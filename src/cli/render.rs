//! Rendering `status` for people (aligned text) and for scripts (one JSON object). Pure.

use std::fmt::Write;

use super::report::Status;

/// `3725` -> `1h 2m 5s`; `59` -> `59s`; `86400` -> `1d 0h 0m 0s`.
pub(crate) fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m {s}s"),
        _ => format!("{d}d {h}h {m}m {s}s"),
    }
}

/// The human-readable report.
pub(crate) fn status_text(s: &Status) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: &str| {
        let _ = writeln!(out, "{k:<13}{v}");
    };
    let mode = match (s.mode.as_str(), s.inside) {
        (m, true) => format!("{m} (this command runs inside it)"),
        (m, false) => m.to_owned(),
    };
    line("mode:", &mode);
    if let Some(sd) = &s.systemd {
        let mut pid = String::new();
        if let Some(p) = sd.pid_inside {
            let _ = write!(pid, "{p} inside");
        }
        if let Some(p) = sd.pid_outside {
            let _ = write!(pid, ", {p} outside");
        }
        if let Some(ago) = sd.started_secs_ago {
            let _ = write!(pid, "; started {} ago", duration(ago));
        }
        line("systemd:", &pid);
        line(
            "state:",
            sd.state.as_deref().unwrap_or("unknown (no answer)"),
        );
        if let Some(r) = &sd.readiness {
            line("readiness:", r);
        }
        line(
            "failed units:",
            &sd.failed_units
                .map_or_else(|| "unknown".to_owned(), |n| n.to_string()),
        );
    } else {
        line("systemd:", "not running");
    }
    let yes = |b: bool| if b { "yes" } else { "no" };
    line(
        "activation:",
        &format!(
            "/run/current-system {}; activated by the login shell this boot: {}",
            if s.current_system {
                "present"
            } else {
                "missing"
            },
            yes(s.activated)
        ),
    );
    let number = |n: Option<u32>| n.map_or_else(|| "unknown".to_owned(), |n| n.to_string());
    let (booted, current) = s.generation;
    line(
        "generation:",
        &format!(
            "{} booted, {} current{}",
            number(booted),
            number(current),
            if booted.is_some() && current.is_some() && booted != current {
                " (`wsl -t` boots the current one)"
            } else {
                ""
            }
        ),
    );
    for (i, (name, path, exists)) in s.logs.iter().enumerate() {
        let label = if i == 0 { "logs:" } else { "" };
        let missing = if *exists { "" } else { " (not written)" };
        line(label, &format!("{} ({name}){missing}", path.display()));
    }
    if let Some(note) = &s.note {
        line("note:", note);
    }
    out
}

/// A JSON string literal.
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "null".to_owned(), |v| v.to_string())
}

fn opt_str(v: Option<&str>) -> String {
    v.map_or_else(|| "null".to_owned(), json_string)
}

/// The machine-readable report: one line, stable keys, `null` for what is unknown.
pub(crate) fn status_json(s: &Status) -> String {
    let systemd = match &s.systemd {
        None => "null".to_owned(),
        Some(sd) => format!(
            "{{\"pid_inside\":{},\"pid_outside\":{},\"started_secs_ago\":{},\"state\":{},\"failed_units\":{},\"readiness\":{}}}",
            opt(sd.pid_inside),
            opt(sd.pid_outside),
            opt(sd.started_secs_ago),
            opt_str(sd.state.as_deref()),
            opt(sd.failed_units),
            opt_str(sd.readiness.as_deref()),
        ),
    };
    let logs: Vec<String> = s
        .logs
        .iter()
        .map(|(name, path, exists)| {
            format!(
                "{}:{{\"path\":{},\"exists\":{exists}}}",
                json_string(name),
                json_string(&path.to_string_lossy())
            )
        })
        .collect();
    format!(
        "{{\"mode\":{},\"inside\":{},\"up\":{},\"systemd\":{systemd},\"activation\":{{\"current_system\":{},\"activated\":{}}},\"generation\":{{\"booted\":{},\"current\":{}}},\"logs\":{{{}}},\"note\":{}}}",
        json_string(s.mode.as_str()),
        s.inside,
        s.up(),
        s.current_system,
        s.activated,
        s.generation.0.map_or_else(|| "null".to_owned(), |n| n.to_string()),
        s.generation.1.map_or_else(|| "null".to_owned(), |n| n.to_string()),
        logs.join(","),
        opt_str(s.note.as_deref()),
    )
}

#[cfg(test)]
mod tests {
    use super::super::report::{Mode, Systemd};
    use super::*;

    fn sample() -> Status {
        Status {
            mode: Mode::Namespace,
            inside: false,
            systemd: Some(Systemd {
                pid_inside: Some(1),
                pid_outside: Some(4711),
                started_secs_ago: Some(125),
                state: Some("running".into()),
                failed_units: Some(0),
                readiness: Some("ready".into()),
            }),
            note: None,
            current_system: true,
            activated: true,
            generation: (Some(2), Some(2)),
            logs: vec![
                ("systemd", "/run/nixos-wsl/systemd.log".into(), true),
                ("activation", "/run/nixos-wsl/activation.log".into(), false),
            ],
        }
    }

    #[test]
    fn durations() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(125), "2m 5s");
        assert_eq!(duration(3725), "1h 2m 5s");
        assert_eq!(duration(86_400), "1d 0h 0m 0s");
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("plain"), "\"plain\"");
        assert_eq!(
            json_string("a\"b\\c\nd\u{1}\u{7f}é"),
            "\"a\\\"b\\\\c\\nd\\u0001\\u007fé\""
        );
    }

    #[test]
    fn json_report() {
        assert_eq!(
            status_json(&sample()),
            "{\"mode\":\"namespace\",\"inside\":false,\"up\":true,\"systemd\":{\"pid_inside\":1,\"pid_outside\":4711,\"started_secs_ago\":125,\"state\":\"running\",\"failed_units\":0,\"readiness\":\"ready\"},\"activation\":{\"current_system\":true,\"activated\":true},\"generation\":{\"booted\":2,\"current\":2},\"logs\":{\"systemd\":{\"path\":\"/run/nixos-wsl/systemd.log\",\"exists\":true},\"activation\":{\"path\":\"/run/nixos-wsl/activation.log\",\"exists\":false}},\"note\":null}"
        );
        let none = Status {
            mode: Mode::None,
            systemd: None,
            note: Some("dead \"ns\"".into()),
            ..sample()
        };
        let j = status_json(&none);
        assert!(
            j.contains("\"mode\":\"none\",\"inside\":false,\"up\":false,\"systemd\":null"),
            "{j}"
        );
        assert!(j.ends_with("\"note\":\"dead \\\"ns\\\"\"}"), "{j}");
    }

    #[test]
    fn text_report() {
        let t = status_text(&sample());
        assert!(t.starts_with("mode:        namespace\n"), "{t}");
        assert!(
            t.contains("systemd:     1 inside, 4711 outside; started 2m 5s ago\n"),
            "{t}"
        );
        assert!(t.contains("state:       running\n"), "{t}");
        assert!(t.contains("failed units:0\n"), "{t}");
        assert!(t.contains("/run/nixos-wsl/activation.log (activation) (not written)"));
        let none = Status {
            mode: Mode::None,
            systemd: None,
            ..sample()
        };
        assert!(status_text(&none).contains("systemd:     not running\n"));
    }
}
