//! Formats qemu recognises by probing but this console does not accept: VDI, Parallels,
//! Bochs, cloop, DMG, QED and LUKS. Each check mirrors qemu's own probe (block/*.c), so a
//! file that a hypervisor would open as one of them is never taken for a raw disk.

use super::bytes::{be_u32, le_u16, le_u32};

/// qemu hands its probes the first 2 KiB of a file.
pub const PROBE_BYTES: usize = 2048;

/// The formats below, in the order they are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Foreign {
    Vdi,
    Parallels,
    Bochs,
    Cloop,
    Dmg,
    Qed,
    Luks,
}

impl Foreign {
    pub const ALL: [Foreign; 7] = [
        Foreign::Vdi,
        Foreign::Parallels,
        Foreign::Bochs,
        Foreign::Cloop,
        Foreign::Dmg,
        Foreign::Qed,
        Foreign::Luks,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Foreign::Vdi => "VDI",
            Foreign::Parallels => "Parallels",
            Foreign::Bochs => "Bochs",
            Foreign::Cloop => "cloop",
            Foreign::Dmg => "DMG",
            Foreign::Qed => "QED",
            Foreign::Luks => "LUKS-encrypted",
        }
    }

    /// Whether a file with this `head` (its first bytes) and `tail` (its last 512 bytes, or
    /// all of it if shorter) is of this format.
    pub fn matches(self, head: &[u8], tail: &[u8], file_size: u64) -> bool {
        let probe = &head[..head.len().min(PROBE_BYTES)];
        match self {
            Foreign::Vdi => is_vdi(probe),
            Foreign::Parallels => is_parallels(probe),
            Foreign::Bochs => is_bochs(probe),
            Foreign::Cloop => is_cloop(probe, file_size),
            Foreign::Dmg => is_dmg(tail),
            Foreign::Qed => probe.len() >= QED_HEADER_BYTES && probe.starts_with(QED_MAGIC),
            Foreign::Luks => is_luks(probe),
        }
    }
}

/// VirtualBox: a 512-byte header whose signature sits after 64 bytes of free text.
const VDI_HEADER_BYTES: usize = 512;
const VDI_SIGNATURE: u32 = 0xbeda_107f;

fn is_vdi(head: &[u8]) -> bool {
    head.len() >= VDI_HEADER_BYTES && le_u32(head, 0x40) == Some(VDI_SIGNATURE)
}

/// Parallels: a 64-byte header with one of two magics and version 2.
const PARALLELS_HEADER_BYTES: usize = 64;
const PARALLELS_MAGICS: [&[u8; 16]; 2] = [b"WithoutFreeSpace", b"WithouFreSpacExt"];
const PARALLELS_VERSION: u32 = 2;

fn is_parallels(head: &[u8]) -> bool {
    head.len() >= PARALLELS_HEADER_BYTES
        && PARALLELS_MAGICS.iter().any(|m| head.starts_with(*m))
        && le_u32(head, 16) == Some(PARALLELS_VERSION)
}

/// Bochs: NUL-terminated magic, type and subtype strings in fixed fields, then a version.
const BOCHS_HEADER_BYTES: usize = 512;
const BOCHS_VERSIONS: [u32; 2] = [0x0002_0000, 0x0001_0000];

fn is_bochs(head: &[u8]) -> bool {
    /// A C string field equal to `text` (qemu compares with strcmp).
    fn field(head: &[u8], at: usize, len: usize, text: &[u8]) -> bool {
        head.get(at..at + len)
            .and_then(|f| {
                f.split(|b| *b == 0)
                    .next()
                    .map(|s| s == text && s.len() < len)
            })
            .unwrap_or(false)
    }
    head.len() >= BOCHS_HEADER_BYTES
        && field(head, 0, 32, b"Bochs Virtual HD Image")
        && field(head, 32, 16, b"Redolog")
        && field(head, 48, 16, b"Growing")
        && le_u32(head, 64).is_some_and(|v| BOCHS_VERSIONS.contains(&v))
}

/// cloop: a shell script preamble. qemu compares only as much of it as the file holds.
const CLOOP_MAGIC: &[u8] =
    b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n";

fn is_cloop(head: &[u8], file_size: u64) -> bool {
    let compared = CLOOP_MAGIC.len().min(head.len());
    file_size > 0 && head[..compared] == CLOOP_MAGIC[..compared]
}

/// Apple's UDIF (DMG): a 512-byte "koly" trailer at the end of the file. qemu picks DMG by
/// the file name; the trailer is what makes a file one, whatever it is called.
const DMG_TRAILER_BYTES: usize = 512;

fn is_dmg(tail: &[u8]) -> bool {
    tail.len() >= DMG_TRAILER_BYTES && {
        let trailer = &tail[tail.len() - DMG_TRAILER_BYTES..];
        trailer.starts_with(b"koly") && be_u32(trailer, 8) == Some(DMG_TRAILER_BYTES as u32)
    }
}

const QED_MAGIC: &[u8] = b"QED\0";
const QED_HEADER_BYTES: usize = 64;

/// LUKS 1 and 2 share the magic; qemu probes version 1, and both are refused.
const LUKS_MAGIC: &[u8] = b"LUKS\xba\xbe";

fn is_luks(head: &[u8]) -> bool {
    head.starts_with(LUKS_MAGIC) && le_u16(head, 6).is_some()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Hand-made headers of each format, for the formats qemu-img cannot create.
    pub fn bochs() -> Vec<u8> {
        let mut f = vec![0u8; 4096];
        f[..22].copy_from_slice(b"Bochs Virtual HD Image");
        f[32..39].copy_from_slice(b"Redolog");
        f[48..55].copy_from_slice(b"Growing");
        f[64..68].copy_from_slice(&0x0002_0000u32.to_le_bytes());
        f
    }

    pub fn cloop() -> Vec<u8> {
        let mut f = CLOOP_MAGIC.to_vec();
        f.resize(4096, 0);
        f
    }

    pub fn dmg() -> Vec<u8> {
        let mut f = vec![0u8; 8192];
        let trailer = f.len() - 512;
        f[trailer..trailer + 4].copy_from_slice(b"koly");
        f[trailer + 4..trailer + 8].copy_from_slice(&4u32.to_be_bytes());
        f[trailer + 8..trailer + 12].copy_from_slice(&512u32.to_be_bytes());
        f
    }

    fn detected(file: &[u8]) -> Vec<Foreign> {
        let tail = &file[file.len().saturating_sub(512)..];
        Foreign::ALL
            .into_iter()
            .filter(|f| f.matches(file, tail, file.len() as u64))
            .collect()
    }

    #[test]
    fn each_format_is_recognised_by_its_own_probe_only() {
        let mut vdi = vec![0u8; 1024];
        vdi[0x40..0x44].copy_from_slice(&VDI_SIGNATURE.to_le_bytes());
        assert_eq!(detected(&vdi), [Foreign::Vdi]);
        assert!(
            detected(&vdi[..511]).is_empty(),
            "qemu needs the whole header"
        );

        let mut parallels = vec![0u8; 1024];
        parallels[..16].copy_from_slice(b"WithouFreSpacExt");
        parallels[16..20].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(detected(&parallels), [Foreign::Parallels]);
        parallels[16..20].copy_from_slice(&3u32.to_le_bytes());
        assert!(detected(&parallels).is_empty());

        assert_eq!(detected(&bochs()), [Foreign::Bochs]);
        let mut other_subtype = bochs();
        other_subtype[48..56].copy_from_slice(b"Undoable");
        assert!(detected(&other_subtype).is_empty());

        assert_eq!(detected(&cloop()), [Foreign::Cloop]);
        assert_eq!(detected(&CLOOP_MAGIC[..20]), [Foreign::Cloop]);
        assert_eq!(detected(&dmg()), [Foreign::Dmg]);

        let mut qed = vec![0u8; 4096];
        qed[..4].copy_from_slice(QED_MAGIC);
        assert_eq!(detected(&qed), [Foreign::Qed]);

        let mut luks = vec![0u8; 4096];
        luks[..6].copy_from_slice(LUKS_MAGIC);
        luks[6..8].copy_from_slice(&1u16.to_be_bytes());
        assert_eq!(detected(&luks), [Foreign::Luks]);

        assert!(detected(&[0u8; 65_536]).is_empty());
        assert!(detected(&[]).is_empty());
    }
}
