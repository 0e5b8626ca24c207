//! Deactivate and reactivate (Glance's image actions), and the console's in-use references:
//! `PUT`/`DELETE /v2/images/{id}/references/{kind}/{reference}` and `GET …/references`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{ApiActor, error, service_error};
use crate::domain::image::AncestorState;
use crate::domain::units::format_rfc3339;
use crate::service::{ServiceError, Services};

/// `POST /v2/images/{id}/actions/deactivate` and `…/reactivate`: 204. A deactivated image's
/// data cannot be downloaded until it is reactivated. Glance answers 403 for an image whose
/// status does not allow the action.
///
/// `POST /v2/images/{id}/actions/replicate` with `{"name": …, "os_encrypt_key_id": …}`
/// (both optional: the name defaults to the image's with `-replica`, and no key means an
/// unencrypted replica; `default` is the account's default key): 202 with the replica,
/// queued, and its address in `Location`. The copy runs in the background as an import does.
pub async fn image_action(
    State(services): State<Services>,
    ApiActor(actor): ApiActor,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let deactivate = match action.as_str() {
        "deactivate" => true,
        "reactivate" => false,
        "replicate" => return replicate(&services, &actor, &id, &body, &headers).await,
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                format!(
                    "The image API has no action {action:?}: use deactivate, reactivate or replicate."
                ),
            );
        }
    };
    match services.set_image_activation(&actor, &id, deactivate).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(ServiceError::Conflict(m)) => error(StatusCode::FORBIDDEN, m),
        Err(e) => service_error(&e, &headers),
    }
}

async fn replicate(
    services: &Services,
    actor: &crate::service::Actor,
    id: &str,
    body: &[u8],
    headers: &HeaderMap,
) -> Response {
    let request: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(value @ Value::Object(_)) => value,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "The body must be a JSON object such as {\"name\": \"web-copy\", \"os_encrypt_key_id\": \"default\"}.",
                );
            }
        }
    };
    let text = |key: &str| match &request[key] {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(format!("'{key}' must be a string.")),
    };
    let (name, key) = match (text("name"), text(super::document::ENCRYPTION_KEY_PROPERTY)) {
        (Ok(name), Ok(key)) => (name, key),
        (Err(refused), _) | (_, Err(refused)) => return error(StatusCode::BAD_REQUEST, refused),
    };
    let name = match name {
        Some(name) => name,
        None => match services.api_image(actor, id).await {
            Ok(image) => format!("{}-replica", image.detail.attributes.name),
            Err(e) => return service_error(&e, headers),
        },
    };
    let (encryption, key) = match key.as_deref() {
        None | Some("") => ("off", ""),
        Some(key) => ("on", key),
    };
    let replica = match services
        .replicate_image(actor, id, &name, encryption, key)
        .await
    {
        Ok(replica) => replica,
        Err(e) => return service_error(&e, headers),
    };
    match services.api_image(actor, &replica).await {
        Ok(image) => {
            let mut response = (
                StatusCode::ACCEPTED,
                Json(super::document::image_json(&image)),
            )
                .into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("/v2/images/{replica}")) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            response
        }
        Err(e) => service_error(&e, headers),
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

/// `GET /v2/images/{id}/ancestry`: the images it was made from, nearest first, up to its
/// root (as AWS's GetImageAncestry): each with its owner, and its name and status only when
/// it is one of the caller's own images; a destroyed one as `destroyed`.
pub async fn ancestry(
    State(services): State<Services>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match services.api_ancestry(&actor, &id).await {
        Ok(ancestors) => {
            let ancestors: Vec<_> = ancestors
                .iter()
                .map(|a| {
                    let mut entry = json!({
                        "id": a.id,
                        "depth": a.depth,
                        "owner": a.account_id,
                    });
                    let state = match &a.seen {
                        AncestorState::Image { name, status } => {
                            entry["name"] = json!(name);
                            entry["status"] = json!(super::wire::api_status(*status, false));
                            "visible"
                        }
                        AncestorState::OtherAccount => "other_account",
                        AncestorState::Destroyed => "destroyed",
                    };
                    entry["state"] = json!(state);
                    entry
                })
                .collect();
            Json(json!({ "image_id": id, "ancestry": ancestors })).into_response()
        }
        Err(e) => service_error(&e, &headers),
    }
}
