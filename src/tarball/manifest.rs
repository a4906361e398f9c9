//! A `DistributionInfo.json` entry for `wsl --install <name>` (Microsoft's format, checked by
//! `distributions/validate-modern.py` in microsoft/WSL): one flavor under
//! `ModernDistributions`, one version entry with `Name` (starting with the flavor),
//! `FriendlyName`, `Default`, and per architecture a `Url` to the `.wsl` file and its
//! `Sha256` (hex, `0x`-prefixed as in Microsoft's own list). Enterprises point the registry
//! value `DistributionListUrl` at such a file.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use super::image::sha256_file;
use crate::cli::render::json_string;

/// A `.wsl` file of one architecture and where it will be downloaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Download {
    /// `Amd64Url` or `Arm64Url`.
    pub(crate) key: &'static str,
    pub(crate) file: PathBuf,
    pub(crate) url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ManifestOptions {
    pub(crate) flavor: String,
    pub(crate) name: String,
    pub(crate) friendly_name: String,
    pub(crate) downloads: Vec<Download>,
}

/// Checks what Microsoft's validator would reject, before anything is hashed.
fn check(opts: &ManifestOptions) -> Result<()> {
    if opts.flavor.is_empty() || !opts.name.starts_with(&opts.flavor) {
        bail!(
            "the name {:?} must start with the flavor {:?} (Microsoft's rule for DistributionInfo.json)",
            opts.name,
            opts.flavor
        );
    }
    if opts.downloads.is_empty() {
        bail!("no .wsl file given: pass --amd64 FILE URL and/or --arm64 FILE URL");
    }
    for (n, d) in opts.downloads.iter().enumerate() {
        if opts.downloads[..n].iter().any(|e| e.key == d.key) {
            bail!("{} given twice", d.key);
        }
        if !d.url.ends_with(".wsl") {
            bail!(
                "{} {:?} does not end in .wsl; WSL installs modern distributions from .wsl files",
                d.key,
                d.url
            );
        }
    }
    Ok(())
}

/// The manifest text, hashing every file.
pub(crate) fn render(opts: &ManifestOptions) -> Result<String> {
    check(opts)?;
    let mut urls = String::new();
    for d in &opts.downloads {
        let (sha, _) =
            sha256_file(&d.file).with_context(|| format!("hashing {}", d.file.display()))?;
        let hex: String = sha.iter().map(|b| format!("{b:02x}")).collect();
        urls.push_str(&format!(
            ",\n          {}: {{\n            \"Url\": {},\n            \"Sha256\": \"0x{hex}\"\n          }}",
            json_string(d.key),
            json_string(&d.url)
        ));
    }
    Ok(format!(
        "{{\n  \"ModernDistributions\": {{\n    {}: [\n      {{\n        \"Name\": {},\n        \"FriendlyName\": {},\n        \"Default\": true{urls}\n      }}\n    ]\n  }}\n}}\n",
        json_string(&opts.flavor),
        json_string(&opts.name),
        json_string(&opts.friendly_name),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(downloads: Vec<Download>) -> ManifestOptions {
        ManifestOptions {
            flavor: "NixOS".into(),
            name: "NixOS-25.11".into(),
            friendly_name: "NixOS 25.11".into(),
            downloads,
        }
    }

    #[test]
    fn refuses_what_microsoft_refuses() {
        let d = |key, url: &str| Download {
            key,
            file: "/nonexistent".into(),
            url: url.into(),
        };
        let mut o = opts(vec![d("Amd64Url", "https://x/nixos.wsl")]);
        o.name = "Nix-25.11".into();
        assert!(render(&o)
            .unwrap_err()
            .to_string()
            .contains("must start with"));
        assert!(render(&opts(vec![])).is_err());
        let twice = opts(vec![d("Amd64Url", "a.wsl"), d("Amd64Url", "b.wsl")]);
        assert!(render(&twice).unwrap_err().to_string().contains("twice"));
        let tar = opts(vec![d("Amd64Url", "https://x/nixos.tar.gz")]);
        assert!(render(&tar).unwrap_err().to_string().contains(".wsl"));
    }
}
