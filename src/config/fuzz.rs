//! The config parser never panics, and whatever it returns is a valid configuration: a
//! seeded fuzzer over inputs built from the parser's own keys, values and separators, mixed
//! with random bytes. `NIXOS_WSL_FUZZ_INPUTS` (default 1,000,000) and `NIXOS_WSL_FUZZ_SEED`
//! reproduce a run.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use super::Config;

#[test]
fn config_parser_one_million_inputs() {
    if let Err(e) = fuzz() {
        panic!("{e:#}");
    }
}

/// xorshift64*: small, fast, reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a [u8]]) -> &'a [u8] {
        items[self.below(items.len())]
    }
    fn bytes(&mut self, out: &mut Vec<u8>, max: usize) {
        for _ in 0..self.below(max + 1) {
            out.push(self.next() as u8);
        }
    }
}

const KEYS: &[&[u8]] = &[
    b"user",
    b"systemd",
    b"activate",
    b"timeout",
    b"shell",
    b"include_path",
    b"USER",
    b"user ",
    b"",
    b"#user",
    b"us\xffer",
    b"x",
];
const SEPARATORS: &[&[u8]] = &[b"=", b" = ", b"==", b" ", b"", b"= =", b"\t=\t", b"=\r"];
const VALUES: &[&[u8]] = &[
    b"",
    b"0",
    b"1",
    b"60",
    b"86400",
    b"86401",
    b"18446744073709551615",
    b"18446744073709551616",
    b"-1",
    b"+5",
    b"1e3",
    b"0x10",
    b" 5 ",
    b"nixos",
    b"a:b",
    b"-x",
    b".",
    b"..",
    b"a/b",
    b"\xc3\xa9",
    b"\xe2\x80\xae",
    b"/",
    b"/a b",
    b"relative",
    b"/nix/\x00x",
    b"//",
    b"true",
    b"false",
    b"yes",
    b"0",
    b"TRUE",
    b"\xff\xfe",
    b"#",
    b"= x",
    b"\\",
    b"\xf0\x9f\x98\x80",
];
const SPACE: &[&[u8]] = &[
    b"",
    b" ",
    b"\t",
    b"\r",
    b"\x0b",
    b"\x0c",
    b"\xc2\xa0",
    b"\xef\xbb\xbf",
];

fn random_config(r: &mut Rng, out: &mut Vec<u8>) {
    out.clear();
    if r.below(10) == 0 {
        r.bytes(out, 256);
        return;
    }
    for _ in 0..r.below(7) {
        out.extend_from_slice(r.pick(SPACE));
        if r.below(10) == 0 {
            out.push(b'#');
        }
        match r.below(20) {
            0 => r.bytes(out, 12),
            _ => out.extend_from_slice(r.pick(KEYS)),
        }
        out.extend_from_slice(r.pick(SEPARATORS));
        match r.below(8) {
            0 => r.bytes(out, 40),
            1 => out.extend(std::iter::repeat(b'a').take(r.below(400))),
            _ => out.extend_from_slice(r.pick(VALUES)),
        }
        out.extend_from_slice(r.pick(SPACE));
        out.extend_from_slice(if r.below(6) == 0 { b"\r\n" } else { b"\n" });
    }
    if r.below(3) == 0 {
        out.pop();
    }
}

/// What any configuration the parser returns must satisfy.
fn check_config(input: &[u8], c: &Config, warnings: &[String]) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let lines = input.split(|&b| b == b'\n').count();
    ensure!(
        warnings.len() <= lines,
        "{} warnings for {lines} lines",
        warnings.len()
    );
    for w in warnings {
        let n: usize = w
            .strip_prefix("fuzz:")
            .and_then(|r| r.split(':').next())
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("warning without a line number: {w:?}"))?;
        ensure!(
            (1..=lines).contains(&n),
            "warning names line {n} of {lines}"
        );
        ensure!(!w.contains('\n'), "multi-line warning {w:?}");
    }
    ensure!(
        (1..=86_400).contains(&c.timeout.as_secs()),
        "timeout {:?}",
        c.timeout
    );
    ensure!(
        !c.user.is_empty()
            && c.user.len() <= 256
            && !c.user.starts_with('-')
            && c.user
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b":/,\\".contains(&b)),
        "user {:?}",
        c.user
    );
    let paths = [Some(&c.systemd), c.activate.as_ref(), c.shell.as_ref()];
    for p in paths.into_iter().flatten() {
        ensure!(
            p.is_absolute() && !p.as_os_str().as_bytes().contains(&0),
            "path {p:?}"
        );
    }
    Ok(())
}

fn fuzz() -> Result<()> {
    let count: u64 = std::env::var("NIXOS_WSL_FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let seed: u64 = std::env::var("NIXOS_WSL_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x6e69_786f_732d_7773);
    let mut r = Rng(seed | 1);
    let mut input = Vec::new();
    let started = Instant::now();
    let (mut warned, mut changed, mut bytes) = (0u64, 0u64, 0u64);
    for i in 0..count {
        random_config(&mut r, &mut input);
        bytes += input.len() as u64;
        let parsed = std::panic::catch_unwind(|| Config::parse(&input, "fuzz"));
        let show = || {
            format!(
                "input #{i} (seed {seed}): {:?}",
                String::from_utf8_lossy(&input)
            )
        };
        let Ok((config, warnings)) = parsed else {
            bail!("Config::parse panicked on {}", show());
        };
        check_config(&input, &config, &warnings).with_context(show)?;
        if i % 16 == 0 {
            ensure!(
                Config::parse(&input, "fuzz") == (config.clone(), warnings.clone()),
                "not deterministic on {}",
                show()
            );
        }
        warned += !warnings.is_empty() as u64;
        changed += (config != Config::default()) as u64;
        ensure!(
            started.elapsed() < Duration::from_secs(600),
            "the fuzzer exceeded 600 s after {i} inputs"
        );
    }
    eprintln!(
        "  {count} inputs ({bytes} bytes; {warned} with warnings, {changed} changing a setting) through Config::parse in {:.1?}, seed {seed}",
        started.elapsed()
    );
    Ok(())
}
