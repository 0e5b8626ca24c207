//! VMDK: a sparse extent (`KDMV` header with an embedded text descriptor) or a bare text
//! descriptor. Only self-contained kinds are accepted, and no extent may name another file
//! (CVE-2022-47951: an extent path such as `/etc/passwd` would be read by the hypervisor).

use super::Refusal;
use super::bytes::le_u64;

const SPARSE_MAGIC: &[u8; 4] = b"KDMV";
const DESCRIPTOR_START: &[u8] = b"# Disk DescriptorFile";
/// A descriptor is a few hundred bytes; this bounds what is read as text.
const MAX_DESCRIPTOR_BYTES: u64 = 1 << 20;
const SECTOR: u64 = 512;
/// The kinds whose data lives in the file itself.
const SELF_CONTAINED: [&str; 2] = ["monolithicSparse", "streamOptimized"];

/// `None` if the file is not a VMDK; otherwise its virtual size or why it is refused.
pub fn detect(head: &[u8]) -> Option<Result<u64, Refusal>> {
    if head.starts_with(SPARSE_MAGIC) {
        return Some(sparse(head));
    }
    if head.starts_with(DESCRIPTOR_START) {
        let text = String::from_utf8_lossy(&head[..head.len().min(MAX_DESCRIPTOR_BYTES as usize)]);
        return Some(descriptor(&text).map(|sectors| sectors * SECTOR));
    }
    None
}

fn corrupt(why: &'static str) -> Refusal {
    Refusal::CorruptFormatHeader {
        format: "VMDK",
        why,
    }
}

fn sparse(head: &[u8]) -> Result<u64, Refusal> {
    let (Some(capacity), Some(offset), Some(size)) =
        (le_u64(head, 12), le_u64(head, 28), le_u64(head, 36))
    else {
        return Err(Refusal::Truncated);
    };
    if offset == 0 || size == 0 {
        return Err(corrupt("it has no embedded descriptor"));
    }
    let (Some(start), Some(len)) = (offset.checked_mul(SECTOR), size.checked_mul(SECTOR)) else {
        return Err(corrupt("its descriptor position is impossible"));
    };
    if len > MAX_DESCRIPTOR_BYTES {
        return Err(corrupt("its descriptor is too large"));
    }
    let end = start.saturating_add(len);
    let Some(bytes) = head.get(start as usize..end as usize) else {
        return Err(corrupt(
            "its descriptor is not in the first part of the file",
        ));
    };
    let text = String::from_utf8_lossy(bytes);
    descriptor(text.trim_end_matches('\0'))?;
    capacity
        .checked_mul(SECTOR)
        .filter(|size| *size <= super::MAX_VIRTUAL_SIZE)
        .ok_or(corrupt("its capacity is impossibly large"))
}

/// Checks a descriptor and returns the sectors its extents hold.
fn descriptor(text: &str) -> Result<u64, Refusal> {
    let mut create_type = None;
    let mut sectors = 0u64;
    let mut extents = 0;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with("ddb.") {
            continue;
        }
        let mut words = line.split_whitespace();
        if matches!(words.next(), Some("RW" | "RDONLY" | "NOACCESS")) {
            let size = words
                .next()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or(corrupt("an extent has no size"))?;
            let file = line
                .split('"')
                .nth(1)
                .ok_or(corrupt("an extent names no file"))?;
            if file.contains('/') || file.contains('\\') {
                return Err(Refusal::VmdkExternalExtent(
                    file.chars().take(200).collect(),
                ));
            }
            sectors = sectors.saturating_add(size);
            extents += 1;
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            if key.trim() == "createType" {
                create_type = Some(value.trim().trim_matches('"').to_owned());
            }
            continue;
        }
        return Err(corrupt(
            "its descriptor has a line that is not a setting or an extent",
        ));
    }
    let create_type = create_type.ok_or(corrupt("its descriptor names no createType"))?;
    if !SELF_CONTAINED.contains(&create_type.as_str()) {
        return Err(Refusal::VmdkCreateType(
            create_type.chars().take(64).collect(),
        ));
    }
    if extents == 0 {
        return Err(corrupt("its descriptor lists no extent"));
    }
    Ok(sectors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sparse_file(descriptor: &str) -> Vec<u8> {
        let mut file = vec![0u8; 2048 + 512];
        file[..4].copy_from_slice(SPARSE_MAGIC);
        file[12..20].copy_from_slice(&131_072u64.to_le_bytes());
        file[28..36].copy_from_slice(&1u64.to_le_bytes());
        file[36..44].copy_from_slice(&3u64.to_le_bytes());
        file[512..512 + descriptor.len()].copy_from_slice(descriptor.as_bytes());
        file
    }

    const SPARSE: &str = "# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicSparse\"\n\n# Extent description\nRW 131072 SPARSE \"disk.vmdk\"\n\nddb.adapterType = \"ide\"\n";

    #[test]
    fn accepts_a_monolithic_sparse_file() {
        assert_eq!(detect(&sparse_file(SPARSE)), Some(Ok(64 << 20)));
        assert_eq!(detect(b"QFI\xfb"), None);
    }

    #[test]
    fn refuses_extents_outside_the_file() {
        let outside = SPARSE.replace("\"disk.vmdk\"", "\"/etc/passwd\"");
        assert_eq!(
            detect(&sparse_file(&outside)),
            Some(Err(Refusal::VmdkExternalExtent("/etc/passwd".into())))
        );
        let relative = SPARSE.replace("\"disk.vmdk\"", "\"../other/disk.vmdk\"");
        assert!(matches!(
            detect(&sparse_file(&relative)),
            Some(Err(Refusal::VmdkExternalExtent(_)))
        ));
    }

    #[test]
    fn refuses_kinds_that_keep_data_elsewhere() {
        let flat = "# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\nRW 131072 FLAT \"disk-flat.vmdk\" 0\n";
        assert_eq!(
            detect(flat.as_bytes()),
            Some(Err(Refusal::VmdkCreateType("monolithicFlat".into())))
        );
    }

    #[test]
    fn refuses_broken_descriptors() {
        let no_extent = "# Disk DescriptorFile\ncreateType=\"monolithicSparse\"\n";
        assert!(matches!(
            detect(&sparse_file(no_extent)),
            Some(Err(Refusal::CorruptFormatHeader { .. }))
        ));
        let mut no_descriptor = sparse_file(SPARSE);
        no_descriptor[28..36].copy_from_slice(&0u64.to_le_bytes());
        assert!(matches!(
            detect(&no_descriptor),
            Some(Err(Refusal::CorruptFormatHeader { .. }))
        ));
        assert_eq!(detect(b"KDMV\x01\0\0\0"), Some(Err(Refusal::Truncated)));
    }
}
