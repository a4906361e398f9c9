//! What WSL decides for one launch (wsl-behaviour.md section 1), as plain data: the program
//! and argv of each `wsl.exe` form, and the environment in WSL's order. The launcher role
//! performs these decisions; unit tests check them without root.

use std::path::Path;

use super::userdb::Passwd;

/// The `wsl.exe` invocation forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Form {
    /// `wsl -d X`: the user's shell as a login shell, `["-" + basename(pw_shell)]`.
    Login,
    /// `wsl -d X cmd ...` / `wsl -d X -- cmd ...`: `[pw_shell, "-c", "<string verbatim>"]`.
    Command(String),
    /// `wsl -d X --shell-type login -- cmd`: `["-" + basename, "-c", "<string>"]`.
    LoginCommand(String),
    /// `wsl -d X -e cmd args...`: bypasses the shell, `cmd` looked up only in
    /// `/usr/local/bin:/bin:/usr/bin`.
    Exec(Vec<String>),
}

/// Where `-e` looks for a command without a slash.
pub const EXEC_SEARCH_PATH: [&str; 3] = ["/usr/local/bin", "/bin", "/usr/bin"];

/// WSL's Linux part of `PATH`, before the translated Windows entries.
pub const LINUX_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/games:/usr/local/games";

/// The program to exec and its argv for `form` run as `user`. For `-e` with a bare name,
/// `exists` decides the lookup (the launcher passes a filesystem check inside the distro).
/// `Err` carries WSL's message when the `-e` command cannot be found.
pub fn program_and_argv(
    form: &Form,
    user: &Passwd,
    exists: impl Fn(&str) -> bool,
) -> Result<(String, Vec<String>), String> {
    let shell = user.shell_or_sh().to_string();
    let dash_name = || {
        let base = Path::new(&shell)
            .file_name()
            .map(|b| b.to_string_lossy().into_owned());
        format!("-{}", base.unwrap_or_else(|| shell.clone()))
    };
    Ok(match form {
        Form::Login => (shell.clone(), vec![dash_name()]),
        Form::Command(s) => (shell.clone(), vec![shell.clone(), "-c".into(), s.clone()]),
        Form::LoginCommand(s) => (shell.clone(), vec![dash_name(), "-c".into(), s.clone()]),
        Form::Exec(args) => {
            let Some(cmd) = args.first() else {
                return Err("wsl: -e needs a command".into());
            };
            let program = if cmd.contains('/') {
                cmd.clone()
            } else {
                EXEC_SEARCH_PATH
                    .iter()
                    .map(|d| format!("{d}/{cmd}"))
                    .find(|p| exists(p))
                    .ok_or_else(|| format!("execvpe({cmd}) failed: No such file or directory"))?
            };
            (program, args.clone())
        }
    })
}

/// Everything the environment of a launch depends on.
#[derive(Clone, Debug)]
pub struct EnvInputs<'a> {
    pub lang: &'a str,
    /// Translated Windows `%PATH%` entries (`/mnt/c/Windows/system32`, ...), appended to PATH.
    pub windows_path: &'a [String],
    /// Windows variables named by `WSLENV`, in `WSLENV` order.
    pub wslenv: &'a [(String, String)],
    /// The pid in `WSL_INTEROP=/run/WSL/<pid>_interop`.
    pub interop_pid: i32,
    pub hostname: &'a str,
    pub distro: &'a str,
    pub user: &'a Passwd,
}

/// The environment WSL gives a launched process, in WSL's order: HOSTTYPE, LANG, PATH, TERM,
/// WSLENV and the variables it names, WSL_INTEROP, NAME, WSL_DISTRO_NAME, HOME, USER,
/// LOGNAME, SHELL. (WSLg's variables are not emulated.)
pub fn wsl_environment(i: &EnvInputs) -> Vec<(String, String)> {
    let mut path = LINUX_PATH.to_string();
    for entry in i.windows_path {
        path.push(':');
        path.push_str(entry);
    }
    let wslenv_names: Vec<&str> = i.wslenv.iter().map(|(k, _)| k.as_str()).collect();
    let mut env = vec![
        ("HOSTTYPE".to_string(), "x86_64".to_string()),
        ("LANG".into(), i.lang.into()),
        ("PATH".into(), path),
        ("TERM".into(), "xterm-256color".into()),
        ("WSLENV".into(), wslenv_names.join(":")),
    ];
    env.extend(i.wslenv.iter().cloned());
    env.extend([
        (
            "WSL_INTEROP".to_string(),
            format!("/run/WSL/{}_interop", i.interop_pid),
        ),
        ("NAME".into(), i.hostname.into()),
        ("WSL_DISTRO_NAME".into(), i.distro.into()),
        ("HOME".into(), i.user.home.clone()),
        ("USER".into(), i.user.name.clone()),
        ("LOGNAME".into(), i.user.name.clone()),
        ("SHELL".into(), i.user.shell_or_sh().into()),
    ]);
    env
}

/// The exit code `wsl.exe` reports: the process's exit code, or the raw signal number if a
/// signal killed it (not 128+N).
pub fn wsl_exit_code(status: nix::sys::wait::WaitStatus) -> Option<i32> {
    use nix::sys::wait::WaitStatus::*;
    match status {
        Exited(_, code) => Some(code),
        Signaled(_, sig, _) => Some(sig as i32),
        _ => None,
    }
}
