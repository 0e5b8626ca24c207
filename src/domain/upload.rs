//! Uploading a local file: the file the Create form names, and the parts of the tus 1.0
//! protocol that the browser's driver and the server's routes must agree on.

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::image::DiskFormat;
use super::units::{fixed, format_bytes};
use super::validation::{FieldError, describe_char};

/// Form field names of the local-file source.
pub mod field {
    /// The file input; errors about the file are shown under it.
    pub const LOCAL_FILE: &str = "local_file";
    pub const FILE_NAME: &str = "file_name";
    pub const FILE_SIZE: &str = "file_size";
}

/// The protocol version, sent in `Tus-Resumable` on every request and response but OPTIONS.
pub const TUS_VERSION: &str = "1.0.0";
/// The extensions the server implements.
pub const TUS_EXTENSIONS: &str = "creation,creation-with-upload,termination,expiration";
/// The only body type PATCH accepts.
pub const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";
/// The browser sends the file in pieces of this size, one PATCH each, so a broken connection
/// costs at most one piece and progress is reported piece by piece.
pub const CHUNK_BYTES: u64 = 32 << 20;
/// An account may have at most this many images Uploading at once; each reserves its size
/// in the storage quota until it ends.
pub const MAX_UPLOADS_IN_PROGRESS: u64 = 10;
/// `Upload-Metadata` may be at most this long.
pub const MAX_METADATA_BYTES: usize = 4096;

/// Where a tus client creates the upload of an Uploading image.
pub fn upload_creation_path(image_id: &str) -> String {
    format!("/images/{image_id}/uploads")
}

/// An Uploading image's upload, so a browser that lost track of it (after a reload) can
/// resume or cancel it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRef {
    /// `/uploads/{id}`.
    pub path: String,
    pub offset: u64,
    pub length: u64,
}

/// Where an upload lives.
pub fn upload_path(upload_id: &str) -> String {
    format!("/uploads/{upload_id}")
}

/// The local file an image is created from, as the Create form describes it: its name and
/// its size, both checked before anything is sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalImageFile {
    name: String,
    size_bytes: u64,
}

impl LocalImageFile {
    pub const MAX_NAME_CHARS: usize = 255;

    /// `size` is the decimal byte count the browser read from the file; `limit` is the import
    /// size limit.
    pub fn parse(name: &str, size: &str, limit: u64) -> Result<Self, FieldError> {
        let err = |m: String| Err(FieldError::new(field::LOCAL_FILE, m));
        if name.is_empty() {
            return err("Choose the image file to upload.".into());
        }
        let count = name.chars().count();
        if count > Self::MAX_NAME_CHARS {
            return err(format!(
                "The file name must be at most {} characters (it has {count}).",
                Self::MAX_NAME_CHARS
            ));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| c.is_control() || matches!(c, '/' | '\\'))
        {
            return err(format!(
                "The file name cannot contain {}.",
                describe_char(bad)
            ));
        }
        if DiskFormat::from_file_name(name).is_none() {
            return err(format!(
                "The file must be a disk image ({}); {name} is not.",
                DiskFormat::every_extension()
            ));
        }
        let Ok(size_bytes) = size.parse::<u64>() else {
            return err("The file's size could not be read; choose the file again.".into());
        };
        if size_bytes == 0 {
            return err(format!("{name} is empty."));
        }
        if size_bytes > limit {
            return err(format!(
                "{name} is {}, larger than the import limit of {}.",
                format_bytes(size_bytes),
                format_bytes(limit)
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            size_bytes,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }
}

/// `Upload-Metadata` for a file name, as the browser sends it.
pub fn encode_metadata(file_name: &str) -> String {
    format!(
        "filename {}",
        base64::engine::general_purpose::STANDARD.encode(file_name)
    )
}

/// Why an `Upload-Metadata` header was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("Upload-Metadata is longer than {MAX_METADATA_BYTES} bytes.")]
    TooLong,
    #[error("Upload-Metadata has an empty or invalid key.")]
    BadKey,
    #[error("Upload-Metadata names the key {0} twice.")]
    DuplicateKey(String),
    #[error("Upload-Metadata's value for {0} is not valid base64 of UTF-8 text.")]
    BadValue(String),
}

/// Parses `Upload-Metadata`: comma-separated `key base64(value)` pairs, the value optional.
/// Keys are printable ASCII without spaces or commas, unique; values must be strict base64
/// of UTF-8. The values are shown, never used as paths or header values.
pub fn parse_metadata(raw: &str) -> Result<Vec<(String, String)>, MetadataError> {
    if raw.len() > MAX_METADATA_BYTES {
        return Err(MetadataError::TooLong);
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    if raw.trim().is_empty() {
        return Ok(pairs);
    }
    for item in raw.split(',') {
        let item = item.trim();
        let (key, value) = match item.split_once(' ') {
            Some((key, value)) => (key, Some(value)),
            None => (item, None),
        };
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            return Err(MetadataError::BadKey);
        }
        if pairs.iter().any(|(k, _)| k == key) {
            return Err(MetadataError::DuplicateKey(key.to_owned()));
        }
        let value = match value {
            None => String::new(),
            Some(encoded) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| MetadataError::BadValue(key.to_owned()))?,
        };
        pairs.push((key.to_owned(), value));
    }
    Ok(pairs)
}

/// How far an upload has come, for the browser's progress bar: bytes, speed and time left.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TransferRate {
    pub bytes_per_second: f64,
}

impl TransferRate {
    /// "12.3 MB/s".
    pub fn label(self) -> String {
        format!("{} MB/s", fixed(self.bytes_per_second / 1_000_000.0, 1))
    }

    /// "about 2 min left", or `None` when the speed is not known yet.
    pub fn time_left(self, remaining_bytes: u64) -> Option<String> {
        if self.bytes_per_second < 1.0 {
            return None;
        }
        let seconds = (remaining_bytes as f64 / self.bytes_per_second).ceil() as u64;
        Some(match seconds {
            0..=59 => format!("{seconds} s left"),
            60..=3599 => format!("about {} min left", seconds.div_ceil(60)),
            _ => format!(
                "about {} h {} min left",
                seconds / 3600,
                (seconds % 3600).div_ceil(60)
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn local_files_are_checked_before_sending() {
        let ok = LocalImageFile::parse("ubuntu-24.04.QCOW2", "1048576", GIB).unwrap();
        assert_eq!(
            (ok.name(), ok.size_bytes()),
            ("ubuntu-24.04.QCOW2", 1 << 20)
        );
        let message =
            |name: &str, size: &str| LocalImageFile::parse(name, size, GIB).unwrap_err().message;
        assert_eq!(message("", "1"), "Choose the image file to upload.");
        assert_eq!(
            message("notes.txt", "10"),
            "The file must be a disk image (.qcow2, .raw, .img, .vmdk, .vhd, .vhdx or .iso); notes.txt is not."
        );
        assert!(LocalImageFile::parse("ubuntu.iso", "10", GIB).is_ok());
        assert_eq!(message("a.qcow2", "0"), "a.qcow2 is empty.");
        assert_eq!(
            message("a.qcow2", "-5"),
            "The file's size could not be read; choose the file again."
        );
        assert!(
            message("a.qcow2", &(GIB + 1).to_string()).contains("larger than the import limit")
        );
        assert!(message("a/b.qcow2", "5").contains("cannot contain"));
        assert!(message(&format!("{}.qcow2", "x".repeat(250)), "5").contains("at most 255"));
    }

    #[test]
    fn metadata_round_trips_and_is_strict() {
        let encoded = encode_metadata("ubuntu 24.04 é.qcow2");
        assert_eq!(
            parse_metadata(&encoded).unwrap(),
            vec![("filename".to_owned(), "ubuntu 24.04 é.qcow2".to_owned())]
        );
        assert_eq!(
            parse_metadata("filename YS5xY293Mg==,is_confidential").unwrap(),
            vec![
                ("filename".to_owned(), "a.qcow2".to_owned()),
                ("is_confidential".to_owned(), String::new())
            ]
        );
        assert_eq!(parse_metadata("").unwrap(), vec![]);
        assert_eq!(
            parse_metadata("filename YS5xY293Mg"),
            Err(MetadataError::BadValue("filename".into())),
            "padding is required"
        );
        assert_eq!(
            parse_metadata("a YQ==,a Yg=="),
            Err(MetadataError::DuplicateKey("a".into()))
        );
        assert_eq!(parse_metadata("f\u{ef}le YQ=="), Err(MetadataError::BadKey));
        assert_eq!(parse_metadata("a YQ==,,b"), Err(MetadataError::BadKey));
        assert_eq!(
            parse_metadata(&format!("k {}", "QUFB".repeat(1100))),
            Err(MetadataError::TooLong)
        );
    }

    #[test]
    fn time_left_reads_naturally() {
        let rate = TransferRate {
            bytes_per_second: 10_000_000.0,
        };
        assert_eq!(rate.label(), "10.0 MB/s");
        assert_eq!(rate.time_left(50_000_000).as_deref(), Some("5 s left"));
        assert_eq!(
            rate.time_left(1_000_000_000).as_deref(),
            Some("about 2 min left")
        );
        assert_eq!(
            rate.time_left(40_000_000_000).as_deref(),
            Some("about 1 h 7 min left")
        );
        assert_eq!(
            TransferRate {
                bytes_per_second: 0.0
            }
            .time_left(5),
            None
        );
    }
}
