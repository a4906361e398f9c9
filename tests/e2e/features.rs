//! The parity features of the NixOS module (issue 15) running in the WSL simulator, with real
//! systemd: what the module generates, as the real nixpkgs lib evaluates it
//! (`nix/tests/sim-units.nix`), is put into a distro and must work there.
//!
//! - `wsl.useWindowsDriver`: fake Windows driver files in `/usr/lib/wsl/lib` are reachable
//!   through `/run/opengl-driver/lib` (the module's package of links, built by its own build
//!   script, linked by a tmpfiles rule as graphics.nix writes it, applied by systemd at boot).
//! - `wsl.sshAgent`: the module's user unit starts in the user's manager at boot, and every
//!   session, login or `-c`, in both modes, has `SSH_AUTH_SOCK` (the module's
//!   `/etc/set-environment` lines) pointing at it; `ssh-add -l` lists the key of a stand-in
//!   for the bridge and the Windows agent behind it (nixpkgs' wsl2-ssh-agent is a Go program
//!   that cannot be built here; the stand-in answers the agent protocol on the socket the unit
//!   names and records the arguments the unit gives it). A forwarded agent is kept.
//! - `wsl.keepAlive`: the module's unit starts at boot and runs a fake `wsl.exe` at the
//!   interop path with the module's arguments, and is stopped by a poweroff.
//!
//!   With a list of units, it holds only while one of them is active.
//! - `wsl.usbip.autoAttach`: the module's attach script, as its template unit runs it for the
//!   bus ID, attaches the device from the default gateway at boot (stand-ins for `usbip` and
//!   `ip`, the Windows side), not again while attached, and again once it was detached.
//!
//! Root only; fails in CI when it cannot run, skipped elsewhere.

use crate::sim;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use sim::harness::TestFn;
use sim::under_test::{self, Mode};
use sim::{Distro, DistroOptions, Exit, Launch};

pub(crate) fn tests() -> Vec<(String, TestFn)> {
    let mut t = tests!["features": gpu_libraries_in_run_opengl_driver];
    t.extend(modes!["features": ssh_agent_in_every_session]);
    t.extend(tests!["features":
        keep_alive_holds_wsl_exe_until_poweroff,
        keep_alive_with_a_unit_holds_only_while_it_runs,
        usbip_attaches_at_boot_and_again_when_the_device_returns,
    ]);
    t
}

fn unit<'a>(units: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str> {
    units
        .get(name)
        .map(String::as_str)
        .with_context(|| format!("nix/tests/sim-units.nix has no {name}"))
}

/// Every `/nix/store/<hash>-<name>/bin/<program>` a unit names, made to exist: `stand_in` for
/// `program` if given, else a link to Debian's `/usr/bin/<program>` (stand-in packages of the
/// evaluation are never built).
fn store_programs(mut opts: DistroOptions, text: &str, stand_in: &[(&str, &str)]) -> DistroOptions {
    let mut rest = text;
    while let Some(start) = rest.find("/nix/store/") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(tail.len());
        let path = &tail[..end];
        rest = &tail[end..];
        let Some((_, program)) = path.rsplit_once("/bin/") else {
            continue;
        };
        opts = match stand_in.iter().find(|(p, _)| *p == program) {
            Some((_, script)) => opts.file_mode(path, script.as_bytes().to_vec(), 0o755),
            None => opts.link(path, &format!("/usr/bin/{program}")),
        };
    }
    opts
}

/// A system or user unit as NixOS installs it: the file, and its `.wants` link.
fn install_unit(
    opts: DistroOptions,
    dir: &str,
    name: &str,
    text: &str,
    wanted_by: &str,
) -> DistroOptions {
    let mut opts = opts.file(&format!("{dir}/{name}"), text.as_bytes().to_vec());
    for target in wanted_by.split_whitespace() {
        opts = opts.link(
            &format!("{dir}/{target}.wants/{name}"),
            &format!("../{name}"),
        );
    }
    opts
}

fn wait_for(d: &Distro, what: &str, check: &str, unit: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = d.run(&Launch::command(check).user("root"))?;
        if out.code == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let state = d.run(
                &Launch::command(format!(
                    "systemctl --no-pager status {unit} 2>&1; journalctl -b --no-pager -n 30 2>&1"
                ))
                .user("root"),
            )?;
            bail!("{what} within 30 s: {out}\n{state}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------------------

fn gpu_libraries_in_run_opengl_driver() -> Result<()> {
    let units = sim::nixos::module_units()?;
    let out_path = unit(&units, "gpu.out")?;
    // The module's build script, run as a Nix build would run it, into a scratch `$out`.
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("features-gpu-{}", std::process::id()));
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)?;
    }
    let build = std::process::Command::new("sh")
        .args(["-eu", "-c", unit(&units, "gpu.build")?])
        .env("out", &scratch)
        .env("names", unit(&units, "gpu.names")?)
        .output()?;
    ensure!(
        build.status.success(),
        "the module's build script: {build:?}"
    );
    let mut opts = under_test::distro("features-gpu", Mode::Native);
    for sub in ["lib", "bin"] {
        for entry in std::fs::read_dir(scratch.join(sub))? {
            let entry = entry?;
            let target = std::fs::read_link(entry.path())?;
            let name = entry.file_name();
            opts = opts.link(
                &format!("{out_path}/{sub}/{}", name.to_string_lossy()),
                &target.to_string_lossy(),
            );
        }
    }
    std::fs::remove_dir_all(&scratch)?;
    // What WSL mounts from the Windows driver (a machine without NVIDIA's optix).
    let opts = opts
        .file("/usr/lib/wsl/lib/libcuda.so.1.1", "fake CUDA driver\n")
        .link("/usr/lib/wsl/lib/libcuda.so.1", "libcuda.so.1.1")
        .file("/usr/lib/wsl/lib/libd3d12.so", "fake D3D12\n")
        .file("/usr/lib/wsl/lib/libdxcore.so", "fake DXCore\n")
        .file_mode(
            "/usr/lib/wsl/lib/nvidia-smi",
            "#!/bin/sh\necho 'NVIDIA-SMI stand-in'\n",
            0o755,
        )
        .file(
            "/etc/tmpfiles.d/graphics-driver.conf",
            unit(&units, "gpu.tmpfiles")?,
        );
    let d = Distro::start(opts)?;
    let out = d.run(&Launch::command(
        "cat /run/opengl-driver/lib/libcuda.so.1 /run/opengl-driver/lib/libd3d12.so \
         /run/opengl-driver/lib/libdxcore.so; /run/opengl-driver/bin/nvidia-smi; \
         test ! -e /run/opengl-driver/lib/libnvoptix.so.1 && echo 'no optix, no error'",
    ))?;
    ensure!(
        out.exit == Exit::Code(0)
            && out.out()
                == "fake CUDA driver\nfake D3D12\nfake DXCore\nNVIDIA-SMI stand-in\nno optix, no error\n",
        "{out}"
    );
    Ok(())
}

/// Stands in for wsl2-ssh-agent and the Windows agent behind it: records its arguments next
/// to the socket, then answers REQUEST_IDENTITIES (11) with one ed25519 key and anything else
/// with FAILURE (5).
const AGENT_STAND_IN: &str = r#"#!/usr/bin/python3
import os, socket, struct, sys, threading
sock = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--socket=")][0]
with open(os.path.join(os.path.dirname(sock), "bridge-argv"), "w") as f:
    f.write("\n".join(sys.argv[1:]) + "\n")
def s(b): return struct.pack(">I", len(b)) + b
key = s(b"ssh-ed25519") + s(bytes(range(32)))
answer = b"\x0c" + struct.pack(">I", 1) + s(key) + s(b"windows-agent-stand-in")
try:
    os.unlink(sock)
except FileNotFoundError:
    pass
server = socket.socket(socket.AF_UNIX)
server.bind(sock)
server.listen(8)
def serve(c):
    with c:
        while True:
            head = c.recv(4, socket.MSG_WAITALL)
            if len(head) < 4:
                return
            msg = c.recv(struct.unpack(">I", head)[0], socket.MSG_WAITALL)
            reply = answer if msg[:1] == b"\x0b" else b"\x05"
            c.sendall(struct.pack(">I", len(reply)) + reply)
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"#;

fn ssh_agent_in_every_session(mode: Mode) -> Result<()> {
    let units = sim::nixos::module_units()?;
    let text = unit(&units, "ssh.unit")?;
    let mut opts = under_test::distro(&format!("features-ssh-{mode:?}"), mode);
    opts = store_programs(opts, text, &[("wsl2-ssh-agent", AGENT_STAND_IN)]);
    opts = install_unit(
        opts,
        "/etc/systemd/user",
        "wsl2-ssh-agent.service",
        text,
        unit(&units, "ssh.wantedBy")?,
    );
    // The rootfs' stand-in /etc/set-environment, with the module's lines added as
    // environment.extraInit adds them.
    let base = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/rootfs/files/etc/set-environment"),
    )?;
    opts = opts.file(
        "/etc/set-environment",
        format!("{base}{}", unit(&units, "ssh.extraInit")?),
    );
    let d = Distro::start(opts)?;
    let socket = "/home/nixos/.ssh/wsl2-ssh-agent.sock";
    wait_for(
        &d,
        "the bridge's socket",
        &format!("test -S {socket}"),
        "user@1000.service",
    )?;

    let argv = d.read_file("/home/nixos/.ssh/bridge-argv")?;
    ensure!(
        String::from_utf8_lossy(&argv)
            == format!(
                "--foreground\n--socket={socket}\n\
                 --powershell-path=/mnt/c/Windows/System32/WindowsPowerShell/v1.0/powershell.exe\n"
            ),
        "the bridge's arguments: {}",
        String::from_utf8_lossy(&argv)
    );
    let check = "id -un; echo \"$SSH_AUTH_SOCK\"; ssh-add -l";
    for launch in [Launch::command(check), Launch::login_command(check)] {
        let out = d.run(&launch)?;
        ensure!(
            out.exit == Exit::Code(0)
                && out
                    .out()
                    .starts_with(&format!("nixos\n{socket}\n256 SHA256:"))
                && out.out().ends_with(" windows-agent-stand-in (ED25519)\n"),
            "{:?}: {out}",
            launch.form
        );
    }
    // An agent forwarded into the session (ssh -A, or WSLENV) wins.
    let out = d.run(
        &Launch::command("echo \"$SSH_AUTH_SOCK\"").wslenv("SSH_AUTH_SOCK", "/tmp/forwarded"),
    )?;
    ensure!(out.out() == "/tmp/forwarded\n", "{out}");
    Ok(())
}

/// Stands in for Windows' wsl.exe behind WSL's interop: records its arguments, runs the
/// `--exec` command as WSL would in the distribution, and records being stopped.
const WSL_EXE_STAND_IN: &str = r#"#!/bin/sh
log=/var/log/fake-wsl-exe.log
echo "started: $*" >> "$log"
while [ "$#" -gt 0 ] && [ "$1" != --exec ]; do shift; done
shift
"$@" &
child=$!
trap 'echo stopped >> "$log"; kill "$child"; exit 0' TERM
wait "$child"
"#;

/// Boots `opts` with the stand-in wsl.exe on the Windows drive (the simulator's stand-in for
/// the 9p mount at /mnt/c).
fn with_wsl_exe(opts: DistroOptions) -> Result<Distro> {
    let d = Distro::new(opts)?;
    let wsl_exe = d.state_dir().join("c/Windows/System32/wsl.exe");
    std::fs::create_dir_all(wsl_exe.parent().context("wsl.exe's directory")?)?;
    std::fs::write(&wsl_exe, WSL_EXE_STAND_IN)?;
    std::fs::set_permissions(
        &wsl_exe,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    d.boot()?;
    Ok(d)
}

/// `wsl.keepAlive = [ "work.service" ]`: nothing held at boot; held while work.service runs;
/// released when it stops.
fn keep_alive_with_a_unit_holds_only_while_it_runs() -> Result<()> {
    let units = sim::nixos::module_units()?;
    let text = unit(&units, "keep-alive-work.unit")?;
    let mut opts = store_programs(
        under_test::distro("features-keep-alive-unit", Mode::Native),
        text,
        &[],
    )
    .file(
        "/etc/systemd/system/work.service",
        "[Service]\nExecStart=/bin/sleep infinity\n",
    );
    opts = install_unit(
        opts,
        "/etc/systemd/system",
        "nixos-wsl-keep-alive-work.service",
        text,
        unit(&units, "keep-alive-work.wantedBy")?,
    );
    let d = with_wsl_exe(opts)?;
    let log = "/var/log/fake-wsl-exe.log";
    std::thread::sleep(Duration::from_secs(2));
    let root = |cmd: &str| d.run(&Launch::command(cmd).user("root"));
    let out = root(&format!(
        "cat {log} 2>/dev/null; systemctl is-active nixos-wsl-keep-alive-work"
    ))?;
    ensure!(
        out.out() == "inactive\n",
        "held at boot though work.service is not running: {out}"
    );
    root("systemctl start work.service")?.ok()?;
    wait_for(
        &d,
        "held once work.service runs",
        &format!(
            "systemctl is-active --quiet nixos-wsl-keep-alive-work && grep -q '^started: -d NixOS --exec ' {log}"
        ),
        "nixos-wsl-keep-alive-work.service",
    )?;
    root("systemctl stop work.service")?.ok()?;
    wait_for(
        &d,
        "released once work.service stopped",
        &format!(
            "! systemctl is-active --quiet nixos-wsl-keep-alive-work && grep -qx stopped {log}"
        ),
        "nixos-wsl-keep-alive-work.service",
    )?;
    Ok(())
}

fn keep_alive_holds_wsl_exe_until_poweroff() -> Result<()> {
    let units = sim::nixos::module_units()?;
    let text = unit(&units, "keep-alive.unit")?;
    let mut opts = store_programs(
        under_test::distro("features-keep-alive", Mode::Native),
        text,
        &[],
    );
    opts = install_unit(
        opts,
        "/etc/systemd/system",
        "nixos-wsl-keep-alive.service",
        text,
        unit(&units, "keep-alive.wantedBy")?,
    );
    let d = with_wsl_exe(opts)?;
    wait_for(
        &d,
        "the keep-alive unit running sleep through wsl.exe",
        "systemctl is-active --quiet nixos-wsl-keep-alive && pgrep -x sleep >/dev/null",
        "nixos-wsl-keep-alive.service",
    )?;
    let log = String::from_utf8(d.read_file("/var/log/fake-wsl-exe.log")?)?;
    ensure!(
        log.starts_with("started: -d NixOS --exec /nix/store/")
            && log.ends_with("/bin/sleep infinity\n"),
        "{log}"
    );

    let _ = d.run(&Launch::command("sudo systemctl poweroff").timeout(Duration::from_secs(60)));
    let deadline = Instant::now() + Duration::from_secs(60);
    while d.is_running() {
        ensure!(Instant::now() < deadline, "no poweroff within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    d.terminate()?;
    d.boot()?;
    let log = String::from_utf8(d.read_file("/var/log/fake-wsl-exe.log")?)?;
    let lines: Vec<&str> = log.lines().collect();
    ensure!(
        lines.len() == 3 && lines[1] == "stopped" && lines[2].starts_with("started: "),
        "stopped by the poweroff, started again by the next boot: {log}"
    );
    Ok(())
}

/// Stands in for the usbip tool talking to usbipd-win: `attach` records the call and marks the
/// device attached (a file per bus ID), `port` lists attached devices as usbip prints them.
const USBIP_STAND_IN: &str = r#"#!/bin/sh
state=/var/lib/fake-usbipd
mkdir -p "$state"
case "$1" in
port)
    echo "Imported USB devices"
    echo "===================="
    for f in "$state"/attached-*; do
        [ -e "$f" ] || continue
        echo "Port 00: <Port in Use> at High Speed(480Mbps)"
        echo "       1-1 -> usbip://$(cat "$f")"
    done ;;
attach)
    echo "$*" >> "$state/calls"
    host=${2#--remote=}; busid=${3#--busid=}
    echo "$host:3240/$busid" > "$state/attached-$busid" ;;
*) exit 1 ;;
esac
"#;

/// Stands in for iproute2 in WSL's NAT network: the Windows host is the default gateway.
const IP_STAND_IN: &str = "#!/bin/sh\n\
    [ \"$*\" = '-4 route show default' ] || exit 1\n\
    echo 'default via 172.20.144.1 dev eth0 proto kernel'\n";

fn usbip_attaches_at_boot_and_again_when_the_device_returns() -> Result<()> {
    let units = sim::nixos::module_units()?;
    // The template unit as NixOS writes it: ExecStart is the job script with the scriptArgs,
    // PATH holds the unit's `path` (here: the stand-ins, then Debian's coreutils and grep).
    let script = format!("#!/bin/sh\n{}", unit(&units, "usbip.script")?);
    let service = format!(
        "[Unit]\nDescription=Attach the USB device %i from Windows (usbipd-win)\n\
         [Service]\nEnvironment=PATH=/opt/usbip-stand-in:/usr/bin:/bin\n\
         ExecStart=/opt/nixos-wsl-usbip-attach-start {}\nRestart={}\n",
        unit(&units, "usbip.scriptArgs")?,
        unit(&units, "usbip.restart")?,
    );
    let mut opts = under_test::distro("features-usbip", Mode::Native)
        .file_mode("/opt/nixos-wsl-usbip-attach-start", script, 0o755)
        .file_mode("/opt/usbip-stand-in/usbip", USBIP_STAND_IN, 0o755)
        .file_mode("/opt/usbip-stand-in/ip", IP_STAND_IN, 0o755)
        .file(
            "/etc/systemd/system/nixos-wsl-usbip-attach@.service",
            service,
        );
    for wanted in unit(&units, "usbip.wants")?.split_whitespace() {
        opts = opts.link(
            &format!("/etc/systemd/system/multi-user.target.wants/{wanted}"),
            "../nixos-wsl-usbip-attach@.service",
        );
    }
    let d = Distro::start(opts)?;
    let calls = "/var/lib/fake-usbipd/calls";
    let attach = "attach --remote=172.20.144.1 --busid=4-1";
    wait_for(
        &d,
        "the device attached at boot",
        &format!("grep -qx -- '{attach}' {calls}"),
        "nixos-wsl-usbip-attach@4-1.service",
    )?;
    // Attached: the loop only looks (every 5 s), it does not attach again.
    std::thread::sleep(Duration::from_secs(6));
    let out = d.run(&Launch::command(format!("cat {calls}")).user("root"))?;
    ensure!(out.out() == format!("{attach}\n"), "while attached: {out}");
    // Detached on Windows (or unplugged): attached again.
    d.run(&Launch::command("rm /var/lib/fake-usbipd/attached-4-1").user("root"))?
        .ok()?;
    wait_for(
        &d,
        "the device attached again after it was detached",
        &format!("[ \"$(grep -cx -- '{attach}' {calls})\" = 2 ]"),
        "nixos-wsl-usbip-attach@4-1.service",
    )?;
    Ok(())
}
