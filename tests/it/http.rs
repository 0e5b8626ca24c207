//! The HTTP surface: page guards, session cookies, CSRF protection and server functions,
//! driven through the same router `main` serves.

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use image_console::server_fns::auth::{SignOut, SignUp};
use image_console::server_fns::images::{CreateImage, GetImage, ListImages};
use leptos::server_fn::ServerFn;

use crate::support::{Backend, Client, TestApp, sign_up_form, text};

/// The ids on the first page of the Image List.
async fn image_ids(client: &Client, cookie: &str) -> Vec<String> {
    let response = client
        .call(ListImages::PATH, &[("query", "")], Some(cookie))
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
    let signed_up = client.call(SignUp::PATH, &sign_up_form("acme"), None).await;
    let set_cookie = signed_up.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
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
        .call(SignOut::PATH, &[] as &[(&str, &str)], Some(&cookie))
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
            .call_with(
                CreateImage::PATH,
                &form,
                Some(&cookie),
                &[("sec-fetch-site", site)],
            )
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
        image_ids(&client, &cookie).await.is_empty(),
        "no forged image was created"
    );
}

async fn server_functions_check_the_session_and_the_account(backend: Backend) {
    let test = TestApp::spawn(backend).await;
    let client = Client::new(&test);
    let anonymous = client.call(ListImages::PATH, &[("query", "")], None).await;
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
        )
        .await;
    assert!(
        created.status().is_success() || created.status().is_redirection(),
        "{:?}",
        created.status()
    );
    let ids = image_ids(&client, &alice).await;
    let id = ids[0].clone();
    // The form's nested fields (attributes, tags) arrived intact.
    let alice_view = client
        .call(GetImage::PATH, &[("id", &id)], Some(&alice))
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
        .call(GetImage::PATH, &[("id", &id)], Some(&bob))
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
        )
        .await;
    assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
    let body = text(invalid).await;
    assert!(body.contains("Enter an image name."), "{body}");
    assert!(image_ids(&client, &bob).await.is_empty());
}

crate::on_both_databases!(
    signed_out_visitors_are_sent_to_sign_in,
    a_signed_up_user_gets_the_console,
    cross_site_writes_are_refused,
    server_functions_check_the_session_and_the_account,
);
