//! Finds an image's real format from its bytes and refuses what is unsafe to use.
//!
//! The idea is Glance's `format_inspector`: the format comes from header bytes, never from a
//! file name or the uploader's claim. Every inspector looks at the same bytes; the file must
//! match exactly one format, and it must be the declared one, because a header hidden inside
//! another format (a qcow2 header in an ISO's free system area, say) would make a hypervisor
//! that probes read the file differently from the console. A header that points outside the
//! file (a backing file, an external data file or extent, a parent disk) or cannot be read
//! without a key is refused. Besides the formats the console accepts, it knows every format
//! qemu recognises by probing (VDI, Parallels, Bochs, cloop, DMG, QED, LUKS): a raw image must
//! match none of them. The inspector sees every chunk as it streams past and keeps only the
//! start and the end of the file, so nothing is re-read.

mod bytes;
mod foreign;
mod iso;
mod qcow2;
mod vhd;
mod vmdk;

pub(crate) use vmdk::SELF_CONTAINED as VMDK_SELF_CONTAINED;

use crate::domain::image::DiskFormat;

/// 64 PiB: far beyond any real disk, small enough that size arithmetic cannot overflow.
const MAX_VIRTUAL_SIZE: u64 = 1 << 56;

/// What inspection learnt about an acceptable image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inspection {
    pub format: DiskFormat,
    pub virtual_size_bytes: u64,
}

/// Why an image was refused. `Display` is the reason shown on the image.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("The file is not a qcow2 image: it does not start with the qcow2 signature.")]
    NotQcow2,
    #[error("The file is not a {0} image: it has no {0} header.")]
    NoHeader(&'static str),
    #[error("The file is a {detected} image, not the {declared} image it was declared to be.")]
    FormatMismatch {
        detected: &'static str,
        declared: &'static str,
    },
    #[error(
        "The file has both {0} and {1} headers; an image that hides one format inside another is refused."
    )]
    Ambiguous(&'static str, &'static str),
    #[error(
        "The file is a {detected} image, not the {declared} image it was declared to be; {detected} images are not accepted (convert it to qcow2 or raw with qemu-img convert first)."
    )]
    UnacceptedFormat {
        detected: &'static str,
        declared: &'static str,
    },
    #[error("The header is truncated: the file ends inside its header.")]
    Truncated,
    #[error("qcow2 version {0} is not supported; only versions 2 and 3 can be imported.")]
    UnsupportedVersion(u32),
    #[error(
        "The qcow2 image refers to a backing file; only self-contained images can be imported."
    )]
    BackingFile,
    #[error(
        "The qcow2 image keeps its data in an external data file; only self-contained images can be imported."
    )]
    ExternalDataFile,
    #[error("The qcow2 image is encrypted; encrypted images cannot be imported.")]
    Encrypted,
    #[error("The qcow2 image is marked corrupt.")]
    MarkedCorrupt,
    #[error(
        "The qcow2 image uses features this console does not accept (incompatible feature bits {0:#x})."
    )]
    UnknownFeatures(u64),
    #[error("The qcow2 header is corrupt: {0}.")]
    CorruptHeader(&'static str),
    #[error(
        "The VMDK descriptor points to a file outside the image ({0}); only self-contained images can be imported."
    )]
    VmdkExternalExtent(String),
    #[error(
        "VMDK images of type {0} keep their data in other files; only monolithicSparse and streamOptimized VMDK images can be imported."
    )]
    VmdkCreateType(String),
    #[error(
        "The VMDK descriptor names createType {0} times (comments included); it must name it exactly once, so that every reader sees the same type."
    )]
    VmdkCreateTypeCount(usize),
    #[error(
        "The VMDK descriptor must list exactly one extent, the image file itself (RW, SPARSE); other extents keep data in other files."
    )]
    VmdkExtents,
    #[error(
        "The VMDK header states a capacity of 0, which makes qemu read its descriptor as a separate descriptor file; the image is refused."
    )]
    VmdkZeroCapacity,
    #[error(
        "The VMDK image names a parent image (parentFileNameHint); only self-contained images can be imported."
    )]
    VmdkParent,
    #[error(
        "The file is a bare VMDK descriptor, whose data lives in the files it names; only monolithicSparse and streamOptimized VMDK images, which carry their data, can be imported."
    )]
    VmdkDescriptorOnly,
    #[error(
        "The file is a VMFS sparse (COWD) VMDK extent, one part of a multi-file disk; only monolithicSparse and streamOptimized VMDK images can be imported."
    )]
    VmdkVmfsExtent,
    #[error(
        "The {0} image is a differencing disk that needs a parent image; only self-contained images can be imported."
    )]
    DifferencingDisk(&'static str),
    #[error("The {format} header is corrupt: {why}.")]
    CorruptFormatHeader {
        format: &'static str,
        why: &'static str,
    },
}

/// Watches a stream of bytes and, at the end, gives a verdict.
#[derive(Debug, Default)]
pub struct Inspector {
    head: Vec<u8>,
    /// The last `TAIL_BYTES` seen, for formats whose signature is a trailer (DMG).
    tail: Vec<u8>,
    total_bytes: u64,
}

/// A format the inspector recognises, whether or not the console accepts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Detected {
    Qcow2,
    Vmdk,
    Vhd,
    Vhdx,
    Iso,
    Gpt,
    /// Probed by qemu, never accepted here.
    Foreign(foreign::Foreign),
}

impl Detected {
    fn name(self) -> &'static str {
        match self {
            Detected::Qcow2 => "qcow2",
            Detected::Vmdk => "VMDK",
            Detected::Vhd => "VHD",
            Detected::Vhdx => "VHDX",
            Detected::Iso => "ISO",
            Detected::Gpt => "GPT disk",
            Detected::Foreign(format) => format.name(),
        }
    }

    fn disk_format(self) -> Option<DiskFormat> {
        match self {
            Detected::Qcow2 => Some(DiskFormat::Qcow2),
            Detected::Vmdk => Some(DiskFormat::Vmdk),
            Detected::Vhd => Some(DiskFormat::Vhd),
            Detected::Vhdx => Some(DiskFormat::Vhdx),
            Detected::Iso => Some(DiskFormat::Iso),
            // A partitioned disk is a raw image.
            Detected::Gpt | Detected::Foreign(_) => None,
        }
    }
}

impl Inspector {
    /// How much of the file's start the checks read: a qcow2 header and its extensions live
    /// in the first cluster (at most 2 MiB), a VMDK descriptor in the first MiB, an ISO's
    /// descriptors at 32 KiB, and a VHDX's metadata region within its first 4 MiB.
    pub const HEAD_BYTES: usize = 4 << 20;
    /// How much of the file's end the checks read: a DMG trailer.
    pub const TAIL_BYTES: usize = 512;

    pub fn new() -> Self {
        Self::default()
    }

    /// An inspector that has seen a file whose first bytes are `head`, whose last bytes are
    /// `tail` (up to `TAIL_BYTES`) and whose length is `total_bytes`: a resumed upload's
    /// inspector is rebuilt from the file on disk rather than from the stream.
    pub fn of_file(head: &[u8], tail: &[u8], total_bytes: u64) -> Self {
        let head = head[..head.len().min(Self::HEAD_BYTES)].to_vec();
        let tail = tail[tail.len().saturating_sub(Self::TAIL_BYTES)..].to_vec();
        Self {
            head,
            tail,
            total_bytes,
        }
    }

    /// Sees the next chunk of the file.
    pub fn feed(&mut self, chunk: &[u8]) {
        let room = Self::HEAD_BYTES.saturating_sub(self.head.len());
        self.head.extend_from_slice(&chunk[..room.min(chunk.len())]);
        if chunk.len() >= Self::TAIL_BYTES {
            self.tail.clear();
            self.tail
                .extend_from_slice(&chunk[chunk.len() - Self::TAIL_BYTES..]);
        } else {
            self.tail.extend_from_slice(chunk);
            let excess = self.tail.len().saturating_sub(Self::TAIL_BYTES);
            self.tail.drain(..excess);
        }
        self.total_bytes += chunk.len() as u64;
    }

    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Decides whether the file seen is an acceptable image of the declared format.
    pub fn verdict(&self, declared: DiskFormat) -> Result<Inspection, Refusal> {
        let head = self.head.as_slice();
        let size = self.total_bytes;
        let findings = [
            (Detected::Qcow2, qcow2::detect(head)),
            (Detected::Vmdk, vmdk::detect(head)),
            (Detected::Vhd, vhd::detect_vhd(head)),
            (Detected::Vhdx, vhd::detect_vhdx(head)),
            (Detected::Iso, iso::detect_iso(head, size)),
            (Detected::Gpt, iso::detect_gpt(head, size)),
        ];
        let mut matched = Vec::new();
        for (format, finding) in findings {
            match finding {
                Some(Ok(virtual_size)) => matched.push((format, virtual_size)),
                // Unsafe in its own format: that is the reason, whatever was declared.
                Some(Err(refusal)) => return Err(refusal),
                None => {}
            }
        }
        for format in foreign::Foreign::ALL {
            if format.matches(head, &self.tail, size) {
                matched.push((Detected::Foreign(format), size));
            }
        }
        let accept = |format: DiskFormat, virtual_size_bytes: u64| {
            Ok(Inspection {
                format,
                virtual_size_bytes,
            })
        };
        match (matched.as_slice(), declared) {
            // Raw has no header: a file no detector claims is raw, as is a partitioned disk
            // (CVE-2024-40767: a raw image may match nothing but a partition table).
            ([], DiskFormat::Raw) | ([(Detected::Gpt, _)], DiskFormat::Raw) => {
                accept(DiskFormat::Raw, size)
            }
            ([], DiskFormat::Qcow2) => Err(Refusal::NotQcow2),
            // A fixed VHD has no header, only a footer (and is raw to qemu's probe).
            ([], DiskFormat::Vhd) => match vhd::detect_fixed_vhd(&self.tail, size) {
                Some(Ok(virtual_size)) => accept(DiskFormat::Vhd, virtual_size),
                Some(Err(refusal)) => Err(refusal),
                None => Err(Refusal::NoHeader(DiskFormat::Vhd.label())),
            },
            ([], other) => Err(Refusal::NoHeader(other.label())),
            ([(format, virtual_size)], declared) if format.disk_format() == Some(declared) => {
                accept(declared, *virtual_size)
            }
            ([(format @ Detected::Foreign(_), _)], declared) => Err(Refusal::UnacceptedFormat {
                detected: format.name(),
                declared: declared.label(),
            }),
            ([(format, _)], declared) => Err(Refusal::FormatMismatch {
                detected: format.name(),
                declared: declared.label(),
            }),
            // A hybrid ISO carries a partition table for USB sticks; it is still an ISO.
            ([(Detected::Iso, virtual_size), (Detected::Gpt, _)], DiskFormat::Iso) => {
                accept(DiskFormat::Iso, *virtual_size)
            }
            ([(first, _), (second, _), ..], _) => {
                Err(Refusal::Ambiguous(first.name(), second.name()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(bytes: &[u8]) -> Result<Inspection, Refusal> {
        verdict_as(bytes, DiskFormat::Qcow2)
    }

    fn verdict_as(bytes: &[u8], declared: DiskFormat) -> Result<Inspection, Refusal> {
        let mut inspector = Inspector::new();
        // In uneven chunks, as a stream delivers them.
        for chunk in bytes.chunks(7919) {
            inspector.feed(chunk);
        }
        inspector.verdict(declared)
    }

    #[test]
    fn each_declared_format_accepts_its_own_files_only() {
        let iso = iso::tests::iso(100);
        let accepted = verdict_as(&iso, DiskFormat::Iso).unwrap();
        assert_eq!(accepted.format, DiskFormat::Iso);
        // Raw: no header at all, virtual size = file size.
        assert_eq!(
            verdict_as(&[7u8; 70_000], DiskFormat::Raw),
            Ok(Inspection {
                format: DiskFormat::Raw,
                virtual_size_bytes: 70_000
            })
        );
        let mut qcow2 = qcow2::tests::header(3);
        qcow2.resize(1 << 20, 0);
        assert_eq!(
            verdict_as(&qcow2, DiskFormat::Raw),
            Err(Refusal::FormatMismatch {
                detected: "qcow2",
                declared: "Raw"
            }),
            "a qcow2 file declared raw would be read as qcow2 by a probing hypervisor"
        );
        assert_eq!(
            verdict_as(&iso, DiskFormat::Raw),
            Err(Refusal::FormatMismatch {
                detected: "ISO",
                declared: "Raw"
            })
        );
        assert_eq!(
            verdict_as(&[0u8; 4096], DiskFormat::Vmdk),
            Err(Refusal::NoHeader("VMDK"))
        );
        assert_eq!(
            verdict_as(&qcow2, DiskFormat::Iso),
            Err(Refusal::FormatMismatch {
                detected: "qcow2",
                declared: "ISO"
            })
        );
    }

    #[test]
    fn a_qcow2_file_is_accepted() {
        let mut file = qcow2::tests::header(3);
        file.resize(1 << 20, 0);
        assert_eq!(
            verdict(&file),
            Ok(Inspection {
                format: DiskFormat::Qcow2,
                virtual_size_bytes: 1 << 30
            })
        );
    }

    #[test]
    fn other_formats_are_not_what_was_declared() {
        assert_eq!(verdict(&[0u8; 65_536]), Err(Refusal::NotQcow2));
        assert_eq!(
            verdict(&iso::tests::iso(100)),
            Err(Refusal::FormatMismatch {
                detected: "ISO",
                declared: "qcow2"
            })
        );
        let mut qed = vec![0u8; 4096];
        qed[..4].copy_from_slice(b"QED\0");
        assert_eq!(
            verdict_as(&qed, DiskFormat::Raw),
            Err(Refusal::UnacceptedFormat {
                detected: "QED",
                declared: "Raw"
            })
        );
    }

    #[test]
    fn a_raw_image_matches_no_format_qemu_probes() {
        let mut vdi = vec![0u8; 1 << 20];
        vdi[0x40..0x44].copy_from_slice(&0xbeda_107fu32.to_le_bytes());
        let cases = [
            (vdi, "VDI"),
            (foreign::tests::bochs(), "Bochs"),
            (foreign::tests::cloop(), "cloop"),
            (foreign::tests::dmg(), "DMG"),
        ];
        for (file, detected) in cases {
            assert_eq!(
                verdict_as(&file, DiskFormat::Raw),
                Err(Refusal::UnacceptedFormat {
                    detected,
                    declared: "Raw"
                })
            );
            assert_eq!(
                verdict_as(&file, DiskFormat::Qcow2),
                Err(Refusal::UnacceptedFormat {
                    detected,
                    declared: "qcow2"
                })
            );
        }
    }

    #[test]
    fn a_trailer_is_found_however_the_stream_is_cut() {
        let file = foreign::tests::dmg();
        for piece in [1, 100, 511, 512, 513, 4096, file.len()] {
            let mut inspector = Inspector::new();
            for chunk in file.chunks(piece) {
                inspector.feed(chunk);
            }
            assert_eq!(
                inspector.tail,
                file[file.len() - 512..],
                "pieces of {piece}"
            );
        }
        let rebuilt = Inspector::of_file(&file[..4096], &file[file.len() - 512..], 8192);
        assert!(matches!(
            rebuilt.verdict(DiskFormat::Raw),
            Err(Refusal::UnacceptedFormat { .. })
        ));
    }

    #[test]
    fn a_qcow2_header_hidden_in_an_iso_is_refused() {
        let mut file = iso::tests::iso(100);
        let header = qcow2::tests::header(3);
        file[..header.len()].copy_from_slice(&header);
        assert_eq!(verdict(&file), Err(Refusal::Ambiguous("qcow2", "ISO")));
    }

    #[test]
    fn only_the_head_is_kept() {
        let mut inspector = Inspector::new();
        for _ in 0..10 {
            inspector.feed(&[0u8; 1 << 20]);
        }
        assert_eq!(inspector.head.len(), Inspector::HEAD_BYTES);
        assert_eq!(inspector.total_bytes(), 10 << 20);
    }
}
