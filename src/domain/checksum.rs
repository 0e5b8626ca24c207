//! The checksum a person may give on the Create form, verified against the bytes received, as
//! Proxmox's `download-url` and Glance's `os_hash_value` checks do.

use serde::{Deserialize, Serialize};

use super::validation::FieldError;

pub mod field {
    pub const CHECKSUM: &str = "checksum";
}

/// The algorithms a checksum may use, told apart by the digest's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChecksumAlgorithm {
    Md5,
    Sha256,
    Sha512,
}

impl ChecksumAlgorithm {
    pub const ALL: [ChecksumAlgorithm; 3] = [
        ChecksumAlgorithm::Md5,
        ChecksumAlgorithm::Sha256,
        ChecksumAlgorithm::Sha512,
    ];

    /// The stored name, also accepted as a prefix (`sha256:…`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Md5 => "md5",
            ChecksumAlgorithm::Sha256 => "sha256",
            ChecksumAlgorithm::Sha512 => "sha512",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Md5 => "MD5",
            ChecksumAlgorithm::Sha256 => "SHA-256",
            ChecksumAlgorithm::Sha512 => "SHA-512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Md5 => 32,
            ChecksumAlgorithm::Sha256 => 64,
            ChecksumAlgorithm::Sha512 => 128,
        }
    }
}

/// An expected checksum: the algorithm and its lower-case hex digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedChecksum {
    pub algorithm: ChecksumAlgorithm,
    pub hex: String,
}

impl ExpectedChecksum {
    /// Parses the optional Checksum field: empty is `None`; otherwise an MD5, SHA-256 or
    /// SHA-512 hex digest, optionally written `sha256:…` as `sha256sum`-style tools print it.
    pub fn parse(raw: &str) -> Result<Option<Self>, FieldError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        let err = |m: String| Err(FieldError::new(field::CHECKSUM, m));
        let (named, digest) = match raw.split_once(':') {
            Some((name, digest)) => {
                let name = name.trim().to_ascii_lowercase().replace('-', "");
                match ChecksumAlgorithm::ALL
                    .into_iter()
                    .find(|a| a.as_str() == name)
                {
                    Some(algorithm) => (Some(algorithm), digest.trim()),
                    None => {
                        return err(
                            "Checksum algorithm must be md5, sha256 or sha512 (as in sha256:…)."
                                .into(),
                        );
                    }
                }
            }
            None => (None, raw),
        };
        if let Some(bad) = digest.chars().find(|c| !c.is_ascii_hexdigit()) {
            return err(format!(
                "Checksum must be hexadecimal digits only (found {}).",
                super::validation::describe_char(bad)
            ));
        }
        let by_length = ChecksumAlgorithm::ALL
            .into_iter()
            .find(|a| a.hex_len() == digest.len());
        let algorithm = match (named, by_length) {
            (Some(named), _) if named.hex_len() == digest.len() => named,
            (Some(named), _) => {
                return err(format!(
                    "A {} checksum has {} hexadecimal digits (this one has {}).",
                    named.label(),
                    named.hex_len(),
                    digest.len()
                ));
            }
            (None, Some(algorithm)) => algorithm,
            (None, None) => {
                return err(format!(
                    "Checksum must be an MD5 (32), SHA-256 (64) or SHA-512 (128) hexadecimal digest (this one has {} digits).",
                    digest.len()
                ));
            }
        };
        Ok(Some(Self {
            algorithm,
            hex: digest.to_ascii_lowercase(),
        }))
    }

    /// The stored form, `algorithm:hex`.
    pub fn to_db(&self) -> String {
        format!("{}:{}", self.algorithm.as_str(), self.hex)
    }

    pub fn from_db(raw: &str) -> Option<Self> {
        let parsed = Self::parse(raw).ok()??;
        raw.contains(':').then_some(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_no_checksum() {
        assert_eq!(ExpectedChecksum::parse(""), Ok(None));
        assert_eq!(ExpectedChecksum::parse("   "), Ok(None));
    }

    #[test]
    fn the_algorithm_follows_the_length_or_the_prefix() {
        let md5 = "D41D8CD98F00B204E9800998ECF8427E";
        let parsed = ExpectedChecksum::parse(md5).unwrap().unwrap();
        assert_eq!(parsed.algorithm, ChecksumAlgorithm::Md5);
        assert_eq!(parsed.hex, md5.to_ascii_lowercase());
        let sha256 = format!("SHA-256: {}", "ab".repeat(32));
        assert_eq!(
            ExpectedChecksum::parse(&sha256).unwrap().unwrap().algorithm,
            ChecksumAlgorithm::Sha256
        );
        let sha512 = "0f".repeat(64);
        let parsed = ExpectedChecksum::parse(&sha512).unwrap().unwrap();
        assert_eq!(parsed.algorithm, ChecksumAlgorithm::Sha512);
        assert_eq!(ExpectedChecksum::from_db(&parsed.to_db()), Some(parsed));
    }

    #[test]
    fn bad_checksums_say_what_is_wrong() {
        let message = |raw: &str| ExpectedChecksum::parse(raw).unwrap_err().message;
        assert_eq!(
            message("xyz"),
            "Checksum must be hexadecimal digits only (found 'x')."
        );
        assert_eq!(
            message(&"a".repeat(40)),
            "Checksum must be an MD5 (32), SHA-256 (64) or SHA-512 (128) hexadecimal digest (this one has 40 digits)."
        );
        assert_eq!(
            message(&format!("sha512:{}", "a".repeat(64))),
            "A SHA-512 checksum has 128 hexadecimal digits (this one has 64)."
        );
        assert_eq!(
            message(&format!("crc32:{}", "a".repeat(8))),
            "Checksum algorithm must be md5, sha256 or sha512 (as in sha256:…)."
        );
        assert_eq!(
            ExpectedChecksum::parse("a b").unwrap_err().field,
            "checksum"
        );
    }
}
