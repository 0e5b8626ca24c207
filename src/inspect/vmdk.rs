//! VMDK, read as qemu reads it. Only a self-contained sparse file (`KDMV` header with its
//! descriptor embedded) is accepted, and only when qemu and this check would agree on what it
//! is:
//!
//! - qemu takes the first `createType` it finds anywhere in the descriptor, comments
//!   included, so a descriptor that names it more than once is refused (CVE-2024-32498);
//! - a header with capacity 0 makes qemu open the embedded descriptor as a descriptor file,
//!   whose extents name other files, so it is refused;
//! - the descriptor must list exactly one extent, the file itself, and no extent may name a
//!   path (CVE-2022-47951);
//! - qemu looks for a parent (`parentFileNameHint`) in the descriptor area at 512 bytes
//!   whatever the header says, so that area must not name one;
//! - a bare text descriptor, or a VMFS (`COWD`) extent, is always part of a multi-file disk
//!   and is refused, as Glance does.

use super::Refusal;
use super::bytes::le_u64;
use super::foreign::PROBE_BYTES;

const SPARSE_MAGIC: &[u8; 4] = b"KDMV";
const VMFS_SPARSE_MAGIC: &[u8; 4] = b"COWD";
const DESCRIPTOR_START: &[u8] = b"# Disk DescriptorFile";
/// A descriptor is a few hundred bytes; this bounds what is read as text.
const MAX_DESCRIPTOR_BYTES: u64 = 1 << 20;
const SECTOR: u64 = 512;
/// Where, and how much, qemu reads when it looks for a parent image (`vmdk_parent_open`).
const PARENT_SEARCH_AT: usize = 0x200;
const PARENT_SEARCH_BYTES: usize = 20 * 512;
/// The kinds whose data lives in the file itself.
pub(crate) const SELF_CONTAINED: [&str; 2] = ["monolithicSparse", "streamOptimized"];
const ACCESS_MODES: [&str; 3] = ["RW", "RDONLY", "NOACCESS"];

/// `None` if the file is not a VMDK; otherwise its virtual size or why it is refused.
pub fn detect(head: &[u8]) -> Option<Result<u64, Refusal>> {
    if head.starts_with(SPARSE_MAGIC) {
        return Some(sparse(head));
    }
    if head.starts_with(VMFS_SPARSE_MAGIC) {
        return Some(Err(Refusal::VmdkVmfsExtent));
    }
    if head.starts_with(DESCRIPTOR_START) || qemu_probes_text_descriptor(head) {
        return Some(Err(Refusal::VmdkDescriptorOnly));
    }
    None
}

/// qemu's `vmdk_probe` for text: after comment lines and lines of spaces, the first line is
/// `version=1`, `2` or `3`.
fn qemu_probes_text_descriptor(head: &[u8]) -> bool {
    let buf = &head[..head.len().min(PROBE_BYTES)];
    let mut p = 0;
    while p < buf.len() {
        match buf[p] {
            b'#' => {
                while p < buf.len() && buf[p] != b'\n' {
                    p += 1;
                }
                p += 1;
            }
            b' ' => {
                while p < buf.len() && buf[p] == b' ' {
                    p += 1;
                }
                if p < buf.len() && buf[p] == b'\r' {
                    p += 1;
                }
                if p == buf.len() || buf[p] != b'\n' {
                    return false;
                }
                p += 1;
            }
            _ => {
                let rest = &buf[p..];
                return (1..=3).any(|v| {
                    let line = format!("version={v}");
                    rest.starts_with(format!("{line}\n").as_bytes())
                        || rest.starts_with(format!("{line}\r\n").as_bytes())
                });
            }
        }
    }
    false
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
    if capacity == 0 {
        return Err(Refusal::VmdkZeroCapacity);
    }
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
    let parent_area = head
        .get(PARENT_SEARCH_AT..head.len().min(PARENT_SEARCH_AT + PARENT_SEARCH_BYTES))
        .unwrap_or_default();
    if contains(c_string(parent_area), b"parentFileNameHint") {
        return Err(Refusal::VmdkParent);
    }
    descriptor(&String::from_utf8_lossy(c_string(bytes)))?;
    capacity
        .checked_mul(SECTOR)
        .filter(|size| *size <= super::MAX_VIRTUAL_SIZE)
        .ok_or(corrupt("its capacity is impossibly large"))
}

/// The bytes before the first NUL: qemu reads the descriptor as a C string.
fn c_string(bytes: &[u8]) -> &[u8] {
    bytes.split(|b| *b == 0).next().unwrap_or_default()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Checks an embedded descriptor: one `createType`, a self-contained one, and one extent that
/// is the file itself.
fn descriptor(text: &str) -> Result<(), Refusal> {
    let create_type = qemu_create_type(text)?;
    if !SELF_CONTAINED.contains(&create_type.as_str()) {
        return Err(Refusal::VmdkCreateType(
            create_type.chars().take(64).collect(),
        ));
    }
    let mut extents = 0;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with("ddb.") {
            continue;
        }
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        if ACCESS_MODES.contains(&first) {
            extents += 1;
            let file = line
                .split('"')
                .nth(1)
                .ok_or(corrupt("an extent names no file"))?;
            if file.contains('/') || file.contains('\\') {
                return Err(Refusal::VmdkExternalExtent(
                    file.chars().take(200).collect(),
                ));
            }
            let sectors = words.next().and_then(|s| s.parse::<u64>().ok());
            let kind = words.next();
            if first != "RW" || sectors.is_none_or(|s| s == 0) || kind != Some("SPARSE") {
                return Err(Refusal::VmdkExtents);
            }
            continue;
        }
        if !line.contains('=') {
            return Err(corrupt(
                "its descriptor has a line that is not a setting or an extent",
            ));
        }
    }
    if extents != 1 {
        return Err(Refusal::VmdkExtents);
    }
    Ok(())
}

/// The `createType` as qemu's `vmdk_parse_description` reads it: the first occurrence of the
/// word anywhere, then `="`, then up to the next quote. More than one occurrence is refused,
/// since a reader that skips comments would see a different one.
fn qemu_create_type(text: &str) -> Result<String, Refusal> {
    const KEY: &str = "createType";
    let count = text.matches(KEY).count();
    if count != 1 {
        return Err(Refusal::VmdkCreateTypeCount(count));
    }
    let at = text.find(KEY).unwrap_or_default() + KEY.len();
    let value = text[at..]
        .strip_prefix("=\"")
        .and_then(|rest| rest.split_once('"'))
        .map(|(value, _)| value)
        .ok_or(corrupt("its createType setting is malformed"))?;
    Ok(value.to_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A monolithicSparse VMDK with `descriptor` embedded at sector 1.
    pub fn sparse_file(descriptor: &str) -> Vec<u8> {
        let mut file = vec![0u8; 2048 + 512 + descriptor.len()];
        file[..4].copy_from_slice(SPARSE_MAGIC);
        file[12..20].copy_from_slice(&131_072u64.to_le_bytes());
        file[28..36].copy_from_slice(&1u64.to_le_bytes());
        file[36..44].copy_from_slice(&(descriptor.len() as u64).div_ceil(512).max(3).to_le_bytes());
        file[512..512 + descriptor.len()].copy_from_slice(descriptor.as_bytes());
        file
    }

    pub const SPARSE: &str = "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\n\n# Extent description\nRW 131072 SPARSE \"disk.vmdk\"\n\n# The Disk Data Base\n#DDB\n\nddb.adapterType = \"ide\"\n";

    #[test]
    fn accepts_a_monolithic_sparse_file() {
        assert_eq!(detect(&sparse_file(SPARSE)), Some(Ok(64 << 20)));
        let stream = SPARSE.replace("monolithicSparse", "streamOptimized");
        assert_eq!(detect(&sparse_file(&stream)), Some(Ok(64 << 20)));
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
    fn only_the_one_embedded_extent_is_allowed() {
        let two = SPARSE.replace(
            "RW 131072 SPARSE \"disk.vmdk\"",
            "RW 131072 SPARSE \"disk.vmdk\"\nRW 2048 FLAT \"good.qcow2\" 0",
        );
        assert_eq!(detect(&sparse_file(&two)), Some(Err(Refusal::VmdkExtents)));
        let flat = SPARSE.replace("SPARSE \"disk.vmdk\"", "FLAT \"disk.vmdk\" 0");
        assert_eq!(detect(&sparse_file(&flat)), Some(Err(Refusal::VmdkExtents)));
        let read_only = SPARSE.replace("RW 131072", "RDONLY 131072");
        assert_eq!(
            detect(&sparse_file(&read_only)),
            Some(Err(Refusal::VmdkExtents))
        );
        let none = SPARSE.replace("RW 131072 SPARSE \"disk.vmdk\"", "");
        assert_eq!(detect(&sparse_file(&none)), Some(Err(Refusal::VmdkExtents)));
    }

    #[test]
    fn create_type_must_appear_once_as_qemu_reads_it() {
        // A comment that a line-by-line reader skips, but qemu's strstr finds first.
        let commented = SPARSE.replace(
            "createType=\"monolithicSparse\"",
            "# createType=\"monolithicFlat\"\ncreateType=\"monolithicSparse\"",
        );
        assert_eq!(
            detect(&sparse_file(&commented)),
            Some(Err(Refusal::VmdkCreateTypeCount(2)))
        );
        let missing = SPARSE.replace("createType=\"monolithicSparse\"\n", "");
        assert_eq!(
            detect(&sparse_file(&missing)),
            Some(Err(Refusal::VmdkCreateTypeCount(0)))
        );
        let spaced = SPARSE.replace("createType=\"", "createType = \"");
        assert!(matches!(
            detect(&sparse_file(&spaced)),
            Some(Err(Refusal::CorruptFormatHeader { .. }))
        ));
        let flat = SPARSE.replace("monolithicSparse", "monolithicFlat");
        assert_eq!(
            detect(&sparse_file(&flat)),
            Some(Err(Refusal::VmdkCreateType("monolithicFlat".into())))
        );
    }

    #[test]
    fn text_after_a_nul_is_not_read() {
        let mut file = sparse_file(SPARSE);
        // qemu stops at the first NUL; what follows cannot add a second createType.
        let at = 512 + SPARSE.len() + 1;
        file[at..at + 20].copy_from_slice(b"createType=\"vmfs\"\n\0\0");
        assert_eq!(detect(&file), Some(Ok(64 << 20)));
    }

    #[test]
    fn refuses_zero_capacity_and_parents() {
        let mut zero = sparse_file(SPARSE);
        zero[12..20].copy_from_slice(&0u64.to_le_bytes());
        assert_eq!(detect(&zero), Some(Err(Refusal::VmdkZeroCapacity)));
        let parent = SPARSE.replace(
            "parentCID=ffffffff",
            "parentCID=12345678\nparentFileNameHint=\"base.vmdk\"",
        );
        assert_eq!(
            detect(&sparse_file(&parent)),
            Some(Err(Refusal::VmdkParent))
        );
    }

    #[test]
    fn refuses_bare_descriptors_as_qemu_probes_them() {
        let bare = "# Disk DescriptorFile\n# createType=\"monolithicFlat\"\ncreateType=\"monolithicSparse\"\nRW 2048 FLAT \"good.qcow2\" 0\n";
        assert_eq!(
            detect(bare.as_bytes()),
            Some(Err(Refusal::VmdkDescriptorOnly))
        );
        // No "Disk DescriptorFile" comment: qemu still probes it as VMDK.
        for probed in [
            "version=1\nRW 1 FLAT \"x\" 0\n",
            "# hi\n   \r\nversion=3\r\n",
        ] {
            assert_eq!(
                detect(probed.as_bytes()),
                Some(Err(Refusal::VmdkDescriptorOnly)),
                "{probed:?}"
            );
        }
        // An empty line before version= ends qemu's probe: raw to qemu and to us.
        assert_eq!(detect(b"\nversion=1\n"), None);
        assert_eq!(detect(b"version=4\n"), None);
        assert_eq!(
            detect(b"COWD\x01\0\0\0"),
            Some(Err(Refusal::VmdkVmfsExtent))
        );
    }

    #[test]
    fn refuses_broken_headers() {
        let mut no_descriptor = sparse_file(SPARSE);
        no_descriptor[28..36].copy_from_slice(&0u64.to_le_bytes());
        assert!(matches!(
            detect(&no_descriptor),
            Some(Err(Refusal::CorruptFormatHeader { .. }))
        ));
        assert_eq!(detect(b"KDMV\x01\0\0\0"), Some(Err(Refusal::Truncated)));
        let junk = SPARSE.replace("# Extent description", "just words");
        assert!(matches!(
            detect(&sparse_file(&junk)),
            Some(Err(Refusal::CorruptFormatHeader { .. }))
        ));
    }
}
