//! ISO 9660 / UDF installation media, and GPT partitioned disks. Both leave room at the start
//! of the file where another format's header can hide, which is why the inspector refuses a
//! file that matches two formats.

use super::Refusal;
use super::bytes::{le_u16, le_u32};

const SECTOR: usize = 2048;
/// Volume descriptors start at sector 16.
const DESCRIPTORS: usize = 16 * SECTOR;
const IDENTIFIERS: [&[u8; 5]; 3] = [b"CD001", b"NSR02", b"NSR03"];

/// `None` if the file is not an ISO; otherwise its size (from the primary volume descriptor,
/// or the file's size for UDF).
pub fn detect_iso(head: &[u8], file_size: u64) -> Option<Result<u64, Refusal>> {
    let mut found = false;
    for n in 0..16 {
        let at = DESCRIPTORS + n * SECTOR;
        let Some(id) = head.get(at + 1..at + 6) else {
            break;
        };
        if !IDENTIFIERS.iter().any(|known| id == known.as_slice()) {
            continue;
        }
        found = true;
        // Type 1 with CD001 is the primary volume descriptor, which states the size.
        if head[at] == 1 && id == b"CD001" {
            let (Some(blocks), Some(block_size)) = (le_u32(head, at + 80), le_u16(head, at + 128))
            else {
                return Some(Err(Refusal::Truncated));
            };
            return Some(Ok(u64::from(blocks) * u64::from(block_size)));
        }
    }
    found.then_some(Ok(file_size))
}

/// A GPT disk has a protective MBR: one partition of type 0xEE starting at LBA 1.
pub fn detect_gpt(head: &[u8], file_size: u64) -> Option<Result<u64, Refusal>> {
    if head.get(510..512) != Some(&[0x55, 0xAA][..]) {
        return None;
    }
    let entries: Vec<&[u8]> = (0..4).map(|i| &head[446 + 16 * i..462 + 16 * i]).collect();
    if !entries.iter().any(|e| e[4] == 0xEE) {
        // A plain MBR disk is raw to every reader.
        return None;
    }
    let used: Vec<&&[u8]> = entries.iter().filter(|e| e[4] != 0).collect();
    let protective_alone = used.len() == 1 && le_u32(used[0], 8) == Some(1);
    if !protective_alone {
        return Some(Err(Refusal::CorruptFormatHeader {
            format: "GPT",
            why: "its protective MBR is not a single partition starting at sector 1",
        }));
    }
    Some(Ok(file_size))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An ISO 9660 image of `blocks` 2 KiB blocks, as far as its primary descriptor.
    pub fn iso(blocks: u32) -> Vec<u8> {
        let mut f = vec![0u8; DESCRIPTORS + 2 * SECTOR];
        f[DESCRIPTORS] = 1;
        f[DESCRIPTORS + 1..DESCRIPTORS + 6].copy_from_slice(b"CD001");
        f[DESCRIPTORS + 80..DESCRIPTORS + 84].copy_from_slice(&blocks.to_le_bytes());
        f[DESCRIPTORS + 128..DESCRIPTORS + 130].copy_from_slice(&2048u16.to_le_bytes());
        f[DESCRIPTORS + SECTOR] = 255;
        f[DESCRIPTORS + SECTOR + 1..DESCRIPTORS + SECTOR + 6].copy_from_slice(b"CD001");
        f
    }

    #[test]
    fn iso_size_comes_from_the_primary_descriptor() {
        assert_eq!(detect_iso(&iso(1000), 1), Some(Ok(2_048_000)));
        let mut udf = vec![0u8; DESCRIPTORS + 3 * SECTOR];
        udf[DESCRIPTORS + SECTOR + 1..DESCRIPTORS + SECTOR + 6].copy_from_slice(b"NSR02");
        assert_eq!(detect_iso(&udf, 12_345), Some(Ok(12_345)));
        assert_eq!(detect_iso(&[0u8; 40_000], 40_000), None);
    }

    fn mbr(entries: &[(u8, u32)]) -> Vec<u8> {
        let mut f = vec![0u8; 1024];
        f[510] = 0x55;
        f[511] = 0xAA;
        for (i, (kind, start)) in entries.iter().enumerate() {
            f[446 + 16 * i + 4] = *kind;
            f[446 + 16 * i + 8..446 + 16 * i + 12].copy_from_slice(&start.to_le_bytes());
        }
        f
    }

    #[test]
    fn gpt_needs_a_lone_protective_partition() {
        assert_eq!(detect_gpt(&mbr(&[(0xEE, 1)]), 4096), Some(Ok(4096)));
        assert_eq!(detect_gpt(&mbr(&[(0x83, 2048)]), 4096), None);
        assert!(matches!(
            detect_gpt(&mbr(&[(0xEE, 1), (0x83, 2048)]), 4096),
            Some(Err(Refusal::CorruptFormatHeader { .. }))
        ));
        assert!(matches!(
            detect_gpt(&mbr(&[(0xEE, 63)]), 4096),
            Some(Err(Refusal::CorruptFormatHeader { .. }))
        ));
    }
}
