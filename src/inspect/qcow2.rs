//! The qcow2 header rules (QEMU's docs/interop/qcow2.txt), as Glance's inspector applies them.

use super::Refusal;
use super::bytes::{be_u32, be_u64};

const MAGIC: &[u8; 4] = b"QFI\xfb";
const V2_HEADER_LEN: usize = 72;
const V3_MIN_HEADER_LEN: usize = 104;

/// Incompatible feature bits (header offset 72, version 3).
const INCOMPAT_DIRTY: u64 = 1 << 0;
const INCOMPAT_CORRUPT: u64 = 1 << 1;
const INCOMPAT_DATA_FILE: u64 = 1 << 2;
const INCOMPAT_COMPRESSION: u64 = 1 << 3;

/// Header extensions that make the image depend on something outside it, or need a key.
const EXT_END: u32 = 0;
const EXT_BACKING_FORMAT: u32 = 0xe279_2aca;
const EXT_DATA_FILE: u32 = 0x4441_5441;
const EXT_FULL_DISK_ENCRYPTION: u32 = 0x0537_be77;

use super::MAX_VIRTUAL_SIZE;

/// `None` if the file does not claim to be qcow2; otherwise the verdict of `inspect`.
pub fn detect(head: &[u8]) -> Option<Result<u64, Refusal>> {
    let claims = if head.len() < MAGIC.len() {
        !head.is_empty() && MAGIC.starts_with(head)
    } else {
        &head[..4] == MAGIC
    };
    claims.then(|| inspect(head))
}

/// Checks the start of a file (up to its first cluster) and returns the virtual size.
pub fn inspect(head: &[u8]) -> Result<u64, Refusal> {
    if head.len() < MAGIC.len() {
        return Err(if MAGIC.starts_with(head) && !head.is_empty() {
            Refusal::Truncated
        } else {
            Refusal::NotQcow2
        });
    }
    if &head[..4] != MAGIC {
        return Err(Refusal::NotQcow2);
    }
    let truncated = Refusal::Truncated;
    let version = be_u32(head, 4).ok_or(truncated.clone())?;
    if !(2..=3).contains(&version) {
        return Err(Refusal::UnsupportedVersion(version));
    }
    if head.len() < V2_HEADER_LEN {
        return Err(truncated);
    }
    let backing_file_offset = be_u64(head, 8).ok_or(truncated.clone())?;
    let cluster_bits = be_u32(head, 20).ok_or(truncated.clone())?;
    let virtual_size = be_u64(head, 24).ok_or(truncated.clone())?;
    let crypt_method = be_u32(head, 32).ok_or(truncated.clone())?;

    if backing_file_offset != 0 {
        return Err(Refusal::BackingFile);
    }
    if !(9..=21).contains(&cluster_bits) {
        return Err(Refusal::CorruptHeader(
            "its cluster size is outside 512 B to 2 MiB",
        ));
    }
    if crypt_method != 0 {
        return Err(Refusal::Encrypted);
    }
    if virtual_size > MAX_VIRTUAL_SIZE {
        return Err(Refusal::CorruptHeader(
            "its virtual size is impossibly large",
        ));
    }

    let header_len = if version == 3 {
        let incompatible = be_u64(head, 72).ok_or(truncated.clone())?;
        let header_len = be_u32(head, 100).ok_or(truncated.clone())? as usize;
        if incompatible & INCOMPAT_CORRUPT != 0 {
            return Err(Refusal::MarkedCorrupt);
        }
        if incompatible & INCOMPAT_DATA_FILE != 0 {
            return Err(Refusal::ExternalDataFile);
        }
        let unknown = incompatible & !(INCOMPAT_DIRTY | INCOMPAT_COMPRESSION);
        if unknown != 0 {
            return Err(Refusal::UnknownFeatures(unknown));
        }
        if header_len < V3_MIN_HEADER_LEN || !header_len.is_multiple_of(8) {
            return Err(Refusal::CorruptHeader("its header length is invalid"));
        }
        header_len
    } else {
        V2_HEADER_LEN
    };

    check_extensions(head, header_len, 1usize << cluster_bits)?;
    Ok(virtual_size)
}

/// Walks the header extensions, which end with type 0 and must stay inside the first cluster.
fn check_extensions(head: &[u8], start: usize, cluster_size: usize) -> Result<(), Refusal> {
    let mut at = start;
    loop {
        if at + 8 > cluster_size {
            return Err(Refusal::CorruptHeader(
                "its header extensions run past the first cluster",
            ));
        }
        let (Some(kind), Some(len)) = (be_u32(head, at), be_u32(head, at + 4)) else {
            return Err(Refusal::Truncated);
        };
        match kind {
            EXT_END => return Ok(()),
            EXT_BACKING_FORMAT => return Err(Refusal::BackingFile),
            EXT_DATA_FILE => return Err(Refusal::ExternalDataFile),
            EXT_FULL_DISK_ENCRYPTION => return Err(Refusal::Encrypted),
            _ => {}
        }
        // Data is padded to a multiple of 8 bytes.
        let padded = (len as usize).div_ceil(8) * 8;
        at = at.checked_add(8 + padded).ok_or(Refusal::CorruptHeader(
            "a header extension has an impossible length",
        ))?;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal valid qcow2 header of `version` with 64 KiB clusters and 1 GiB virtual size.
    pub fn header(version: u32) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..4].copy_from_slice(MAGIC);
        h[4..8].copy_from_slice(&version.to_be_bytes());
        h[20..24].copy_from_slice(&16u32.to_be_bytes());
        h[24..32].copy_from_slice(&(1u64 << 30).to_be_bytes());
        if version == 3 {
            h[100..104].copy_from_slice(&112u32.to_be_bytes());
        }
        h
    }

    fn set_u32(h: &mut [u8], at: usize, v: u32) {
        h[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }

    fn set_u64(h: &mut [u8], at: usize, v: u64) {
        h[at..at + 8].copy_from_slice(&v.to_be_bytes());
    }

    #[test]
    fn accepts_plain_v2_and_v3() {
        assert_eq!(inspect(&header(2)), Ok(1 << 30));
        assert_eq!(inspect(&header(3)), Ok(1 << 30));
    }

    #[test]
    fn refuses_other_magic_and_short_files() {
        assert_eq!(inspect(b""), Err(Refusal::NotQcow2));
        assert_eq!(inspect(b"QF"), Err(Refusal::Truncated));
        assert_eq!(inspect(&[0u8; 4096]), Err(Refusal::NotQcow2));
        assert_eq!(inspect(&header(3)[..80]), Err(Refusal::Truncated));
        assert_eq!(inspect(&header(2)[..40]), Err(Refusal::Truncated));
    }

    #[test]
    fn refuses_versions_other_than_2_and_3() {
        let mut h = header(3);
        set_u32(&mut h, 4, 1);
        assert_eq!(inspect(&h), Err(Refusal::UnsupportedVersion(1)));
        set_u32(&mut h, 4, 4);
        assert_eq!(inspect(&h), Err(Refusal::UnsupportedVersion(4)));
    }

    #[test]
    fn refuses_backing_files() {
        let mut h = header(3);
        set_u64(&mut h, 8, 528);
        assert_eq!(inspect(&h), Err(Refusal::BackingFile));
        let mut h = header(3);
        set_u32(&mut h, 112, EXT_BACKING_FORMAT);
        set_u32(&mut h, 116, 5);
        assert_eq!(inspect(&h), Err(Refusal::BackingFile));
    }

    #[test]
    fn refuses_external_data_files() {
        let mut h = header(3);
        set_u64(&mut h, 72, INCOMPAT_DATA_FILE);
        assert_eq!(inspect(&h), Err(Refusal::ExternalDataFile));
        let mut h = header(3);
        set_u32(&mut h, 112, EXT_DATA_FILE);
        assert_eq!(inspect(&h), Err(Refusal::ExternalDataFile));
    }

    #[test]
    fn refuses_encryption() {
        let mut h = header(2);
        set_u32(&mut h, 32, 1);
        assert_eq!(inspect(&h), Err(Refusal::Encrypted));
        let mut h = header(3);
        set_u32(&mut h, 112, EXT_FULL_DISK_ENCRYPTION);
        assert_eq!(inspect(&h), Err(Refusal::Encrypted));
    }

    #[test]
    fn feature_bits() {
        let mut h = header(3);
        set_u64(&mut h, 72, INCOMPAT_DIRTY | INCOMPAT_COMPRESSION);
        assert!(inspect(&h).is_ok());
        set_u64(&mut h, 72, INCOMPAT_CORRUPT);
        assert_eq!(inspect(&h), Err(Refusal::MarkedCorrupt));
        set_u64(&mut h, 72, 1 << 4);
        assert_eq!(inspect(&h), Err(Refusal::UnknownFeatures(1 << 4)));
        set_u64(&mut h, 72, 1 << 40);
        assert_eq!(inspect(&h), Err(Refusal::UnknownFeatures(1 << 40)));
    }

    #[test]
    fn refuses_corrupt_geometry() {
        let mut h = header(3);
        set_u32(&mut h, 20, 8);
        assert!(matches!(inspect(&h), Err(Refusal::CorruptHeader(_))));
        let mut h = header(3);
        set_u32(&mut h, 100, 100);
        assert!(matches!(inspect(&h), Err(Refusal::CorruptHeader(_))));
        let mut h = header(3);
        set_u64(&mut h, 24, u64::MAX);
        assert!(matches!(inspect(&h), Err(Refusal::CorruptHeader(_))));
    }

    #[test]
    fn extensions_are_walked_until_the_end_marker() {
        let mut h = header(3);
        // An unknown, harmless extension (feature name table) of 13 bytes, padded to 16.
        set_u32(&mut h, 112, 0x6803_f857);
        set_u32(&mut h, 116, 13);
        // Then the data-file extension, which must still be found.
        set_u32(&mut h, 112 + 8 + 16, EXT_DATA_FILE);
        assert_eq!(inspect(&h), Err(Refusal::ExternalDataFile));
    }

    #[test]
    fn extensions_cannot_run_off_the_cluster() {
        let mut h = header(3);
        set_u32(&mut h, 112, 0x6803_f857);
        set_u32(&mut h, 116, u32::MAX);
        assert!(matches!(inspect(&h), Err(Refusal::CorruptHeader(_))));
        // A header whose extension list is cut off by the end of the file.
        let mut h = header(3);
        h.truncate(114);
        assert_eq!(inspect(&h), Err(Refusal::Truncated));
    }
}
