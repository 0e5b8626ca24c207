//! `/v2/images/{id}/members…`: Glance's image members, which are Share to another Account.
//! A member is an Account ID; its status is the share's (pending, accepted, rejected). The
//! owner adds and removes members; only the member itself accepts or rejects.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::document::timestamp;
use super::{ApiActor, error, read_object, service_error};
use crate::domain::share::{ShareDecision, ShareStatus};
use crate::service::{Actor, ServiceError, Services};

fn member_json(
    image_id: &str,
    member: &str,
    status: ShareStatus,
    created: i64,
    updated: i64,
) -> Value {
    json!({
        "image_id": image_id,
        "member_id": member,
        "status": status.as_str(),
        "created_at": timestamp(created),
        "updated_at": timestamp(updated),
        "schema": "/v2/schemas/member",
    })
}

/// The memberships of the image the actor may see: every share in force for its owner, its
/// own for a member.
async fn memberships(
    services: &Services,
    actor: &Actor,
    id: &str,
) -> Result<Vec<Value>, ServiceError> {
    match services.api_image_sharing(actor, id).await {
        Ok(sharing) => Ok(sharing
            .shares
            .iter()
            .filter(|s| s.status.is_active())
            .map(|s| {
                member_json(
                    &sharing.image_id,
                    &s.account_id,
                    s.status,
                    s.requested_at_ms,
                    s.updated_at_ms,
                )
            })
            .collect()),
        Err(ServiceError::Forbidden(_)) | Err(ServiceError::NotFound(_)) => {
            let shared = services
                .find_shared_image(actor, id)
                .await
                .map_err(|_| not_found())?;
            Ok(vec![member_json(
                &shared.image_id,
                &actor.account_id,
                shared.status,
                shared.requested_at_ms,
                shared.requested_at_ms,
            )])
        }
        Err(e) => Err(e),
    }
}

fn not_found() -> ServiceError {
    ServiceError::NotFound(crate::domain::notices::NO_SUCH_IMAGE.into())
}

/// `GET /v2/images/{id}/members`.
pub async fn list_members(
    State(services): State<Services>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match memberships(&services, &actor, &id).await {
        Ok(members) => {
            Json(json!({ "members": members, "schema": "/v2/schemas/members" })).into_response()
        }
        Err(e) => service_error(&e, &headers),
    }
}

/// `POST /v2/images/{id}/members` with `{"member": "<Account ID>"}`: Share to another
/// Account. 409 when the account is a member already.
pub async fn add_member(
    State(services): State<Services>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let fields = match read_object(body).await {
        Ok(fields) => fields,
        Err(answer) => return answer,
    };
    let Some(member) = fields.get("member").and_then(Value::as_str) else {
        return error(
            StatusCode::BAD_REQUEST,
            "Name the member: {\"member\": \"<Account ID>\"}.",
        );
    };
    match services.api_image_sharing(&actor, &id).await {
        Ok(sharing)
            if sharing
                .shares
                .iter()
                .any(|s| s.status.is_active() && s.account_id == member.to_ascii_lowercase()) =>
        {
            return error(
                StatusCode::CONFLICT,
                format!("Account {member} is already a member of this image."),
            );
        }
        Ok(_) => {}
        Err(e) => return service_error(&e, &headers),
    }
    match services.share_image(&actor, &id, member).await {
        Ok(share) => Json(member_json(
            &id,
            &share.account_id,
            share.status,
            share.requested_at_ms,
            share.updated_at_ms,
        ))
        .into_response(),
        Err(e) => service_error(&e, &headers),
    }
}

/// `GET /v2/images/{id}/members/{member}`.
pub async fn show_member(
    State(services): State<Services>,
    ApiActor(actor): ApiActor,
    Path((id, member)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match memberships(&services, &actor, &id).await {
        Ok(members) => match members
            .into_iter()
            .find(|m| m["member_id"].as_str() == Some(member.to_ascii_lowercase().as_str()))
        {
            Some(found) => Json(found).into_response(),
            None => error(
                StatusCode::NOT_FOUND,
                format!("Account {member} is not a member of this image."),
            ),
        },
        Err(e) => service_error(&e, &headers),
    }
}

/// `PUT /v2/images/{id}/members/{member}` with `{"status": "accepted" | "rejected"}`: the
/// member's own answer, Approve or Reject.
pub async fn update_member(
    State(services): State<Services>,
    ApiActor(actor): ApiActor,
    Path((id, member)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let fields = match read_object(body).await {
        Ok(fields) => fields,
        Err(answer) => return answer,
    };
    let status = fields
        .get("status")
        .and_then(Value::as_str)
        .and_then(ShareStatus::from_member);
    let decision = match status {
        Some(ShareStatus::Accepted) => ShareDecision::Approve,
        Some(ShareStatus::Rejected) => ShareDecision::Reject,
        Some(ShareStatus::Pending) => {
            return error(
                StatusCode::BAD_REQUEST,
                "A member accepts or rejects an image; it cannot be made pending again.",
            );
        }
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "Give the member's status: {\"status\": \"accepted\"} or {\"status\": \"rejected\"}.",
            );
        }
    };
    if member.to_ascii_lowercase() != actor.account_id {
        // The owner (or anyone else) cannot answer for the member.
        return match services.api_image_sharing(&actor, &id).await {
            Ok(_) => error(
                StatusCode::FORBIDDEN,
                format!("Only account {member} can accept or reject this image."),
            ),
            Err(e) => service_error(&e, &headers),
        };
    }
    if let Err(e) = services.find_shared_image(&actor, &id).await {
        return service_error(&e, &headers);
    }
    match services
        .decide_shares(&actor, std::slice::from_ref(&id), decision)
        .await
    {
        Ok(result) if result.done.is_empty() => error(
            StatusCode::CONFLICT,
            result
                .skipped
                .first()
                .map(|s| s.reason.clone())
                .unwrap_or_else(|| "The share could not be changed.".into()),
        ),
        Ok(_) => match memberships(&services, &actor, &id).await {
            Ok(mut members) if !members.is_empty() => Json(members.remove(0)).into_response(),
            Ok(_) => service_error(&not_found(), &headers),
            Err(e) => service_error(&e, &headers),
        },
        Err(e) => service_error(&e, &headers),
    }
}

/// `DELETE /v2/images/{id}/members/{member}`: Stop sharing. An image in the Recycle Bin has
/// no members (its shares ended when it was deleted): 404.
pub async fn remove_member(
    State(services): State<Services>,
    ApiActor(actor): ApiActor,
    Path((id, member)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = services.api_image_sharing(&actor, &id).await {
        return service_error(&e, &headers);
    }
    match services.stop_sharing(&actor, &id, &member).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => service_error(&e, &headers),
    }
}
