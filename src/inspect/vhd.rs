//! Microsoft's VHD and VHDX. Differencing disks, which need a parent image, are refused.

use super::Refusal;
use super::bytes::{be_u32, be_u64, le_u16, le_u32, le_u64};

const VHD_COOKIE: &[u8; 8] = b"conectix";
const VHD_FIXED: u32 = 2;
const VHD_DIFFERENCING: u32 = 4;
const VHD_FOOTER: usize = 512;

const VHDX_SIGNATURE: &[u8; 8] = b"vhdxfile";
const VHDX_REGION_TABLE: usize = 0x30000;
const METADATA_REGION: &str = "8B7CA206-4790-4B9A-B8FE-575F050F886E";
const VIRTUAL_DISK_SIZE: &str = "2FA54224-CD1B-4876-B211-5DBED83BF4B8";
const PARENT_LOCATOR: &str = "A8D35F2D-B30B-454D-ABF7-D3D84834AB0C";

/// A GUID as stored on disk: the first three fields little-endian, the rest as written.
fn guid_bytes(text: &str) -> [u8; 16] {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let mut b = [0u8; 16];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("a GUID literal");
    }
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    b
}

/// A dynamic or differencing VHD starts with a copy of its footer. (A fixed VHD has only the
/// footer at its end and is a raw disk to every reader.)
pub fn detect_vhd(head: &[u8]) -> Option<Result<u64, Refusal>> {
    if !head.starts_with(VHD_COOKIE) {
        return None;
    }
    let (Some(size), Some(disk_type)) = (be_u64(head, 48), be_u32(head, 60)) else {
        return Some(Err(Refusal::Truncated));
    };
    if disk_type == VHD_DIFFERENCING {
        return Some(Err(Refusal::DifferencingDisk("VHD")));
    }
    Some(
        Some(size)
            .filter(|s| *s <= super::MAX_VIRTUAL_SIZE)
            .ok_or(Refusal::CorruptFormatHeader {
                format: "VHD",
                why: "its size is impossibly large",
            }),
    )
}

/// A fixed VHD: the disk's bytes followed by a 512-byte footer, with no copy of it at the
/// start. qemu probes such a file as raw; read as VHD (`-f vpc`, as the console names it) its
/// disk is the bytes before the footer. `tail` is the file's last bytes.
pub fn detect_fixed_vhd(tail: &[u8], file_size: u64) -> Option<Result<u64, Refusal>> {
    let footer = tail.get(tail.len().checked_sub(VHD_FOOTER)?..)?;
    if !footer.starts_with(VHD_COOKIE) {
        return None;
    }
    let corrupt = |why| Refusal::CorruptFormatHeader { format: "VHD", why };
    let (Some(size), Some(disk_type)) = (be_u64(footer, 48), be_u32(footer, 60)) else {
        return Some(Err(Refusal::Truncated));
    };
    if disk_type != VHD_FIXED {
        return Some(Err(corrupt(
            "it has a footer but no header, which only a fixed disk may lack",
        )));
    }
    if size.checked_add(VHD_FOOTER as u64) != Some(file_size) {
        return Some(Err(corrupt(
            "its footer's disk size does not match the file",
        )));
    }
    Some(Ok(size))
}

fn vhdx_corrupt(why: &'static str) -> Refusal {
    Refusal::CorruptFormatHeader {
        format: "VHDX",
        why,
    }
}

pub fn detect_vhdx(head: &[u8]) -> Option<Result<u64, Refusal>> {
    if !head.starts_with(VHDX_SIGNATURE) {
        return None;
    }
    Some(vhdx(head))
}

fn vhdx(head: &[u8]) -> Result<u64, Refusal> {
    let table = head.get(VHDX_REGION_TABLE..).ok_or(Refusal::Truncated)?;
    if !table.starts_with(b"regi") {
        return Err(vhdx_corrupt("its region table is missing"));
    }
    let count = le_u32(table, 8).ok_or(Refusal::Truncated)? as usize;
    if count > 2047 {
        return Err(vhdx_corrupt("its region table is too long"));
    }
    let metadata_id = guid_bytes(METADATA_REGION);
    let mut metadata = None;
    for i in 0..count {
        let entry = table
            .get(16 + 32 * i..48 + 32 * i)
            .ok_or(Refusal::Truncated)?;
        if entry[..16] == metadata_id {
            metadata = le_u64(entry, 16);
        }
    }
    let start = metadata.ok_or(vhdx_corrupt("it has no metadata region"))?;
    let region = usize::try_from(start)
        .ok()
        .and_then(|start| head.get(start..))
        .filter(|region| region.len() >= 32)
        .ok_or(vhdx_corrupt("its metadata is not in the first 4 MiB"))?;
    if !region.starts_with(b"metadata") {
        return Err(vhdx_corrupt("its metadata table is missing"));
    }
    let entries = le_u16(region, 10).ok_or(Refusal::Truncated)? as usize;
    let (size_id, parent_id) = (guid_bytes(VIRTUAL_DISK_SIZE), guid_bytes(PARENT_LOCATOR));
    let mut size = None;
    for i in 0..entries.min(2047) {
        let entry = region
            .get(32 + 32 * i..64 + 32 * i)
            .ok_or(vhdx_corrupt("its metadata table is cut off"))?;
        if entry[..16] == parent_id {
            return Err(Refusal::DifferencingDisk("VHDX"));
        }
        if entry[..16] == size_id {
            let offset = le_u32(entry, 16).ok_or(Refusal::Truncated)? as usize;
            size = le_u64(region, offset);
        }
    }
    size.filter(|s| *s <= super::MAX_VIRTUAL_SIZE)
        .ok_or(vhdx_corrupt("it states no valid virtual size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vhd(disk_type: u32) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..8].copy_from_slice(VHD_COOKIE);
        h[48..56].copy_from_slice(&(64u64 << 20).to_be_bytes());
        h[60..64].copy_from_slice(&disk_type.to_be_bytes());
        h
    }

    #[test]
    fn vhd_dynamic_is_read_and_differencing_refused() {
        assert_eq!(detect_vhd(&vhd(3)), Some(Ok(64 << 20)));
        assert_eq!(
            detect_vhd(&vhd(VHD_DIFFERENCING)),
            Some(Err(Refusal::DifferencingDisk("VHD")))
        );
        assert_eq!(detect_vhd(b"conectix"), Some(Err(Refusal::Truncated)));
        assert_eq!(detect_vhd(b"QFI\xfb"), None);
    }

    #[test]
    fn a_fixed_vhd_is_read_from_its_footer() {
        let mut file = vec![0u8; 4096];
        file.extend(vhd(VHD_FIXED));
        file[4096 + 48..4096 + 56].copy_from_slice(&4096u64.to_be_bytes());
        let tail = &file[file.len() - 512..];
        assert_eq!(detect_fixed_vhd(tail, file.len() as u64), Some(Ok(4096)));
        assert!(matches!(
            detect_fixed_vhd(tail, file.len() as u64 + 1),
            Some(Err(Refusal::CorruptFormatHeader { .. }))
        ));
        assert!(matches!(
            detect_fixed_vhd(&vhd(3), 512),
            Some(Err(Refusal::CorruptFormatHeader { .. }))
        ));
        assert_eq!(detect_fixed_vhd(&[0u8; 512], 512), None);
    }

    /// A VHDX with its metadata at 1 MiB, holding a virtual size and optionally a parent.
    fn vhdx_file(parent: bool) -> Vec<u8> {
        let mut f = vec![0u8; 2 << 20];
        f[..8].copy_from_slice(VHDX_SIGNATURE);
        let t = VHDX_REGION_TABLE;
        f[t..t + 4].copy_from_slice(b"regi");
        f[t + 8..t + 12].copy_from_slice(&1u32.to_le_bytes());
        f[t + 16..t + 32].copy_from_slice(&guid_bytes(METADATA_REGION));
        f[t + 32..t + 40].copy_from_slice(&(1u64 << 20).to_le_bytes());
        let m = 1 << 20;
        f[m..m + 8].copy_from_slice(b"metadata");
        f[m + 10..m + 12].copy_from_slice(&(1 + u16::from(parent)).to_le_bytes());
        f[m + 32..m + 48].copy_from_slice(&guid_bytes(VIRTUAL_DISK_SIZE));
        f[m + 48..m + 52].copy_from_slice(&65_536u32.to_le_bytes());
        f[m + 65_536..m + 65_544].copy_from_slice(&(10u64 << 30).to_le_bytes());
        if parent {
            f[m + 64..m + 80].copy_from_slice(&guid_bytes(PARENT_LOCATOR));
        }
        f
    }

    #[test]
    fn vhdx_size_is_read_from_its_metadata() {
        assert_eq!(detect_vhdx(&vhdx_file(false)), Some(Ok(10 << 30)));
        assert_eq!(
            detect_vhdx(&vhdx_file(true)),
            Some(Err(Refusal::DifferencingDisk("VHDX")))
        );
        assert_eq!(detect_vhdx(b"vhdxfile"), Some(Err(Refusal::Truncated)));
    }

    #[test]
    fn guids_are_stored_mixed_endian() {
        assert_eq!(
            hex(&guid_bytes(METADATA_REGION)),
            "06a27c8b90479a4bb8fe575f050f886e"
        );
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
