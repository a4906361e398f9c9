//! Benchmarks of `nixos-wsl-shell` in the WSL simulator (issue 6): what the login shell costs
//! on every launch, measured against the physical floor, plus cold boots, concurrent first
//! launches, footprint and the installer's extraction throughput.
//!
//! A benchmark, not a test: no thresholds, no pass/fail (it fails only if it cannot measure).
//! It prints a Markdown table on stdout (README's "Performance" section is a copy of it) and
//! progress on stderr. Run it as root through `scripts/bench`, which builds the static release
//! binaries first and passes them with `--bin-dir`.
//!
//! Method: every comparison runs its variants side by side in the same run, interleaved (the
//! order alternates, ABBA-style) so drift (CPU frequency, page cache, other load) hits both
//! alike; each row gives the median and the p10–p90 spread over many repetitions, and
//! differences are taken per adjacent pair, not between two unrelated medians.
//!
//! The floor is the same distro with root's login shell = `/bin/bash`: what plain WSL does
//! (one exec of the user's shell). Both distros share the simulator's own launch cost (a
//! re-exec of this binary that joins the distro's namespaces, like WSL's init), so their
//! difference is the login shell's cost; the in-distro loops of rows 1b–1d remove that cost.
//! Besides wall time, launches report CPU time (the distro's cgroup `cpu.stat`, or bash's
//! `times` in the loops), which other load on the machine disturbs far less.
//!
//! Options (after `cargo bench --bench launch --`): `--bin-dir DIR` (the release binaries;
//! default: the ones cargo built for this benchmark), `--quick` (few repetitions, to check the
//! plumbing), `--warm N`, `--inner N`, `--cold N`, `--concurrent N`, `--concurrent-rounds N`,
//! `--tarball-runs N` (0 skips the installer row). The defaults take about a minute.

// Uses a part of the simulator; the e2e test binary uses all of it and reports its dead code.
#[allow(dead_code, unused_imports)]
#[path = "../tests/sim/mod.rs"]
mod sim;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};

use sim::{Distro, DistroOptions, Launch, Output, RootShell};

fn main() {
    if let Some(code) = sim::role_main() {
        std::process::exit(code);
    }
    match run() {
        Ok(()) => {}
        Err(e) => {
            eprintln!("bench launch: {e:#}");
            std::process::exit(1);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Options.

/// Repetition counts and the binaries under measurement.
#[derive(Debug, Clone)]
struct Opts {
    shell_bin: PathBuf,
    cli_bin: PathBuf,
    /// The installer-extraction benchmark (`--features bench`).
    tarball_bench_bin: PathBuf,
    /// `/sbin/init` of WSL's systemd mode.
    init_bin: PathBuf,
    /// Interleaved pairs of `wsl -- true` (shell, floor).
    warm: usize,
    /// Runs of each variant of the in-distro loops (rows 1b–1d).
    inner: usize,
    /// Cold boots with one first launch each.
    cold: usize,
    /// Simultaneous first launches per concurrent round.
    concurrent: usize,
    /// Concurrent rounds (interleaved with the single cold launches).
    concurrent_rounds: usize,
    /// Installer-vs-tar extraction pairs (0: skip).
    tarball_runs: usize,
}

impl Opts {
    fn parse() -> Result<Opts> {
        let mut o = Opts {
            shell_bin: PathBuf::from(env!("CARGO_BIN_EXE_nixos-wsl-shell")),
            cli_bin: PathBuf::from(env!("CARGO_BIN_EXE_nixos-wsl")),
            tarball_bench_bin: PathBuf::from(env!("CARGO_BIN_EXE_nixos-wsl-tarball-bench")),
            init_bin: PathBuf::from(env!("CARGO_BIN_EXE_nixos-wsl-init")),
            warm: 1000,
            inner: 600,
            cold: 15,
            concurrent: 20,
            concurrent_rounds: 5,
            tarball_runs: 7,
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut num = |name: &str| -> Result<usize> {
                args.next()
                    .and_then(|v| v.parse().ok())
                    .with_context(|| format!("{name} needs a number"))
            };
            match a.as_str() {
                // cargo bench passes --bench; libtest-style filters make no sense here.
                "--bench" => {}
                "--quick" => {
                    (o.warm, o.inner, o.cold, o.concurrent_rounds, o.tarball_runs) =
                        (20, 30, 2, 1, 1)
                }
                "--warm" => o.warm = num(&a)?.max(1),
                "--inner" => o.inner = num(&a)?.max(1),
                "--cold" => o.cold = num(&a)?.max(1),
                "--concurrent" => o.concurrent = num(&a)?.max(1),
                "--concurrent-rounds" => o.concurrent_rounds = num(&a)?.max(1),
                "--tarball-runs" => o.tarball_runs = num(&a)?,
                "--bin-dir" => {
                    let dir = PathBuf::from(args.next().context("--bin-dir needs a directory")?);
                    o.shell_bin = dir.join("nixos-wsl-shell");
                    o.cli_bin = dir.join("nixos-wsl");
                    o.tarball_bench_bin = dir.join("nixos-wsl-tarball-bench");
                    o.init_bin = dir.join("nixos-wsl-init");
                }
                other => {
                    bail!("unknown option {other:?} (see the doc comment of benches/launch.rs)")
                }
            }
        }
        Ok(o)
    }
}

// ---------------------------------------------------------------------------------------
// Statistics and the table.

/// Median and spread of a sample, in milliseconds.
#[derive(Debug, Clone, Copy)]
struct Summary {
    p10: f64,
    median: f64,
    p90: f64,
    n: usize,
}

/// Linear-interpolated quantile of a sorted sample.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn summarize(sample: &[f64]) -> Summary {
    let mut s = sample.to_vec();
    s.sort_by(f64::total_cmp);
    Summary {
        p10: quantile(&s, 0.1),
        median: quantile(&s, 0.5),
        p90: quantile(&s, 0.9),
        n: s.len(),
    }
}

/// Milliseconds with a precision that suits their size.
fn ms(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ms ({}–{})",
            ms(self.median),
            ms(self.p10),
            ms(self.p90)
        )
    }
}

/// One line of the results table.
struct Row {
    id: &'static str,
    what: String,
    ours: String,
    floor: String,
    diff: String,
    ratio: String,
    target: &'static str,
}

impl Row {
    fn new(id: &'static str, what: impl Into<String>, target: &'static str) -> Row {
        Row {
            id,
            what: what.into(),
            ours: String::new(),
            floor: String::new(),
            diff: String::new(),
            ratio: String::new(),
            target,
        }
    }
    fn ours(mut self, s: impl Into<String>) -> Row {
        self.ours = s.into();
        self
    }
    fn floor(mut self, s: impl Into<String>) -> Row {
        self.floor = s.into();
        self
    }
    fn diff(mut self, s: impl Into<String>) -> Row {
        self.diff = s.into();
        self
    }
    fn ratio(mut self, s: impl Into<String>) -> Row {
        self.ratio = s.into();
        self
    }
}

/// Interleaved paired samples of two variants: ours and the floor.
fn paired_rows(ours: &[f64], floor: &[f64]) -> (Summary, Summary, Summary, f64) {
    let diffs: Vec<f64> = ours.iter().zip(floor).map(|(a, b)| a - b).collect();
    let (a, b) = (summarize(ours), summarize(floor));
    (a, b, summarize(&diffs), a.median / b.median)
}

fn progress(msg: impl AsRef<str>) {
    eprintln!("bench launch: {}", msg.as_ref());
}

// ---------------------------------------------------------------------------------------
// The run.

fn run() -> Result<()> {
    let opts = Opts::parse()?;
    ensure!(
        nix::unistd::geteuid().is_root(),
        "the simulator needs root (namespaces, mounts, cgroups): run `sudo scripts/bench`"
    );
    for bin in [&opts.shell_bin, &opts.cli_bin, &opts.init_bin] {
        ensure!(
            bin.is_file(),
            "{} does not exist (build it first)",
            bin.display()
        );
    }
    let started = Instant::now();
    let load_before = loadavg();
    let nproc = std::thread::available_parallelism().map_or(1, |n| n.get());
    if load_before
        .parse::<f64>()
        .is_ok_and(|l| l > nproc as f64 / 2.0)
    {
        progress(format!(
            "the machine is busy (load average {load_before} on {nproc} CPUs): wall times will \
             be inflated and spread out, CPU times much less so"
        ));
    }
    let mut rows = Vec::new();

    progress("booting the two warm distros (nixos-wsl-shell and the /bin/bash floor)");
    let ours = Distro::start(DistroOptions::new(
        "NixOS",
        RootShell::NixosWslShell(opts.shell_bin.clone()),
    ))?;
    let floor = Distro::start(DistroOptions::new(
        "Floor",
        RootShell::Existing("/bin/bash".into()),
    ))?;
    // The first launch starts systemd; every later one is warm.
    ok(ours.run(&Launch::command(
        "systemctl is-system-running --wait >/dev/null; true",
    ))?)?;
    let systemd_version = ours
        .run(&Launch::command("systemctl --version | head -n1"))?
        .out()
        .trim()
        .to_string();

    let floor_launch = warm(&opts, &ours, &floor, &mut rows)?;
    inner(&opts, &ours, &mut rows)?;
    footprint(&opts, &ours, &floor, &mut rows)?;
    drop((ours, floor));
    native(&opts, &mut rows)?;
    cold(&opts, floor_launch, &mut rows)?;
    binaries(&opts, &mut rows)?;
    if opts.tarball_runs > 0 {
        installer(&opts, &mut rows)?;
    }

    print!(
        "{}",
        machine(&systemd_version, &format!("{load_before} → {}", loadavg()))
    );
    println!();
    // Stable: rows of one id keep their order.
    rows.sort_by(|a, b| a.id.cmp(b.id));
    println!("| # | measurement | nixos-wsl-shell | floor | difference | ratio | target |");
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.id, r.what, r.ours, r.floor, r.diff, r.ratio, r.target
        );
    }
    println!();
    println!(
        "Times: median (p10–p90). Full run: {:.0} s.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Fails unless the launch exited 0 with an empty stderr.
fn ok(out: Output) -> Result<Output> {
    out.ok()?;
    Ok(out)
}

/// The line a first launch prints when systemd takes more than a second to boot (on a busy
/// machine): expected behaviour, not a failure.
const WAITING: &str = "nixos-wsl: waiting for systemd to finish booting...";

/// [`ok`] for first launches, which may print [`WAITING`]. Returns whether it did.
fn ok_first(out: Output) -> Result<bool> {
    let err = out.err();
    if out.code == 0 && err.trim() == WAITING {
        return Ok(true);
    }
    ok(out).map(|_| false)
}

/// The 1-minute load average: other work on the machine inflates wall times (less so the CPU
/// times), so the table says how busy it was.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// The machine, for the README.
fn machine(systemd_version: &str, load: &str) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU".into(), |(_, m)| m.trim().to_string());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or("?".into(), |kb| format!("{:.1} GiB", kb / 1048576.0));
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Machine: {nproc} CPUs ({model}), {mem} RAM, Linux {kernel}; load average during the \
         run {load}; simulated distro: Debian bookworm, {systemd_version}."
    );
    s
}

// ---------------------------------------------------------------------------------------
// 1. Warm launch.

/// CPU time (µs) every process of the distro used so far: its cgroup's `cpu.stat`. The
/// difference over one launch is that launch's CPU cost (launcher, login shell, user's
/// shell), which, unlike wall time, does not depend on how busy the machine's other CPUs are.
fn cgroup_cpu_us(d: &Distro) -> Result<u64> {
    let path = d.cgroup()?.join("cpu.stat");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no usage_usec in {}", path.display()))
}

/// `wsl -- true` through nixos-wsl-shell (systemd running) against root's shell = /bin/bash,
/// interleaved. Returns the floor's median (ms), the launch cost the cold rows subtract.
fn warm(opts: &Opts, ours: &Distro, floor: &Distro, rows: &mut Vec<Row>) -> Result<f64> {
    progress(format!("1. warm launches: {} interleaved pairs", opts.warm));
    let launch = Launch::command("true");
    // (wall ms, CPU ms) of one launch.
    let time = |d: &Distro| -> Result<(f64, f64)> {
        let before = cgroup_cpu_us(d)?;
        let out = ok(d.run(&launch)?)?;
        let cpu = cgroup_cpu_us(d)? - before;
        Ok((out.elapsed.as_secs_f64() * 1e3, cpu as f64 / 1e3))
    };
    for _ in 0..10 {
        time(ours)?;
        time(floor)?;
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..opts.warm {
        if i % 2 == 0 {
            a.push(time(ours)?);
            b.push(time(floor)?);
        } else {
            b.push(time(floor)?);
            a.push(time(ours)?);
        }
    }
    let wall = |v: &[(f64, f64)]| v.iter().map(|x| x.0).collect::<Vec<_>>();
    let cpu = |v: &[(f64, f64)]| v.iter().map(|x| x.1).collect::<Vec<_>>();
    let (sa, sb, sd, ratio) = paired_rows(&wall(&a), &wall(&b));
    rows.push(
        Row::new(
            "1",
            format!(
                "warm launch `wsl -- true` (systemd running), wall time, {} pairs",
                sa.n
            ),
            "< 1 ms added",
        )
        .ours(sa.to_string())
        .floor(format!("{sb} (root's shell = /bin/bash)"))
        .diff(sd.to_string())
        .ratio(format!("{ratio:.2}")),
    );
    let (sa, sb, sd, ratio) = paired_rows(&cpu(&a), &cpu(&b));
    rows.push(
        Row::new(
            "1",
            "…its CPU time (every process of the launch: the distro's cgroup)",
            "",
        )
        .ours(sa.to_string())
        .floor(sb.to_string())
        .diff(sd.to_string())
        .ratio(format!("{ratio:.2}")),
    );
    Ok(sb.median)
}

/// How many runs of one variant an in-distro block makes: its CPU time is read once per
/// block (bash's `times`, millisecond resolution), so a block must last some milliseconds.
const BLOCK: usize = 20;

/// The bash functions of the in-distro loops: `block V` runs variant V `BLOCK` times, printing
/// `w V <start> <end>` (`$EPOCHREALTIME`) per run, then `c V` and `times` (whose second line
/// is the CPU time of everything the block ran). `one V` is defined by the caller.
const BLOCK_FN: &str = r#"
block() {
  for ((k = 0; k < BLOCK; k++)); do
    a=$EPOCHREALTIME; one "$1" || echo "fail $1 $?" >&2; b=$EPOCHREALTIME
    echo "w $1 $a $b"
  done
  echo "c $1"; times
}
"#;

/// Per variant of an in-distro loop: wall time of every run, CPU time per run of every block
/// (ms).
struct LoopSamples {
    wall: Vec<Vec<f64>>,
    cpu: Vec<Vec<f64>>,
}

/// Runs `one`'s variants in rounds of blocks, the order rotating every round; returns per
/// variant the wall times and the CPU time per run (ms), one value per run resp. block.
fn in_distro_loop(
    d: &Distro,
    launch: impl Fn(String) -> Launch,
    one: &str,
    variants: usize,
    runs: usize,
) -> Result<LoopSamples> {
    let orders = if variants == 3 {
        "012 021 102 120 201 210"
    } else {
        "01 10"
    };
    let rounds = runs.div_ceil(BLOCK);
    let script = format!(
        r#"BLOCK={BLOCK}
S={shell}
{one}
{BLOCK_FN}
orders=({orders})
for v in {all}; do (block "$v") >/dev/null; done
for ((r = 0; r < {rounds}; r++)); do
  p=${{orders[r % ${{#orders[@]}}]}}
  for ((j = 0; j < ${{#p}}; j++)); do (block "${{p:j:1}}"); done
done
"#,
        shell = sim::distro::SHELL_PATH,
        all = (0..variants)
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(" "),
    );
    let out = ok(d.run(&launch(script).timeout(Duration::from_secs(600)))?)?;
    parse_loop(&out.out(), variants)
}

/// Parses [`BLOCK_FN`]'s output.
fn parse_loop(text: &str, variants: usize) -> Result<LoopSamples> {
    let micros = |s: &str| -> Result<i64> {
        let (sec, frac) = s
            .split_once(['.', ','])
            .with_context(|| format!("bad $EPOCHREALTIME {s:?}"))?;
        Ok(sec.parse::<i64>()? * 1_000_000 + frac.parse::<i64>()?)
    };
    // bash's `times`: `0m0.012s` (minutes, seconds with a decimal point or comma).
    let secs = |s: &str| -> Result<f64> {
        let (m, rest) = s
            .split_once('m')
            .with_context(|| format!("bad `times` value {s:?}"))?;
        let sec: f64 = rest.trim_end_matches('s').replace(',', ".").parse()?;
        Ok(m.parse::<f64>()? * 60.0 + sec)
    };
    let (mut wall, mut cpu) = (vec![Vec::new(); variants], vec![Vec::new(); variants]);
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let variant = |s: &str| -> Result<usize> {
            let v: usize = s.parse()?;
            ensure!(v < variants, "bad variant in {line:?}");
            Ok(v)
        };
        match f.as_slice() {
            ["w", v, a, b] => wall[variant(v)?].push((micros(b)? - micros(a)?) as f64 / 1e3),
            ["c", v] => {
                let _own = lines.next();
                let children = lines.next().unwrap_or("");
                let t: Vec<&str> = children.split_whitespace().collect();
                ensure!(t.len() == 2, "bad `times` output {children:?}");
                let total = secs(t[0])? + secs(t[1])?;
                cpu[variant(v)?].push(total * 1e3 / BLOCK as f64);
            }
            [] => {}
            _ => bail!("bad loop line {line:?}"),
        }
    }
    ensure!(!wall[0].is_empty(), "the loop printed nothing");
    Ok(LoopSamples { wall, cpu })
}

/// In-distro loops timed with bash's `$EPOCHREALTIME` (µs), which take the simulator's launch
/// cost out: the shell's own cost per invocation.
fn inner(opts: &Opts, ours: &Distro, rows: &mut Vec<Row>) -> Result<()> {
    progress(format!(
        "1b. the shell's own cost: {} runs of each of 3 variants in one launch",
        opts.inner
    ));
    // Outside the systemd namespace as root (`wsl -u root -e`), like WSL runs root's shell:
    // the full warm path (0), the same with NIXOS_WSL_SYSTEMD=off (1: config, session plan
    // and exec, no namespace join, fork or supervision), and bash itself (2).
    let one = r#"one() { case $1 in
  0) "$S" -c true ;;
  1) NIXOS_WSL_SYSTEMD=off "$S" -c true ;;
  2) /bin/bash -c true ;;
esac; }"#;
    let LoopSamples { wall, cpu } = in_distro_loop(
        ours,
        |script| {
            Launch::exec(["/bin/bash".to_string(), "-c".into(), script])
                .user("root")
                .cwd("/")
        },
        one,
        3,
        opts.inner,
    )?;
    let (sa, sb, sd, ratio) = paired_rows(&wall[0], &wall[2]);
    let cpu_ratio = summarize(&cpu[0]).median / summarize(&cpu[2]).median;
    rows.push(
        Row::new(
            "1b",
            format!(
                "the shell alone, in-distro loop: `nixos-wsl-shell -c true` as root outside \
                 the namespace (full warm path), {} runs",
                sa.n
            ),
            "",
        )
        .ours(format!("{sa}{}", cpu_cell_of(&cpu[0])))
        .floor(format!("`bash -c true` {sb}{}", cpu_cell_of(&cpu[2])))
        .diff(sd.to_string())
        .ratio(format!("{ratio:.2} (CPU {cpu_ratio:.2})")),
    );
    let (so, _, sdo, ratio) = paired_rows(&wall[1], &wall[2]);
    let cpu_ratio = summarize(&cpu[1]).median / summarize(&cpu[2]).median;
    rows.push(
        Row::new(
            "1c",
            "…the same with `NIXOS_WSL_SYSTEMD=off` (config, session plan, exec: no lock, \
             join, fork or supervision)",
            "",
        )
        .ours(format!("{so}{}", cpu_cell_of(&cpu[1])))
        .floor("the same `bash -c true`")
        .diff(sdo.to_string())
        .ratio(format!("{ratio:.2} (CPU {cpu_ratio:.2})")),
    );

    // Inside the namespace as the user: the "already inside" path (exec the real shell),
    // which is what WSL's own systemd mode and `sudo -i` run.
    progress(format!(
        "1d. the already-inside path: {} runs of each of 2 variants in one launch",
        opts.inner
    ));
    let one = r#"one() { if (($1 == 0)); then "$S" -c true; else /bin/bash -c true; fi; }"#;
    let LoopSamples { wall, cpu } = in_distro_loop(ours, Launch::command, one, 2, opts.inner)?;
    let (sa, sb, sd, ratio) = paired_rows(&wall[0], &wall[1]);
    let cpu_ratio = summarize(&cpu[0]).median / summarize(&cpu[1]).median;
    rows.push(
        Row::new(
            "1d",
            format!(
                "already inside (the path of WSL's systemd mode and `sudo -i`): \
                 `nixos-wsl-shell -c true` as the user in the namespace, {} runs",
                sa.n
            ),
            "",
        )
        .ours(format!("{sa}{}", cpu_cell_of(&cpu[0])))
        .floor(format!("`bash -c true` {sb}{}", cpu_cell_of(&cpu[1])))
        .diff(sd.to_string())
        .ratio(format!("{ratio:.2} (CPU {cpu_ratio:.2})")),
    );
    Ok(())
}

fn cpu_cell_of(sample: &[f64]) -> String {
    format!("; CPU {}", summarize(sample))
}

// ---------------------------------------------------------------------------------------
// 2. Native mode.

/// WSL's own systemd mode (`[boot] systemd=true`, tests/sim/native.rs): `/sbin/init` =
/// nixos-wsl-init, the default user's passwd shell = nixos-wsl-shell (which finds itself
/// inside systemd's namespace and execs bash), against the same mode with the user's shell =
/// /bin/bash. Both distros boot the same systemd; only the login shell differs.
fn native(opts: &Opts, rows: &mut Vec<Row>) -> Result<()> {
    progress(format!(
        "2. native mode: booting two distros, then {} interleaved pairs",
        opts.warm
    ));
    let mode = || sim::WslSystemd::new(&opts.init_bin);
    let ours = Distro::start(
        DistroOptions::new(
            "NativeNixOS",
            RootShell::NixosWslShell(opts.shell_bin.clone()),
        )
        .wsl_systemd(mode()),
    )?;
    let floor = Distro::start(
        DistroOptions::new("NativeFloor", RootShell::Existing("/bin/bash".into()))
            .wsl_systemd(mode()),
    )?;
    let launch = Launch::command("true");
    let time = |d: &Distro| -> Result<(f64, f64)> {
        let before = cgroup_cpu_us(d)?;
        let out = ok(d.run(&launch)?)?;
        let cpu = cgroup_cpu_us(d)? - before;
        Ok((out.elapsed.as_secs_f64() * 1e3, cpu as f64 / 1e3))
    };
    // The first launch of each runs WSL's `login -f` and waits for the user's manager.
    for _ in 0..10 {
        time(&ours)?;
        time(&floor)?;
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..opts.warm {
        if i % 2 == 0 {
            a.push(time(&ours)?);
            b.push(time(&floor)?);
        } else {
            b.push(time(&floor)?);
            a.push(time(&ours)?);
        }
    }
    let wall = |v: &[(f64, f64)]| v.iter().map(|x| x.0).collect::<Vec<_>>();
    let cpu = |v: &[(f64, f64)]| v.iter().map(|x| x.1).collect::<Vec<_>>();
    let (sa, sb, sd, ratio) = paired_rows(&wall(&a), &wall(&b));
    rows.push(
        Row::new(
            "2",
            format!(
                "native mode (WSL's systemd mode) `wsl -- true` as the default user, wall \
                 time, {} pairs",
                sa.n
            ),
            "within noise of the direct shell",
        )
        .ours(sa.to_string())
        .floor(format!("{sb} (the user's shell = /bin/bash)"))
        .diff(sd.to_string())
        .ratio(format!("{ratio:.2}")),
    );
    let (sa, sb, sd, ratio) = paired_rows(&cpu(&a), &cpu(&b));
    rows.push(
        Row::new("2", "…its CPU time (the distro's cgroup)", "")
            .ours(sa.to_string())
            .floor(sb.to_string())
            .diff(sd.to_string())
            .ratio(format!("{ratio:.2}")),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 5. Footprint (here because it uses the warm distros).

/// `/proc/<pid>/status` fields in kB or counts.
fn status_field(pid: i32, field: &str) -> Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// Peak RSS (kB) and threads of the launched process while its child (the user's shell) runs.
fn probe(d: &Distro) -> Result<(u64, u64, u64)> {
    let p = d.spawn(&Launch::command("echo ready; exec sleep 0.2"))?;
    p.wait_for_stdout("ready", Duration::from_secs(60))?;
    let hwm = status_field(p.pid, "VmHWM")?;
    let rss = status_field(p.pid, "VmRSS")?;
    let threads = status_field(p.pid, "Threads")?;
    ok(p.wait()?)?;
    Ok((hwm, rss, threads))
}

fn footprint(opts: &Opts, ours: &Distro, floor: &Distro, rows: &mut Vec<Row>) -> Result<()> {
    let _ = opts;
    progress("5. footprint of the supervising parent (warm launches)");
    let (mut hwm, mut rss, mut threads, mut bash_hwm) = (Vec::new(), Vec::new(), 0, Vec::new());
    for _ in 0..5 {
        let (h, r, t) = probe(ours)?;
        hwm.push(h as f64);
        rss.push(r as f64);
        threads = threads.max(t);
        // On the floor the launched process is the user's shell itself (no parent of ours).
        bash_hwm.push(probe(floor)?.0 as f64);
    }
    let kib = |v: &[f64]| summarize(v).median;
    rows.push(
        Row::new(
            "5a",
            "peak RSS (VmHWM) of the supervising parent while the user's shell runs, warm",
            "< 1 MiB",
        )
        .ours(format!("{:.0} KiB (VmRSS {:.0} KiB)", kib(&hwm), kib(&rss)))
        .floor(format!(
            "no parent; for scale, the shell (bash) itself: {:.0} KiB",
            kib(&bash_hwm)
        )),
    );
    rows.push(
        Row::new("5b", "threads of the supervising parent", "1")
            .ours(threads.to_string())
            .floor("–"),
    );
    Ok(())
}

/// Sizes of the static binaries, and whether they are static and stripped.
fn binaries(opts: &Opts, rows: &mut Vec<Row>) -> Result<()> {
    let dir = opts.shell_bin.parent().unwrap_or(Path::new("."));
    for (id, name, target) in [
        ("5d", "nixos-wsl-shell", "< 1 MiB stripped"),
        ("5e", "nixos-wsl-init", ""),
        ("5f", "nixos-wsl-installer", ""),
        ("5g", "nixos-wsl", ""),
    ] {
        let path = dir.join(name);
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let (is_static, stripped) = elf_facts(&bytes)?;
        rows.push(
            Row::new(id, format!("binary size: `{name}`"), target).ours(format!(
                "{:.0} KiB ({}, {})",
                bytes.len() as f64 / 1024.0,
                if is_static { "static" } else { "DYNAMIC" },
                if stripped { "stripped" } else { "NOT stripped" }
            )),
        );
    }
    Ok(())
}

/// (no `PT_INTERP` = static, no `SHT_SYMTAB` = stripped) of an ELF64 little-endian file.
fn elf_facts(b: &[u8]) -> Result<(bool, bool)> {
    ensure!(
        b.len() > 64 && &b[..4] == b"\x7fELF" && b[4] == 2 && b[5] == 1,
        "not an ELF64 little-endian file"
    );
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    let (shoff, shentsize, shnum) = (u64_at(0x28), u16_at(0x3a), u16_at(0x3c));
    let interp = (0..phnum).any(|i| u32_at(phoff + i * phentsize) == 3);
    let symtab = (0..shnum).any(|i| u32_at(shoff + i * shentsize + 4) == 2);
    Ok((!interp, !symtab))
}

// ---------------------------------------------------------------------------------------
// 3 and 4. Cold launches.

/// CLOCK_MONOTONIC now, in µs (the clock systemd's `*TimestampMonotonic` use; the simulator
/// creates no time namespace, so it is the same inside the distro).
fn monotonic_us() -> i64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec * 1_000_000 + t.tv_nsec / 1000
}

fn realtime_us(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as i64
}

/// One cold launch, split by the timestamps the boot leaves behind (ms). The marks in
/// `/run/nixos-wsl` are tmpfs birth times, which the kernel takes from the jiffy clock
/// (4 ms at HZ=250): the small parts are good to a few ms; systemd's marks are exact.
#[derive(Debug, Default, Clone, Copy)]
struct ColdSplit {
    total: f64,
    /// Launch start → the state lock file exists (wsl.exe's launch, the shell's start).
    to_lock: f64,
    /// The activation stand-in: its log opened → `/run/nixos-wsl/activated` written.
    activation: f64,
    /// Lock → the namespace handle is bound (handle checks, notify socket, fork, unshare,
    /// mount propagation, fork of PID 1, bind mount), minus the activation.
    to_handle: f64,
    /// Handle bound → systemd's main() runs (the go-ahead, exec, dynamic loading).
    exec_systemd: f64,
    /// systemd's main() → boot finished (`READY=1`).
    systemd: f64,
    /// Boot finished → the launch returned (wake-up, join, fork, user switch, the user's
    /// `bash -c true`, exits).
    after: f64,
    /// The launch printed [`WAITING`] (systemd took more than a second).
    waited: bool,
}

/// Reads the timeline of this boot's first launch, which started at `t0` (monotonic µs).
fn cold_split(d: &Distro, t0: i64, total: f64) -> Result<ColdSplit> {
    // Files of this boot's /run, from the host through WSL's init (their timestamps are
    // realtime; convert with the current offset between the clocks).
    let offset = realtime_us(SystemTime::now()) - monotonic_us();
    let run = PathBuf::from(format!("/proc/{}/root/run/nixos-wsl", d.init_pid()?));
    let born = |name: &str| -> Result<i64> {
        let m = std::fs::symlink_metadata(run.join(name))
            .with_context(|| format!("reading {}", run.join(name).display()))?;
        let t = m.created().or_else(|_| m.modified())?;
        Ok(realtime_us(t) - offset)
    };
    let lock = born("lock")?;
    let (act0, act1) = (born("activation.log")?, born("activated")?);
    let handle = born("ns/init-pid")?;
    let out = ok(d.run(
        &Launch::command(
            "systemctl show --property=UserspaceTimestampMonotonic \
             --property=FinishTimestampMonotonic",
        )
        .wslenv("NIXOS_WSL_USER", "root"),
    )?)?;
    let prop = |name: &str| -> Result<i64> {
        out.out()
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.trim().parse().ok())
            .filter(|v| *v > 0)
            .with_context(|| format!("systemctl show gave no {name}: {}", out.out()))
    };
    let (sd0, sd1) = (
        prop("UserspaceTimestampMonotonic")?,
        prop("FinishTimestampMonotonic")?,
    );
    let ms = |us: i64| us as f64 / 1e3;
    let activation = ms(act1 - act0);
    Ok(ColdSplit {
        total,
        to_lock: ms(lock - t0),
        activation,
        to_handle: ms(handle - lock) - activation,
        exec_systemd: ms(sd0 - handle),
        systemd: ms(sd1 - sd0),
        after: total - ms(sd1 - t0),
        waited: false,
    })
}

/// Boots `d` afresh and times its first `wsl -- true`.
fn one_cold(d: &Distro) -> Result<ColdSplit> {
    d.boot()?;
    let t0 = monotonic_us();
    let out = d.run(&Launch::command("true"))?;
    let total = out.elapsed.as_secs_f64() * 1e3;
    let waited = ok_first(out)?;
    let split = cold_split(d, t0, total)?;
    d.terminate()?;
    Ok(ColdSplit { waited, ..split })
}

/// Boots `d` afresh and starts `n` first launches at once; returns the time until the last
/// one returned (ms) and how many systemd instances came up.
fn one_concurrent(d: &Distro, n: usize) -> Result<(f64, usize)> {
    d.boot()?;
    let barrier = Arc::new(Barrier::new(n + 1));
    let start = std::sync::Mutex::new(None::<Instant>);
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let barrier = barrier.clone();
                s.spawn(move || -> Result<Instant> {
                    barrier.wait();
                    ok_first(d.run(&Launch::command("true"))?)?;
                    Ok(Instant::now())
                })
            })
            .collect();
        *start.lock().unwrap() = Some(Instant::now());
        barrier.wait();
        handles
            .into_iter()
            .map(|h| h.join().expect("launch thread panicked"))
            .collect::<Vec<_>>()
    });
    let t0 = start.into_inner().unwrap().unwrap();
    let mut last = t0;
    for r in results {
        last = last.max(r.context("one of the simultaneous first launches failed")?);
    }
    let systemds = d
        .host_pids()
        .into_iter()
        .filter(|pid| {
            let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            st.lines().any(|l| l == "Name:\tsystemd")
                && st
                    .lines()
                    .find_map(|l| l.strip_prefix("NSpid:"))
                    .is_some_and(|v| v.split_whitespace().last() == Some("1"))
        })
        .count();
    d.terminate()?;
    Ok(((last - t0).as_secs_f64() * 1e3, systemds))
}

fn cold(opts: &Opts, floor_launch: f64, rows: &mut Vec<Row>) -> Result<()> {
    progress(format!(
        "3/4. cold launches: {} single, {} rounds of {} simultaneous, interleaved",
        opts.cold, opts.concurrent_rounds, opts.concurrent
    ));
    let d = Distro::new(DistroOptions::new(
        "Cold",
        RootShell::NixosWslShell(opts.shell_bin.clone()),
    ))?;
    // One unmeasured boot: the first ever boot of a disk does one-time work (journal files).
    d.boot()?;
    ok_first(d.run(&Launch::command("true"))?)?;
    d.terminate()?;

    let (mut singles, mut rounds) = (Vec::new(), Vec::new());
    let mut systemds = Vec::new();
    let per_round = opts.cold.div_ceil(opts.concurrent_rounds).max(1);
    while singles.len() < opts.cold || rounds.len() < opts.concurrent_rounds {
        for _ in 0..per_round {
            if singles.len() < opts.cold {
                singles.push(one_cold(&d)?);
            }
        }
        if rounds.len() < opts.concurrent_rounds {
            let (t, n) = one_concurrent(&d, opts.concurrent)?;
            rounds.push(t);
            systemds.push(n);
        }
    }
    // Peak RSS of the parent after a cold start (it ran the activation and started systemd).
    d.boot()?;
    let (cold_hwm, _, cold_threads) = probe(&d)?;
    d.terminate()?;

    let col = |f: fn(&ColdSplit) -> f64| summarize(&singles.iter().map(f).collect::<Vec<_>>());
    let total = col(|c| c.total);
    let sd = col(|c| c.systemd);
    let act = col(|c| c.activation);
    let added: Vec<f64> = singles
        .iter()
        .map(|c| c.total - c.systemd - c.activation - floor_launch)
        .collect();
    let added = summarize(&added);
    rows.push(
        Row::new(
            "3",
            format!(
                "cold launch: first `wsl -- true` of a fresh boot, {} boots{}",
                total.n,
                match singles.iter().filter(|c| c.waited).count() {
                    0 => String::new(),
                    n => format!(" ({n} printed the progress line: systemd took > 1 s)"),
                }
            ),
            "< 50 ms added beyond systemd's boot",
        )
        .ours(total.to_string())
        .floor(format!(
            "systemd's own boot (start → READY) {sd} + activation stand-in {act} (±4 ms) + warm floor launch {} ms",
            ms(floor_launch)
        ))
        .diff(format!("{added} added by the shell"))
        .ratio(format!(
            "{:.2}",
            total.median / (sd.median + act.median + floor_launch)
        )),
    );
    type Part = (&'static str, &'static str, fn(&ColdSplit) -> f64);
    let parts: [Part; 5] = [
        ("3a", "launch → the shell holds the state lock (wsl.exe's launch, the shell's start; ±4 ms)", |c| c.to_lock),
        ("3b", "…→ namespace handle bound (handle checks, fork, `unshare` of PID and mount namespaces, propagation, fork of PID 1, bind mount), activation excluded; ±4 ms", |c| c.to_handle),
        ("3c", "…→ systemd's main() runs (go-ahead, exec, dynamic loading: systemd's own start-up)", |c| c.exec_systemd),
        ("3d", "…systemd's boot (main() → READY=1)", |c| c.systemd),
        ("3e", "READY=1 → the launch returned (wake-up, join, fork, user switch, `bash -c true`, exits)", |c| c.after),
    ];
    for (id, what, f) in parts {
        rows.push(Row::new(id, what, "").ours(col(f).to_string()));
    }
    let conc = summarize(&rounds);
    rows.push(
        Row::new(
            "4",
            format!(
                "{} simultaneous first launches of a fresh boot, {} rounds: time until the last returned",
                opts.concurrent, conc.n
            ),
            "all succeed; close to one cold launch",
        )
        .ours(format!(
            "{conc}; all {}×{} succeeded; systemd instances per boot: {:?}",
            conc.n, opts.concurrent, systemds
        ))
        .floor(format!("one cold launch {total}"))
        .diff(format!("{} ms", ms(conc.median - total.median)))
        .ratio(format!("{:.2}", conc.median / total.median)),
    );
    rows.push(
        Row::new(
            "5c",
            "peak RSS (VmHWM) and threads of the supervising parent after a cold start",
            "< 1 MiB, 1",
        )
        .ours(format!("{cold_hwm} KiB, {cold_threads} thread(s)")),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 6. Installer.

/// `nixos-wsl-tarball-bench` on a tarball of the simulator's cached rootfs, one pair per
/// invocation so the spread is ours to compute.
fn installer(opts: &Opts, rows: &mut Vec<Row>) -> Result<()> {
    let rootfs = sim::rootfs::ensure()?;
    // Into tmpfs when it has room: both extractors then write the same page cache, and the
    // comparison is not at the mercy of whatever else writes to the disk.
    let tmpfs = Path::new("/dev/shm");
    let room = nix::sys::statvfs::statvfs(tmpfs)
        .map(|s| s.blocks_available() * s.fragment_size())
        .unwrap_or(0);
    let (base, place) = if room > 2 << 30 {
        (tmpfs.to_path_buf(), "into tmpfs")
    } else {
        (std::env::temp_dir(), "onto disk")
    };
    let work = base.join(format!("nixos-wsl-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let result = (|| -> Result<()> {
        let tarball = work.join("rootfs.tar.gz");
        progress(format!(
            "6. installer: packing {} into a tarball",
            rootfs.dir.display()
        ));
        let status = std::process::Command::new(&opts.cli_bin)
            .args(["tarball", "build", "--source"])
            .arg(&rootfs.dir)
            .arg("--output")
            .arg(&tarball)
            .status()?;
        ensure!(status.success(), "nixos-wsl tarball build failed: {status}");
        progress(format!(
            "6. installer: {} extraction pairs (installer, tar -xzf)",
            opts.tarball_runs
        ));
        let (mut ours, mut tar, mut unpacked_mb) = (Vec::new(), Vec::new(), 0.0);
        let mut sizes = String::new();
        for _ in 0..opts.tarball_runs {
            let out = std::process::Command::new(&opts.tarball_bench_bin)
                .arg(&tarball)
                .args(["--runs", "1", "--work-dir"])
                .arg(&work)
                .output()?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            ensure!(
                out.status.success(),
                "nixos-wsl-tarball-bench failed: {}{}",
                text,
                String::from_utf8_lossy(&out.stderr)
            );
            let secs = |key: &str| -> Result<f64> {
                text.lines()
                    .find_map(|l| l.trim().strip_prefix(key))
                    .and_then(|v| v.split_whitespace().next()?.parse().ok())
                    .with_context(|| format!("no {key:?} in `nixos-wsl-tarball-bench`: {text}"))
            };
            unpacked_mb = text
                .lines()
                .next()
                .and_then(|l| l.split_once(" MB compressed, "))
                .and_then(|(_, r)| r.split_whitespace().next()?.parse::<f64>().ok())
                .unwrap_or(0.0);
            sizes = text.lines().next().unwrap_or("").to_string();
            let (o, t) = (secs("nixos-wsl-installer extraction:")?, secs("tar -xzf:")?);
            ours.push(o * 1e3);
            tar.push(t * 1e3);
        }
        let (so, st, _, _) = paired_rows(&ours, &tar);
        let per_pair: Vec<f64> = tar.iter().zip(&ours).map(|(t, o)| t / o).collect();
        let speedup = summarize(&per_pair);
        let mbps = |v: f64| unpacked_mb / (v / 1e3);
        let what = sizes
            .split_once('(')
            .and_then(|(_, r)| r.split_once(')'))
            .map_or(String::new(), |(s, _)| s.to_string());
        rows.push(
            Row::new(
                "6",
                format!(
                    "installer extraction of the simulator's rootfs ({what}) {place}, {} pairs",
                    so.n
                ),
                "vs GNU tar",
            )
            .ours(format!("{so}, {:.0} MB/s", mbps(so.median)))
            .floor(format!("`tar -xzf` {st}, {:.0} MB/s", mbps(st.median)))
            .diff(format!("{} ms", ms(so.median - st.median)))
            .ratio(format!(
                "throughput ×{:.2} ({:.2}–{:.2}) of tar's",
                speedup.median, speedup.p10, speedup.p90
            )),
        );
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&work);
    result
}
