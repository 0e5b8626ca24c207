//! Sharing: Share to another Account, Stop sharing, the Image Share Request List, Get Image
//! Share, Approve and Reject, Create shared Image, and the account's Work History.

use leptos::prelude::*;

use crate::domain::history::HistoryPage;
use crate::domain::image::BatchOutcome;
use crate::domain::share::{ImageShare, ImageSharing, ShareRequestPage, SharedImage};
use crate::server_fns::error::AppError;

/// The image's shares, for its owner.
#[server]
pub async fn get_image_sharing(id: String) -> Result<ImageSharing, AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .image_sharing(&actor, &id)
        .await
        .map_err(ssr::to_app_error)
}

/// Shares the image with another account (Pending until it approves).
#[server]
pub async fn share_image(id: String, account_id: String) -> Result<ImageShare, AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .share_image(&actor, &id, &account_id)
        .await
        .map_err(ssr::to_app_error)
}

#[server]
pub async fn stop_sharing(id: String, account_id: String) -> Result<(), AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .stop_sharing(&actor, &id, &account_id)
        .await
        .map_err(ssr::to_app_error)
}

/// Pending share requests to the signed-in account.
#[server]
pub async fn list_share_requests(page: u32) -> Result<ShareRequestPage, AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .list_share_requests(&actor, page)
        .await
        .map_err(ssr::to_app_error)
}

/// How many requests wait, for the navigation's badge.
#[server]
pub async fn count_share_requests() -> Result<u64, AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .count_share_requests(&actor)
        .await
        .map_err(ssr::to_app_error)
}

/// Get Image Share: an image shared with this account, by its Resource ID.
#[server]
pub async fn find_shared_image(image_id: String) -> Result<SharedImage, AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .find_shared_image(&actor, &image_id)
        .await
        .map_err(ssr::to_app_error)
}

#[server]
pub async fn approve_shares(ids: Vec<String>) -> Result<BatchOutcome, AppError> {
    use super::ssr;
    use crate::domain::share::ShareDecision;
    let (services, actor) = ssr::actor().await?;
    services
        .decide_shares(&actor, &ids, ShareDecision::Approve)
        .await
        .map_err(ssr::to_app_error)
}

#[server]
pub async fn reject_shares(ids: Vec<String>) -> Result<BatchOutcome, AppError> {
    use super::ssr;
    use crate::domain::share::ShareDecision;
    let (services, actor) = ssr::actor().await?;
    services
        .decide_shares(&actor, &ids, ShareDecision::Reject)
        .await
        .map_err(ssr::to_app_error)
}

/// Create shared Image; returns the new image's id.
#[server]
pub async fn create_shared_image(id: String, name: String) -> Result<String, AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .create_shared_image(&actor, &id, &name)
        .await
        .map_err(ssr::to_app_error)
}

/// The account's Work History over every image.
#[server]
pub async fn get_account_history(page: u32) -> Result<HistoryPage, AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .account_history(&actor, page)
        .await
        .map_err(ssr::to_app_error)
}
