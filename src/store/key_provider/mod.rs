//! Key providers: where encryption keys live, chosen by `KEY_PROVIDER`. The only code that
//! knows whether a key is 256 bits wrapped under the master key (`local`) or a key inside AWS
//! KMS or a KMS-compatible server (`aws-kms`). Each image's data key is made and wrapped here;
//! what is stored is only ever a wrapped data key, with the key and version it is wrapped by.

mod aws_kms;
mod local;

use std::io;
use std::sync::Arc;

use rand::RngCore;

pub use aws_kms::AwsKmsSettings;
pub use local::MasterKeys;

use crate::store::blobs::sealed::{DataKey, NONCE_PREFIX_BYTES};

/// `KEY_PROVIDER` and what it needs.
#[derive(Clone, Debug)]
pub enum KeyProviderSettings {
    /// `local`: key versions wrapped under the master key (`MASTER_KEY` or `MASTER_KEY_FILE`).
    Local(MasterKeys),
    /// `aws-kms`: keys inside KMS.
    AwsKms(AwsKmsSettings),
}

#[derive(Clone, Debug)]
pub struct KeyProvider(Arc<Backend>);

#[derive(Debug)]
enum Backend {
    Local(MasterKeys),
    AwsKms(aws_kms::AwsKms),
}

/// One version of a console key, as a provider needs it.
#[derive(Clone, Copy, Debug)]
pub struct KeyVersion<'a> {
    /// The console's id of the key.
    pub key_id: &'a str,
    /// The provider's own id (a KMS KeyId); `None` for local keys.
    pub provider_key_id: Option<&'a str>,
    pub version: u32,
    /// A local key version's wrapped bits.
    pub material: Option<&'a str>,
}

/// What the provider keeps for a new key or key version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewKey {
    pub provider_key_id: Option<String>,
    /// The first version's material (local keys).
    pub material: Option<String>,
}

fn missing(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("the key has no {what}"))
}

impl KeyProvider {
    /// The provider `settings` choose.
    pub fn new(settings: &KeyProviderSettings) -> anyhow::Result<Self> {
        Ok(Self(Arc::new(match settings {
            KeyProviderSettings::Local(master) => Backend::Local(master.clone()),
            KeyProviderSettings::AwsKms(kms) => Backend::AwsKms(aws_kms::AwsKms::new(kms)?),
        })))
    }

    /// The word the key rows record: `local` or `aws-kms`.
    pub fn kind(&self) -> &'static str {
        match &*self.0 {
            Backend::Local(_) => "local",
            Backend::AwsKms(_) => "aws-kms",
        }
    }

    /// The provider, for the start-up log.
    pub fn describe(&self) -> String {
        match &*self.0 {
            Backend::Local(master) => {
                format!("local keys under master key version {}", master.current())
            }
            Backend::AwsKms(kms) => kms.describe(),
        }
    }

    fn kms_key<'a>(key: &KeyVersion<'a>) -> io::Result<&'a str> {
        key.provider_key_id.ok_or_else(|| missing("KMS key id"))
    }

    fn kek(master: &MasterKeys, key: &KeyVersion<'_>) -> io::Result<zeroize::Zeroizing<[u8; 32]>> {
        master.unwrap(
            key.key_id,
            key.version,
            key.material.ok_or_else(|| missing("key material"))?,
        )
    }

    fn data_key_context(key: &KeyVersion<'_>) -> String {
        format!("image-console data key|{}|{}", key.key_id, key.version)
    }

    /// Makes a key: a KMS key, or version 1's random bits wrapped under the master key.
    pub async fn create_key(&self, key_id: &str, description: &str) -> io::Result<NewKey> {
        match &*self.0 {
            Backend::Local(_) => Ok(NewKey {
                provider_key_id: None,
                material: self.new_version(key_id, None, 1).await?,
            }),
            Backend::AwsKms(kms) => Ok(NewKey {
                provider_key_id: Some(kms.create_key(description).await?),
                material: None,
            }),
        }
    }

    /// Makes version `version` of a key (a rotation): new random bits for a local key (its
    /// material); KMS rotates its own backing key and keeps the earlier ones.
    pub async fn new_version(
        &self,
        key_id: &str,
        provider_key_id: Option<&str>,
        version: u32,
    ) -> io::Result<Option<String>> {
        match &*self.0 {
            Backend::Local(master) => {
                let mut bits = zeroize::Zeroizing::new([0u8; 32]);
                rand::rngs::OsRng.fill_bytes(bits.as_mut());
                Ok(Some(master.wrap(key_id, version, &bits)?))
            }
            Backend::AwsKms(kms) => {
                kms.rotate(provider_key_id.ok_or_else(|| missing("KMS key id"))?)
                    .await?;
                Ok(None)
            }
        }
    }

    /// Tells KMS a key was enabled or disabled (the console enforces it either way).
    pub async fn set_enabled(
        &self,
        provider_key_id: Option<&str>,
        enabled: bool,
    ) -> io::Result<()> {
        match (&*self.0, provider_key_id) {
            (Backend::AwsKms(kms), Some(kms_key)) => kms.set_enabled(kms_key, enabled).await,
            _ => Ok(()),
        }
    }

    pub async fn schedule_deletion(
        &self,
        provider_key_id: Option<&str>,
        days: u32,
    ) -> io::Result<()> {
        match (&*self.0, provider_key_id) {
            (Backend::AwsKms(kms), Some(kms_key)) => kms.schedule_deletion(kms_key, days).await,
            _ => Ok(()),
        }
    }

    pub async fn cancel_deletion(
        &self,
        provider_key_id: Option<&str>,
        enable: bool,
    ) -> io::Result<()> {
        match (&*self.0, provider_key_id) {
            (Backend::AwsKms(kms), Some(kms_key)) => kms.cancel_deletion(kms_key, enable).await,
            _ => Ok(()),
        }
    }

    /// A new data key for an image, and its wrapped form to store.
    pub async fn generate_data_key(&self, key: &KeyVersion<'_>) -> io::Result<(DataKey, String)> {
        let mut nonce_prefix = [0u8; NONCE_PREFIX_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut nonce_prefix);
        match &*self.0 {
            Backend::Local(master) => {
                let data_key = DataKey::generate();
                let wrapped = local::seal(
                    &*Self::kek(master, key)?,
                    &Self::data_key_context(key),
                    data_key.key_bytes(),
                )?;
                Ok((data_key, wrapped))
            }
            Backend::AwsKms(kms) => {
                let (plain, blob) = kms
                    .generate_data_key(Self::kms_key(key)?, key.key_id)
                    .await?;
                Ok((DataKey::from_parts(&plain, &nonce_prefix)?, blob))
            }
        }
    }

    /// An image's data key from its wrapped form and nonce prefix.
    pub async fn unwrap_data_key(
        &self,
        key: &KeyVersion<'_>,
        wrapped: &str,
        nonce_prefix: &[u8],
    ) -> io::Result<DataKey> {
        let plain = match &*self.0 {
            Backend::Local(master) => local::open(
                &*Self::kek(master, key)?,
                &Self::data_key_context(key),
                wrapped,
            )?,
            Backend::AwsKms(kms) => {
                kms.decrypt(Self::kms_key(key)?, key.key_id, wrapped)
                    .await?
            }
        };
        DataKey::from_parts(&plain, nonce_prefix)
    }

    /// A wrapped data key wrapped again under another version of its key, the bytes it
    /// encrypts untouched.
    pub async fn rewrap_data_key(
        &self,
        from: &KeyVersion<'_>,
        to: &KeyVersion<'_>,
        wrapped: &str,
    ) -> io::Result<String> {
        match &*self.0 {
            Backend::Local(master) => {
                let plain = local::open(
                    &*Self::kek(master, from)?,
                    &Self::data_key_context(from),
                    wrapped,
                )?;
                local::seal(
                    &*Self::kek(master, to)?,
                    &Self::data_key_context(to),
                    &plain,
                )
            }
            Backend::AwsKms(kms) => {
                let plain = kms
                    .decrypt(Self::kms_key(from)?, from.key_id, wrapped)
                    .await?;
                kms.encrypt(Self::kms_key(to)?, to.key_id, &plain).await
            }
        }
    }

    /// A local key version's material wrapped under the current master key version, if it is
    /// under an older one (`None`: nothing to do, or not a local provider).
    pub fn rewrap_material(&self, key: &KeyVersion<'_>) -> io::Result<Option<String>> {
        let (Backend::Local(master), Some(material)) = (&*self.0, key.material) else {
            return Ok(None);
        };
        if MasterKeys::material_version(material)? == master.current() {
            return Ok(None);
        }
        Ok(Some(master.wrap(
            key.key_id,
            key.version,
            &*Self::kek(master, key)?,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_data_keys_wrap_unwrap_and_rewrap() {
        let provider =
            KeyProvider::new(&KeyProviderSettings::Local(MasterKeys::generate())).unwrap();
        let made = provider.create_key("k1", "test").await.unwrap();
        let v1 = KeyVersion {
            key_id: "k1",
            provider_key_id: None,
            version: 1,
            material: made.material.as_deref(),
        };
        let (data_key, wrapped) = provider.generate_data_key(&v1).await.unwrap();
        let opened = provider
            .unwrap_data_key(&v1, &wrapped, data_key.nonce_prefix())
            .await
            .unwrap();
        assert_eq!(opened.key_bytes(), data_key.key_bytes());

        let material2 = provider.new_version("k1", None, 2).await.unwrap();
        let v2 = KeyVersion {
            version: 2,
            material: material2.as_deref(),
            ..v1
        };
        let rewrapped = provider.rewrap_data_key(&v1, &v2, &wrapped).await.unwrap();
        assert_ne!(rewrapped, wrapped);
        let opened = provider
            .unwrap_data_key(&v2, &rewrapped, data_key.nonce_prefix())
            .await
            .unwrap();
        assert_eq!(opened.key_bytes(), data_key.key_bytes());
        // Each version opens only what it wrapped.
        assert!(
            provider
                .unwrap_data_key(&v1, &rewrapped, &[0; 7])
                .await
                .is_err()
        );
        assert!(
            provider
                .unwrap_data_key(&v2, &wrapped, &[0; 7])
                .await
                .is_err()
        );
        assert_eq!(provider.rewrap_material(&v1).unwrap(), None);
    }
}
