//! Signing certificates' rows: what the Certificates page lists and what a signed image's
//! bytes are verified against.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::images::decode_error;
use super::{Store, to_u64};
use crate::domain::signature::{CertificateSummary, KeyKind, Validity};

const COLUMNS: &str = "c.id, c.account_id, c.subject, c.issuer, c.fingerprint_sha256, c.key_kind, \
    c.key_bits, c.not_before_ms, c.not_after_ms, c.pem, c.created_by, c.created_at";

/// The statuses of an image still waiting for, or receiving, its bytes: its certificate is
/// needed until they are in and verified.
const PENDING_STATUSES: &str = "('queued', 'uploading', 'importing')";

/// A certificate as uploaded and read.
pub struct NewCertificate<'a> {
    pub id: &'a str,
    pub account_id: &'a str,
    pub subject: &'a str,
    pub issuer: &'a str,
    pub fingerprint_sha256: &'a str,
    pub key_kind: KeyKind,
    pub key_bits: u32,
    pub not_before_ms: i64,
    pub not_after_ms: i64,
    pub pem: &'a str,
    pub created_by: &'a str,
    pub now_ms: i64,
}

/// A certificate's row.
#[derive(Clone, Debug)]
pub struct CertificateRecord {
    pub id: String,
    pub account_id: String,
    pub subject: String,
    pub fingerprint_sha256: String,
    pub pem: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AddCertificateError {
    #[error("the account has its most certificates")]
    TooMany,
    #[error("the account has this certificate already")]
    Duplicate(String),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum DeleteCertificateError {
    #[error("no such certificate")]
    NotFound,
    #[error("{0} images waiting for their bytes name the certificate")]
    InUse(u64),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

fn record(r: &AnyRow) -> sqlx::Result<CertificateRecord> {
    Ok(CertificateRecord {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        subject: r.try_get("subject")?,
        fingerprint_sha256: r.try_get("fingerprint_sha256")?,
        pem: r.try_get("pem")?,
    })
}

fn summary(r: &AnyRow) -> sqlx::Result<CertificateSummary> {
    let kind: String = r.try_get("key_kind")?;
    Ok(CertificateSummary {
        id: r.try_get("id")?,
        subject: r.try_get("subject")?,
        issuer: r.try_get("issuer")?,
        fingerprint_sha256: r.try_get("fingerprint_sha256")?,
        key_kind: KeyKind::from_db(&kind).ok_or_else(|| decode_error("key_kind", &kind))?,
        key_bits: u32::try_from(r.try_get::<i64, _>("key_bits")?).unwrap_or(0),
        not_before_ms: r.try_get("not_before_ms")?,
        not_after_ms: r.try_get("not_after_ms")?,
        created_at_ms: r.try_get("created_at")?,
        pending_images: u32::try_from(to_u64(r.try_get("pending")?)).unwrap_or(u32::MAX),
        verified_images: u32::try_from(to_u64(r.try_get("verified")?)).unwrap_or(u32::MAX),
        // Judged by the service, at its clock.
        validity: Validity::Valid,
    })
}

impl Store {
    /// Adds a certificate unless the account holds `limit` or this one already (by
    /// fingerprint); the account's row is locked first so two uploads are counted in turn.
    pub async fn add_certificate(
        &self,
        row: &NewCertificate<'_>,
        limit: usize,
    ) -> Result<(), AddCertificateError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE accounts SET created_at = created_at WHERE id = $1")
            .bind(row.account_id)
            .execute(&mut *tx)
            .await?;
        let held: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM signing_certificates WHERE account_id = $1")
                .bind(row.account_id)
                .fetch_one(&mut *tx)
                .await?;
        if usize::try_from(held).unwrap_or(usize::MAX) >= limit {
            return Err(AddCertificateError::TooMany);
        }
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT id FROM signing_certificates WHERE account_id = $1 AND fingerprint_sha256 = $2",
        )
        .bind(row.account_id)
        .bind(row.fingerprint_sha256)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = existing {
            return Err(AddCertificateError::Duplicate(id));
        }
        sqlx::query(
            "INSERT INTO signing_certificates (id, account_id, subject, issuer, fingerprint_sha256, key_kind, key_bits, not_before_ms, not_after_ms, pem, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(row.id)
        .bind(row.account_id)
        .bind(row.subject)
        .bind(row.issuer)
        .bind(row.fingerprint_sha256)
        .bind(row.key_kind.as_str())
        .bind(i64::from(row.key_bits))
        .bind(row.not_before_ms)
        .bind(row.not_after_ms)
        .bind(row.pem)
        .bind(row.created_by)
        .bind(row.now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The account's certificates, newest first, each with the images that name it.
    pub async fn list_certificates(
        &self,
        account_id: &str,
    ) -> sqlx::Result<Vec<CertificateSummary>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS}, \
             (SELECT COUNT(*) FROM images i WHERE i.signature_certificate_id = c.id AND i.account_id = c.account_id AND i.status IN {PENDING_STATUSES}) AS pending, \
             (SELECT COUNT(*) FROM images i WHERE i.signature_certificate_id = c.id AND i.account_id = c.account_id AND i.signature_verified_at IS NOT NULL AND i.status <> 'deleting') AS verified \
             FROM signing_certificates c WHERE c.account_id = $1 ORDER BY c.created_at DESC, c.id"
        ))
        .bind(account_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(summary).collect()
    }

    /// One of the account's certificates.
    pub async fn find_certificate(
        &self,
        account_id: &str,
        id: &str,
    ) -> sqlx::Result<Option<CertificateRecord>> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM signing_certificates c WHERE c.id = $1 AND c.account_id = $2"
        ))
        .bind(id)
        .bind(account_id)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(record)
        .transpose()
    }

    /// Deletes a certificate no image waiting for its bytes names. Verified images keep the
    /// subject and fingerprint they were verified with.
    pub async fn delete_certificate(
        &self,
        account_id: &str,
        id: &str,
    ) -> Result<CertificateRecord, DeleteCertificateError> {
        let mut tx = self.begin_write().await?;
        let found = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM signing_certificates c WHERE c.id = $1 AND c.account_id = $2"
        ))
        .bind(id)
        .bind(account_id)
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(record)
        .transpose()?
        .ok_or(DeleteCertificateError::NotFound)?;
        let pending: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM images WHERE signature_certificate_id = $1 AND account_id = $2 AND status IN {PENDING_STATUSES}"
        ))
        .bind(id)
        .bind(account_id)
        .fetch_one(&mut *tx)
        .await?;
        if pending > 0 {
            return Err(DeleteCertificateError::InUse(to_u64(pending)));
        }
        sqlx::query("DELETE FROM signing_certificates WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(found)
    }
}
