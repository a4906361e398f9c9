//! The crate's shape, checked from its source: no module cycles, the bottom layers use nothing
//! above them, and the login shell's code never reaches the tar format. A module depends on
//! another when its code (comments and `#[cfg(test)] mod tests` left out) names it through
//! `crate::` or `super::`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`cli::status`) -> its source without comments and unit tests.
fn modules() -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().unwrap() != "bin" {
                    dirs.push(path);
                }
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap().with_extension("");
            let name = rel.to_str().unwrap().replace('/', "::");
            if name == "lib" || path.extension() != Some(std::ffi::OsStr::new("rs")) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text
                .split("#[cfg(test)]\nmod tests")
                .next()
                .unwrap()
                .lines()
                .map(|l| l.split("//").next().unwrap())
                .collect::<Vec<_>>()
                .join("\n");
            out.insert(name, code);
        }
    }
    out
}

/// The paths named after `prefix` (`crate::` or `super::`), as `a::b::c` word runs; `use
/// prefix{a, b::c}` groups count too.
fn named_after(code: &str, prefix: &str) -> Vec<String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = Vec::new();
    for (i, _) in code.match_indices(prefix) {
        if code[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[i + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            out.extend(
                group
                    .split(',')
                    .map(|p| p.trim().split(' ').next().unwrap().to_owned()),
            );
        } else {
            let end = rest.find(|c: char| !word(c)).unwrap_or(rest.len());
            out.push(rest[..end].trim_end_matches(':').to_owned());
        }
    }
    out
}

/// Edges between modules at `depth` path segments (1: top-level modules; 2: also their
/// children), ignoring a module's use of its own ancestors or descendants.
fn graph(mods: &BTreeMap<String, String>, depth: usize) -> BTreeMap<String, BTreeSet<String>> {
    let cut = |m: &str| m.split("::").take(depth).collect::<Vec<_>>().join("::");
    let resolve = |path: &str| {
        let parts: Vec<&str> = path.split("::").collect();
        (1..=parts.len())
            .rev()
            .map(|k| parts[..k].join("::"))
            .find(|m| mods.contains_key(m))
    };
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, code) in mods {
        let parent: Vec<&str> = name.split("::").collect();
        let parent = parent[..parent.len() - 1].join("::");
        let mut targets: Vec<String> = named_after(code, "crate::")
            .into_iter()
            .filter_map(|p| resolve(&p))
            .collect();
        for p in named_after(code, "super::") {
            let full = if parent.is_empty() {
                p
            } else {
                format!("{parent}::{p}")
            };
            targets.extend(resolve(&full));
        }
        let from = cut(name);
        for to in targets.iter().map(|t| cut(t)) {
            let related = from == to
                || from.starts_with(&format!("{to}::"))
                || to.starts_with(&format!("{from}::"));
            if !related {
                g.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    g
}

fn reachable(g: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from.to_owned()];
    while let Some(m) = todo.pop() {
        for next in g.get(&m).into_iter().flatten() {
            if seen.insert(next.clone()) {
                todo.push(next.clone());
            }
        }
    }
    seen
}

#[test]
fn no_module_cycles() {
    let mods = modules();
    assert!(mods.len() > 50, "found only {} modules", mods.len());
    for depth in [1, 2] {
        let g = graph(&mods, depth);
        let cycles: Vec<String> = g
            .keys()
            .filter(|m| reachable(&g, m).contains(*m))
            .cloned()
            .collect();
        assert!(
            cycles.is_empty(),
            "modules on a cycle (depth {depth}): {cycles:?}\n{g:#?}"
        );
    }
}

#[test]
fn bottom_layers_use_nothing_above_them() {
    let mods = modules();
    let g = graph(&mods, 1);
    for layer in ["sys", "tar", "paths"] {
        let uses: Vec<&String> = g.get(layer).into_iter().flatten().collect();
        assert!(uses.is_empty(), "{layer} uses {uses:?}");
    }
}

#[test]
fn the_launch_path_never_reaches_the_tar_format() {
    let mods = modules();
    let g = graph(&mods, 1);
    for program in ["shell", "init"] {
        let reached = reachable(&g, program);
        for heavy in ["tar", "tarball", "installer", "cli"] {
            assert!(
                !reached.contains(heavy),
                "{program} reaches {heavy}: {reached:?}"
            );
        }
    }
}
