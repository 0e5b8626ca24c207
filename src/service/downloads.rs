//! Signed download links: usable without a session (curl, wget) for 24 hours, until revoked.
//!
//! A link is `/downloads/<id>/<file>?exp=<unix seconds>&gen=<generation>&sig=<mac>`, where
//! the MAC is HMAC-SHA256 over the image id, the account it was issued to, the link generation
//! and the expiry, keyed by a key derived from the session secret. A link issued to an account
//! the image is shared with also names that account (`acct=`), and works only while the share
//! is Accepted. Revoking bumps the image's generation, so every link issued before stops
//! working; deleting the image removes what it points at.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;

use super::images::{Access, parse_image_id};
use super::{Actor, ServiceError, ServiceResult, Services, now_ms};
use crate::domain::history::HistoryTopic;
use crate::domain::image::{DOWNLOAD_LINK_HOURS, DownloadLink, ImageStatus};
use crate::domain::units::format_timestamp;
use crate::store::blobs::BlobReader;
use crate::store::history::NewEvent;
use crate::store::images::ImageRow;

/// A file a valid link gives access to, open for reading.
pub struct DownloadFile {
    pub blob: BlobReader,
    pub file_name: String,
    pub size_bytes: u64,
}

/// Why a link does not work. `Display` is what the person holding the link reads.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DownloadRefusal {
    #[error("This download link is not valid. Create a new link on the image's Details page.")]
    Invalid,
    #[error(
        "This download link has expired: links work for 24 hours. Create a new link on the image's Details page."
    )]
    Expired,
    #[error("This download link was revoked. Create a new link on the image's Details page.")]
    Revoked,
    #[error("This image cannot be downloaded now.")]
    Unavailable,
    #[error("This image is no longer shared with the account this link was issued to.")]
    ShareEnded,
    /// A fault on our side (the database, or stored data that cannot be read); the text is
    /// for the log, the answer is 503 with the request's reference.
    #[error("{0}")]
    Fault(String),
    #[error(
        "This image is Deactivated: its owner has stopped its downloads. The link works again if the image is reactivated."
    )]
    Deactivated,
    #[error("This image was deleted: it is in its owner's Recycle Bin.")]
    Deleted,
    /// Its encryption key cannot be used now (disabled, pending deletion, deleted); the text
    /// names the key.
    #[error("This image cannot be downloaded now. {0}")]
    KeyUnusable(String),
}

/// Why a Deactivated image's download is refused, to whoever asks.
pub const DEACTIVATED: &str =
    "This image is Deactivated: its owner has stopped its downloads until it is reactivated.";

/// The file name offered to the browser: the image name with spaces as '-', plus its format.
pub fn download_file_name(image_name: &str, format: &str) -> String {
    format!("{}.{format}", image_name.replace(' ', "-"))
}

/// Whom a link was issued to: the owner account, or an account the image is shared with,
/// under the share made at `shared_at_ms` (sharing again after a stop makes a new one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkHolder<'a> {
    Owner,
    Recipient {
        account_id: &'a str,
        shared_at_ms: i64,
    },
}

fn message(id: &str, owner: &str, holder: LinkHolder<'_>, generation: i64, expires: u64) -> String {
    match holder {
        LinkHolder::Owner => format!("GET\n{id}\n{owner}\n{generation}\n{expires}"),
        LinkHolder::Recipient {
            account_id,
            shared_at_ms,
        } => format!("GET\n{id}\n{account_id}\n{generation}\n{expires}\n{shared_at_ms}"),
    }
}

impl Services {
    /// Refuses an encrypted image whose key cannot be used now, with the reason naming the
    /// key (downloads, links, Create shared Image, Replicate).
    pub(crate) async fn check_key_usable(&self, row: &ImageRow) -> ServiceResult<()> {
        let Some(key_id) = &row.encryption_key_id else {
            return Ok(());
        };
        match self
            .key_ring()
            .unusable_reason(&row.account_id, key_id)
            .await?
        {
            Some(reason) => Err(ServiceError::Forbidden(reason)),
            None => Ok(()),
        }
    }

    /// An Active image's bytes, opened with its data key if it is encrypted: the reader of
    /// downloads through the image API, Replicate and the tests.
    pub(crate) async fn open_image_bytes(
        &self,
        row: &ImageRow,
    ) -> ServiceResult<Option<crate::store::blobs::BlobReader>> {
        let (Some(key), Some(size_bytes)) = (&row.blob_key, row.size_bytes) else {
            return Ok(None);
        };
        let cipher = match &row.data_key {
            Some(stored) => Some(
                self.key_ring()
                    .open_data_key(&row.account_id, stored)
                    .await?
                    .cipher(),
            ),
            None => None,
        };
        let reader = self
            .blobs()
            .open_blob(key)
            .await
            .map_err(|e| crate::service::image_api::stored_data_unreadable(e, &row.id, key))?;
        Ok(Some(match cipher {
            Some(cipher) => reader.sealed(cipher, size_bytes),
            None => reader,
        }))
    }

    /// A key for link signatures, separate from the one for session hashes.
    fn link_mac(&self) -> Hmac<Sha256> {
        let mut derive =
            Hmac::<Sha256>::new_from_slice(self.settings().session_secret.expose_secret())
                .expect("HMAC accepts keys of any length");
        derive.update(b"image-console download links v1");
        let key = derive.finalize().into_bytes();
        Hmac::<Sha256>::new_from_slice(&key).expect("HMAC accepts keys of any length")
    }

    /// Issues a link to an Active image of the actor's account, valid for 24 hours.
    pub async fn create_download_link(
        &self,
        actor: &Actor,
        id: &str,
    ) -> ServiceResult<DownloadLink> {
        self.issue_download_link(actor, id, DOWNLOAD_LINK_HOURS * 3_600_000)
            .await
    }

    /// Issues a link valid for `valid_for_ms` from now (tests issue links already expired).
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    pub async fn issue_download_link(
        &self,
        actor: &Actor,
        id: &str,
        valid_for_ms: i64,
    ) -> ServiceResult<DownloadLink> {
        let id = parse_image_id(id)?;
        let access = self.visible_image(actor, &id).await?;
        let holder = match &access {
            Access::Owner(_) => LinkHolder::Owner,
            Access::Recipient { shared_at_ms, .. } => LinkHolder::Recipient {
                account_id: &actor.account_id,
                shared_at_ms: *shared_at_ms,
            },
        };
        let row = access.row();
        match row.status {
            ImageStatus::Active => {}
            ImageStatus::Deactivated => return Err(ServiceError::Forbidden(DEACTIVATED.into())),
            _ => {
                return Err(ServiceError::Conflict(
                    "Only an Active image can be downloaded. Wait for the import to finish.".into(),
                ));
            }
        }
        self.check_key_usable(row).await?;
        let now = now_ms();
        let expires_at_ms = now + valid_for_ms;
        let expires = u64::try_from(expires_at_ms / 1000).unwrap_or(0);
        let mut mac = self.link_mac();
        mac.update(message(&id, &row.account_id, holder, row.link_generation, expires).as_bytes());
        let sig =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        let format = row.disk_format.map_or("img", |f| f.as_str());
        let file = download_file_name(&row.attributes.name, format);
        let file: String = url::form_urlencoded::byte_serialize(file.as_bytes()).collect();
        let note = format!("Valid until {}.", format_timestamp(expires_at_ms));
        let event = NewEvent {
            message: &note,
            ..NewEvent::succeeded(HistoryTopic::DownloadLinkIssued, &actor.user_name)
        };
        self.store()
            .record_event(&actor.account_id, &id, &row.attributes.name, &event, now)
            .await?;
        let holder = match holder {
            LinkHolder::Owner => String::new(),
            LinkHolder::Recipient {
                account_id,
                shared_at_ms,
            } => format!("&acct={account_id}&since={shared_at_ms}"),
        };
        Ok(DownloadLink {
            path: format!(
                "/downloads/{id}/{file}?exp={expires}&gen={}{holder}&sig={sig}",
                row.link_generation
            ),
            expires_at_ms,
        })
    }

    /// Makes every link issued so far stop working.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    pub async fn revoke_download_links(&self, actor: &Actor, id: &str) -> ServiceResult<()> {
        let id = parse_image_id(id)?;
        let event = NewEvent::succeeded(HistoryTopic::DownloadLinksRevoked, &actor.user_name);
        match self
            .store()
            .bump_link_generation(&actor.account_id, &id, &event, now_ms())
            .await?
        {
            Some(_) => Ok(()),
            None => Err(self.not_owned(actor, &id).await),
        }
    }

    /// Checks a link's parameters and returns the file it grants. `holder` and `since` name
    /// the account a shared image's link was issued to and the share it was issued under
    /// (none for the owner's links).
    pub async fn open_download(
        &self,
        id: &str,
        expires: Option<&str>,
        generation: Option<&str>,
        holder: Option<&str>,
        since: Option<&str>,
        signature: Option<&str>,
    ) -> Result<DownloadFile, DownloadRefusal> {
        let id = parse_image_id(id).map_err(|_| DownloadRefusal::Invalid)?;
        let expires = expires
            .and_then(|e| e.parse::<u64>().ok())
            .ok_or(DownloadRefusal::Invalid)?;
        let generation = generation
            .and_then(|g| g.parse::<i64>().ok())
            .ok_or(DownloadRefusal::Invalid)?;
        let signature = signature
            .and_then(|s| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(s)
                    .ok()
            })
            .ok_or(DownloadRefusal::Invalid)?;
        let target = match self.store().find_download_target(&id).await {
            Ok(Some(target)) => target,
            Ok(None) => return Err(DownloadRefusal::Invalid),
            Err(e) => return Err(DownloadRefusal::Fault(format!("looking up the image: {e}"))),
        };
        let holder = match (holder, since) {
            (None, None) => LinkHolder::Owner,
            (Some(account_id), Some(since)) => LinkHolder::Recipient {
                account_id,
                shared_at_ms: since.parse().map_err(|_| DownloadRefusal::Invalid)?,
            },
            _ => return Err(DownloadRefusal::Invalid),
        };
        let mut mac = self.link_mac();
        mac.update(message(&id, &target.account_id, holder, generation, expires).as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| DownloadRefusal::Invalid)?;
        if expires.saturating_mul(1000) < u64::try_from(now_ms()).unwrap_or(u64::MAX) {
            return Err(DownloadRefusal::Expired);
        }
        if generation != target.link_generation {
            return Err(DownloadRefusal::Revoked);
        }
        // A recipient's link lasts only as long as the share it was issued under: Stop
        // sharing or a Reject ends it, and sharing again later does not revive it.
        if let LinkHolder::Recipient {
            account_id,
            shared_at_ms,
        } = holder
        {
            match self.store().accepted_share(account_id, &id).await {
                Ok(Some((share, _))) if share.requested_at_ms == shared_at_ms => {}
                Ok(_) => return Err(DownloadRefusal::ShareEnded),
                Err(e) => {
                    return Err(DownloadRefusal::Fault(format!(
                        "looking up the link's share: {e}"
                    )));
                }
            }
        }
        match target.status {
            ImageStatus::Deactivated => return Err(DownloadRefusal::Deactivated),
            status if status.in_recycle_bin() => return Err(DownloadRefusal::Deleted),
            _ => {}
        }
        let (ImageStatus::Active, Some(key), Some(size_bytes)) =
            (target.status, &target.blob_key, target.size_bytes)
        else {
            return Err(DownloadRefusal::Unavailable);
        };
        // An encrypted image's key is asked for before its bytes are touched.
        let cipher = match &target.data_key {
            None => None,
            Some(stored) => match self
                .key_ring()
                .open_data_key(&target.account_id, stored)
                .await
            {
                Ok(data_key) => Some(data_key.cipher()),
                Err(ServiceError::Forbidden(reason) | ServiceError::Conflict(reason)) => {
                    return Err(DownloadRefusal::KeyUnusable(reason));
                }
                Err(e) => {
                    return Err(DownloadRefusal::Fault(format!(
                        "opening the data key of image {id}: {e}"
                    )));
                }
            },
        };
        let mut blob = self.blobs().open_blob(key).await.map_err(|e| {
            DownloadRefusal::Fault(match e.kind() {
                std::io::ErrorKind::NotFound => {
                    format!("image {id} is Active but its stored data {key} is missing")
                }
                _ => format!("opening the stored data {key} of image {id}: {e}"),
            })
        })?;
        if let Some(cipher) = cipher {
            blob = blob.sealed(cipher, size_bytes);
        }
        Ok(DownloadFile {
            blob,
            file_name: download_file_name(
                &target.name,
                target.disk_format.map_or("img", |f| f.as_str()),
            ),
            size_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(
            download_file_name("ubuntu 24 base", "qcow2"),
            "ubuntu-24-base.qcow2"
        );
    }
}
