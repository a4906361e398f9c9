// A deterministic archive of one directory and one file with a long (PAX) path, through the
// `tar` crate's Builder, every header field set.
use std::io::Write;
fn main() {
    let out = std::io::stdout().lock();
    let mut b = tar::Builder::new(out);
    b.mode(tar::HeaderMode::Deterministic);
    let long = format!("nix/store/{}/file", "x".repeat(120));
    b.append_pax_extensions([("path", long.as_bytes())]).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_path("placeholder").unwrap();
    h.set_size(5);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1);
    h.set_cksum();
    b.append(&h, &b"hello"[..]).unwrap();
    b.into_inner().unwrap().flush().unwrap();
}
