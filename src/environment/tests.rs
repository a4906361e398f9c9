//! Equivalence of the fast path with real shells, the fallback, and the top-level loader.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::*;

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("nixos-wsl-env-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating a temporary directory");
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("writing a test file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The POSIX shells to compare against: `/bin/sh` (dash here, bash on NixOS) and bash.
fn shells() -> Vec<&'static Path> {
    let shells: Vec<_> = ["/bin/sh", "/bin/bash", "/bin/dash"]
        .into_iter()
        .map(Path::new)
        .filter(|p| p.exists())
        .collect();
    assert!(!shells.is_empty(), "no shell to compare with");
    shells
}

fn sorted(env: &Env) -> Vec<(OsString, OsString)> {
    let mut vars = env.clone().into_vec();
    vars.sort();
    vars
}

/// What WSL hands a session (section 1 of wsl-behaviour.md), plus oddities.
fn wsl_env(home: &Path) -> Env {
    let mut env = Env::new();
    env.set("HOSTTYPE", "x86_64");
    env.set("LANG", "en_US.UTF-8");
    env.set(
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/games:/usr/local/games:\
         /mnt/c/Windows/system32:/mnt/c/Program Files/Git/cmd:/mnt/c/Users/me/it's \"q\"",
    );
    env.set("TERM", "xterm-256color");
    env.set("WSLENV", "WT_SESSION:WT_PROFILE_ID:");
    env.set("WT_SESSION", "0f6c0a2e");
    env.set("WSL_INTEROP", "/run/WSL/8_interop");
    env.set("WSL_DISTRO_NAME", "NixOS");
    env.set("HOME", home);
    env.set("USER", "nixos");
    env.set("LOGNAME", "nixos");
    env.set("SHELL", "/run/current-system/sw/bin/bash");
    env.set("EMPTY", "");
    env.set("BYTES", OsString::from_vec(b"caf\xe9 \xff".to_vec()));
    env.set("ProgramFiles(x86)", "C:\\Program Files (x86)");
    env
}

/// Modelled on `shells-environment.nix`: the marker, `exportedEnvVars` (attribute order,
/// values in double quotes, `$HOME`/`$USER`/`${XDG_STATE_HOME}` from `environment.profiles`),
/// then a default `extraInit` (programs/environment.nix, security wrappers, nix-channel),
/// then the `$HOME/bin` line.
const NIXOS_SET_ENVIRONMENT: &str = r#"# DO NOT EDIT -- this file has been generated automatically.

# Prevent this file from being sourced by child shells.
export __NIXOS_SET_ENVIRONMENT_DONE=1

export EDITOR="nano"
export GREETING="it's a \"quoted\" value with  spaces, a \$dollar and a back\\slash"
export INFOPATH="$HOME/.nix-profile/info:$HOME/.nix-profile/share/info:${XDG_STATE_HOME}/nix/profile/info:$HOME/.local/state/nix/profile/info:/etc/profiles/per-user/$USER/info:/nix/var/nix/profiles/default/info:/run/current-system/sw/info:/run/current-system/sw/share/info"
export LESSOPEN="|/nix/store/0a1b2c3d-lesspipe-2.11/bin/lesspipe.sh %s"
export LOCALE_ARCHIVE="/run/current-system/sw/lib/locale/locale-archive"
export NIXPKGS_CONFIG="/etc/nix/nixpkgs-config.nix"
export NIX_PATH="nixpkgs=/nix/var/nix/profiles/per-user/root/channels/nixos:nixos-config=/etc/nixos/configuration.nix:/nix/var/nix/profiles/per-user/root/channels"
export PAGER="less"
export PATH="$HOME/.nix-profile/bin:${XDG_STATE_HOME}/nix/profile/bin:$HOME/.local/state/nix/profile/bin:/etc/profiles/per-user/$USER/bin:/nix/var/nix/profiles/default/bin:/run/current-system/sw/bin"
export TZDIR="/etc/zoneinfo"
export XDG_CONFIG_DIRS="/etc/xdg:$HOME/.nix-profile/etc/xdg:${XDG_STATE_HOME}/nix/profile/etc/xdg:$HOME/.local/state/nix/profile/etc/xdg:/etc/profiles/per-user/$USER/etc/xdg:/nix/var/nix/profiles/default/etc/xdg:/run/current-system/sw/etc/xdg"
export XDG_DATA_DIRS="$HOME/.nix-profile/share:/etc/profiles/per-user/$USER/share:/nix/var/nix/profiles/default/share:/run/current-system/sw/share"

export NIX_USER_PROFILE_DIR="/nix/var/nix/profiles/per-user/$USER"
export NIX_PROFILES="/run/current-system/sw /nix/var/nix/profiles/default /etc/profiles/per-user/$USER $HOME/.local/state/nix/profile ${XDG_STATE_HOME}/nix/profile $HOME/.nix-profile"

# Wrappers override other bin directories.
export PATH="/run/wrappers/bin:$PATH"

if [ -e "$HOME/.nix-defexpr/channels" ]; then
  export NIX_PATH="$HOME/.nix-defexpr/channels${NIX_PATH:+:$NIX_PATH}"
fi


# ~/bin if it exists overrides other bin directories.
export PATH="$HOME/bin:$PATH"
"#;

/// Everything else the subset accepts, in one file.
const EDGE_CASES: &[u8] = b"# comment\n\
    \n\
    export A=\"x \\\"q\\\" \\$HOME \\\\ \\a 'single'\" B='$HOME \"d\" \\n'   # trailing comment\n\
    export C=plain\\ text\"$HOME\"'!' D=\"multi\nline\" E=\"con\\\ntinued\"\n\
    export F=\"$\" G=a$/b H=\"#not a comment\" I=a#b J=\"caf\xe9 $BYTES\"\n\
    export K=\"${EMPTY:-d}${EMPTY-d}${UNSET:-d}${UNSET-d}${HOME:+set}${EMPTY:+no}${EMPTY+yes}\"\n\
    export L=\"${UNSET:-$HOME/.local/${USER}}\" M=\"${XDG_STATE_HOME}/nix/profile\"\n\
    LOCAL=l TERM=dumb; export USES_LOCAL=\"$LOCAL\"\n\
    LATER=1; export LATER NEVER_SET\n\
    export X=1 Y=\"$X\"; P=$HOME Q=$P\n\
    export \\\n  CONTINUED=yes\n\
    unset WT_SESSION EMPTY\n\
    if [ -n \"$HOME\" ]; then\n\
      if [ ! -d \"$HOME/nope\" ]; then export NESTED=1; else export NESTED=2; fi\n\
      if test \"$USER\" = nixos\n\
      then\n\
        export IS_NIXOS=yes\n\
      fi\n\
    else\n\
      export NEVER=1\n\
    fi\n\
    if [ -z \"$HOME\" ]; then if [ -e / ]; then export DEAD=1; fi; fi\n\
    if [ -f \"$HOME/file\" ]; then export HAS_FILE=1; fi; if [ -s \"$HOME/file\" ]; then export NONEMPTY=1; fi\n\
    if [ -h \"$HOME/link\" ]; then export LINK=1; fi; if [ \"$HOME\" != / ]; then export NOT_ROOT=1; fi\n";

fn assert_fast_equals_shells(script: &[u8], env: &Env, dir: &TempDir) {
    let file = dir.write("set-environment", script);
    let fast = match script::evaluate(script, env) {
        Ok(fast) => fast,
        Err(e) => panic!("{e}"),
    };
    for shell in shells() {
        let slow = sh::source(shell, &file, env, FALLBACK_TIMEOUT, None)
            .unwrap_or_else(|e| panic!("{}: {e:#}", shell.display()));
        assert_eq!(
            sorted(&fast),
            sorted(&slow),
            "fast path vs {}",
            shell.display()
        );
    }
}

#[test]
fn fast_path_equals_sh_on_a_nixos_file() {
    let dir = TempDir::new();
    let env = wsl_env(&dir.0);
    assert_fast_equals_shells(NIXOS_SET_ENVIRONMENT.as_bytes(), &env, &dir);
    // nix-channel's branch taken.
    std::fs::create_dir_all(dir.0.join(".nix-defexpr/channels")).expect("mkdir");
    assert_fast_equals_shells(NIXOS_SET_ENVIRONMENT.as_bytes(), &env, &dir);
    let loaded = script::evaluate(NIXOS_SET_ENVIRONMENT.as_bytes(), &env).expect("fast path");
    let home = dir.0.to_str().expect("UTF-8 temp dir");
    assert_eq!(
        loaded.get("NIX_PATH").and_then(OsStr::to_str),
        Some(format!("{home}/.nix-defexpr/channels:nixpkgs=/nix/var/nix/profiles/per-user/root/channels/nixos:nixos-config=/etc/nixos/configuration.nix:/nix/var/nix/profiles/per-user/root/channels").as_str())
    );
    assert_eq!(
        loaded.get("PATH").and_then(OsStr::to_str),
        Some(format!("{home}/bin:/run/wrappers/bin:{home}/.nix-profile/bin:/nix/profile/bin:{home}/.local/state/nix/profile/bin:/etc/profiles/per-user/nixos/bin:/nix/var/nix/profiles/default/bin:/run/current-system/sw/bin").as_str())
    );
    assert_eq!(
        loaded.get("GREETING").and_then(OsStr::to_str),
        Some("it's a \"quoted\" value with  spaces, a $dollar and a back\\slash")
    );
}

#[test]
fn fast_path_equals_sh_on_edge_cases() {
    let dir = TempDir::new();
    dir.write("file", b"x");
    std::os::unix::fs::symlink("file", dir.0.join("link")).expect("symlink");
    let env = wsl_env(&dir.0);
    assert_fast_equals_shells(EDGE_CASES, &env, &dir);
    // With a different starting environment the other branches run.
    let mut other = env.clone();
    other.set("HOME", "");
    other.set("USER", "root");
    other.remove("EMPTY");
    assert_fast_equals_shells(EDGE_CASES, &other, &dir);
}

/// What commonly enabled NixOS modules generate (nixpkgs 25.05/25.11: the exports of
/// `environment.variables` and `profileRelativeSessionVariables`, nix-channel, terminfo,
/// security wrappers, `programs.ssh.startAgent`'s `-a` test, `docker-rootless`' `&&` list).
const COMMON_MODULES: &[u8] = include_bytes!("fixtures/set-environment-common");

#[test]
fn fast_path_equals_sh_on_common_modules() {
    let dir = TempDir::new();
    let mut env = wsl_env(&dir.0);
    script::evaluate(COMMON_MODULES, &env).unwrap_or_else(|e| panic!("refused: {e}"));
    assert_fast_equals_shells(COMMON_MODULES, &env, &dir);
    env.set("XDG_RUNTIME_DIR", "/run/user/1000");
    assert_fast_equals_shells(COMMON_MODULES, &env, &dir);
    env.set("SSH_AUTH_SOCK", "/tmp/forwarded");
    env.set("DOCKER_HOST", "tcp://x");
    assert_fast_equals_shells(COMMON_MODULES, &env, &dir);
    let loaded = script::evaluate(COMMON_MODULES, &env).expect("fast path");
    assert_eq!(
        loaded.get("SSH_AUTH_SOCK"),
        Some(OsStr::new("/tmp/forwarded"))
    );
    env.remove("SSH_AUTH_SOCK");
    env.remove("DOCKER_HOST");
    let loaded = script::evaluate(COMMON_MODULES, &env).expect("fast path");
    assert_eq!(
        loaded.get("DOCKER_HOST"),
        Some(OsStr::new("unix:///run/user/1000/docker.sock"))
    );
    assert_eq!(
        loaded.get("SSH_AUTH_SOCK"),
        Some(OsStr::new("/run/user/1000/ssh-agent"))
    );
}

/// extraInit code beyond the subset: loops, `-a`, command substitution, functions, output.
const EXTRA_INIT: &str = r#"export __NIXOS_SET_ENVIRONMENT_DONE=1
export PATH="/run/current-system/sw/bin:/usr/bin:/bin"
unset ASPELL_CONF
for i in /nonexistent "$HOME"; do
  if [ -d "$i" ]; then export ASPELL_CONF="dict-dir $i/lib/aspell"; fi
done
if [ -z "$SSH_AUTH_SOCK" -a -n "$XDG_RUNTIME_DIR" ]; then
  export SSH_AUTH_SOCK="$XDG_RUNTIME_DIR/ssh-agent"
fi
export COMPUTED="$(echo computed)"
f() { export FROM_FUNCTION=yes; }; f
echo "printed by the file: stays out of the environment"
"#;

#[test]
fn fallback_runs_extra_init_code() {
    let dir = TempDir::new();
    let file = dir.write("set-environment", EXTRA_INIT.as_bytes());
    let mut env = wsl_env(&dir.0);
    env.set("XDG_RUNTIME_DIR", "/run/user/1000");
    let refused = script::evaluate(EXTRA_INIT.as_bytes(), &env).expect_err("beyond the subset");
    assert_eq!(refused.line, 4, "{refused}");
    for shell in shells() {
        let got = sh::source(shell, &file, &env, FALLBACK_TIMEOUT, None)
            .unwrap_or_else(|e| panic!("{}: {e:#}", shell.display()));
        let home = dir.0.to_str().expect("UTF-8");
        let get = |n: &str| got.get(n).and_then(OsStr::to_str).map(str::to_owned);
        assert_eq!(
            get("ASPELL_CONF"),
            Some(format!("dict-dir {home}/lib/aspell"))
        );
        assert_eq!(
            get("SSH_AUTH_SOCK").as_deref(),
            Some("/run/user/1000/ssh-agent")
        );
        assert_eq!(get("COMPUTED").as_deref(), Some("computed"));
        assert_eq!(get("FROM_FUNCTION").as_deref(), Some("yes"));
        // Byte-exact values, names no shell can hold, and no shell bookkeeping.
        assert_eq!(got.get("BYTES"), env.get("BYTES"));
        assert_eq!(got.get("ProgramFiles(x86)"), env.get("ProgramFiles(x86)"));
        for name in ["_", "SHLVL", "PWD", "OLDPWD"] {
            assert_eq!(got.get(name), None, "{name} from {}", shell.display());
        }
        // WSL's order is kept for the variables it gave.
        let names: Vec<_> = got.iter().map(|(n, _)| n.to_owned()).take(3).collect();
        assert_eq!(names, ["HOSTTYPE", "LANG", "PATH"]);
    }
}

#[test]
fn fallback_reports_a_syntax_error_in_one_line() {
    let dir = TempDir::new();
    let file = dir.write(
        "set-environment",
        b"export A=1\nif [ -e / ]; then\n  export B=1\n",
    );
    for shell in shells() {
        let err = sh::source(shell, &file, &Env::new(), FALLBACK_TIMEOUT, None)
            .expect_err("syntax error");
        let message = format!("{err:#}");
        assert!(!message.contains('\n'), "{message}");
        assert!(message.to_lowercase().contains("syntax error"), "{message}");
    }
}

/// Only the shell's report of a syntax error in the file itself fails it: a command of the
/// file that prints "syntax error" does not.
#[test]
fn fallback_is_not_fooled_by_output_that_says_syntax_error() {
    let dir = TempDir::new();
    let file = dir.write(
        "set-environment",
        b"echo 'x: line 1: syntax error near unexpected token' >&2
for i in 1; do export A=$i; done
",
    );
    for shell in shells() {
        let env = sh::source(shell, &file, &Env::new(), FALLBACK_TIMEOUT, None)
            .unwrap_or_else(|e| panic!("{}: {e:#}", shell.display()));
        assert_eq!(env.get("A"), Some(OsStr::new("1")), "{}", shell.display());
    }
}

#[test]
fn fallback_is_bounded_in_time() {
    let dir = TempDir::new();
    let file = dir.write("set-environment", b"sleep 5\n");
    let mut env = Env::new();
    env.set("PATH", "/usr/bin:/bin");
    let start = Instant::now();
    let err = sh::source(
        Path::new("/bin/sh"),
        &file,
        &env,
        Duration::from_millis(300),
        None,
    )
    .expect_err("too slow");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(format!("{err}").contains("no answer within"), "{err}");
}

#[test]
fn fallback_does_not_wait_for_background_jobs() {
    let dir = TempDir::new();
    let file = dir.write(
        "set-environment",
        b"sleep 3 &\nexport A=1\nfor i in x; do :; done\n",
    );
    let mut env = Env::new();
    env.set("PATH", "/usr/bin:/bin");
    let start = Instant::now();
    let got =
        sh::source(Path::new("/bin/sh"), &file, &env, FALLBACK_TIMEOUT, None).expect("sourced");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(got.get("A"), Some(OsStr::new("1")));
}

#[test]
fn parse_env0_is_byte_exact() {
    let env = sh::parse_env0(b"A=1\0B=x=y\0NOEQUALS\0C=\xff\nz\0D=\0");
    let vars: Vec<_> = env.into_vec();
    assert_eq!(
        vars,
        [
            (OsString::from("A"), OsString::from("1")),
            (OsString::from("B"), OsString::from("x=y")),
            (OsString::from("C"), OsString::from_vec(b"\xff\nz".to_vec())),
            (OsString::from("D"), OsString::new()),
        ]
    );
}

#[test]
fn load_missing_file_warns_already_loaded_is_unchanged() {
    let dir = TempDir::new();
    let shell = Path::new(FALLBACK_SHELL);
    let env = wsl_env(&dir.0);
    let absent = dir.0.join("absent");
    let missing = load_set_environment(&absent, &env, shell).expect_err("missing");
    let message = format!("{missing:#}");
    assert!(
        message.starts_with(&format!("{} does not exist", absent.display()))
            && !message.contains('\n'),
        "{message}"
    );

    let broken = dir.write("set-environment", b"if then fi fi\n");
    let mut done = env.clone();
    done.set(DONE_MARKER, "1");
    assert_eq!(
        load_set_environment(&broken, &done, shell).expect("skipped"),
        done
    );
    // An empty marker does not count, as in NixOS' `[ -z "$__NIXOS_SET_ENVIRONMENT_DONE" ]`.
    done.set(DONE_MARKER, "");
    assert!(load_set_environment(&broken, &done, shell).is_err());
}

/// The fallback shell runs as the session's user (`$(id -u)` in an `extraInit` is theirs);
/// as whoever we are when that is already them, or when no user is given.
#[test]
fn fallback_runs_as_the_given_user() {
    let dir = TempDir::new();
    let file = dir.write(
        "set-environment",
        b"export ID=\"$(id -u):$(id -g):$(id -G)\"\n",
    );
    let mut env = Env::new();
    env.set("PATH", "/usr/bin:/bin");
    let id = |user: Option<&Credentials>| {
        let got =
            sh::source(Path::new("/bin/sh"), &file, &env, FALLBACK_TIMEOUT, user).expect("sourced");
        got.get("ID").and_then(OsStr::to_str).map(str::to_owned)
    };
    let me = nix::unistd::Uid::effective();
    let my_gid = nix::unistd::Gid::effective();
    let mine = id(None).expect("ID set");
    assert!(mine.starts_with(&format!("{me}:{my_gid}:")), "{mine}");
    let same = Credentials {
        uid: me,
        gid: my_gid,
        groups: vec![my_gid],
    };
    assert_eq!(id(Some(&same)).as_deref(), Some(mine.as_str()), "no switch");
    if me.is_root() {
        let other = Credentials {
            uid: nix::unistd::Uid::from_raw(65_534),
            gid: nix::unistd::Gid::from_raw(65_533),
            groups: vec![
                nix::unistd::Gid::from_raw(65_533),
                nix::unistd::Gid::from_raw(4242),
            ],
        };
        let got = id(Some(&other)).expect("ID set");
        let groups: Vec<&str> = got.rsplit(':').next().unwrap_or("").split(' ').collect();
        assert!(got.starts_with("65534:65533:"), "{got}");
        assert!(groups.contains(&"4242") && !groups.contains(&"0"), "{got}");
    }
}

#[test]
fn load_marks_done_on_both_paths() {
    let dir = TempDir::new();
    let env = wsl_env(&dir.0);
    let shell = Path::new(FALLBACK_SHELL);
    for text in [
        &b"export A=fast\n"[..],
        b"for i in slow; do export A=$i; done\n",
    ] {
        let file = dir.write("set-environment", text);
        let got = load_set_environment(&file, &env, shell).expect("loaded");
        assert_eq!(got.get(DONE_MARKER), Some(OsStr::new("1")));
        assert!(got.get("A").is_some());
        assert_eq!(got.get("HOME"), env.get("HOME"));
    }
}

#[test]
fn load_errors_are_one_line() {
    let dir = TempDir::new();
    let env = wsl_env(&dir.0);
    let shell = Path::new(FALLBACK_SHELL);
    let broken = dir.write("set-environment", b"export A=$(\n");
    let err = load_set_environment(&broken, &env, shell).expect_err("broken");
    let message = format!("{err:#}");
    assert!(message.starts_with("loading "), "{message}");
    assert!(!message.contains('\n'), "{message}");
    // A directory is unreadable as a file.
    let err = load_set_environment(&dir.0, &env, shell).expect_err("a directory");
    assert!(format!("{err:#}").starts_with("reading "), "{err:#}");
}

/// The fast path must stay far below the 1 ms launch budget; prints both costs
/// (`cargo test -- --nocapture fast_path_cost`).
#[test]
fn fast_path_cost() {
    let dir = TempDir::new();
    let env = wsl_env(&dir.0);
    let file = dir.write("set-environment", NIXOS_SET_ENVIRONMENT.as_bytes());
    let shell = Path::new(FALLBACK_SHELL);
    let runs = 200;
    let start = Instant::now();
    for _ in 0..runs {
        let loaded = load_set_environment(&file, &env, shell).expect("fast path");
        assert_eq!(loaded.get(DONE_MARKER), Some(OsStr::new("1")));
    }
    let fast = start.elapsed() / runs;
    let runs = 10;
    let start = Instant::now();
    for _ in 0..runs {
        sh::source(shell, &file, &env, FALLBACK_TIMEOUT, None).expect("shell path");
    }
    let slow = start.elapsed() / runs;
    eprintln!(
        "set-environment: fast path {fast:?} per load, {} fallback {slow:?}",
        shell.display()
    );
    assert!(fast < Duration::from_millis(1), "fast path took {fast:?}");
}

#[test]
fn env_keeps_order_and_bytes() {
    let mut env = Env::new();
    env.set("A", "1");
    env.set("B", "2");
    env.set("A", "3");
    env.set(
        OsString::from_vec(b"\xff".to_vec()),
        OsString::from_vec(b"\xfe".to_vec()),
    );
    assert_eq!(env.iter().count(), 3);
    assert_eq!(env.get("A"), Some(OsStr::new("3")));
    assert_eq!(
        env.get(OsStr::from_bytes(b"\xff")),
        Some(OsStr::from_bytes(b"\xfe"))
    );
    assert_eq!(env.remove("B"), Some(OsString::from("2")));
    assert_eq!(env.remove("B"), None);
    let names: Vec<_> = env.iter().map(|(n, _)| n.as_bytes().to_vec()).collect();
    assert_eq!(names, [b"A".to_vec(), b"\xff".to_vec()]);
    let dup: Env = [("X", "1"), ("Y", "2"), ("X", "3")]
        .iter()
        .map(|(n, v)| (OsString::from(n), OsString::from(v)))
        .collect();
    assert_eq!(
        dup.into_vec(),
        [("X".into(), "3".into()), ("Y".into(), "2".into())]
    );
}

/// [`load_set_environment_as`] as whoever we are.
fn load_set_environment(path: &Path, env: &Env, shell: &Path) -> anyhow::Result<Env> {
    load_set_environment_as(path, env, shell, None)
}

/// The fallback's cost against one plain `sh -c '. file'` run, side by side
/// (`cargo test --release -- --nocapture --ignored fallback_cost`).
#[test]
#[ignore = "a measurement, not a test"]
fn fallback_cost() {
    let dir = TempDir::new();
    let env = wsl_env(&dir.0);
    let file = dir.write("set-environment", EXTRA_INIT.as_bytes());
    for shell in shells() {
        let (mut ours, mut plain) = (Duration::ZERO, Duration::ZERO);
        let runs = 300;
        for _ in 0..runs {
            let start = Instant::now();
            sh::source(shell, &file, &env, FALLBACK_TIMEOUT, None).expect("sourced");
            ours += start.elapsed();
            let start = Instant::now();
            let status = std::process::Command::new(shell)
                .args(["-c", ". \"$1\" >/dev/null 2>&1", "sh"])
                .arg(&file)
                .env_clear()
                .envs(env.iter())
                .status()
                .expect("sh");
            assert!(status.success());
            plain += start.elapsed();
        }
        eprintln!(
            "{}: fallback {:?}, one `sh -c '. file'` {:?}: ratio {:.2}",
            shell.display(),
            ours / runs,
            plain / runs,
            ours.as_secs_f64() / plain.as_secs_f64()
        );
    }
}
