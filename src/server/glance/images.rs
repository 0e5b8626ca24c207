//! `/v2/images…`: list, create, show, update (JSON patch), delete, image data and tags.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};

use super::document::{self, change_of, check_container_format, image_json};
use super::list;
use super::wire::{api_tag, tag_from_api};
use super::{ApiActor, error, read_json, read_object, service_error};
use crate::server::downloads::serve_file;
use crate::service::image_api::{ApiChange, ImportMethod};
use crate::service::{ServiceError, Services};
use crate::store::ApiListOutcome;

/// The media types an image update may come as.
const PATCH_MEDIA_TYPES: [&str; 2] = [
    "application/openstack-images-v2.1-json-patch",
    "application/openstack-images-v2.0-json-patch",
];

fn refusal(r: document::FieldRefusal) -> Response {
    error(r.status, r.message)
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Images of a page whose tags and properties are read, and whose JSON is written, at once:
/// what one list request holds in memory besides the page's rows.
const LIST_BATCH: usize = 4;

/// `GET /v2/images`. The body is written a few images at a time (their properties can be
/// 128 KiB each), so a request's memory follows the batch, not the page.
pub async fn list_images(
    State(services): State<Services>,
    ApiActor(actor): ApiActor,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let pairs = query_pairs(query.as_deref());
    let query = match list::parse(&pairs) {
        Ok(query) => query,
        Err(r) => return refusal(r),
    };
    let page = match services.api_list_images(&actor, &query).await {
        Ok(ApiListOutcome::Page(page)) => page,
        Ok(ApiListOutcome::UnknownMarker) => {
            return refusal(document::bad(format!(
                "marker '{}' is not an image in this list; start again without it.",
                query.marker.unwrap_or_default()
            )));
        }
        Err(e) => return service_error(&e, &headers),
    };
    let mut tail = json!({
        "first": "/v2/images",
        "schema": "/v2/schemas/images",
    });
    if page.more
        && let Some((last, _)) = page.images.last()
    {
        tail["next"] = Value::String(format!("/v2/images?{}", list::next_query(&pairs, &last.id)));
    }
    // The tail object's fields follow the list in the same object.
    let tail = format!("],{}", &tail.to_string()[1..]);
    let mut batches = Vec::new();
    let mut rows = page.images.into_iter().peekable();
    while rows.peek().is_some() {
        batches.push(rows.by_ref().take(LIST_BATCH).collect::<Vec<_>>());
    }
    let images = futures::stream::iter(batches)
        .enumerate()
        .then(move |(n, rows)| {
            let (services, actor) = (services.clone(), actor.clone());
            async move {
                let images = services
                    .api_page_images(&actor, rows)
                    .await
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                let mut out = Vec::new();
                for (i, image) in images.iter().enumerate() {
                    if n > 0 || i > 0 {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut out, &image_json(image))?;
                }
                Ok::<_, std::io::Error>(bytes::Bytes::from(out))
            }
        });
    let body = futures::stream::once(async { Ok(bytes::Bytes::from_static(b"{\"images\":[")) })
        .chain(images)
        .chain(futures::stream::once(async move {
            Ok(bytes::Bytes::from(tail))
        }));
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response()
}

/// `POST /v2/images`: a new image, queued until its data arrives.
pub async fn create_image(
    State(services): State<Services>,
    ApiActor(actor): ApiActor,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let fields = match read_object(body).await {
        Ok(fields) => fields,
        Err(answer) => return answer,
    };
    let mut disk_format = String::new();
    let mut id = None;
    let mut changes = Vec::new();
    for (key, value) in &fields {
        match key.as_str() {
            // Glance lets a client choose the new image's id.
            "id" => match value {
                Value::String(s) => id = Some(s.as_str()),
                _ => return error(StatusCode::BAD_REQUEST, "'id' must be a string (a UUID)."),
            },
            "disk_format" => match value {
                Value::String(s) => disk_format = s.clone(),
                Value::Null => {}
                _ => return error(StatusCode::BAD_REQUEST, "'disk_format' must be a string."),
            },
            "container_format" => {
                if let Err(r) = check_container_format(value) {
                    return refusal(r);
                }
            }
            _ => match change_of(key, value) {
                Ok(Some(change)) => changes.push(change),
                Ok(None) => {}
                Err(r) => return refusal(r),
            },
        }
    }
    match services
        .api_create_image(&actor, id, &disk_format, &changes)
        .await
    {
        Ok(image) => {
            let location = format!("/v2/images/{}", image.detail.id);
            let mut response = (StatusCode::CREATED, Json(image_json(&image))).into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            // Glance names the import methods and stores a new image can use.
            response.headers_mut().insert(
                "openstack-image-import-methods",
                HeaderValue::from_static("glance-direct,web-download"),
            );
            response.headers_mut().insert(
                "openstack-image-store-ids",
                HeaderValue::from_static(document::STORE_ID),
            );
            response
        }
        Err(e) => service_error(&e, &headers),
    }
}

/// `GET /v2/images/{id}`.
pub async fn show_image(
    State(services): State<Services>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match services.api_image(&actor, &id).await {
        Ok(image) => Json(image_json(&image)).into_response(),
        Err(e) => service_error(&e, &headers),
    }
}

/// One JSON-patch path, unescaped (`~1` is '/', `~0` is '~'): `/name` → `name`.
fn patch_target(path: &str) -> Option<String> {
    let rest = path.strip_prefix('/')?;
    if rest.is_empty() || rest.contains('/') {
        return None;
    }
    Some(rest.replace("~1", "/").replace("~0", "~"))
}

/// `PATCH /v2/images/{id}`: JSON patch (`add`, `replace`, `remove`) of the image's fields,
/// tags and properties, checked whole before any of it is written.
pub async fn update_image(
    State(services): State<Services>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .unwrap_or("");
    if !PATCH_MEDIA_TYPES.contains(&media_type) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "An image update is a JSON patch sent as {}.",
                PATCH_MEDIA_TYPES[0]
            ),
        );
    }
    let Value::Array(ops) = (match read_json(body).await {
        Ok(value) => value,
        Err(answer) => return answer,
    }) else {
        return error(
            StatusCode::BAD_REQUEST,
            "A JSON patch is a list of operations.",
        );
    };
    let mut changes = Vec::new();
    for op in &ops {
        let name = op["op"].as_str().unwrap_or("");
        let Some(target) = op["path"].as_str().and_then(patch_target) else {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "Patch path {} is not an image field: paths look like /name.",
                    op["path"]
                ),
            );
        };
        match name {
            "add" | "replace" => {
                let value = &op["value"];
                // Every image here is a plain disk image: 'bare' is its only container.
                if target == "container_format" {
                    if let Err(r) = check_container_format(value) {
                        return refusal(r);
                    }
                    continue;
                }
                // The rules say while it may change (while the image waits for its data).
                if target == "disk_format" {
                    match value {
                        Value::String(s) => changes.push(ApiChange::DiskFormat(s.clone())),
                        _ => {
                            return error(
                                StatusCode::BAD_REQUEST,
                                "'disk_format' must be a string.",
                            );
                        }
                    }
                    continue;
                }
                match change_of(&target, value) {
                    Ok(Some(change)) => changes.push(change),
                    Ok(None) => {}
                    Err(r) => return refusal(r),
                }
            }
            "remove" => match change_of(&target, &Value::String(String::new())) {
                Ok(Some(ApiChange::SetProperty(key, _))) => {
                    changes.push(ApiChange::RemoveProperty(key));
                }
                Ok(Some(ApiChange::Tags(_))) => changes.push(ApiChange::Tags(Vec::new())),
                Ok(Some(ApiChange::SignatureProperty(key, _))) => {
                    changes.push(ApiChange::SignatureProperty(key, None));
                }
                Ok(Some(ApiChange::DeprecationTime(_))) => {
                    changes.push(ApiChange::DeprecationTime(String::new()));
                }
                Ok(Some(ApiChange::Description(_))) => {
                    changes.push(ApiChange::Description(String::new()));
                }
                Ok(Some(ApiChange::OsVersion(_))) => {
                    changes.push(ApiChange::OsVersion(String::new()));
                }
                Err(r) if r.status == StatusCode::FORBIDDEN => return refusal(r),
                _ => {
                    return error(
                        StatusCode::FORBIDDEN,
                        format!(
                            "{target} is an image field and cannot be removed; replace it instead."
                        ),
                    );
                }
            },
            other => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "Patch operation '{other}' is not offered: use add, replace or remove."
                    ),
                );
            }
        }
    }
    match services.api_update_image(&actor, &id, &changes).await {
        Ok(image) => Json(image_json(&image)).into_response(),
        Err(e) => service_error(&e, &headers),
    }
}

/// `DELETE /v2/images/{id}`: to the Recycle Bin, cancelling an import or a wait for data
/// first, as Glance deletes an image in any state. A Protected or in-use image is refused
/// with 403, as in Glance.
pub async fn delete_image(
    State(services): State<Services>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match services.api_delete_image(&actor, &id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(ServiceError::Conflict(m)) => error(StatusCode::FORBIDDEN, m),
        Err(e) => service_error(&e, &headers),
    }
}

/// `PUT /v2/images/{id}/file`: the image's data, streamed through the same write, hash and
/// inspection path as every import. 204 once the image is active.
pub async fn upload_data(
    State(services): State<Services>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receive_data(services, actor, id, headers, body, false).await
}

/// `PUT /v2/images/{id}/stage`: the image's data, checked and stored as an upload is, kept
/// until `POST /import` (glance-direct) makes the image active. 204.
pub async fn stage_data(
    State(services): State<Services>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receive_data(services, actor, id, headers, body, true).await
}

async fn receive_data(
    services: Services,
    actor: crate::service::Actor,
    id: String,
    headers: HeaderMap,
    body: Body,
    stage: bool,
) -> Response {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !media_type.starts_with("application/octet-stream") {
        return close(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Image data is sent as application/octet-stream.",
        ));
    }
    let total = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let stream = body
        .into_data_stream()
        .map(|chunk| chunk.map_err(|_| "the client's connection was closed".to_owned()));
    let received = if stage {
        services
            .api_stage_image_data(&actor, &id, total, stream)
            .await
    } else {
        services
            .api_upload_image_data(&actor, &id, total, stream)
            .await
    };
    match received {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        // The body may be unread: the connection cannot carry another request.
        Err(e) => close(service_error(&e, &headers)),
    }
}

/// `POST /v2/images/{id}/import` with `{"method": {"name": "glance-direct"}}` or
/// `{"method": {"name": "web-download", "uri": "https://…"}}`, and optionally
/// `"convert_to": "qcow2"`. 202: a web-download, and a conversion, go on in the background.
pub async fn import_image(
    State(services): State<Services>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request = match read_json(body).await {
        Ok(value) => value,
        Err(answer) => return answer,
    };
    let method = match request["method"]["name"].as_str() {
        Some("glance-direct") => ImportMethod::GlanceDirect,
        Some("web-download") => match request["method"]["uri"].as_str() {
            Some(uri) => ImportMethod::WebDownload(uri.to_owned()),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "web-download needs the image file's address: {\"method\": {\"name\": \"web-download\", \"uri\": \"https://…\"}}.",
                );
            }
        },
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "Import method '{other}' is not offered: use glance-direct or web-download."
                ),
            );
        }
        None => {
            return error(
                StatusCode::BAD_REQUEST,
                "Name the import method: {\"method\": {\"name\": \"glance-direct\"}}.",
            );
        }
    };
    let convert_to = match &request[super::document::CONVERT_TO_PROPERTY] {
        serde_json::Value::Null => None,
        serde_json::Value::String(target) => Some(target.as_str()),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "convert_to must be a string: qcow2, raw or none.",
            );
        }
    };
    match services
        .api_import_image(&actor, &id, &method, convert_to)
        .await
    {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => service_error(&e, &headers),
    }
}

fn close(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// `GET /v2/images/{id}/file`: the image's data, whole or one Range, with its MD5 in
/// `Content-MD5` as Glance sends it; 204 while the image has no data.
pub async fn download_data(
    State(services): State<Services>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let checksum = match services.api_image(&actor, &id).await {
        Ok(image) => image.detail.checksum_md5,
        Err(e) => return service_error(&e, &headers),
    };
    match services.api_image_data(&actor, &id).await {
        Ok(file) => {
            let ranged = headers.contains_key(header::RANGE);
            let mut response = serve_file(file, &headers).await;
            // An account's data for one token: no cache keeps it, and none transforms it
            // (byte ranges must stay true).
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store, no-transform"),
            );
            if !ranged
                && let Some(md5) = checksum
                && let Ok(value) = HeaderValue::from_str(&md5)
            {
                response.headers_mut().insert("content-md5", value);
            }
            response
        }
        Err(ServiceError::Conflict(_)) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => service_error(&e, &headers),
    }
}

/// `PUT /v2/images/{id}/tags/{tag}`: adds a tag (`key` or `key=value`); adding one that is
/// there already changes nothing.
pub async fn add_tag(
    State(services): State<Services>,
    ApiActor(actor): ApiActor,
    Path((id, tag)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let image = match services.api_image(&actor, &id).await {
        Ok(image) => image,
        Err(e) => return service_error(&e, &headers),
    };
    let wanted = tag_from_api(&tag);
    let existing = image.detail.tags.iter().find(|t| t.key == wanted.key);
    if existing.is_some_and(|t| api_tag(t) == tag) {
        return StatusCode::NO_CONTENT.into_response();
    }
    match services
        .put_image_tag(
            &actor,
            &id,
            existing.map(|t| t.key.as_str()),
            &wanted.key,
            &wanted.value,
        )
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => service_error(&e, &headers),
    }
}

/// `DELETE /v2/images/{id}/tags/{tag}`: 404 when the image has no such tag.
pub async fn remove_tag(
    State(services): State<Services>,
    ApiActor(actor): ApiActor,
    Path((id, tag)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let image = match services.api_image(&actor, &id).await {
        Ok(image) => image,
        Err(e) => return service_error(&e, &headers),
    };
    let Some(existing) = image.detail.tags.iter().find(|t| api_tag(t) == tag) else {
        if image.member_status == Some(crate::domain::share::ShareStatus::Accepted) {
            return service_error(
                &ServiceError::Forbidden(format!(
                    "Account {} shares this image with this account: only it can change its tags.",
                    image.detail.account_id
                )),
                &headers,
            );
        }
        return error(
            StatusCode::NOT_FOUND,
            format!("The image has no tag '{tag}'."),
        );
    };
    match services.remove_image_tag(&actor, &id, &existing.key).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => service_error(&e, &headers),
    }
}
