//! Signed images: the account's signing certificates (the Certificates page), and what an
//! image's signature is checked against once its bytes are in (`SignatureCheck`).

pub mod verify;

use super::{Actor, ServiceError, ServiceResult, Services};
use crate::domain::FieldError;
use crate::domain::signature::{
    CertificatePem, CertificateSummary, SignatureClaim, SignatureProperties, VerifiedSignature,
    field,
};
use crate::store::Store;
use crate::store::certificates::{AddCertificateError, DeleteCertificateError, NewCertificate};
use verify::SigningCertificate;

/// Most certificates one account holds.
pub const MAX_CERTIFICATES_PER_ACCOUNT: usize = 100;

/// What an image's bytes must verify against, read when its bytes are checked: the claim and
/// the certificate it names, or the reason the image cannot be verified (the properties are
/// incomplete, or the certificate is not the account's).
#[derive(Clone, Debug)]
pub struct SignatureCheck {
    pub claim: SignatureClaim,
    pub certificate: SigningCertificate,
}

/// Reads the certificate an image's signature properties name. `Ok(None)`: not signed.
/// `Ok(Some(Err(reason)))`: signed, but cannot verify; the image fails with the reason.
pub async fn resolve(
    store: &Store,
    account_id: &str,
    properties: &SignatureProperties,
) -> anyhow::Result<Option<Result<SignatureCheck, String>>> {
    let claim = match properties.claim() {
        Ok(None) => return Ok(None),
        Ok(Some(claim)) => claim,
        Err(reason) => return Ok(Some(Err(reason))),
    };
    let Some(record) = store
        .find_certificate(account_id, claim.certificate.as_str())
        .await?
    else {
        return Ok(Some(Err(format!(
            "The signing certificate {} is not one of this account's certificates: upload it on the Certificates page, then upload the image again.",
            claim.certificate.as_str()
        ))));
    };
    let certificate = SigningCertificate::from_pem(&record.pem)
        .map_err(|e| anyhow::anyhow!("stored certificate {} is unreadable: {e}", record.id))?;
    Ok(Some(Ok(SignatureCheck { claim, certificate })))
}

impl SignatureCheck {
    /// Verifies the bytes whose digest (with the claim's hash method) is `digest`, at `now_ms`.
    pub fn verify(&self, digest: Option<&[u8]>, now_ms: i64) -> Result<VerifiedSignature, String> {
        let digest = digest.ok_or_else(|| {
            "The bytes were not hashed with the signature's hash method; upload the image again."
                .to_owned()
        })?;
        verify::verify(&self.certificate, &self.claim, digest, now_ms)?;
        Ok(VerifiedSignature {
            verified_at_ms: now_ms,
            certificate_subject: self.certificate.subject.clone(),
            certificate_fingerprint: self.certificate.fingerprint_sha256.clone(),
            hash_method: self.claim.hash_method,
            key_type: self.claim.key_type,
        })
    }
}

impl Services {
    /// The actor's account's certificates.
    pub async fn list_certificates(&self, actor: &Actor) -> ServiceResult<Vec<CertificateSummary>> {
        let now = self.clock_ms();
        let mut certificates = self.store().list_certificates(&actor.account_id).await?;
        for certificate in &mut certificates {
            certificate.validity = certificate.validity_at(now);
        }
        Ok(certificates)
    }

    /// Reads, checks and keeps an uploaded PEM certificate; returns its id. A certificate
    /// that has expired, or is not yet valid, is refused: nothing could verify with it.
    pub async fn add_certificate(&self, actor: &Actor, pem: &str) -> ServiceResult<String> {
        let invalid = |message: String| {
            ServiceError::Invalid(vec![FieldError::new(field::CERTIFICATE_PEM, message)])
        };
        CertificatePem::parse(pem).map_err(|e| ServiceError::Invalid(vec![e]))?;
        let certificate = SigningCertificate::from_pem(pem).map_err(invalid)?;
        let now = self.clock_ms();
        certificate.check_validity(now).map_err(invalid)?;
        let id = uuid::Uuid::new_v4().to_string();
        let stored = x509_cert::der::pem::encode_string(
            "CERTIFICATE",
            x509_cert::der::pem::LineEnding::LF,
            &certificate.der,
        )
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("encoding PEM: {e}")))?;
        let added = self
            .store()
            .add_certificate(
                &NewCertificate {
                    id: &id,
                    account_id: &actor.account_id,
                    subject: &certificate.subject,
                    issuer: &certificate.issuer,
                    fingerprint_sha256: &certificate.fingerprint_sha256,
                    key_kind: certificate.key.kind(),
                    key_bits: certificate.key.bits(),
                    not_before_ms: certificate.not_before_ms,
                    not_after_ms: certificate.not_after_ms,
                    pem: &stored,
                    created_by: &actor.user_name,
                    now_ms: now,
                },
                MAX_CERTIFICATES_PER_ACCOUNT,
            )
            .await;
        match added {
            Ok(()) => {
                tracing::info!(certificate.id = %id, subject = %certificate.subject, "certificate added");
                Ok(id)
            }
            Err(AddCertificateError::TooMany) => Err(ServiceError::Conflict(format!(
                "The account holds {MAX_CERTIFICATES_PER_ACCOUNT} certificates, the most it may: delete one it no longer signs with first."
            ))),
            Err(AddCertificateError::Duplicate(existing)) => Err(invalid(format!(
                "This certificate is uploaded already, as {existing}."
            ))),
            Err(AddCertificateError::Sql(e)) => Err(e.into()),
        }
    }

    /// Deletes a certificate no image waiting for its bytes names.
    pub async fn delete_certificate(&self, actor: &Actor, id: &str) -> ServiceResult<()> {
        match self.store().delete_certificate(&actor.account_id, id).await {
            Ok(record) => {
                tracing::info!(certificate.id = %record.id, subject = %record.subject, "certificate deleted");
                Ok(())
            }
            Err(DeleteCertificateError::NotFound) => Err(ServiceError::NotFound(format!(
                "No certificate {id} in this account."
            ))),
            Err(DeleteCertificateError::InUse(n)) => Err(ServiceError::Conflict(format!(
                "{n} image{} waiting for {} bytes {} this certificate to verify {}: delete the certificate once {} uploaded or removed.",
                if n == 1 { "" } else { "s" },
                if n == 1 { "its" } else { "their" },
                if n == 1 { "needs" } else { "need" },
                if n == 1 { "it" } else { "them" },
                if n == 1 { "it is" } else { "they are" },
            ))),
            Err(DeleteCertificateError::Sql(e)) => Err(e.into()),
        }
    }

    /// Checks Create Image's signature section: the certificate must be the account's, valid
    /// now, and hold the kind of key the key type names.
    pub(crate) async fn check_signature_claim(
        &self,
        actor: &Actor,
        claim: &SignatureClaim,
    ) -> ServiceResult<()> {
        let invalid = |field_name: &str, message: String| {
            ServiceError::Invalid(vec![FieldError::new(field_name, message)])
        };
        let record = self
            .store()
            .find_certificate(&actor.account_id, claim.certificate.as_str())
            .await?
            .ok_or_else(|| {
                invalid(
                    field::CERTIFICATE,
                    "Choose one of this account's certificates.".into(),
                )
            })?;
        let certificate = SigningCertificate::from_pem(&record.pem)
            .map_err(|e| ServiceError::Internal(anyhow::anyhow!("stored certificate: {e}")))?;
        certificate
            .check_validity(self.clock_ms())
            .map_err(|m| invalid(field::CERTIFICATE, m))?;
        let kind = certificate.key.kind();
        if kind != claim.key_type.key_kind() {
            return Err(invalid(
                field::KEY_TYPE,
                format!(
                    "The certificate holds an {} key: its signatures are {}.",
                    kind.label(certificate.key.bits()),
                    kind.key_type().as_str()
                ),
            ));
        }
        Ok(())
    }
}
