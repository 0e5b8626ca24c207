//! The HTTP surface: page guards, session cookies, CSRF protection and server functions,
//! driven through the same router `main` serves.

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use image_console::server::{AppState, CookiePolicy, HttpLimits, leptos_options, router};
use image_console::server_fns::auth::{SignOut, SignUp};
use image_console::server_fns::images::{CreateImage, GetImage, ListImages};
use leptos::server_fn::ServerFn;
use tower::ServiceExt;

use crate::support::{Backend, TestApp};

pub(crate) struct Client {
    app: axum::Router,
}

impl Client {
    pub(crate) fn new(test: &TestApp) -> Self {
        let state = AppState {
            services: test.services.clone(),
            leptos_options: leptos_options(test.data.path(), "127.0.0.1:0".parse().unwrap()),
            cookie_policy: CookiePolicy::default(),
            http_limits: HttpLimits::default(),
        };
        Self { app: router(state) }
    }

    pub(crate) async fn send(&self, request: Request<Body>) -> Response<Body> {
        self.app.clone().oneshot(request).await.unwrap()
    }

    pub(crate) async fn get(&self, path: &str, cookie: Option<&str>) -> Response<Body> {
        let mut request = Request::get(path);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    /// Calls a server function the way a same-origin browser form does.
    async fn call(
        &self,
        path: &str,
        form: &[(&str, &str)],
        cookie: Option<&str>,
        site: &str,
    ) -> Response<Body> {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut request = Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .header("sec-fetch-site", site);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        self.send(request.body(Body::from(body)).unwrap()).await
    }

    /// The ids on the first page of the Image List.
    async fn image_ids(&self, cookie: &str) -> Vec<String> {
        let response = self
            .call(
                ListImages::PATH,
                &[("query", "")],
                Some(cookie),
                "same-origin",
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let page: serde_json::Value = serde_json::from_str(&text(response).await).unwrap();
        page["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Signs up through the server function and returns the session cookie pair.
    async fn sign_up(&self, account_id: &str) -> String {
        let response = self
            .call(
                SignUp::PATH,
                &[
                    ("account_id", account_id),
                    ("user_name", &format!("admin@{account_id}")),
                    ("password", "correct horse battery"),
                    ("password_confirm", "correct horse battery"),
                ],
                None,
                "same-origin",
            )
            .await;
        let set_cookie = response
            .headers()
            .get(header::SET_COOKIE)
            .unwrap_or_else(|| panic!("sign up set no cookie: {:?}", response.status()))
            .to_str()
            .unwrap()
            .to_owned();
        assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
        assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
        set_cookie.split(';').next().unwrap().to_owned()
    }
}

pub(crate) async fn text(response: Response<Body>) -> String {
    String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap()
}

fn location(response: &Response<Body>) -> &str {
    response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn signed_out_visitors_are_sent_to_sign_in(backend: Backend) {
    let test = TestApp::spawn(backend).await;
    let client = Client::new(&test);
    for (path, next) in [
        ("/images", "%2Fimages"),
        ("/images/create", "%2Fimages%2Fcreate"),
        ("/", "%2Fimages"),
    ] {
        let response = client.get(path, None).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(
            location(&response),
            format!("/signin?next={next}"),
            "{path}"
        );
    }
    let sign_in = client.get("/signin", None).await;
    assert_eq!(sign_in.status(), StatusCode::OK);
    let page = text(sign_in).await;
    assert!(page.contains("Sign in"), "{page}");
    // Pages (and the wasm bundle) go out compressed to browsers that accept it.
    let compressed = client
        .send(
            Request::get("/signin")
                .header(header::ACCEPT_ENCODING, "br")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        compressed.headers().get(header::CONTENT_ENCODING).unwrap(),
        "br"
    );
    // Forged or unknown session cookies are visitors too.
    let forged = client
        .get(
            "/images",
            Some(&format!("console_session={}", "A".repeat(43))),
        )
        .await;
    assert_eq!(forged.status(), StatusCode::SEE_OTHER);
}

async fn a_signed_up_user_gets_the_console(backend: Backend) {
    let test = TestApp::spawn(backend).await;
    let client = Client::new(&test);
    let cookie = client.sign_up("acme").await;
    let list = client.get("/images", Some(&cookie)).await;
    assert_eq!(list.status(), StatusCode::OK);
    let page = text(list).await;
    assert!(page.contains("Image List"));
    assert!(
        page.contains("No images yet"),
        "the empty state shows for a new account"
    );
    // Sign In is for visitors; a signed-in user goes on to the list.
    let sign_in = client.get("/signin", Some(&cookie)).await;
    assert_eq!(location(&sign_in), "/images");

    let out = client
        .call(SignOut::PATH, &[], Some(&cookie), "same-origin")
        .await;
    let cleared = out
        .headers()
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let after = client.get("/images", Some(&cookie)).await;
    assert_eq!(
        after.status(),
        StatusCode::SEE_OTHER,
        "the old cookie no longer works"
    );
}

async fn cross_site_writes_are_refused(backend: Backend) {
    let test = TestApp::spawn(backend).await;
    let client = Client::new(&test);
    let cookie = client.sign_up("acme").await;
    let form = [
        ("name", "forged"),
        ("source_url", "https://example.com/x.qcow2"),
        ("os_family", "linux"),
        ("os_platform", "ubuntu"),
        ("min_disk", "0"),
        ("min_ram", "0"),
        ("visibility", "private"),
        ("description", ""),
    ];
    for site in ["cross-site", "same-site"] {
        let response = client
            .call(CreateImage::PATH, &form, Some(&cookie), site)
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{site}");
    }
    let mut request = Request::post(CreateImage::PATH)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, &cookie)
        .header(header::ORIGIN, "https://evil.example")
        .header(header::HOST, "127.0.0.1:3000");
    request = request.header(header::ACCEPT, "application/json");
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let response = client.send(request.body(Body::from(body)).unwrap()).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    assert!(
        client.image_ids(&cookie).await.is_empty(),
        "no forged image was created"
    );
}

async fn server_functions_check_the_session_and_the_account(backend: Backend) {
    let test = TestApp::spawn(backend).await;
    let client = Client::new(&test);
    let anonymous = client
        .call(ListImages::PATH, &[("query", "")], None, "same-origin")
        .await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let alice = client.sign_up("alice").await;
    let bob = client.sign_up("bob").await;
    let created = client
        .call(
            CreateImage::PATH,
            &[
                ("name", "alice secret"),
                ("source_url", "http://127.0.0.1:9/x.qcow2"),
                ("os_family", "linux"),
                ("os_platform", "rocky"),
                ("min_disk", "1"),
                ("min_ram", "1"),
                ("visibility", "private"),
                ("description", ""),
                ("architecture", "aarch64"),
                ("boot_mode", "uefi"),
                ("cloud_init", "on"),
                ("tags[0][key]", "env"),
                ("tags[0][value]", "prod"),
                ("tags[1][key]", "team"),
                ("tags[1][value]", ""),
            ],
            Some(&alice),
            "same-origin",
        )
        .await;
    assert!(
        created.status().is_success() || created.status().is_redirection(),
        "{:?}",
        created.status()
    );
    let ids = client.image_ids(&alice).await;
    let id = ids[0].clone();
    // The form's nested fields (attributes, tags) arrived intact.
    let alice_view = client
        .call(GetImage::PATH, &[("id", &id)], Some(&alice), "same-origin")
        .await;
    let image: serde_json::Value = serde_json::from_str(&text(alice_view).await).unwrap();
    assert_eq!(image["attributes"]["architecture"], "Aarch64");
    assert_eq!(image["attributes"]["boot_mode"], "Uefi");
    assert_eq!(image["attributes"]["features"]["cloud_init"], true);
    assert_eq!(
        image["tags"],
        serde_json::json!([{"key": "env", "value": "prod"}, {"key": "team", "value": ""}])
    );

    let bob_view = client
        .call(GetImage::PATH, &[("id", &id)], Some(&bob), "same-origin")
        .await;
    assert_eq!(bob_view.status(), StatusCode::NOT_FOUND);
    let body = text(bob_view).await;
    assert!(!body.contains("alice secret"), "{body}");
    let page = client.get(&format!("/images/{id}"), Some(&bob)).await;
    assert!(!text(page).await.contains("alice secret"));

    let invalid = client
        .call(
            CreateImage::PATH,
            &[
                ("name", ""),
                ("source_url", "x"),
                ("os_family", ""),
                ("os_platform", ""),
                ("min_disk", "-1"),
                ("min_ram", ""),
                ("visibility", ""),
                ("description", ""),
            ],
            Some(&bob),
            "same-origin",
        )
        .await;
    assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
    let body = text(invalid).await;
    assert!(body.contains("Enter an image name."), "{body}");
    assert!(client.image_ids(&bob).await.is_empty());
}

crate::on_both_databases!(
    signed_out_visitors_are_sent_to_sign_in,
    a_signed_up_user_gets_the_console,
    cross_site_writes_are_refused,
    server_functions_check_the_session_and_the_account,
);
