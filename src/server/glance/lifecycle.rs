//! Deactivate and reactivate (Glance's image actions), and the console's in-use references:
//! `PUT`/`DELETE /v2/images/{id}/references/{kind}/{reference}` and `GET …/references`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{ApiActor, error, service_error};
use crate::domain::units::format_rfc3339;
use crate::service::{ServiceError, Services};

/// `POST /v2/images/{id}/actions/deactivate` and `…/reactivate`: 204. A deactivated image's
/// data cannot be downloaded until it is reactivated. Glance answers 403 for an image whose
/// status does not allow the action.
pub async fn image_action(
    State(services): State<Services>,
    ApiActor(actor): ApiActor,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let deactivate = match action.as_str() {
        "deactivate" => true,
        "reactivate" => false,
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                format!("The image API has no action {action:?}: use deactivate or reactivate."),
            );
        }
    };
    match services.set_image_activation(&actor, &id, deactivate).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(ServiceError::Conflict(m)) => error(StatusCode::FORBIDDEN, m),
        Err(e) => service_error(&e, &headers),
    }
}

/// `GET /v2/images/{id}/references`: what uses the image. The owner sees every account's
/// references, other accounts' users named only as their account; an account the image is
/// shared with sees its own.
pub async fn list_references(
    State(services): State<Services>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match services.image_references(&actor, &id).await {
        Ok(references) => {
            let references: Vec<_> = references
                .iter()
                .map(|r| {
                    json!({
                        "kind": r.kind,
                        "id": r.reference_id,
                        "account_id": r.account_id,
                        "added_by": r.added_by.clone().unwrap_or_else(|| format!("account {}", r.account_id)),
                        "added_at": format_rfc3339(r.added_at_ms),
                    })
                })
                .collect();
            Json(json!({ "references": references })).into_response()
        }
        Err(e) => service_error(&e, &headers),
    }
}

/// `PUT /v2/images/{id}/references/{kind}/{reference}`: 201 when added, 204 when the
/// account had it already (each account has its own). Delete and Destroy are refused while
/// any account's reference is left.
pub async fn add_reference(
    State(services): State<Services>,
    ApiActor(actor): ApiActor,
    Path((id, kind, reference)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    match services
        .add_image_reference(&actor, &id, &kind, &reference)
        .await
    {
        Ok(true) => StatusCode::CREATED.into_response(),
        Ok(false) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => service_error(&e, &headers),
    }
}

/// `DELETE /v2/images/{id}/references/{kind}/{reference}`: 204.
pub async fn remove_reference(
    State(services): State<Services>,
    ApiActor(actor): ApiActor,
    Path((id, kind, reference)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    match services
        .remove_image_reference(&actor, &id, &kind, &reference)
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => service_error(&e, &headers),
    }
}
