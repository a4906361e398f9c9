// The same reads through the procfs crate.
use std::os::unix::fs::MetadataExt;
fn main() {
    let ino = std::fs::metadata("/proc/self/ns/pid").map(|m| m.ino()).unwrap_or(0);
    let me = procfs::process::Process::myself().ok();
    let status = me.as_ref().and_then(|p| p.status().ok());
    let nspid = status.as_ref().and_then(|s| s.nspid.clone()).unwrap_or_default();
    let state = status.as_ref().map(|s| s.state.clone()).unwrap_or_default();
    let name = status.as_ref().map(|s| s.name.clone()).unwrap_or_default();
    let exe = procfs::process::Process::new(1).ok().and_then(|p| p.exe().ok());
    if std::env::var_os("PRINT").is_some() { println!("{ino} {nspid:?} {state} {name} {exe:?}"); }
}
