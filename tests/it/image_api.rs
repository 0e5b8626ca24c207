//! The image API's contract (Glance v2): each endpoint's status codes, its JSON checked
//! against the schemas the API serves, its errors, and who may do what. Driven through the
//! same router `main` serves, on both databases and on S3.

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use image_console::domain::history::HistoryTopic;
use image_console::domain::image::ImageStatus;
use image_console::service::Actor;
use serde_json::{Value, json};

use crate::support::Client;
use crate::support::{Backend, TestApp, qemu_img};

const PATCH_TYPE: &str = "application/openstack-images-v2.1-json-patch";

struct Api {
    client: Client,
    schemas: Value,
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// A Glance-style error: its code and its message.
    fn error(&self) -> (u64, String) {
        let body = self.json();
        let error = &body["error"];
        (
            error["code"].as_u64().unwrap_or_default(),
            error["message"].as_str().unwrap_or_default().to_owned(),
        )
    }
}

/// The ids of a list answer's images, in its order.
fn ids(reply: Reply) -> Vec<String> {
    reply.json()["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn reply(response: Response<Body>) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: body.to_vec(),
    }
}

impl Api {
    async fn new(app: &TestApp) -> Self {
        let client = Client::new(app);
        let mut schemas = json!({});
        for name in ["image", "images", "member", "members"] {
            let response = reply(
                client
                    .send(
                        Request::get(format!("/v2/schemas/{name}"))
                            .body(Body::empty())
                            .unwrap(),
                    )
                    .await,
            )
            .await;
            assert_eq!(response.status, StatusCode::OK, "schema {name}");
            schemas[name] = response.json();
        }
        Self { client, schemas }
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Body,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("x-auth-token", token);
        }
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let reply = reply(self.client.send(request.body(body).unwrap()).await).await;
        // Every answer is one account's: no cache may keep it.
        let cache = reply
            .headers
            .get(header::CACHE_CONTROL)
            .map(|v| v.to_str().unwrap());
        assert!(
            !path.starts_with("/v2") || cache.is_some_and(|c| c.starts_with("no-store")),
            "{method} {path} answered {} with Cache-Control {cache:?}",
            reply.status
        );
        reply
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        self.request("GET", path, Some(token), None, Body::empty(), &[])
            .await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.request(
            "POST",
            path,
            Some(token),
            Some("application/json"),
            Body::from(body.to_string()),
            &[],
        )
        .await
    }

    async fn patch(&self, path: &str, token: &str, ops: Value) -> Reply {
        self.request(
            "PATCH",
            path,
            Some(token),
            Some(PATCH_TYPE),
            Body::from(ops.to_string()),
            &[],
        )
        .await
    }

    /// Creates an image through `POST /v2/images`, which must succeed; its id.
    async fn create(&self, token: &str, body: Value) -> String {
        let created = self.post("/v2/images", token, body).await;
        assert_eq!(
            created.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&created.body)
        );
        created.json()["id"].as_str().unwrap().to_owned()
    }

    /// One JSON-patch operation (`add` or `replace`) on one field.
    async fn set_field(
        &self,
        path: &str,
        token: &str,
        op: &str,
        field: &str,
        value: &str,
    ) -> Reply {
        self.patch(
            path,
            token,
            json!([{ "op": op, "path": format!("/{field}"), "value": value }]),
        )
        .await
    }

    async fn put_data(&self, id: &str, token: &str, bytes: Vec<u8>) -> Reply {
        self.request(
            "PUT",
            &format!("/v2/images/{id}/file"),
            Some(token),
            Some("application/octet-stream"),
            Body::from(bytes),
            &[],
        )
        .await
    }

    async fn delete(&self, path: &str, token: &str) -> Reply {
        self.request("DELETE", path, Some(token), None, Body::empty(), &[])
            .await
    }

    /// Checks an image document against the image schema the API serves.
    fn check_image(&self, doc: &Value) {
        conforms(doc, &self.schemas["image"], "image");
    }
}

/// Checks `value` against the parts of JSON Schema the served schemas use: `type` (one or a
/// list), `enum`, `properties`, `additionalProperties`, `items` and `maxLength`.
fn conforms(value: &Value, schema: &Value, at: &str) {
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let actual = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        assert!(
            types.contains(&actual) || (actual == "integer" && types.contains(&"number")),
            "{at}: {value} is {actual}, the schema says {types:?}"
        );
    }
    if let Some(Value::Array(allowed)) = schema.get("enum") {
        assert!(
            allowed.contains(value),
            "{at}: {value} is not one of {allowed:?}"
        );
    }
    if let (Some(max), Value::String(s)) = (schema.get("maxLength").and_then(Value::as_u64), value)
    {
        assert!(s.chars().count() as u64 <= max, "{at}: longer than {max}");
    }
    if let Value::Object(fields) = value {
        let properties = schema.get("properties").and_then(Value::as_object);
        for (key, field) in fields {
            match properties.and_then(|p| p.get(key)) {
                Some(field_schema) => conforms(field, field_schema, &format!("{at}.{key}")),
                None => match schema.get("additionalProperties") {
                    Some(extra) if extra.is_object() => {
                        conforms(field, extra, &format!("{at}.{key}"))
                    }
                    Some(Value::Bool(false)) => panic!("{at}: unexpected field {key}"),
                    _ => {}
                },
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            conforms(item, item_schema, &format!("{at}[{i}]"));
        }
    }
}

/// A small real qcow2 file's bytes.
fn qcow2_bytes(app: &TestApp, name: &str) -> Vec<u8> {
    let path = app.data.path().join(name);
    qemu_img(&["create", "-q", "-f", "qcow2", path.to_str().unwrap(), "4M"]);
    std::fs::read(path).unwrap()
}

async fn token_for(app: &TestApp, actor: &Actor) -> String {
    app.services
        .create_api_token(actor, "contract tests", "30")
        .await
        .unwrap()
        .secret
}

fn hex_of<D: sha2::Digest>(bytes: &[u8]) -> String {
    hex::encode(D::digest(bytes))
}

async fn versions_and_authentication(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = Api::new(&app).await;
    let alice = app.sign_up("acme").await;
    let token = token_for(&app, &alice).await;

    // Discovery: GET /versions, and GET / for a client that does not ask for HTML.
    let versions = api
        .request("GET", "/versions", None, None, Body::empty(), &[])
        .await;
    assert_eq!(versions.status, StatusCode::OK);
    let listed = versions.json()["versions"].as_array().unwrap().clone();
    assert!(
        listed
            .iter()
            .any(|v| v["status"] == "CURRENT" && v["id"].as_str().unwrap().starts_with("v2."))
    );
    assert!(
        listed
            .iter()
            .all(|v| v["links"][0]["href"].as_str().unwrap().ends_with("/v2/"))
    );
    let root = api
        .request(
            "GET",
            "/",
            None,
            None,
            Body::empty(),
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(root.status, StatusCode::MULTIPLE_CHOICES);
    assert_eq!(
        root.json()["versions"].as_array().unwrap().len(),
        listed.len()
    );
    // A browser still gets the console.
    let page = api
        .request(
            "GET",
            "/",
            None,
            None,
            Body::empty(),
            &[("accept", "text/html,application/xhtml+xml,*/*")],
        )
        .await;
    assert!(page.status.is_redirection(), "{}", page.status);
    assert!(
        page.headers[header::LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/signin")
    );

    // No token, a malformed one, an unknown one: 401 with a Glance error.
    let wrong = format!("imgc_{}", "A".repeat(43));
    for given in [None, Some("not-a-token"), Some(wrong.as_str())] {
        let answer = api
            .request("GET", "/v2/images", given, None, Body::empty(), &[])
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{given:?}");
        let (code, message) = answer.error();
        assert_eq!(code, 401);
        assert!(message.contains("X-Auth-Token"), "{message}");
    }
    // A real one works, until revoked.
    assert_eq!(api.get("/v2/images", &token).await.status, StatusCode::OK);
    let id = app.services.list_api_tokens(&alice).await.unwrap()[0]
        .id
        .clone();
    app.services.revoke_api_token(&alice, &id).await.unwrap();
    assert_eq!(
        api.get("/v2/images", &token).await.status,
        StatusCode::UNAUTHORIZED
    );

    // The info endpoints.
    let token = token_for(&app, &alice).await;
    let stores = api.get("/v2/info/stores", &token).await;
    assert_eq!(stores.status, StatusCode::OK);
    assert_eq!(stores.json()["stores"][0]["default"], true);
    let import = api.get("/v2/info/import", &token).await;
    assert_eq!(import.status, StatusCode::OK);
    assert!(import.json()["import-methods"]["value"].is_array());
    let missing = api.get("/v2/schemas/nothing", &token).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error().0, 404);
}

async fn create_upload_show_download_delete(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = Api::new(&app).await;
    let alice = app.sign_up("acme").await;
    let token = token_for(&app, &alice).await;
    let bytes = qcow2_bytes(&app, "disk.qcow2");

    // Create: queued, with the fields given, in Glance's units.
    let created = api
        .post(
            "/v2/images",
            &token,
            json!({
                "name": "web-base",
                "disk_format": "qcow2",
                "container_format": "bare",
                "min_disk": 10,
                "min_ram": 1536,
                "os_distro": "ubuntu",
                "hw_firmware_type": "uefi",
                "tags": ["web", "env=prod"],
                "owner_specified.openstack.sha256": "abc",
            }),
        )
        .await;
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let image = created.json();
    api.check_image(&image);
    let id = image["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.headers[header::LOCATION].to_str().unwrap(),
        format!("/v2/images/{id}")
    );
    assert_eq!(image["status"], "queued");
    assert_eq!(image["visibility"], "private");
    assert_eq!(image["min_disk"], 10);
    assert_eq!(image["min_ram"], 2048, "1536 MB is kept as 2 GB");
    assert_eq!(image["hw_firmware_type"], "uefi");
    assert_eq!(image["owner"], "acme");
    assert_eq!(image["size"], Value::Null);
    assert_eq!(image["owner_specified.openstack.sha256"], "abc");
    let mut tags: Vec<&str> = image["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tags.sort();
    assert_eq!(tags, ["env=prod", "web"]);
    // The console shows it as a Queued image waiting for its data.
    let detail = app.services.get_image(&alice, &id).await.unwrap();
    assert_eq!(detail.attributes.min_ram_gb, 2);
    // It is never picked up as a URL import, whatever the heartbeat does.
    app.services.importer().take_over().await.unwrap();
    assert_eq!(
        api.get(&format!("/v2/images/{id}"), &token).await.json()["status"],
        "queued"
    );
    // No data yet: 204.
    let empty = api.get(&format!("/v2/images/{id}/file"), &token).await;
    assert_eq!(empty.status, StatusCode::NO_CONTENT);

    // Upload: the data goes through inspection and hashing; the image is active.
    let uploaded = api.put_data(&id, &token, bytes.clone()).await;
    assert_eq!(
        uploaded.status,
        StatusCode::NO_CONTENT,
        "{}",
        String::from_utf8_lossy(&uploaded.body)
    );
    let shown = api.get(&format!("/v2/images/{id}"), &token).await;
    assert_eq!(shown.status, StatusCode::OK);
    let image = shown.json();
    api.check_image(&image);
    assert_eq!(image["status"], "active");
    assert_eq!(image["size"], bytes.len() as u64);
    assert_eq!(image["virtual_size"], 4 << 20);
    assert_eq!(image["checksum"], hex_of::<md5::Md5>(&bytes));
    assert_eq!(image["os_hash_algo"], "sha512");
    assert_eq!(image["os_hash_value"], hex_of::<sha2::Sha512>(&bytes));
    assert_eq!(image["stores"], "default");
    // A second upload is refused: the image has its data.
    let again = api.put_data(&id, &token, bytes.clone()).await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    // Download: whole, with Content-MD5, and a Range.
    let whole = api.get(&format!("/v2/images/{id}/file"), &token).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.body, bytes);
    assert_eq!(
        whole.headers["content-md5"].to_str().unwrap(),
        hex_of::<md5::Md5>(&bytes)
    );
    let part = api
        .request(
            "GET",
            &format!("/v2/images/{id}/file"),
            Some(&token),
            None,
            Body::empty(),
            &[("range", "bytes=4-11")],
        )
        .await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.body, bytes[4..12]);

    // Update through JSON patch: name, min_disk, min_ram, protected.
    let patched = api
        .patch(
            &format!("/v2/images/{id}"),
            &token,
            json!([
                { "op": "replace", "path": "/name", "value": "web-base-2" },
                { "op": "replace", "path": "/min_disk", "value": 20 },
                { "op": "replace", "path": "/min_ram", "value": 4096 },
                { "op": "replace", "path": "/protected", "value": true },
                { "op": "add", "path": "/build", "value": "42" },
                { "op": "remove", "path": "/owner_specified.openstack.sha256" },
            ]),
        )
        .await;
    assert_eq!(
        patched.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&patched.body)
    );
    let image = patched.json();
    api.check_image(&image);
    assert_eq!(image["name"], "web-base-2");
    assert_eq!(image["min_disk"], 20);
    assert_eq!(image["min_ram"], 4096);
    assert_eq!(image["protected"], true);
    assert_eq!(image["build"], "42");
    assert!(image.get("owner_specified.openstack.sha256").is_none());
    // Each change is in Work History, under the token's user.
    let history = app.services.image_history(&alice, &id, 1).await.unwrap();
    let edit = history
        .entries
        .iter()
        .find(|e| {
            e.topic == HistoryTopic::Edited && e.changes.iter().any(|c| c.field == "Minimum Disk")
        })
        .expect("the edit is in Work History");
    assert_eq!(edit.worker, alice.user_name);
    assert!(
        history
            .entries
            .iter()
            .any(|e| e.topic == HistoryTopic::UploadStarted && e.worker == alice.user_name)
    );

    // Refusals, each changing nothing.
    let before = api.get(&format!("/v2/images/{id}"), &token).await.json();
    let cases: [(Value, StatusCode); 6] = [
        (
            json!([{ "op": "replace", "path": "/status", "value": "active" }]),
            StatusCode::FORBIDDEN,
        ),
        (
            json!([{ "op": "replace", "path": "/visibility", "value": "public" }]),
            StatusCode::FORBIDDEN,
        ),
        (
            json!([{ "op": "replace", "path": "/min_disk", "value": 99999 }]),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!([{ "op": "replace", "path": "/name", "value": "bad/name" }]),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!([{ "op": "move", "path": "/name", "from": "/x" }]),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!([{ "op": "remove", "path": "/name" }]),
            StatusCode::FORBIDDEN,
        ),
    ];
    for (ops, status) in cases {
        let answer = api
            .patch(&format!("/v2/images/{id}"), &token, ops.clone())
            .await;
        assert_eq!(answer.status, status, "{ops}");
        assert!(!answer.error().1.is_empty(), "{ops}");
    }
    let wrong_type = api
        .request(
            "PATCH",
            &format!("/v2/images/{id}"),
            Some(&token),
            Some("application/json"),
            Body::from("[]"),
            &[],
        )
        .await;
    assert_eq!(wrong_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let after = api.get(&format!("/v2/images/{id}"), &token).await.json();
    assert_eq!(before, after);

    // Delete: refused while protected (403), then done.
    let refused = api.delete(&format!("/v2/images/{id}"), &token).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.error().1.contains("Protected"));
    let unprotected = api
        .patch(
            &format!("/v2/images/{id}"),
            &token,
            json!([{ "op": "replace", "path": "/protected", "value": false }]),
        )
        .await;
    assert_eq!(unprotected.status, StatusCode::OK);
    assert_eq!(
        api.delete(&format!("/v2/images/{id}"), &token).await.status,
        StatusCode::NO_CONTENT
    );
    // Gone from the API, as Glance's deleted images are; kept in the Recycle Bin until it is
    // destroyed.
    let gone = api.get(&format!("/v2/images/{id}"), &token).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.error().0, 404);
    let listed = api.get("/v2/images", &token).await.json();
    assert_eq!(listed["images"], json!([]));
    let (images, _) = app.stored_files().await;
    assert_eq!(images.len(), 1, "{images:?}");
    let bin = app.services.recycle_bin(&alice).await.unwrap();
    assert_eq!(bin.images.len(), 1);
    assert_eq!(bin.images[0].restores_to, ImageStatus::Active);
    app.services
        .destroy_images(&alice, std::slice::from_ref(&id))
        .await
        .unwrap();
    let (images, _) = app.stored_files().await;
    assert!(images.is_empty(), "{images:?}");
}

async fn create_refusals(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = Api::new(&app).await;
    let alice = app.sign_up("acme").await;
    let token = token_for(&app, &alice).await;
    let base = json!({ "name": "x", "disk_format": "raw", "os_distro": "centos" });
    let with = |key: &str, value: Value| {
        let mut body = base.clone();
        body[key] = value;
        body
    };
    let cases = [
        (
            with("visibility", json!("public")),
            StatusCode::FORBIDDEN,
            "private",
        ),
        (
            with("visibility", json!("community")),
            StatusCode::FORBIDDEN,
            "shared",
        ),
        (
            with("container_format", json!("ova")),
            StatusCode::BAD_REQUEST,
            "bare",
        ),
        (
            with("disk_format", json!("vdi")),
            StatusCode::BAD_REQUEST,
            "vdi",
        ),
        (
            with("os_distro", json!("debian")),
            StatusCode::BAD_REQUEST,
            "System platform must be one of",
        ),
        (
            with("os_type", json!("windows")),
            StatusCode::BAD_REQUEST,
            "System platform CentOS is a Linux platform",
        ),
        (
            json!({ "name": "x", "disk_format": "raw", "os_distro": "centos", "os_version": "7.2", "architecture": "aarch64" }),
            StatusCode::BAD_REQUEST,
            "System version 7.2 of CentOS is not offered for aarch64; choose one of 7.6–7.9.",
        ),
        (
            with("status", json!("active")),
            StatusCode::FORBIDDEN,
            "read-only",
        ),
        (
            with("min_ram", json!(-5)),
            StatusCode::BAD_REQUEST,
            "min_ram",
        ),
        (with("custom", json!(5)), StatusCode::BAD_REQUEST, "custom"),
        (
            json!({ "disk_format": "raw", "os_distro": "centos" }),
            StatusCode::BAD_REQUEST,
            "name",
        ),
        (
            json!({ "name": "x", "os_distro": "centos" }),
            StatusCode::BAD_REQUEST,
            "disk_format",
        ),
        (
            json!(["not", "an", "object"]),
            StatusCode::BAD_REQUEST,
            "object",
        ),
    ];
    for (body, status, says) in cases {
        let answer = api.post("/v2/images", &token, body.clone()).await;
        assert_eq!(answer.status, status, "{body}");
        let (code, message) = answer.error();
        assert_eq!(code, u64::from(status.as_u16()));
        assert!(message.contains(says), "{body}: {message}");
    }
    let not_json = api
        .request(
            "POST",
            "/v2/images",
            Some(&token),
            Some("application/json"),
            Body::from("{"),
            &[],
        )
        .await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    // Nothing was created.
    let list = api.get("/v2/images", &token).await.json();
    assert_eq!(list["images"].as_array().unwrap().len(), 0);

    // Data that inspection refuses: the image is killed, with the reason.
    let created = api.post("/v2/images", &token, base.clone()).await.json();
    let id = created["id"].as_str().unwrap();
    let mut qcow = qcow2_bytes(&app, "not-raw.qcow2");
    qcow.resize(1 << 20, 0);
    let refused = api.put_data(id, &token, qcow).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.error().1.contains("killed"),
        "{}",
        refused.error().1
    );
    let image = api.get(&format!("/v2/images/{id}"), &token).await.json();
    api.check_image(&image);
    assert_eq!(image["status"], "killed");
    assert!(
        image["failure_reason"].as_str().unwrap().contains("qcow2"),
        "{image}"
    );
    let (images, imports) = app.stored_files().await;
    assert!(
        images.is_empty() && imports.is_empty(),
        "{images:?} {imports:?}"
    );
    // Data of another type than octet-stream is refused before it is read.
    let other = api.post("/v2/images", &token, base).await.json();
    let typed = api
        .request(
            "PUT",
            &format!("/v2/images/{}/file", other["id"].as_str().unwrap()),
            Some(&token),
            Some("text/plain"),
            Body::from("x"),
            &[],
        )
        .await;
    assert_eq!(typed.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

/// `os_type`, `os_distro` and `os_version` are the console's operating system, system
/// platform and system version, checked by the same catalogue as the forms.
async fn operating_systems_follow_the_catalogue(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = Api::new(&app).await;
    let alice = app.sign_up("acme").await;
    let token = token_for(&app, &alice).await;
    // `os_distro` alone brings its operating system with it.
    let server = api
        .create(
            &token,
            json!({ "name": "win", "disk_format": "raw", "os_distro": "windows-server", "os_version": "2019" }),
        )
        .await;
    let doc = api
        .get(&format!("/v2/images/{server}"), &token)
        .await
        .json();
    assert_eq!(
        (&doc["os_type"], &doc["os_distro"], &doc["os_version"]),
        (&json!("windows"), &json!("windows-server"), &json!("2019"))
    );
    api.check_image(&doc);
    let detail = app.services.get_image(&alice, &server).await.unwrap();
    assert_eq!(
        detail.attributes.os.as_ref().map(|os| os.label()),
        Some("Windows Server 2019".into())
    );

    // A version another platform has is refused, and nothing changes.
    let path = format!("/v2/images/{server}");
    let refused = api
        .set_field(&path, &token, "replace", "os_version", "10")
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused
            .error()
            .1
            .contains("System version 10 is not a version of Windows Server on x86_64")
    );
    // Changing the platform and version together is one change; removing the version clears it.
    let changed = api
        .patch(
            &path,
            &token,
            json!([
                { "op": "replace", "path": "/os_distro", "value": "windows" },
                { "op": "replace", "path": "/os_version", "value": "10" },
            ]),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK);
    let cleared = api
        .patch(
            &path,
            &token,
            json!([{ "op": "remove", "path": "/os_version" }]),
        )
        .await
        .json();
    assert_eq!(
        (&cleared["os_distro"], cleared.get("os_version")),
        (&json!("windows"), None)
    );

    // The list filters on each of them.
    let linux = api
        .create(
            &token,
            json!({ "name": "lin", "disk_format": "raw", "os_distro": "ubuntu" }),
        )
        .await;
    assert_eq!(
        ids(api.get("/v2/images?os_type=windows", &token).await),
        [server]
    );
    assert_eq!(
        ids(api.get("/v2/images?os_type=linux", &token).await),
        [linux.as_str()]
    );
    assert_eq!(
        ids(api.get("/v2/images?os_distro=ubuntu", &token).await),
        [linux]
    );
}

/// What plain Glance clients send: no operating system, a chosen id, and a disk format
/// changed while the image waits for its data (and fixed once the data is in).
async fn what_plain_clients_send_is_accepted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = Api::new(&app).await;
    let alice = app.sign_up("acme").await;
    let bob = app.sign_up("globex").await;
    let (token, bob_token) = (token_for(&app, &alice).await, token_for(&app, &bob).await);

    // No operating system: accepted, left out of the document, Not specified in the console.
    let chosen = "5f0d7c4e-8a21-4b6e-9f3d-1c2b3a4d5e6f";
    let created = api
        .post(
            "/v2/images",
            &token,
            json!({ "id": chosen, "name": "plain", "disk_format": "qcow2", "container_format": "bare" }),
        )
        .await;
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let doc = created.json();
    assert_eq!(doc["id"], chosen);
    assert_eq!((doc.get("os_distro"), doc.get("os_type")), (None, None));
    api.check_image(&doc);
    let detail = app.services.get_image(&alice, chosen).await.unwrap();
    assert_eq!(detail.attributes.os, None);
    // Only an operating system with no platform is half a choice, and refused.
    let half = api
        .post(
            "/v2/images",
            &token,
            json!({ "name": "half", "disk_format": "raw", "os_type": "linux" }),
        )
        .await;
    assert_eq!(half.status, StatusCode::BAD_REQUEST);
    assert!(
        half.error().1.contains("Select a system platform"),
        "{}",
        half.error().1
    );
    // The list's os filters leave it out; it is listed without them.
    assert_eq!(ids(api.get("/v2/images", &token).await), [chosen]);
    for filter in [
        "os_type=linux",
        "os_distro=ubuntu",
        "os_distro=",
        "os_type=",
    ] {
        let listed = api.get(&format!("/v2/images?{filter}"), &token).await;
        assert_eq!(listed.status, StatusCode::OK, "{filter}");
        assert!(ids(listed).is_empty(), "{filter}");
    }

    // An id in use, in this account or another, is refused; so is one that is not a UUID.
    for (who, body) in [
        (
            &token,
            json!({ "id": chosen, "name": "again", "disk_format": "raw" }),
        ),
        (
            &bob_token,
            json!({ "id": chosen, "name": "theirs", "disk_format": "raw" }),
        ),
    ] {
        let taken = api.post("/v2/images", who, body).await;
        assert_eq!(taken.status, StatusCode::CONFLICT);
        assert!(
            taken.error().1.contains("already exists"),
            "{}",
            taken.error().1
        );
    }
    let odd = api
        .post(
            "/v2/images",
            &token,
            json!({ "id": "../../etc", "name": "odd", "disk_format": "raw" }),
        )
        .await;
    assert_eq!(odd.status, StatusCode::BAD_REQUEST);
    assert!(odd.error().1.contains("UUID"), "{}", odd.error().1);
    assert_eq!(
        ids(api.get("/v2/images", &bob_token).await),
        Vec::<String>::new()
    );

    // The disk format changes while the image is queued, and is recorded.
    let path = format!("/v2/images/{chosen}");
    let raw = api
        .set_field(&path, &token, "replace", "disk_format", "raw")
        .await;
    assert_eq!(
        raw.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&raw.body)
    );
    assert_eq!(raw.json()["disk_format"], "raw");
    let bare = api
        .set_field(&path, &token, "add", "container_format", "bare")
        .await;
    assert_eq!(bare.status, StatusCode::OK);
    let ova = api
        .set_field(&path, &token, "replace", "container_format", "ova")
        .await;
    assert_eq!(ova.status, StatusCode::BAD_REQUEST);
    let vdi = api
        .set_field(&path, &token, "replace", "disk_format", "vdi")
        .await;
    assert_eq!(vdi.status, StatusCode::BAD_REQUEST);
    let history = app.services.image_history(&alice, chosen, 1).await.unwrap();
    let change = history.entries[0]
        .changes
        .iter()
        .find(|c| c.field == "Disk format")
        .expect("the format's change is in Work History");
    assert_eq!((change.old.as_str(), change.new.as_str()), ("qcow2", "Raw"));
    // The other account cannot change it.
    let theirs = api
        .set_field(&path, &bob_token, "replace", "disk_format", "iso")
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);

    // Raw data arrives; the format is now fixed, though the same value is still accepted.
    let bytes: Vec<u8> = (0..1_048_576u32).map(|i| (i % 253) as u8).collect();
    let uploaded = api.put_data(chosen, &token, bytes).await;
    assert_eq!(
        uploaded.status,
        StatusCode::NO_CONTENT,
        "{}",
        String::from_utf8_lossy(&uploaded.body)
    );
    let fixed = api
        .set_field(&path, &token, "replace", "disk_format", "qcow2")
        .await;
    assert_eq!(fixed.status, StatusCode::FORBIDDEN);
    assert!(
        fixed
            .error()
            .1
            .contains("fixed once the image's data arrives"),
        "{}",
        fixed.error().1
    );
    let same = api
        .set_field(&path, &token, "replace", "disk_format", "raw")
        .await;
    assert_eq!(same.status, StatusCode::OK);
    let doc = api.get(&path, &token).await.json();
    assert_eq!(
        (&doc["status"], &doc["disk_format"]),
        (&json!("active"), &json!("raw"))
    );
}

async fn list_filters_sorts_and_pages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = Api::new(&app).await;
    let alice = app.sign_up("acme").await;
    let token = token_for(&app, &alice).await;
    let mut ids = Vec::new();
    for (name, distro, format, tags) in [
        ("alpha", "ubuntu", "qcow2", vec!["web"]),
        ("bravo", "centos", "raw", vec!["db", "web"]),
        ("charlie", "ubuntu", "raw", vec![]),
        ("delta", "rocky", "qcow2", vec!["db"]),
        ("echo", "ubuntu", "iso", vec![]),
    ] {
        let body =
            json!({ "name": name, "os_distro": distro, "disk_format": format, "tags": tags });
        ids.push(api.create(&token, body).await);
        // Distinct creation times, so the default order is certain.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let names = |reply: &Reply| -> Vec<String> {
        reply.json()["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let list = api.get("/v2/images", &token).await;
    assert_eq!(list.status, StatusCode::OK);
    conforms(&list.json(), &api.schemas["images"], "images");
    assert_eq!(names(&list), ["echo", "delta", "charlie", "bravo", "alpha"]);
    assert_eq!(list.json()["first"], "/v2/images");
    assert!(list.json().get("next").is_none());

    for (query, expected) in [
        (
            "sort_key=name&sort_dir=asc",
            vec!["alpha", "bravo", "charlie", "delta", "echo"],
        ),
        (
            "sort=disk_format:asc,name:desc",
            vec!["echo", "delta", "alpha", "charlie", "bravo"],
        ),
        (
            "os_distro=ubuntu&sort_key=name&sort_dir=asc",
            vec!["alpha", "charlie", "echo"],
        ),
        ("disk_format=raw", vec!["charlie", "bravo"]),
        ("tag=web", vec!["bravo", "alpha"]),
        ("tag=web&tag=db", vec!["bravo"]),
        ("name=delta", vec!["delta"]),
        (
            "status=queued&visibility=private",
            vec!["echo", "delta", "charlie", "bravo", "alpha"],
        ),
        ("status=active", vec![]),
        ("owner=acme&name=in:alpha,echo", vec!["echo", "alpha"]),
        ("visibility=public", vec![]),
    ] {
        let answer = api.get(&format!("/v2/images?{query}"), &token).await;
        assert_eq!(answer.status, StatusCode::OK, "{query}");
        assert_eq!(names(&answer), expected, "{query}");
    }

    // Pages follow `next` to the end without repeating an image.
    let mut seen = Vec::new();
    let mut path = "/v2/images?limit=2&sort_key=name&sort_dir=asc".to_owned();
    loop {
        let page = api.get(&path, &token).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        let body = page.json();
        seen.extend(names(&page));
        match body.get("next").and_then(Value::as_str) {
            Some(next) => path = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, ["alpha", "bravo", "charlie", "delta", "echo"]);

    for bad in [
        "limit=x",
        "sort_key=checksum",
        "sort_dir=sideways",
        "marker=00000000-0000-0000-0000-000000000000",
        "member_status=maybe",
        "size_min=big",
    ] {
        let answer = api.get(&format!("/v2/images?{bad}"), &token).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(answer.error().0, 400);
    }

    // Tags: add one (and again: no change), remove one, 404 for one it lacks.
    let first = &ids[0];
    for _ in 0..2 {
        let put = api
            .request(
                "PUT",
                &format!("/v2/images/{first}/tags/linux"),
                Some(&token),
                None,
                Body::empty(),
                &[],
            )
            .await;
        assert_eq!(put.status, StatusCode::NO_CONTENT);
    }
    let shown = api.get(&format!("/v2/images/{first}"), &token).await.json();
    assert_eq!(shown["tags"], json!(["linux", "web"]));
    assert_eq!(
        api.delete(&format!("/v2/images/{first}/tags/web"), &token)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.delete(&format!("/v2/images/{first}/tags/web"), &token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let shown = api.get(&format!("/v2/images/{first}"), &token).await.json();
    assert_eq!(shown["tags"], json!(["linux"]));
}

async fn other_accounts_and_shares(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = Api::new(&app).await;
    let alice = app.sign_up("acme").await;
    let bob = app.sign_up("globex").await;
    let alice_token = token_for(&app, &alice).await;
    let bob_token = token_for(&app, &bob).await;
    let created = api
        .post(
            "/v2/images",
            &alice_token,
            json!({ "name": "shared-base", "disk_format": "qcow2", "os_distro": "ubuntu" }),
        )
        .await
        .json();
    let id = created["id"].as_str().unwrap().to_owned();
    let bytes = qcow2_bytes(&app, "shared.qcow2");

    // Before any share, Bob is answered as if the image did not exist.
    let image_path = format!("/v2/images/{id}");
    assert_eq!(
        api.get(&image_path, &bob_token).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.put_data(&id, &bob_token, bytes.clone()).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.patch(
            &image_path,
            &bob_token,
            json!([{ "op": "replace", "path": "/name", "value": "mine" }])
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.delete(&image_path, &bob_token).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get(&format!("{image_path}/file"), &bob_token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(
        api.get("/v2/images", &bob_token).await.json()["images"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Shared and accepted: Bob sees it as a member and downloads it; he changes nothing.
    assert_eq!(
        api.put_data(&id, &alice_token, bytes.clone()).await.status,
        StatusCode::NO_CONTENT
    );
    app.services
        .share_image(&alice, &id, "globex")
        .await
        .unwrap();
    let pending = api
        .get("/v2/images?member_status=pending", &bob_token)
        .await
        .json();
    assert_eq!(pending["images"].as_array().unwrap().len(), 1);
    assert!(
        api.get("/v2/images", &bob_token).await.json()["images"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    app.services
        .decide_shares(
            &bob,
            std::slice::from_ref(&id),
            image_console::domain::share::ShareDecision::Approve,
        )
        .await
        .unwrap();
    let listed = api.get("/v2/images", &bob_token).await.json();
    assert_eq!(listed["images"][0]["id"], id.as_str());
    assert_eq!(listed["images"][0]["owner"], "acme");
    assert_eq!(listed["images"][0]["visibility"], "shared");
    let seen = api.get(&image_path, &bob_token).await;
    assert_eq!(seen.status, StatusCode::OK);
    api.check_image(&seen.json());
    assert_eq!(
        api.get(&format!("{image_path}/file"), &bob_token)
            .await
            .body,
        bytes
    );
    assert_eq!(
        api.patch(
            &image_path,
            &bob_token,
            json!([{ "op": "replace", "path": "/name", "value": "mine" }])
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api.delete(&image_path, &bob_token).await.status,
        StatusCode::FORBIDDEN
    );
    let tag = api
        .request(
            "PUT",
            &format!("{image_path}/tags/x"),
            Some(&bob_token),
            None,
            Body::empty(),
            &[],
        )
        .await;
    assert_eq!(tag.status, StatusCode::FORBIDDEN);
    assert_eq!(
        api.get(&image_path, &alice_token).await.json()["name"],
        "shared-base"
    );
}

async fn members_stage_and_import(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = Api::new(&app).await;
    let source = crate::support::SourceServer::start().await;
    let alice = app.sign_up("acme").await;
    let bob = app.sign_up("globex").await;
    let alice_token = token_for(&app, &alice).await;
    let bob_token = token_for(&app, &bob).await;
    let bytes = qcow2_bytes(&app, "staged.qcow2");
    let new_image =
        |name: &str| json!({ "name": name, "disk_format": "qcow2", "os_distro": "ubuntu" });

    // glance-direct: stage, then import.
    let id = api.create(&alice_token, new_image("staged")).await;
    let early = api
        .post(
            &format!("/v2/images/{id}/import"),
            &alice_token,
            json!({ "method": { "name": "glance-direct" } }),
        )
        .await;
    assert_eq!(early.status, StatusCode::CONFLICT, "nothing staged yet");
    let staged = api
        .request(
            "PUT",
            &format!("/v2/images/{id}/stage"),
            Some(&alice_token),
            Some("application/octet-stream"),
            Body::from(bytes.clone()),
            &[],
        )
        .await;
    assert_eq!(
        staged.status,
        StatusCode::NO_CONTENT,
        "{}",
        String::from_utf8_lossy(&staged.body)
    );
    let image = api
        .get(&format!("/v2/images/{id}"), &alice_token)
        .await
        .json();
    api.check_image(&image);
    assert_eq!(image["status"], "uploading");
    // Staged data does not expire as an abandoned upload would.
    assert_eq!(app.services.expire_uploads().await.unwrap(), 0);
    for (body, status) in [
        (
            json!({ "method": { "name": "copy-image" } }),
            StatusCode::BAD_REQUEST,
        ),
        (json!({}), StatusCode::BAD_REQUEST),
        (
            json!({ "method": { "name": "glance-direct" } }),
            StatusCode::ACCEPTED,
        ),
    ] {
        let answer = api
            .post(
                &format!("/v2/images/{id}/import"),
                &alice_token,
                body.clone(),
            )
            .await;
        assert_eq!(answer.status, status, "{body}");
    }
    let image = api
        .get(&format!("/v2/images/{id}"), &alice_token)
        .await
        .json();
    assert_eq!(image["status"], "active");
    assert_eq!(image["os_hash_value"], hex_of::<sha2::Sha512>(&bytes));
    assert_eq!(
        api.get(&format!("/v2/images/{id}/file"), &alice_token)
            .await
            .body,
        bytes
    );

    // web-download: through the import address guard, then imported in the background.
    let web = api.create(&alice_token, new_image("web")).await;
    let blocked = api
        .post(
            &format!("/v2/images/{web}/import"),
            &alice_token,
            json!({ "method": { "name": "web-download", "uri": "http://169.254.169.254/disk.qcow2" } }),
        )
        .await;
    assert_eq!(blocked.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        api.get(&format!("/v2/images/{web}"), &alice_token)
            .await
            .json()["status"],
        "queued"
    );
    let served = source.qcow2("web.qcow2", "8M");
    // The tests' settings let imports reach the loopback source.
    let accepted_import = api
        .post(
            &format!("/v2/images/{web}/import"),
            &alice_token,
            json!({ "method": { "name": "web-download", "uri": source.url("files", "web.qcow2") } }),
        )
        .await;
    assert_eq!(accepted_import.status, StatusCode::ACCEPTED);
    let done = app.wait_for_import(&alice, &web).await;
    assert_eq!(
        done.hash_value.as_deref(),
        Some(crate::support::sha512_hex(&served).as_str())
    );
    let image = api
        .get(&format!("/v2/images/{web}"), &alice_token)
        .await
        .json();
    assert_eq!(image["status"], "active");

    // Members: added by the owner, answered by the member, removed by the owner.
    let members_path = format!("/v2/images/{id}/members");
    let added = api
        .post(&members_path, &alice_token, json!({ "member": "globex" }))
        .await;
    assert_eq!(added.status, StatusCode::OK);
    conforms(&added.json(), &api.schemas["member"], "member");
    assert_eq!(added.json()["status"], "pending");
    let again = api
        .post(&members_path, &alice_token, json!({ "member": "globex" }))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let listed = api.get(&members_path, &alice_token).await;
    conforms(&listed.json(), &api.schemas["members"], "members");
    assert_eq!(listed.json()["members"][0]["member_id"], "globex");
    // Pending: Bob lists it only when he asks for pending images.
    assert!(
        api.get("/v2/images", &bob_token).await.json()["images"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // The owner cannot answer for Bob; Bob can.
    let member_path = format!("{members_path}/globex");
    let by_owner = api
        .request(
            "PUT",
            &member_path,
            Some(&alice_token),
            Some("application/json"),
            Body::from(r#"{"status":"accepted"}"#),
            &[],
        )
        .await;
    assert_eq!(by_owner.status, StatusCode::FORBIDDEN);
    let accepted = api
        .request(
            "PUT",
            &member_path,
            Some(&bob_token),
            Some("application/json"),
            Body::from(r#"{"status":"accepted"}"#),
            &[],
        )
        .await;
    assert_eq!(
        accepted.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&accepted.body)
    );
    assert_eq!(accepted.json()["status"], "accepted");
    let bobs = api.get("/v2/images", &bob_token).await.json();
    assert_eq!(bobs["images"][0]["id"], id.as_str());
    let own = api.get(&member_path, &bob_token).await;
    assert_eq!(own.json()["status"], "accepted");
    let pending_again = api
        .request(
            "PUT",
            &member_path,
            Some(&bob_token),
            Some("application/json"),
            Body::from(r#"{"status":"pending"}"#),
            &[],
        )
        .await;
    assert_eq!(pending_again.status, StatusCode::BAD_REQUEST);
    // Removed: Bob loses the image at once.
    assert_eq!(
        api.delete(&member_path, &bob_token).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api.delete(&member_path, &alice_token).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.get(&format!("/v2/images/{id}"), &bob_token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get(&member_path, &alice_token).await.status,
        StatusCode::NOT_FOUND
    );
    let history = app.services.image_history(&alice, &id, 1).await.unwrap();
    assert!(
        history
            .entries
            .iter()
            .any(|e| e.topic == HistoryTopic::ShareStopped && e.worker == alice.user_name)
    );
    assert!(
        history
            .entries
            .iter()
            .any(|e| e.topic == HistoryTopic::ImportFinished && e.worker == alice.user_name)
    );
}

async fn interrupted_data_puts_the_image_back_to_queued(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = Api::new(&app).await;
    let s = &app.services;
    let alice = app.sign_up("acme").await;
    let token = token_for(&app, &alice).await;
    let bytes = qcow2_bytes(&app, "cut.qcow2");
    let id = api
        .create(
            &token,
            json!({ "name": "cut", "disk_format": "qcow2", "os_distro": "ubuntu" }),
        )
        .await;

    // The body breaks off after a MiB: nothing is kept and the image waits again.
    let pieces: Vec<Result<bytes::Bytes, String>> = vec![
        Ok(bytes::Bytes::from(vec![7u8; 1 << 20])),
        Err("the client's connection was closed".into()),
    ];
    let cut = s
        .api_upload_image_data(&alice, &id, Some(4 << 20), futures::stream::iter(pieces))
        .await
        .unwrap_err();
    let message = format!("{cut:?}");
    assert!(
        message.contains("broke off after 1 MB of 4 MB"),
        "{message}"
    );
    let image = api.get(&format!("/v2/images/{id}"), &token).await.json();
    assert_eq!(image["status"], "queued");
    assert_eq!(image["size"], Value::Null);
    let (images, imports) = app.stored_files().await;
    assert!(
        images.is_empty() && imports.is_empty(),
        "{images:?} {imports:?}"
    );
    let history = s.image_history(&alice, &id, 1).await.unwrap();
    assert!(
        history
            .entries
            .iter()
            .any(|e| e.message.contains("queued again"))
    );

    // A process that claimed the upload and died: the next heartbeat puts it back too. (The
    // request's own claim ended with its answer, so this claim is not refused.)
    let fence = crate::support::import_fence(s.store(), &id).await;
    s.store()
        .claim_body_upload(
            "acme",
            &id,
            &fence,
            &alice.user_name,
            "",
            image_console::service::now_ms(),
        )
        .await
        .unwrap()
        .expect("claimed");
    assert_eq!(
        api.get(&format!("/v2/images/{id}"), &token).await.json()["status"],
        "saving"
    );
    s.importer().take_over().await.unwrap();
    assert_eq!(
        api.get(&format!("/v2/images/{id}"), &token).await.json()["status"],
        "queued"
    );

    // And the data can then be sent whole.
    assert_eq!(
        api.put_data(&id, &token, bytes).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.get(&format!("/v2/images/{id}"), &token).await.json()["status"],
        "active"
    );
}

async fn data_over_the_quota_is_refused_with_413(backend: Backend) {
    let settings = image_console::service::ServiceSettings {
        max_storage_bytes_per_account: 2 << 20,
        ..crate::support::test_settings()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    let api = Api::new(&app).await;
    let alice = app.sign_up("acme").await;
    let token = token_for(&app, &alice).await;
    let id = api
        .create(
            &token,
            json!({ "name": "big", "disk_format": "raw", "os_distro": "ubuntu" }),
        )
        .await;
    // Announced larger than the quota, and sent without a length: both refused alike.
    let announced = api.put_data(&id, &token, vec![0u8; 3 << 20]).await;
    assert_eq!(announced.status, StatusCode::PAYLOAD_TOO_LARGE);
    let (code, message) = announced.error();
    assert_eq!(code, 413);
    assert!(message.contains("Storage quota exceeded"), "{message}");
    assert_eq!(announced.headers[header::CONNECTION], "close");
    let pieces: Vec<Result<bytes::Bytes, String>> = (0..3)
        .map(|_| Ok(bytes::Bytes::from(vec![0u8; 1 << 20])))
        .collect();
    let streamed = app
        .services
        .api_upload_image_data(&alice, &id, None, futures::stream::iter(pieces))
        .await
        .unwrap_err();
    assert!(
        matches!(&streamed, image_console::service::ServiceError::TooLarge(m) if m.contains("quota")),
        "{streamed:?}"
    );
    let image = api.get(&format!("/v2/images/{id}"), &token).await.json();
    assert_eq!(image["status"], "queued");
    let (images, imports) = app.stored_files().await;
    assert!(
        images.is_empty() && imports.is_empty(),
        "{images:?} {imports:?}"
    );
}

/// `os_encrypt_key_id` on create encrypts the image's data (the account's default key, or a
/// key by id); the document names the key, the data comes back whole, the key cannot be
/// changed, and a disabled key refuses the data with its reason.
async fn encrypted_images(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = Api::new(&app).await;
    let alice = app.sign_up("acme").await;
    let token = token_for(&app, &alice).await;
    let bytes = qcow2_bytes(&app, "disk.qcow2");

    let refused = api
        .post(
            "/v2/images",
            &token,
            json!({ "name": "x", "disk_format": "qcow2", "os_encrypt_key_id": "not-a-key" }),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.error().1.contains("os_encrypt_key_id"));

    let created = api
        .post(
            "/v2/images",
            &token,
            json!({ "name": "sealed", "disk_format": "qcow2", "os_encrypt_key_id": "default" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let image = created.json();
    api.check_image(&image);
    let id = image["id"].as_str().unwrap().to_owned();
    let key = app.services.list_keys(&alice).await.unwrap().remove(0);
    assert_eq!(image["os_encrypt_key_id"], key.id.as_str());

    assert_eq!(
        api.put_data(&id, &token, bytes.clone()).await.status,
        StatusCode::NO_CONTENT
    );
    let shown = api.get(&format!("/v2/images/{id}"), &token).await.json();
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["os_hash_value"], hex_of::<sha2::Sha512>(&bytes));
    let stored = app.stored_bytes(&id).await;
    assert!(
        !stored.starts_with(b"QFI\xfb"),
        "the stored bytes are sealed"
    );
    let data = api.get(&format!("/v2/images/{id}/file"), &token).await;
    assert_eq!(data.status, StatusCode::OK);
    assert_eq!(data.body, bytes);

    let other = app
        .services
        .create_key(&alice, "other", "", false)
        .await
        .unwrap();
    let changed = api
        .set_field(
            &format!("/v2/images/{id}"),
            &token,
            "replace",
            "os_encrypt_key_id",
            &other,
        )
        .await;
    assert_eq!(changed.status, StatusCode::FORBIDDEN);
    assert!(
        changed.error().1.contains("replicate"),
        "{:?}",
        changed.error()
    );

    app.services
        .change_key(&alice, &key.id, "disable", "")
        .await
        .unwrap();
    let data = api.get(&format!("/v2/images/{id}/file"), &token).await;
    assert_eq!(data.status, StatusCode::FORBIDDEN);
    assert!(data.error().1.contains(&key.id), "{:?}", data.error());
    // A new image under a disabled key is refused.
    let refused = api
        .post(
            "/v2/images",
            &token,
            json!({ "name": "y", "disk_format": "qcow2", "os_encrypt_key_id": key.id }),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
}

crate::on_every_backend!(
    encrypted_images,
    what_plain_clients_send_is_accepted,
    operating_systems_follow_the_catalogue,
    data_over_the_quota_is_refused_with_413,
    interrupted_data_puts_the_image_back_to_queued,
    members_stage_and_import,
    versions_and_authentication,
    create_upload_show_download_delete,
    create_refusals,
    list_filters_sorts_and_pages,
    other_accounts_and_shares,
);
