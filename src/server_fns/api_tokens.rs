//! API access: the signed-in user's API tokens for the image API.

use leptos::prelude::*;

use crate::domain::api_token::{ApiTokenSummary, NewApiToken};
use crate::server_fns::error::AppError;

/// The signed-in user's tokens, newest first.
#[server]
pub async fn list_api_tokens() -> Result<Vec<ApiTokenSummary>, AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .list_api_tokens(&actor)
        .await
        .map_err(ssr::to_app_error)
}

/// Makes a token; its secret is in this answer only.
#[server]
pub async fn create_api_token(name: String, lifetime: String) -> Result<NewApiToken, AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .create_api_token(&actor, &name, &lifetime)
        .await
        .map_err(ssr::to_app_error)
}

#[server]
pub async fn revoke_api_token(id: String) -> Result<(), AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .revoke_api_token(&actor, &id)
        .await
        .map_err(ssr::to_app_error)
}
