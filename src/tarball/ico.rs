//! Windows `.ico` files from PNG images, for the Start-menu shortcut and the Windows Terminal
//! profile WSL creates from `[shortcut] icon` (it copies the file verbatim and hands it to
//! `IShellLink::SetIconLocation`, so it must be a real icon file). Every image is stored as
//! PNG, which Windows reads in icons since Vista, so nothing is decoded or re-encoded: the
//! output is the PNGs behind an ICONDIR header whose sizes come from each PNG's IHDR chunk.

use anyhow::{bail, Result};

/// The PNG signature and the offset of the IHDR width and height after it.
const PNG_SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// Width and height of a PNG image, from its IHDR chunk (the first chunk, by the format).
pub(crate) fn png_size(png: &[u8]) -> Result<(u32, u32)> {
    if png.len() < 24 || &png[..8] != PNG_SIGNATURE || &png[12..16] != b"IHDR" {
        bail!("not a PNG image (no PNG signature and IHDR chunk)");
    }
    let be = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    Ok((be(16), be(20)))
}

/// An `.ico` holding `images` (PNG files), in the given order. Icons hold images of at most
/// 256x256 pixels (the directory stores 256 as 0).
pub fn from_pngs(images: &[Vec<u8>]) -> Result<Vec<u8>> {
    if images.is_empty() || images.len() > usize::from(u16::MAX) {
        bail!("an icon needs 1 to 65535 images, got {}", images.len());
    }
    let count = images.len() as u16;
    let mut out = Vec::new();
    // ICONDIR: reserved, type 1 (icon), image count.
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    let mut offset = 6 + 16 * images.len();
    for (n, png) in images.iter().enumerate() {
        let (width, height) = png_size(png).map_err(|e| anyhow::anyhow!("image {}: {e}", n + 1))?;
        if !(1..=256).contains(&width) || !(1..=256).contains(&height) {
            bail!(
                "image {} is {width}x{height}; icons hold at most 256x256",
                n + 1
            );
        }
        let size = u32::try_from(png.len())?;
        // ICONDIRENTRY: width, height (0 = 256), colour count, reserved, planes, bits per
        // pixel, data size, data offset.
        out.push((width % 256) as u8);
        out.push((height % 256) as u8);
        out.push(0);
        out.push(0);
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&32u16.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&u32::try_from(offset)?.to_le_bytes());
        offset += png.len();
    }
    for png in images {
        out.extend_from_slice(png);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG header with an IHDR chunk of `width` x `height` (enough for the directory).
    pub(crate) fn png(width: u32, height: u32) -> Vec<u8> {
        let mut p = PNG_SIGNATURE.to_vec();
        p.extend_from_slice(&13u32.to_be_bytes());
        p.extend_from_slice(b"IHDR");
        p.extend_from_slice(&width.to_be_bytes());
        p.extend_from_slice(&height.to_be_bytes());
        p.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
        p
    }

    #[test]
    fn directory_names_every_image() {
        let images = vec![png(16, 16), png(32, 32), png(256, 256)];
        let ico = from_pngs(&images).unwrap();
        assert_eq!(&ico[..6], &[0, 0, 1, 0, 3, 0]);
        let entry = |n: usize| &ico[6 + 16 * n..6 + 16 * (n + 1)];
        assert_eq!(entry(0)[..2], [16, 16]);
        assert_eq!(entry(2)[..2], [0, 0], "256 is stored as 0");
        let mut offset = 6 + 16 * 3;
        for (n, png) in images.iter().enumerate() {
            let e = entry(n);
            assert_eq!(u16::from_le_bytes([e[4], e[5]]), 1);
            assert_eq!(
                u32::from_le_bytes([e[8], e[9], e[10], e[11]]) as usize,
                png.len()
            );
            assert_eq!(
                u32::from_le_bytes([e[12], e[13], e[14], e[15]]) as usize,
                offset
            );
            assert_eq!(&ico[offset..offset + png.len()], &png[..]);
            offset += png.len();
        }
        assert_eq!(ico.len(), offset);
    }

    #[test]
    fn refuses_what_is_no_icon() {
        assert!(from_pngs(&[]).is_err());
        assert!(from_pngs(&[b"GIF89a not a png at all".to_vec()]).is_err());
        let err = from_pngs(&[png(512, 512)]).unwrap_err().to_string();
        assert!(err.contains("at most 256x256"), "{err}");
    }
}
