//! What WSL reads from the distro before a launch, as plain parsers: `/etc/passwd` and
//! `/etc/group` (WSL uses no NSS), `[user] default` of `/etc/wsl.conf`, and `LANG`.

/// One `/etc/passwd` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passwd {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

impl Passwd {
    /// WSL's fallback when no entry resolves: root with home `/` and shell `/bin/sh`.
    pub fn fallback_root() -> Passwd {
        Passwd {
            name: "root".into(),
            uid: 0,
            gid: 0,
            home: "/".into(),
            shell: "/bin/sh".into(),
        }
    }

    /// The program WSL runs for this user: `pw_shell`, or `/bin/sh` if empty.
    pub fn shell_or_sh(&self) -> &str {
        if self.shell.is_empty() {
            "/bin/sh"
        } else {
            &self.shell
        }
    }
}

/// Parses `/etc/passwd` text; malformed lines are skipped.
pub fn parse_passwd(text: &str) -> Vec<Passwd> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(Passwd {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_string(),
                shell: f[6].to_string(),
            })
        })
        .collect()
}

/// The gids `initgroups(3)` would set for `user`: its primary group first, then every group
/// of `/etc/group` that lists it as a member.
pub fn groups_of(group_text: &str, user: &str, primary: u32) -> Vec<u32> {
    let mut gids = vec![primary];
    for line in group_text.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 {
            continue;
        }
        let Ok(gid) = f[2].parse::<u32>() else {
            continue;
        };
        if f[3].split(',').any(|m| m == user) && !gids.contains(&gid) {
            gids.push(gid);
        }
    }
    gids
}

/// `[user] default` from `/etc/wsl.conf` text. Sections and keys are case-insensitive,
/// `#`/`;` start comments, values may be quoted.
pub fn wsl_conf_default_user(text: &str) -> Option<String> {
    let mut section = String::new();
    let mut found = None;
    for raw in text.lines() {
        let line = raw.split(['#', ';']).next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_ascii_lowercase();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if section == "user" && key.trim().eq_ignore_ascii_case("default") {
            let v = value.trim().trim_matches('"').to_string();
            if !v.is_empty() {
                found = Some(v);
            }
        }
    }
    found
}

/// `LANG` from `/etc/default/locale` or `/etc/locale.conf` text (`LANG=value`, maybe quoted).
pub fn lang_from(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let v = l.trim().strip_prefix("LANG=")?;
        let v = v.trim().trim_matches('"').trim_matches('\'');
        (!v.is_empty()).then(|| v.to_string())
    })
}

/// WSL's default `LANG` when the distro configures none.
pub const DEFAULT_LANG: &str = "en_US.UTF-8";
