//! The image API: HTTP routes compatible with OpenStack Glance v2, so `openstack image …`,
//! `glance …` and openstacksdk drive the console unchanged. Requests carry an API token in
//! `X-Auth-Token`; each handler turns the wire format into a service call and back
//! (`document` for the image JSON and the list's query, `schemas` for the schemas served).
//! Errors are Glance's JSON: `{"error": {"code", "title", "message"}}`.

mod document;
mod images;
mod lifecycle;
mod list;
mod members;
mod schemas;
mod wire;

use axum::Json;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post, put};
use serde_json::{Value, json};
use tower_http::set_header::SetResponseHeaderLayer;

use super::errors::{self, Form};
use super::{AppState, CookiePolicy};
use crate::service::{Actor, ClientAddr, ServiceError};

/// The newest API version the console speaks, and the others it accepts.
const CURRENT_VERSION: &str = "v2.9";
const SUPPORTED_VERSIONS: [&str; 9] = [
    "v2.8", "v2.7", "v2.6", "v2.5", "v2.4", "v2.3", "v2.2", "v2.1", "v2.0",
];

/// Largest JSON body the API reads (a create or an update).
const JSON_BODY_LIMIT: usize = 1 << 20;

/// The API's routes. `GET /` is the console's page guard's too: it answers the versions
/// document only to clients that do not ask for HTML (`wants_versions`). No answer of the
/// API may be kept by a cache: each is one account's, for one token.
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    api_routes()
        .into_iter()
        .map(|(path, route)| {
            let route = route.layer(SetResponseHeaderLayer::if_not_present(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            ));
            (path, route)
        })
        .collect()
}

fn api_routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/", get(versions_at_root)),
        ("/versions", get(versions)),
        ("/v2/info/import", get(import_info)),
        ("/v2/info/stores", get(stores_info)),
        ("/v2/schemas/{name}", get(schemas::schema)),
        (
            "/v2/images",
            get(images::list_images).post(images::create_image),
        ),
        (
            "/v2/images/{id}",
            get(images::show_image)
                .patch(images::update_image)
                .delete(images::delete_image),
        ),
        (
            "/v2/images/{id}/file",
            get(images::download_data).put(images::upload_data),
        ),
        ("/v2/images/{id}/stage", put(images::stage_data)),
        (
            "/v2/images/{id}/actions/{action}",
            post(lifecycle::image_action),
        ),
        (
            "/v2/images/{id}/references",
            get(lifecycle::list_references),
        ),
        (
            "/v2/images/{id}/references/{kind}/{reference}",
            put(lifecycle::add_reference).delete(lifecycle::remove_reference),
        ),
        ("/v2/images/{id}/import", post(images::import_image)),
        ("/v2/images/{id}/ancestry", get(lifecycle::ancestry)),
        (
            "/v2/images/{id}/tags/{tag}",
            put(images::add_tag).delete(images::remove_tag),
        ),
        (
            "/v2/images/{id}/members",
            get(members::list_members).post(members::add_member),
        ),
        (
            "/v2/images/{id}/members/{member}",
            get(members::show_member)
                .put(members::update_member)
                .delete(members::remove_member),
        ),
        // Identity look-ups the OpenStack clients make without Keystone (`image add project
        // <Account ID>` looks the project up first): refused, so they use the name as given.
        ("/v2/tenants", get(no_identity_service)),
        ("/v2/tenants/{name}", get(no_identity_service)),
        ("/v3/projects", get(no_identity_service)),
        ("/v3/projects/{name}", get(no_identity_service)),
    ]
}

/// The paths of the identity look-ups the API refuses (see `routes`).
pub const IDENTITY_PATHS: [&str; 4] = [
    "/v2/tenants",
    "/v2/tenants/{name}",
    "/v3/projects",
    "/v3/projects/{name}",
];

/// 403 for identity look-ups: accounts are named by their Account ID, and the OpenStack
/// clients take a name they may not look up as the ID itself.
async fn no_identity_service() -> Response {
    error(
        StatusCode::FORBIDDEN,
        "The console has no identity service: name an account by its Account ID.",
    )
}

/// Whether a request to `/` is from an API client, which gets the versions document, rather
/// than a browser, which gets the console.
pub fn wants_versions(headers: &HeaderMap) -> bool {
    if headers.contains_key("x-auth-token") {
        return true;
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("json") && !accept.contains("text/html")
}

/// Reads a JSON request body of at most `JSON_BODY_LIMIT` bytes.
pub(crate) async fn read_json(body: axum::body::Body) -> Result<Value, Response> {
    let bytes = axum::body::to_bytes(body, JSON_BODY_LIMIT)
        .await
        .map_err(|_| {
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("The request body is larger than {JSON_BODY_LIMIT} bytes."),
            )
        })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("The body is not valid JSON: {e}."),
        )
    })
}

/// Reads a JSON request body that must be an object.
pub(crate) async fn read_object(
    body: axum::body::Body,
) -> Result<serde_json::Map<String, Value>, Response> {
    match read_json(body).await? {
        Value::Object(fields) => Ok(fields),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "The body must be a JSON object.",
        )),
    }
}

/// A Glance-style error answer.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    errors::Answer::new(status, message).render(Form::GlanceJson)
}

/// A service error as the API answers it: the same statuses and sentences as the console's,
/// in Glance's JSON.
pub(crate) fn service_error(e: &ServiceError, headers: &HeaderMap) -> Response {
    if let ServiceError::Unauthorized = e {
        return unauthorized();
    }
    errors::Answer::of_service(e, &errors::reference(headers)).render(Form::GlanceJson)
}

fn unauthorized() -> Response {
    let mut response = error(
        StatusCode::UNAUTHORIZED,
        "This request needs a valid API token in the X-Auth-Token header. Create one on the console's API access page; a token that expired or was revoked no longer works.",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("X-Auth-Token"),
    );
    response
}

/// The user an API request's token acts as: every image API handler takes one, and a request
/// without a valid token is answered 401 before the handler runs. The refusal closes the
/// connection, since the request's body (image data, perhaps) may be unread.
pub(crate) struct ApiActor(pub Actor);

impl FromRequestParts<AppState> for ApiActor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let client = parts
            .extensions
            .get::<ClientAddr>()
            .copied()
            .unwrap_or(ClientAddr::UNKNOWN);
        let token = parts
            .headers
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok());
        match state.services.authenticate_api_token(client, token).await {
            Ok(actor) => Ok(ApiActor(actor)),
            Err(e) => {
                let mut answer = service_error(&e, &parts.headers);
                answer
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                Err(answer)
            }
        }
    }
}

/// The address clients reach the API at, as this request names it.
pub(crate) fn base_url(policy: &CookiePolicy, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        })
        .unwrap_or("localhost");
    let scheme = if policy.secure { "https" } else { "http" };
    format!("{scheme}://{host}")
}

fn versions_document(base: &str) -> Value {
    let version = |id: &str, status: &str| {
        json!({
            "id": id,
            "status": status,
            "links": [{ "rel": "self", "href": format!("{base}/v2/") }],
        })
    };
    let mut all = vec![version(CURRENT_VERSION, "CURRENT")];
    all.extend(SUPPORTED_VERSIONS.iter().map(|id| version(id, "SUPPORTED")));
    json!({ "versions": all })
}

/// `GET /versions`: the versions document.
async fn versions(State(policy): State<CookiePolicy>, headers: HeaderMap) -> Response {
    Json(versions_document(&base_url(&policy, &headers))).into_response()
}

/// `GET /` for an API client: the versions document, as Glance answers it (300).
async fn versions_at_root(State(policy): State<CookiePolicy>, request: Request) -> Response {
    let document = versions_document(&base_url(&policy, request.headers()));
    (StatusCode::MULTIPLE_CHOICES, Json(document)).into_response()
}

/// `GET /v2/info/import`: the import methods this console offers.
async fn import_info(_: ApiActor) -> Response {
    Json(json!({
        "import-methods": {
            "description": "Import methods available.",
            "type": "array",
            "value": ["glance-direct", "web-download"]
        }
    }))
    .into_response()
}

/// `GET /v2/info/stores`: the one store this console keeps image data in.
async fn stores_info(_: ApiActor) -> Response {
    Json(json!({
        "stores": [{
            "id": document::STORE_ID,
            "description": "The console's image data store.",
            "default": true
        }]
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn only_api_clients_get_the_versions_document_at_the_root() {
        assert!(wants_versions(&headers(&[("accept", "application/json")])));
        assert!(wants_versions(&headers(&[("x-auth-token", "imgc_x")])));
        for browser in [
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "*/*",
        ] {
            assert!(
                !wants_versions(&headers(&[("accept", browser)])),
                "{browser}"
            );
        }
        assert!(!wants_versions(&HeaderMap::new()));
    }
}
