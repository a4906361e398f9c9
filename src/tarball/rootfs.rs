//! `nixos-wsl tarball rootfs`: lays out a NixOS root file system from a spec and packs it.
//! The NixOS module writes the spec (nix/modules/tarball.nix) and runs this in its build; CI
//! runs the very same steps on a small real Nix store. The spec, one entry a line, fields
//! separated by tabs:
//!
//! ```text
//! closure    <closureInfo output: registration, store-paths>
//! nix-store  <nix-store program that loads the registration>
//! system     <the system's toplevel: profile generation 1>
//! file       <path> <mode> <uid> <gid> <source file>
//! link       <path> <target>
//! tree       <path> <source directory>   (copied: directories 0755, files 0644 or 0755)
//! ```
//!
//! Besides those, the root file system gets the skeleton WSL needs before the first
//! activation (`/bin /dev /etc /mnt /proc /run /sys /root /tmp /nix/store`), the Nix database
//! loaded from the registration (`nix-store --load-db --store <root>`: the store is valid the
//! moment the tarball is unpacked), and the system profile as `nixos-rebuild` leaves it.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs::{self, File};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};

use super::build::{self, BuildOptions};

/// One entry of the spec besides `closure`, `nix-store` and `system`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    File {
        mode: u32,
        uid: u64,
        gid: u64,
        source: PathBuf,
    },
    Link(PathBuf),
    Tree(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spec {
    pub(crate) closure: PathBuf,
    pub(crate) nix_store: PathBuf,
    pub(crate) system: PathBuf,
    /// By path relative to the root (`etc/passwd`), in path order: parents before children.
    pub(crate) items: BTreeMap<PathBuf, Item>,
}

/// A path of the root file system: absolute, normal components only, not `/` itself.
fn root_path(field: &[u8]) -> Result<PathBuf> {
    let path = Path::new(std::ffi::OsStr::from_bytes(field));
    let mut rel = PathBuf::new();
    let mut components = path.components();
    if components.next() != Some(Component::RootDir) {
        bail!("{} is not an absolute path", path.display());
    }
    for c in components {
        match c {
            Component::Normal(name) => rel.push(name),
            _ => bail!("{} has a `.` or `..` component", path.display()),
        }
    }
    if rel.as_os_str().is_empty() {
        bail!("`/` itself cannot be an entry");
    }
    Ok(rel)
}

fn host_path(field: &[u8]) -> Result<PathBuf> {
    if !field.starts_with(b"/") {
        bail!(
            "{:?} is not an absolute path",
            String::from_utf8_lossy(field)
        );
    }
    Ok(PathBuf::from(OsString::from_vec(field.to_vec())))
}

fn number(field: &[u8], what: &str, radix: u32) -> Result<u64> {
    std::str::from_utf8(field)
        .ok()
        .and_then(|s| u64::from_str_radix(s, radix).ok())
        .ok_or_else(|| {
            anyhow!(
                "{what} {:?} is not a number",
                String::from_utf8_lossy(field)
            )
        })
}

/// Parses the spec; an error names the line and what is wrong with it.
pub(crate) fn parse_spec(text: &[u8]) -> Result<Spec> {
    let (mut closure, mut nix_store, mut system) = (None, None, None);
    let mut items = BTreeMap::new();
    for (n, line) in text.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&[u8]> = line.split(|&b| b == b'\t').collect();
        let entry = (|| -> Result<()> {
            let once = |slot: &mut Option<PathBuf>, value: &[u8]| -> Result<()> {
                if slot.replace(host_path(value)?).is_some() {
                    bail!("given twice");
                }
                Ok(())
            };
            let (path, item) = match fields.as_slice() {
                [b"closure", dir] => return once(&mut closure, dir),
                [b"nix-store", program] => return once(&mut nix_store, program),
                [b"system", toplevel] => return once(&mut system, toplevel),
                [b"file", path, mode, uid, gid, source] => {
                    let mode = number(mode, "mode", 8)?;
                    if mode > 0o7777 {
                        bail!("mode {mode:o} is not a file mode");
                    }
                    let item = Item::File {
                        mode: mode as u32,
                        uid: number(uid, "uid", 10)?,
                        gid: number(gid, "gid", 10)?,
                        source: host_path(source)?,
                    };
                    (path, item)
                }
                [b"link", path, target] if !target.is_empty() => (
                    path,
                    Item::Link(PathBuf::from(OsString::from_vec(target.to_vec()))),
                ),
                [b"tree", path, source] => (path, Item::Tree(host_path(source)?)),
                _ => bail!("not a spec entry (closure, nix-store, system, file, link, tree with tab-separated fields)"),
            };
            let rel = root_path(path)?;
            if items.insert(rel, item).is_some() {
                bail!("a second entry for {}", String::from_utf8_lossy(path));
            }
            Ok(())
        })();
        entry.with_context(|| format!("spec line {}", n + 1))?;
    }
    let need =
        |v: Option<PathBuf>, what: &str| v.ok_or_else(|| anyhow!("the spec has no `{what}` entry"));
    Ok(Spec {
        closure: need(closure, "closure")?,
        nix_store: need(nix_store, "nix-store")?,
        system: need(system, "system")?,
        items,
    })
}

/// Directories every root file system gets, with their modes.
const SKELETON: &[(&str, u32)] = &[
    ("bin", 0o755),
    ("dev", 0o755),
    ("etc", 0o755),
    ("mnt", 0o755),
    ("nix", 0o755),
    ("nix/store", 0o755),
    ("proc", 0o755),
    ("root", 0o700),
    ("run", 0o755),
    ("sys", 0o755),
    ("tmp", 0o1777),
];

fn mkdir(path: &Path, mode: u32) -> Result<()> {
    fs::create_dir(path).with_context(|| format!("creating {}", path.display()))?;
    // Explicitly: the umask must not decide the image's modes.
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

/// Creates the missing parents of `rel` under `root` (0755), refusing to go through
/// anything that is not a directory (a link the spec created, say).
fn parents(root: &Path, rel: &Path) -> Result<()> {
    let mut dir = root.to_path_buf();
    for c in rel.parent().into_iter().flat_map(Path::components) {
        dir.push(c);
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!(
                "/{} is not a directory, but the spec puts entries below it",
                dir.strip_prefix(root).unwrap_or(&dir).display()
            ),
            Err(_) => mkdir(&dir, 0o755)?,
        }
    }
    Ok(())
}

/// Copies `source` (a directory) to `target`, iteratively: directories 0755, files 0644 or,
/// if executable, 0755, links as links. The store's read-only modes do not carry over.
fn copy_tree(source: &Path, target: &Path) -> Result<()> {
    let mut work = vec![(source.to_path_buf(), target.to_path_buf())];
    while let Some((from, to)) = work.pop() {
        let md =
            fs::symlink_metadata(&from).with_context(|| format!("examining {}", from.display()))?;
        if md.file_type().is_symlink() {
            symlink(fs::read_link(&from)?, &to)
                .with_context(|| format!("linking {}", to.display()))?;
        } else if md.is_dir() {
            mkdir(&to, 0o755)?;
            for entry in
                fs::read_dir(&from).with_context(|| format!("listing {}", from.display()))?
            {
                let entry = entry?;
                work.push((entry.path(), to.join(entry.file_name())));
            }
        } else if md.is_file() {
            fs::copy(&from, &to).with_context(|| format!("copying {}", from.display()))?;
            let mode = if md.permissions().mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            };
            fs::set_permissions(&to, fs::Permissions::from_mode(mode))?;
        } else {
            bail!(
                "{} is neither a file, a directory nor a link",
                from.display()
            );
        }
    }
    Ok(())
}

/// Creates the spec's files, links and trees under `root` (which must not exist yet), and
/// returns the owners the tarball must record for files not owned by root.
pub(crate) fn lay_out(spec: &Spec, root: &Path) -> Result<HashMap<Vec<u8>, (u64, u64)>> {
    mkdir(root, 0o755)?;
    for (dir, mode) in SKELETON {
        mkdir(&root.join(dir), *mode)?;
    }
    let mut owners = HashMap::new();
    for (rel, item) in &spec.items {
        parents(root, rel)?;
        let target = root.join(rel);
        if fs::symlink_metadata(&target).is_ok() {
            bail!(
                "the spec's /{} is one of the directories every root file system has; name a path below it",
                rel.display()
            );
        }
        match item {
            Item::File {
                mode,
                uid,
                gid,
                source,
            } => {
                fs::copy(source, &target).with_context(|| {
                    format!("copying {} to /{}", source.display(), rel.display())
                })?;
                fs::set_permissions(&target, fs::Permissions::from_mode(*mode))?;
                if (*uid, *gid) != (0, 0) {
                    owners.insert(rel.as_os_str().as_bytes().to_vec(), (*uid, *gid));
                }
            }
            Item::Link(to) => {
                symlink(to, &target).with_context(|| format!("linking /{}", rel.display()))?
            }
            Item::Tree(source) => copy_tree(source, &target)?,
        }
    }
    Ok(owners)
}

/// Loads the closure's registration into a Nix database under `root` and keeps only the
/// database: the rest of the state nix-store creates refers to `root` itself
/// (gcroots/profiles would point at the build directory), and `db/reserved` is padding Nix
/// recreates on demand. Then the system profile, as `nixos-rebuild` leaves it, and the
/// garbage collector's root for all profiles, as Nix sets it up.
pub(crate) fn load_database(spec: &Spec, root: &Path) -> Result<()> {
    let registration = spec.closure.join("registration");
    let input =
        File::open(&registration).with_context(|| format!("opening {}", registration.display()))?;
    let before: Vec<PathBuf> = fs::read_dir(root.join("nix/store"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    // Nix takes an absolute path as a local store rooted there (a relative one is no store).
    let store =
        std::path::absolute(root).with_context(|| format!("resolving {}", root.display()))?;
    let status = Command::new(&spec.nix_store)
        .arg("--load-db")
        .arg("--store")
        .arg(&store)
        .args(["--option", "build-users-group", ""])
        .stdin(Stdio::from(input))
        .status()
        .with_context(|| format!("running {}", spec.nix_store.display()))?;
    if !status.success() {
        bail!("{} --load-db failed ({status})", spec.nix_store.display());
    }
    // nix-store also creates /nix/store/.links in the new store; the store's contents come
    // from the closure, so whatever it left there goes.
    let store_dir = root.join("nix/store");
    for entry in fs::read_dir(&store_dir)? {
        let path = entry?.path();
        if !before.contains(&path) {
            fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    let state = root.join("nix/var/nix");
    for entry in fs::read_dir(&state).with_context(|| format!("listing {}", state.display()))? {
        let entry = entry?;
        if entry.file_name() != "db" {
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            }
            .with_context(|| format!("removing {}", path.display()))?;
        }
    }
    let reserved = state.join("db/reserved");
    if reserved.exists() {
        fs::remove_file(&reserved)?;
    }
    for dir in ["gcroots", "profiles"] {
        mkdir(&state.join(dir), 0o755)?;
    }
    symlink("/nix/var/nix/profiles", state.join("gcroots/profiles"))?;
    symlink(&spec.system, state.join("profiles/system-1-link"))?;
    symlink("system-1-link", state.join("profiles/system"))?;
    Ok(())
}

/// `nixos-wsl tarball rootfs`.
pub(crate) fn rootfs(
    spec_file: &Path,
    work: &Path,
    output: &Path,
    mtime: i64,
    store_root: Option<PathBuf>,
) -> Result<()> {
    let text = fs::read(spec_file).with_context(|| format!("reading {}", spec_file.display()))?;
    let spec = parse_spec(&text).with_context(|| format!("in {}", spec_file.display()))?;
    if fs::symlink_metadata(work).is_ok() {
        bail!(
            "{} already exists; the root file system is laid out in a new directory",
            work.display()
        );
    }
    let owners = lay_out(&spec, work)?;
    load_database(&spec, work)?;
    let store_paths = spec.closure.join("store-paths");
    let list =
        fs::read(&store_paths).with_context(|| format!("reading {}", store_paths.display()))?;
    build::build(&BuildOptions {
        source: work.to_path_buf(),
        store_paths: build::parse_store_paths(&list)
            .with_context(|| format!("in {}", store_paths.display()))?,
        output: output.to_path_buf(),
        mtime,
        level: 6,
        owners,
        store_root,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "closure\t/nix/store/c-closure-info\nnix-store\t/nix/store/n-nix/bin/nix-store\nsystem\t/nix/store/s-nixos-system\n";

    #[test]
    fn parses_every_entry() {
        let text = format!(
            "{HEAD}file\t/etc/shadow\t0600\t0\t0\t/nix/store/x-shadow\nlink\t/bin/sh\t/nix/store/b-bash/bin/sh\n\ntree\t/etc/nixos\t/nix/store/e-etc-nixos\nfile\t/home/nixos/.gitconfig\t644\t1000\t100\t/nix/store/g\n"
        );
        let spec = parse_spec(text.as_bytes()).unwrap();
        assert_eq!(spec.system, Path::new("/nix/store/s-nixos-system"));
        assert_eq!(
            spec.items[Path::new("etc/shadow")],
            Item::File {
                mode: 0o600,
                uid: 0,
                gid: 0,
                source: "/nix/store/x-shadow".into()
            }
        );
        assert_eq!(
            spec.items[Path::new("home/nixos/.gitconfig")],
            Item::File {
                mode: 0o644,
                uid: 1000,
                gid: 100,
                source: "/nix/store/g".into()
            }
        );
        assert_eq!(
            spec.items[Path::new("bin/sh")],
            Item::Link("/nix/store/b-bash/bin/sh".into())
        );
        assert_eq!(
            spec.items[Path::new("etc/nixos")],
            Item::Tree("/nix/store/e-etc-nixos".into())
        );
    }

    #[test]
    fn bad_lines_name_their_line() {
        let bad = [
            ("file\t/etc/x\t0999\t0\t0\t/s\n", "not a number"),
            ("file\t/etc/x\t17777\t0\t0\t/s\n", "not a file mode"),
            ("file\tetc/x\t0644\t0\t0\t/s\n", "not an absolute path"),
            ("file\t/etc/../x\t0644\t0\t0\t/s\n", "`..`"),
            ("link\t/\t/x\n", "cannot be an entry"),
            ("link\t/a\t/x\nlink\t/a\t/y\n", "a second entry"),
            ("system\t/nix/store/again\n", "given twice"),
            ("tree\t/etc/nixos\trelative\n", "not an absolute path"),
            ("frobnicate\t/x\n", "not a spec entry"),
        ];
        for (lines, why) in bad {
            let err = format!(
                "{:#}",
                parse_spec(format!("{HEAD}{lines}").as_bytes()).unwrap_err()
            );
            assert!(
                err.contains("spec line 4") || err.contains("spec line 5"),
                "{err}"
            );
            assert!(err.contains(why), "{lines:?}: {err}");
        }
        let err = parse_spec(b"closure\t/c\nnix-store\t/n\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no `system` entry"), "{err}");
    }

    #[test]
    fn lays_out_files_links_and_trees() {
        let tmp = std::env::temp_dir().join(format!("nixos-wsl-rootfs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(tmp.join("src/tree/sub")).unwrap();
        fs::write(tmp.join("src/shadow"), "root:!:1::::::\n").unwrap();
        fs::set_permissions(tmp.join("src/shadow"), fs::Permissions::from_mode(0o444)).unwrap();
        fs::write(tmp.join("src/tree/configuration.nix"), "{ }\n").unwrap();
        fs::write(tmp.join("src/tree/sub/run"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(
            tmp.join("src/tree/sub/run"),
            fs::Permissions::from_mode(0o555),
        )
        .unwrap();
        let src = tmp.join("src");
        let text = format!(
            "{HEAD}file\t/etc/shadow\t0600\t0\t0\t{s}/shadow\nfile\t/home/nixos/.x\t0644\t1000\t100\t{s}/shadow\nlink\t/bin/sh\t/nix/store/b/bin/sh\ntree\t/etc/nixos\t{s}/tree\n",
            s = src.display()
        );
        let spec = parse_spec(text.as_bytes()).unwrap();
        let root = tmp.join("root");
        let owners = lay_out(&spec, &root).unwrap();
        let mode = |p: &str| {
            fs::symlink_metadata(root.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("etc/shadow"), 0o600);
        assert_eq!(mode("tmp"), 0o1777);
        assert_eq!(mode("root"), 0o700);
        assert_eq!(mode("etc/nixos/configuration.nix"), 0o644);
        assert_eq!(mode("etc/nixos/sub/run"), 0o755);
        assert_eq!(
            fs::read_link(root.join("bin/sh")).unwrap(),
            Path::new("/nix/store/b/bin/sh")
        );
        assert_eq!(owners.get(&b"home/nixos/.x"[..]), Some(&(1000, 100)));
        assert_eq!(owners.len(), 1);
        // A second layout into the same directory is refused, never merged.
        assert!(lay_out(&spec, &root).is_err());
        fs::remove_dir_all(&tmp).unwrap();
    }
}
