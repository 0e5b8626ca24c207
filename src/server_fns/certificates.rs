//! Certificates: the account's signing certificates, which signed images verify against.

use leptos::prelude::*;

use crate::domain::signature::CertificateSummary;
use crate::server_fns::error::AppError;

/// The account's certificates, newest first.
#[server]
pub async fn list_certificates() -> Result<Vec<CertificateSummary>, AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .list_certificates(&actor)
        .await
        .map_err(ssr::to_app_error)
}

/// Uploads a PEM certificate; returns its id.
#[server]
pub async fn add_certificate(certificate_pem: String) -> Result<String, AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .add_certificate(&actor, &certificate_pem)
        .await
        .map_err(ssr::to_app_error)
}

/// Deletes a certificate no image waiting for its bytes needs.
#[server]
pub async fn delete_certificate(id: String) -> Result<(), AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .delete_certificate(&actor, &id)
        .await
        .map_err(ssr::to_app_error)
}
