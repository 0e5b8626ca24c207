//! Finds an image's real format from its bytes and refuses what is unsafe to use.
//!
//! The idea is Glance's `format_inspector`: the format comes from header bytes, never from a
//! file name or the uploader's claim, and a header that points outside the file (a backing
//! file, an external data file) or cannot be read without a key is refused. The inspector sees
//! every chunk as it streams past and keeps only the region it needs, so nothing is re-read.

mod qcow2;

use crate::domain::image::DiskFormat;

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
    #[error("The qcow2 header is truncated: the file ends inside its header.")]
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
}

/// Watches a stream of bytes and, at the end, gives a verdict.
#[derive(Debug, Default)]
pub struct Inspector {
    head: Vec<u8>,
    total_bytes: u64,
}

impl Inspector {
    /// The most of the file's start any header check reads: a qcow2 header and its extensions
    /// live in the first cluster, and clusters are at most 2 MiB.
    pub const HEAD_BYTES: usize = 2 << 20;

    pub fn new() -> Self {
        Self::default()
    }

    /// Sees the next chunk of the file.
    pub fn feed(&mut self, chunk: &[u8]) {
        let room = Self::HEAD_BYTES.saturating_sub(self.head.len());
        self.head.extend_from_slice(&chunk[..room.min(chunk.len())]);
        self.total_bytes += chunk.len() as u64;
    }

    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Decides whether the file seen is an acceptable image of the declared format.
    pub fn verdict(&self, declared: DiskFormat) -> Result<Inspection, Refusal> {
        match declared {
            DiskFormat::Qcow2 => qcow2::inspect(&self.head).map(|virtual_size_bytes| Inspection {
                format: DiskFormat::Qcow2,
                virtual_size_bytes,
            }),
        }
    }
}
