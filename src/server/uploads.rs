//! The tus 1.0 routes (core, creation, creation-with-upload, termination, expiration):
//!
//! - `OPTIONS /uploads`, `/uploads/{id}`, `/images/{id}/uploads`: the server's capabilities.
//! - `POST /images/{id}/uploads`: creates the upload of an Uploading image, optionally with
//!   its first bytes.
//! - `HEAD /uploads/{id}`: the durable offset. `PATCH`: appends at the offset. `DELETE`:
//!   cancels the upload and deletes its bytes.
//!
//! Each request needs the session cookie and acts only on the account's own uploads. Headers
//! are parsed strictly here; the rules are in `service::uploads`.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::CookiePolicy;
use super::errors::{self, Form, TUS_RESUMABLE};
use crate::domain::upload::{OFFSET_OCTET_STREAM, TUS_EXTENSIONS, TUS_VERSION, upload_path};
use crate::service::uploads::{UploadError, UploadInfo};
use crate::service::{Actor, ServiceError, Services};

const TUS_VERSION_HEADER: HeaderName = HeaderName::from_static("tus-version");
const TUS_EXTENSION: HeaderName = HeaderName::from_static("tus-extension");
const TUS_MAX_SIZE: HeaderName = HeaderName::from_static("tus-max-size");
const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
const UPLOAD_METADATA: HeaderName = HeaderName::from_static("upload-metadata");
const UPLOAD_EXPIRES: HeaderName = HeaderName::from_static("upload-expires");
const UPLOAD_DEFER_LENGTH: HeaderName = HeaderName::from_static("upload-defer-length");
const METHOD_OVERRIDE: HeaderName = HeaderName::from_static("x-http-method-override");

/// `/images/{id}/uploads`: OPTIONS and POST (creation).
pub async fn upload_collection(
    State(services): State<Services>,
    State(policy): State<CookiePolicy>,
    Path(image_id): Path<String>,
    request: Request,
) -> Response {
    let has_body = has_body(request.headers());
    let response = match effective_method(&request) {
        Method::OPTIONS => options(&services),
        Method::POST => match authorize(&services, &policy, request.headers()).await {
            Ok(actor) => create(&services, &actor, &image_id, request).await,
            Err(response) => response,
        },
        _ => not_allowed("OPTIONS, POST"),
    };
    close_if_unread(response, has_body)
}

/// `/uploads`: OPTIONS only; uploads are created under their image.
pub async fn upload_root(State(services): State<Services>, request: Request) -> Response {
    match effective_method(&request) {
        Method::OPTIONS => options(&services),
        _ => not_allowed("OPTIONS"),
    }
}

/// `/uploads/{id}`: OPTIONS, HEAD, PATCH and DELETE.
pub async fn upload_resource(
    State(services): State<Services>,
    State(policy): State<CookiePolicy>,
    Path(upload_id): Path<String>,
    request: Request,
) -> Response {
    let has_body = has_body(request.headers());
    let response = resource_response(&services, &policy, &upload_id, request).await;
    close_if_unread(response, has_body)
}

async fn resource_response(
    services: &Services,
    policy: &CookiePolicy,
    upload_id: &str,
    request: Request,
) -> Response {
    let method = effective_method(&request);
    if method == Method::OPTIONS {
        return options(services);
    }
    if !matches!(method, Method::HEAD | Method::PATCH | Method::DELETE) {
        return not_allowed("OPTIONS, HEAD, PATCH, DELETE");
    }
    let actor = match authorize(services, policy, request.headers()).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let reference = errors::reference(request.headers());
    match method {
        Method::HEAD => match services.upload_status(&actor, upload_id).await {
            Ok(info) => head_response(&info),
            Err(e) => refuse(e, &reference, true),
        },
        Method::PATCH => patch(services, &actor, upload_id, request).await,
        _ => match services.terminate_upload(&actor, upload_id).await {
            Ok(()) => tus(StatusCode::NO_CONTENT).into_response(),
            Err(e) => refuse(e, &reference, false),
        },
    }
}

async fn create(services: &Services, actor: &Actor, image_id: &str, request: Request) -> Response {
    let headers = request.headers();
    let reference = errors::reference(headers);
    if headers.contains_key(UPLOAD_DEFER_LENGTH) {
        return message(
            StatusCode::BAD_REQUEST,
            "Upload-Defer-Length is not supported; send Upload-Length.",
        );
    }
    let Some(length) = strict_integer(headers, &UPLOAD_LENGTH) else {
        return message(
            StatusCode::BAD_REQUEST,
            "Upload-Length must be the file's size in bytes, a non-negative integer.",
        );
    };
    let metadata = match headers.get(UPLOAD_METADATA).map(HeaderValue::to_str) {
        None => String::new(),
        Some(Ok(value)) => value.to_owned(),
        Some(Err(_)) => {
            return message(StatusCode::BAD_REQUEST, "Upload-Metadata must be ASCII.");
        }
    };
    let with_data = is_offset_stream(headers);
    let info = match services
        .create_upload(actor, image_id, length, &metadata)
        .await
    {
        Ok(info) => info,
        Err(e) => return refuse(e, &reference, false),
    };
    let location = upload_path(&info.id);
    // creation-with-upload: the body is the first bytes. Whatever happens to them, the
    // upload exists; the offset says how much of the body was kept.
    let info = if with_data {
        let body = request.into_body().into_data_stream();
        match services.append_upload(actor, &info.id, 0, None, body).await {
            Ok(info) => info,
            Err(e) => {
                tracing::info!(error = %e, "first bytes of a new upload not all kept");
                services
                    .upload_status(actor, &info.id)
                    .await
                    .unwrap_or(info)
            }
        }
    } else {
        info
    };
    let mut response = tus(StatusCode::CREATED).into_response();
    let h = response.headers_mut();
    insert(h, header::LOCATION, &location);
    insert(h, UPLOAD_EXPIRES, &http_date(info.expires_at_ms));
    if with_data {
        insert(h, UPLOAD_OFFSET, &info.offset.to_string());
    }
    response
}

async fn patch(services: &Services, actor: &Actor, upload_id: &str, request: Request) -> Response {
    let headers = request.headers();
    let reference = errors::reference(headers);
    if !is_offset_stream(headers) {
        return message(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "PATCH bodies must be sent as application/offset+octet-stream.",
        );
    }
    let Some(offset) = strict_integer(headers, &UPLOAD_OFFSET) else {
        return message(
            StatusCode::BAD_REQUEST,
            "Upload-Offset must be a non-negative integer.",
        );
    };
    let announced = strict_integer(headers, &header::CONTENT_LENGTH);
    let body: Body = request.into_body();
    match services
        .append_upload(actor, upload_id, offset, announced, body.into_data_stream())
        .await
    {
        Ok(info) => {
            let mut response = tus(StatusCode::NO_CONTENT).into_response();
            let h = response.headers_mut();
            insert(h, UPLOAD_OFFSET, &info.offset.to_string());
            if info.offset < info.length {
                insert(h, UPLOAD_EXPIRES, &http_date(info.expires_at_ms));
            }
            response
        }
        Err(e) => {
            // The body may still be arriving after a refusal mid-stream (an idle timeout, a
            // cap): this connection carries no further request.
            let idle = matches!(e, UploadError::Idle { .. });
            let mut response = refuse(e, &reference, false);
            if idle {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            response
        }
    }
}

fn head_response(info: &UploadInfo) -> Response {
    let mut response = tus(StatusCode::OK).into_response();
    let h = response.headers_mut();
    insert(h, UPLOAD_OFFSET, &info.offset.to_string());
    insert(h, UPLOAD_LENGTH, &info.length.to_string());
    if !info.metadata.is_empty() {
        insert(h, UPLOAD_METADATA, &info.metadata);
    }
    if info.offset < info.length {
        insert(h, UPLOAD_EXPIRES, &http_date(info.expires_at_ms));
    }
    response
}

fn options(services: &Services) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    insert(h, TUS_VERSION_HEADER, TUS_VERSION);
    insert(h, TUS_EXTENSION, TUS_EXTENSIONS);
    insert(
        h,
        TUS_MAX_SIZE,
        &services.settings().import_size_limit_bytes.to_string(),
    );
    insert(h, header::CACHE_CONTROL, "no-store");
    response
}

/// Checks `Tus-Resumable` and the session. The error is the whole response.
async fn authorize(
    services: &Services,
    policy: &CookiePolicy,
    headers: &HeaderMap,
) -> Result<Actor, Response> {
    if headers.get(TUS_RESUMABLE).and_then(|v| v.to_str().ok()) != Some(TUS_VERSION) {
        let mut response = message(
            StatusCode::PRECONDITION_FAILED,
            "This server speaks tus 1.0.0; send Tus-Resumable: 1.0.0.",
        );
        insert(response.headers_mut(), TUS_VERSION_HEADER, TUS_VERSION);
        return Err(response);
    }
    match super::auth::actor_from_headers(services, policy, headers).await {
        Ok(Some(actor)) => Ok(actor),
        Ok(None) => Err(refuse(
            UploadError::Unauthorized,
            &errors::reference(headers),
            false,
        )),
        Err(e) => {
            let answer = errors::Answer::of_service(&e, &errors::reference(headers));
            Err(answer.render(Form::Tus { head: false }))
        }
    }
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || strict_integer(headers, &header::CONTENT_LENGTH).is_some_and(|n| n > 0)
}

/// A refusal sent before the request body was read ends the connection, and says so: the
/// unread body is still on the wire, and a client must not send its next request after it.
fn close_if_unread(mut response: Response, has_body: bool) -> Response {
    if has_body && !response.status().is_success() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// The method a request stands for: `X-HTTP-Method-Override` on a POST, for clients behind
/// proxies that only pass GET and POST.
fn effective_method(request: &Request) -> Method {
    let method = request.method().clone();
    if method != Method::POST {
        return method;
    }
    request
        .headers()
        .get(METHOD_OVERRIDE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Method::from_bytes(v.trim().to_ascii_uppercase().as_bytes()).ok())
        .unwrap_or(method)
}

/// A header holding a non-negative decimal integer and nothing else (no sign, no spaces).
fn strict_integer(headers: &HeaderMap, name: &HeaderName) -> Option<u64> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?.to_str().ok()?;
    if values.next().is_some()
        || value.is_empty()
        || value.len() > 20
        || !value.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    value.parse().ok()
}

fn is_offset_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(OFFSET_OCTET_STREAM))
        })
}

/// Answers a refused request through the one error mapping (an upload's errors are service
/// errors there). A HEAD response has no body and never an `Upload-Offset`.
fn refuse(error: UploadError, reference: &str, is_head: bool) -> Response {
    errors::Answer::of_service(&ServiceError::from(error), reference)
        .render(Form::Tus { head: is_head })
}

fn message(status: StatusCode, text: &str) -> Response {
    errors::Answer::new(status, text).render(Form::Tus { head: false })
}

fn not_allowed(allow: &'static str) -> Response {
    let mut response = message(
        StatusCode::METHOD_NOT_ALLOWED,
        "This method is not part of the upload protocol.",
    );
    insert(response.headers_mut(), header::ALLOW, allow);
    response
}

/// An empty response with `Tus-Resumable` and `Cache-Control: no-store`.
fn tus(status: StatusCode) -> impl IntoResponse {
    (
        status,
        [
            (TUS_RESUMABLE, HeaderValue::from_static(TUS_VERSION)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
}

fn insert(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// An RFC 9110 date ("Sun, 06 Nov 1994 08:49:37 GMT").
fn http_date(ms: i64) -> String {
    let time =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    httpdate::fmt_http_date(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_parsed_strictly() {
        let headers = |value: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(UPLOAD_OFFSET, HeaderValue::from_static(value));
            h
        };
        assert_eq!(strict_integer(&headers("0"), &UPLOAD_OFFSET), Some(0));
        assert_eq!(
            strict_integer(&headers("1048576"), &UPLOAD_OFFSET),
            Some(1 << 20)
        );
        for bad in [
            "",
            "-1",
            "+1",
            " 1",
            "1 ",
            "1e3",
            "0x10",
            "99999999999999999999999",
        ] {
            assert_eq!(
                strict_integer(&headers(bad), &UPLOAD_OFFSET),
                None,
                "{bad:?}"
            );
        }
        assert_eq!(strict_integer(&HeaderMap::new(), &UPLOAD_OFFSET), None);
    }

    #[test]
    fn dates_follow_rfc_9110() {
        assert_eq!(http_date(784_111_777_000), "Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
