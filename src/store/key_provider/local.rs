//! The local key provider: each key version is 256 random bits, kept in the database wrapped
//! under the master key (AES-256-GCM), and wraps data keys the same way. The master key comes
//! from `MASTER_KEY` or `MASTER_KEY_FILE`; it has versions so it can be rotated: a new version
//! wraps what is written from then on, and `rewrap_material` moves existing key versions to it.

use std::collections::BTreeMap;
use std::io;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Key, KeyInit};
use base64::Engine;
use rand::RngCore;
use zeroize::Zeroizing;

const NONCE_BYTES: usize = 12;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// Seals `plain` under `key` with a random nonce, bound to `context`: base64 of nonce,
/// ciphertext and tag.
pub(super) fn seal(key: &[u8; 32], context: &str, plain: &[u8]) -> io::Result<String> {
    let mut nonce = [0u8; NONCE_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let sealed = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key))
        .encrypt(
            &nonce.into(),
            Payload {
                msg: plain,
                aad: context.as_bytes(),
            },
        )
        .map_err(|_| io::Error::other("sealing a key failed"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(b64().encode(out))
}

/// Opens what `seal` made under the same key and context.
pub(super) fn open(key: &[u8; 32], context: &str, sealed: &str) -> io::Result<Zeroizing<Vec<u8>>> {
    let bytes = b64()
        .decode(sealed)
        .map_err(|_| invalid("a wrapped key is not base64"))?;
    if bytes.len() < NONCE_BYTES + 16 {
        return Err(invalid("a wrapped key is too short"));
    }
    let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
    let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| invalid("bad nonce"))?;
    Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key))
        .decrypt(
            &nonce.into(),
            Payload {
                msg: sealed,
                aad: context.as_bytes(),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| invalid("a wrapped key does not open under this key"))
}

/// The master key's versions; the highest wraps everything written from now on.
#[derive(Clone)]
pub struct MasterKeys {
    versions: BTreeMap<u32, Zeroizing<[u8; 32]>>,
}

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKeys")
            .field("versions", &self.versions.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl MasterKeys {
    /// A new master key with version 1.
    pub fn generate() -> Self {
        Self {
            versions: BTreeMap::new(),
        }
        .with_new_version()
    }

    /// Parses `1:<base64 of 32 bytes>`, entries separated by commas or lines (the form of
    /// `MASTER_KEY` and of `MASTER_KEY_FILE`). The error says what is wrong, never the key.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut versions = BTreeMap::new();
        for entry in text
            .split([',', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (version, key) = entry.split_once(':').ok_or(
                "each entry is a version and a base64 key of 32 bytes, such as 1:<base64>",
            )?;
            let version: u32 = version
                .trim()
                .parse()
                .ok()
                .filter(|v| *v > 0)
                .ok_or(format!("\"{version}\" is not a version number (1 or more)"))?;
            let bytes = Zeroizing::new(
                b64()
                    .decode(key.trim())
                    .map_err(|_| format!("the key of version {version} is not base64"))?,
            );
            let key: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| format!("the key of version {version} is not 32 bytes (256 bits)"))?;
            if versions.insert(version, Zeroizing::new(key)).is_some() {
                return Err(format!("version {version} appears twice"));
            }
        }
        if versions.is_empty() {
            return Err("no master key version is given".into());
        }
        Ok(Self { versions })
    }

    /// One entry per line, as `parse` reads them.
    pub fn to_text(&self) -> String {
        self.versions
            .iter()
            .map(|(version, key)| format!("{version}:{}\n", b64().encode(key.as_slice())))
            .collect()
    }

    /// The version that wraps from now on.
    pub fn current(&self) -> u32 {
        self.versions.keys().next_back().copied().unwrap_or(0)
    }

    /// These versions and a new random one, which becomes current.
    pub fn with_new_version(&self) -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        let mut versions = self.versions.clone();
        versions.insert(self.current() + 1, key);
        Self { versions }
    }

    fn context(key_id: &str, version: u32) -> String {
        format!("image-console key material|{key_id}|{version}")
    }

    /// A key version's material: its 256 bits wrapped under the current master version,
    /// `m<version>:<sealed>`.
    pub(super) fn wrap(&self, key_id: &str, version: u32, kek: &[u8; 32]) -> io::Result<String> {
        let current = self.current();
        let master = &self.versions[&current];
        Ok(format!(
            "m{current}:{}",
            seal(master, &Self::context(key_id, version), kek)?
        ))
    }

    /// The 256 bits of a key version from its material.
    pub(super) fn unwrap(
        &self,
        key_id: &str,
        version: u32,
        material: &str,
    ) -> io::Result<Zeroizing<[u8; 32]>> {
        let (master_version, sealed) = Self::split(material)?;
        let master = self.versions.get(&master_version).ok_or_else(|| {
            invalid(format!(
                "key material is wrapped under master key version {master_version}, which MASTER_KEY does not hold"
            ))
        })?;
        let opened = open(master, &Self::context(key_id, version), sealed)?;
        let kek: [u8; 32] = opened
            .as_slice()
            .try_into()
            .map_err(|_| invalid("key material is not 32 bytes"))?;
        Ok(Zeroizing::new(kek))
    }

    /// The master version a material is wrapped under.
    pub fn material_version(material: &str) -> io::Result<u32> {
        Self::split(material).map(|(version, _)| version)
    }

    fn split(material: &str) -> io::Result<(u32, &str)> {
        let (version, sealed) = material
            .strip_prefix('m')
            .and_then(|rest| rest.split_once(':'))
            .ok_or_else(|| invalid("key material has no master key version"))?;
        let version = version
            .parse()
            .map_err(|_| invalid("key material has no master key version"))?;
        Ok((version, sealed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_keys_parse_and_refuse_with_a_reason() {
        let keys = MasterKeys::generate().with_new_version();
        assert_eq!(keys.current(), 2);
        let text = keys.to_text();
        assert_eq!(MasterKeys::parse(&text).unwrap().current(), 2);
        assert_eq!(
            MasterKeys::parse(&text.replace('\n', ","))
                .unwrap()
                .current(),
            2
        );
        for (bad, says) in [
            ("", "no master key"),
            ("abc", "version and a base64 key"),
            ("0:AAAA", "not a version number"),
            ("1:!!", "not base64"),
            ("1:AAAA", "not 32 bytes"),
        ] {
            let error = MasterKeys::parse(bad).unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
        }
        let one = text.lines().next().unwrap();
        assert!(
            MasterKeys::parse(&format!("{one}\n{one}"))
                .unwrap_err()
                .contains("twice")
        );
    }

    #[test]
    fn material_opens_under_its_master_version_only() {
        let first = MasterKeys::generate();
        let kek = [9u8; 32];
        let material = first.wrap("k1", 1, &kek).unwrap();
        assert!(material.starts_with("m1:"));
        let rotated = first.with_new_version();
        assert_eq!(*rotated.unwrap("k1", 1, &material).unwrap(), kek);
        let rewrapped = rotated.wrap("k1", 1, &kek).unwrap();
        assert_eq!(MasterKeys::material_version(&rewrapped).unwrap(), 2);
        // Another key's or another version's context does not open it.
        assert!(rotated.unwrap("k2", 1, &material).is_err());
        assert!(rotated.unwrap("k1", 2, &material).is_err());
        // A master key without that version says so.
        let error = first.unwrap("k1", 1, &rewrapped).unwrap_err();
        assert!(error.to_string().contains("version 2"), "{error}");
        assert!(MasterKeys::generate().unwrap("k1", 1, &material).is_err());
    }
}
