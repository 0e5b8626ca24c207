//! The running digests of an image's bytes (SHA-512, MD5, and SHA-256, SHA-224 or SHA-384
//! when a checksum or a signature needs one), their state saved with an upload's durable
//! offset and restored, and the finished digests.

use anyhow::Context;
use md5::Md5;
use sha2::digest::common::hazmat::SerializableState;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

use crate::domain::checksum::{ChecksumAlgorithm, ExpectedChecksum};
use crate::domain::signature::HashMethod;

/// The running digests of an image's bytes.
pub struct Hashers {
    pub(super) sha512: Sha512,
    pub(super) md5: Md5,
    pub(super) sha256: Option<Sha256>,
    /// The signature's hash, when it is neither SHA-512 nor SHA-256 (those two are above).
    pub(super) signed: Option<SignedHasher>,
    /// The hash method of the image's signature, if it is signed.
    pub(super) signed_with: Option<HashMethod>,
}

/// A signature's hash that no other digest already computes.
#[derive(Clone)]
pub(super) enum SignedHasher {
    Sha224(Sha224),
    Sha384(Sha384),
}

impl SignedHasher {
    pub(super) fn update(&mut self, piece: &[u8]) {
        match self {
            SignedHasher::Sha224(h) => h.update(piece),
            SignedHasher::Sha384(h) => h.update(piece),
        }
    }
}

impl Hashers {
    /// Fresh hashers; SHA-256 only when the creator's checksum or the signature uses it, and
    /// the signature's SHA-224 or SHA-384 only when it does.
    pub fn new(expected: Option<&ExpectedChecksum>, signed_with: Option<HashMethod>) -> Self {
        let checksum_sha256 = expected.is_some_and(|e| e.algorithm == ChecksumAlgorithm::Sha256);
        Self {
            sha512: Sha512::new(),
            md5: Md5::new(),
            sha256: (checksum_sha256 || signed_with == Some(HashMethod::Sha256)).then(Sha256::new),
            signed: match signed_with {
                Some(HashMethod::Sha224) => Some(SignedHasher::Sha224(Sha224::new())),
                Some(HashMethod::Sha384) => Some(SignedHasher::Sha384(Sha384::new())),
                _ => None,
            },
            signed_with,
        }
    }

    /// `sha512.md5[.sha256][.sha224:…|.sha384:…][.signed:METHOD]`, each digest the hex of
    /// the hasher's serialized state, so an upload resumed after a restart goes on hashing
    /// for its signature too.
    pub fn to_state(&self) -> String {
        let mut state = format!(
            "{}.{}",
            hex::encode(self.sha512.serialize()),
            hex::encode(self.md5.serialize())
        );
        if let Some(sha256) = &self.sha256 {
            state.push('.');
            state.push_str(&hex::encode(sha256.serialize()));
        }
        match &self.signed {
            Some(SignedHasher::Sha224(h)) => {
                state.push_str(&format!(".sha224:{}", hex::encode(h.serialize())));
            }
            Some(SignedHasher::Sha384(h)) => {
                state.push_str(&format!(".sha384:{}", hex::encode(h.serialize())));
            }
            None => {}
        }
        if let Some(method) = self.signed_with {
            state.push_str(&format!(".signed:{}", method.as_str()));
        }
        state
    }

    pub fn from_state(state: &str) -> anyhow::Result<Self> {
        fn restore<H: SerializableState>(part: Option<&str>) -> anyhow::Result<H> {
            let bytes = hex::decode(part.context("missing hasher state")?)?;
            let array = bytes
                .as_slice()
                .try_into()
                .map_err(|_| anyhow::anyhow!("hasher state has the wrong length"))?;
            H::deserialize(array).map_err(|_| anyhow::anyhow!("hasher state is invalid"))
        }
        let mut parts = state.split('.');
        let sha512 = restore::<Sha512>(parts.next())?;
        let md5 = restore::<Md5>(parts.next())?;
        let (mut sha256, mut signed, mut signed_with) = (None, None, None);
        for part in parts {
            match part.split_once(':') {
                None => sha256 = Some(restore::<Sha256>(Some(part))?),
                Some(("sha224", h)) => {
                    signed = Some(SignedHasher::Sha224(restore::<Sha224>(Some(h))?));
                }
                Some(("sha384", h)) => {
                    signed = Some(SignedHasher::Sha384(restore::<Sha384>(Some(h))?));
                }
                Some(("signed", method)) => {
                    signed_with = Some(
                        HashMethod::parse(method)
                            .map_err(|_| anyhow::anyhow!("unknown signed hash {method}"))?,
                    );
                }
                Some((other, _)) => anyhow::bail!("unknown hasher {other}"),
            }
        }
        Ok(Self {
            sha512,
            md5,
            sha256,
            signed,
            signed_with,
        })
    }

    pub fn finalize(self) -> Digests {
        let sha512 = self.sha512.finalize().to_vec();
        let sha256 = self.sha256.map(|h| h.finalize().to_vec());
        let signed = match (self.signed_with, self.signed) {
            (Some(HashMethod::Sha512), _) => Some(sha512.clone()),
            (Some(HashMethod::Sha256), _) => sha256.clone(),
            (Some(_), Some(SignedHasher::Sha224(h))) => Some(h.finalize().to_vec()),
            (Some(_), Some(SignedHasher::Sha384(h))) => Some(h.finalize().to_vec()),
            _ => None,
        };
        Digests {
            sha512_hex: hex::encode(sha512),
            md5_hex: hex::encode(self.md5.finalize()),
            sha256_hex: sha256.map(hex::encode),
            signed: self.signed_with.zip(signed),
        }
    }
}

/// The digests of an image's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digests {
    pub sha512_hex: String,
    pub md5_hex: String,
    /// Only when the creator's checksum or the signature is SHA-256.
    pub sha256_hex: Option<String>,
    /// The digest a signed image's signature covers, with its hash method.
    pub signed: Option<(HashMethod, Vec<u8>)>,
}

impl Digests {
    /// The digest made with `method`, if the bytes were hashed with it.
    pub fn signed_digest(&self, method: HashMethod) -> Option<&[u8]> {
        self.signed
            .as_ref()
            .filter(|(m, _)| *m == method)
            .map(|(_, digest)| digest.as_slice())
    }

    /// Compares the creator's checksum with the matching digest; the error is shown on the image.
    pub fn verify(&self, expected: &ExpectedChecksum) -> Result<(), String> {
        let actual = match expected.algorithm {
            ChecksumAlgorithm::Md5 => Some(self.md5_hex.as_str()),
            ChecksumAlgorithm::Sha256 => self.sha256_hex.as_deref(),
            ChecksumAlgorithm::Sha512 => Some(self.sha512_hex.as_str()),
        };
        match actual {
            Some(actual) if actual == expected.hex => Ok(()),
            Some(actual) => Err(format!(
                "The file's {} checksum is {actual}, not the expected {}; the file is not the one described.",
                expected.algorithm.label(),
                expected.hex
            )),
            None => Err("The checksum could not be computed.".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hasher_state_survives_a_round_trip_mid_stream() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let sha256 = ExpectedChecksum {
            algorithm: ChecksumAlgorithm::Sha256,
            hex: String::new(),
        };
        let mut first = Hashers::new(Some(&sha256), None);
        let head = &data[..123_457];
        first.sha512.update(head);
        first.md5.update(head);
        first.sha256.as_mut().unwrap().update(head);
        let mut resumed = Hashers::from_state(&first.to_state()).unwrap();
        let rest = &data[123_457..];
        resumed.sha512.update(rest);
        resumed.md5.update(rest);
        resumed.sha256.as_mut().unwrap().update(rest);
        let digests = resumed.finalize();
        assert_eq!(digests.sha512_hex, hex::encode(Sha512::digest(&data)));
        assert_eq!(digests.md5_hex, hex::encode(Md5::digest(&data)));
        assert_eq!(
            digests.sha256_hex.unwrap(),
            hex::encode(Sha256::digest(&data))
        );
        assert!(Hashers::from_state("00.11").is_err());
        assert!(Hashers::new(None, None).to_state().matches('.').count() == 1);
    }
}
