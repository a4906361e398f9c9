//! `nixos-wsl-tarball-bench` (README "Performance", row 6): the installer's extraction
//! against `tar -xzf` on the same tarball, in the static build. Not part of the shipped
//! programs: built only with the `bench` feature (`scripts/bench`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::installer::extract::{open_dir, Extractor, Owners};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Extracts `tarball` into a fresh directory with our extractor (what the installer does after
/// its checksum) and with `tar -xzf`, `runs` times each, alternating; prints the medians.
pub fn bench(tarball: &std::path::Path, work_dir: Option<PathBuf>, runs: u32) -> Result<()> {
    let base = work_dir
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("nixos-wsl-bench-{}", std::process::id()));
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let size = std::fs::metadata(tarball)
        .with_context(|| format!("examining {}", tarball.display()))?
        .len();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let mut unpacked = 0;
    let result = (|| -> Result<()> {
        for run in 0..runs {
            let a = base.join(format!("ours-{run}"));
            let b = base.join(format!("tar-{run}"));
            std::fs::create_dir(&a)?;
            std::fs::create_dir(&b)?;
            let t = Instant::now();
            let file = std::fs::File::open(tarball)?;
            let mut reader =
                crate::tar::reader::Reader::new(crate::tar::decompress::open_threaded(file)?);
            let mut x = Extractor::new(open_dir(&a)?, Owners::default_for_euid())?;
            x.extract_all(&mut reader, &mut |_| {}, &mut |_| true)?;
            x.finish()?;
            ours.push(t.elapsed());
            unpacked = reader.offset();

            let t = Instant::now();
            let status = std::process::Command::new("tar")
                .arg("-xzf")
                .arg(tarball)
                .arg("-C")
                .arg(&b)
                .status()
                .context("running tar")?;
            if !status.success() {
                bail!("tar -xzf failed: {status}");
            }
            theirs.push(t.elapsed());
            std::fs::remove_dir_all(&a)?;
            std::fs::remove_dir_all(&b)?;
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&base);
    result?;
    let t = Instant::now();
    let (_, _) = super::image::sha256_file(tarball)?;
    let hash = t.elapsed();
    let (o, g) = (median(ours), median(theirs));
    let mbps = |d: Duration| unpacked as f64 / 1e6 / d.as_secs_f64();
    println!(
        "tarball: {} ({:.1} MB compressed, {:.1} MB unpacked), {runs} run(s), medians:",
        tarball.display(),
        size as f64 / 1e6,
        unpacked as f64 / 1e6
    );
    println!(
        "  nixos-wsl-installer extraction: {:.3} s ({:.1} MB/s)",
        o.as_secs_f64(),
        mbps(o)
    );
    println!(
        "  tar -xzf:                       {:.3} s ({:.1} MB/s)",
        g.as_secs_f64(),
        mbps(g)
    );
    println!(
        "  throughput ratio (installer / tar): {:.2}",
        g.as_secs_f64() / o.as_secs_f64()
    );
    println!(
        "  installer's SHA-256 check beforehand: {:.3} s",
        hash.as_secs_f64()
    );
    Ok(())
}
