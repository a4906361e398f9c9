// The same program's frame without an archive writer: the baseline for tar_crate's size.
use std::io::Write;
fn main() {
    let long = format!("nix/store/{}/file", "x".repeat(120));
    let mut out = std::io::stdout().lock();
    out.write_all(long.as_bytes()).unwrap();
    out.write_all(b"hello").unwrap();
    out.flush().unwrap();
}
