//! `unit::*`: pure logic of the simulator, no privileges.

use crate::*;
// ---------------------------------------------------------------------------------------
// unit::*: pure logic, no root.

pub(crate) fn tests() -> Vec<Trial> {
    unprivileged_all(
        tests!["unit": argv_forms, environment_order, userdb_parsing, sim_refuses_the_host_root, recipe_hash_is_stable, wsl_systemd_mode],
    )
}

fn wsl_systemd_mode() -> Result<()> {
    use crate::sim::native::{session_env, systemd_enabled, LaunchArgs};
    ensure!(systemd_enabled("[boot]\nsystemd=true\n"));
    ensure!(systemd_enabled(
        "[Boot] # c\n SystemD = \"TRUE\"\n[user]\ndefault=x\n"
    ));
    ensure!(!systemd_enabled("[boot]\nsystemd=false\n"));
    ensure!(!systemd_enabled("[user]\nsystemd=true\n"));
    ensure!(!systemd_enabled(""));
    let wsl = vec![("PATH".to_string(), "/bin".to_string())];
    let native = LaunchArgs {
        wsl_systemd: true,
        ..Default::default()
    };
    let env = native.environment(wsl.clone(), 1000);
    ensure!(env[0] == wsl[0] && env[1..] == session_env(1000), "{env:?}");
    ensure!(env[2] == ("XDG_RUNTIME_DIR".into(), "/run/user/1000".into()));
    let exact = LaunchArgs {
        exact_env: Some(Vec::new()),
        ..native
    };
    ensure!(
        exact.environment(wsl, 1000).is_empty(),
        "no PATH for WSL's helpers"
    );
    Ok(())
}

fn argv_forms() -> Result<()> {
    use crate::sim::session::{program_and_argv, Form};
    let u = crate::sim::userdb::Passwd {
        name: "n".into(),
        uid: 1000,
        gid: 100,
        home: "/h".into(),
        shell: "/bin/zsh".into(),
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let none = |_: &str| false;
    ensure!(program_and_argv(&Form::Login, &u, none).unwrap() == ("/bin/zsh".into(), s(&["-zsh"])));
    ensure!(
        program_and_argv(&Form::Command("a 'b c'".into()), &u, none).unwrap()
            == ("/bin/zsh".into(), s(&["/bin/zsh", "-c", "a 'b c'"]))
    );
    ensure!(
        program_and_argv(&Form::LoginCommand("x".into()), &u, none).unwrap()
            == ("/bin/zsh".into(), s(&["-zsh", "-c", "x"]))
    );
    let only_bin = |p: &str| p == "/bin/ls";
    ensure!(
        program_and_argv(&Form::Exec(s(&["ls", "a b"])), &u, only_bin).unwrap()
            == ("/bin/ls".into(), s(&["ls", "a b"]))
    );
    ensure!(program_and_argv(&Form::Exec(s(&["nope"])), &u, only_bin).is_err());
    let empty = crate::sim::userdb::Passwd {
        shell: String::new(),
        ..u
    };
    ensure!(
        program_and_argv(&Form::Login, &empty, none).unwrap() == ("/bin/sh".into(), s(&["-sh"]))
    );
    Ok(())
}

fn environment_order() -> Result<()> {
    use crate::sim::session::{wsl_environment, EnvInputs};
    let u = crate::sim::userdb::Passwd {
        name: "nixos".into(),
        uid: 1000,
        gid: 100,
        home: "/home/nixos".into(),
        shell: "/bin/bash".into(),
    };
    let env = wsl_environment(&EnvInputs {
        lang: "en_US.UTF-8",
        windows_path: &[
            "/mnt/c/Windows/system32".into(),
            "/mnt/c/Program Files/Thing".into(),
        ],
        wslenv: &[("WT_SESSION".into(), "abc".into())],
        interop_pid: 7,
        hostname: "host",
        distro: "NixOS",
        user: &u,
    });
    let keys: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    ensure!(
        keys == [
            "HOSTTYPE",
            "LANG",
            "PATH",
            "TERM",
            "WSLENV",
            "WT_SESSION",
            "WSL_INTEROP",
            "NAME",
            "WSL_DISTRO_NAME",
            "HOME",
            "USER",
            "LOGNAME",
            "SHELL"
        ],
        "{keys:?}"
    );
    ensure!(env[2]
        .1
        .ends_with(":/usr/local/games:/mnt/c/Windows/system32:/mnt/c/Program Files/Thing"));
    ensure!(env[4].1 == "WT_SESSION" && env[6].1 == "/run/WSL/7_interop");
    Ok(())
}

fn userdb_parsing() -> Result<()> {
    use crate::sim::userdb::*;
    let p =
        parse_passwd("root:x:0:0:root:/root:/bin/bash\nbad line\nnixos:x:1000:100::/home/nixos:\n");
    ensure!(p.len() == 2 && p[1].shell_or_sh() == "/bin/sh");
    ensure!(
        groups_of(
            "sudo:x:27:nixos\nusers:x:100:\nwheel:x:10:a,nixos\n",
            "nixos",
            100
        ) == [100, 27, 10]
    );
    ensure!(
        wsl_conf_default_user("[boot]\ndefault=x\n[User] # c\n Default = \"nixos\"\n").as_deref()
            == Some("nixos")
    );
    ensure!(wsl_conf_default_user("[user]\n").is_none());
    ensure!(lang_from("# c\nLANG=\"C.UTF-8\"\n").as_deref() == Some("C.UTF-8"));
    Ok(())
}

fn sim_refuses_the_host_root() -> Result<()> {
    use crate::sim::safety::*;
    let host = HostRoot::record()?;
    let err = check_root(host)
        .err()
        .context("check_root accepted the host's /")?;
    ensure!(format!("{err}").contains("refusing"), "{err}");
    // A directory that is not the host root but lacks the marker is refused too.
    let err = check_root_at(std::path::Path::new("/tmp"), host)
        .err()
        .context("accepted /tmp")?;
    ensure!(format!("{err}").contains("marker"), "{err}");
    Ok(())
}

fn recipe_hash_is_stable() -> Result<()> {
    let dir = crate::sim::rootfs::recipe_dir();
    ensure!(crate::sim::rootfs::recipe_hash(&dir)? == crate::sim::rootfs::recipe_hash(&dir)?);
    Ok(())
}
