//! Signed download links: no session needed, Range requests, expiry, tampering, revocation.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use image_console::service::ServiceError;

use crate::support::{Backend, SourceServer, TestApp, create_form, qemu_img};
use crate::support::{Client, body_bytes, text};

async fn download_links_serve_ranges_and_refuse_bad_links(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let source = SourceServer::start().await;
    let file = source.qcow2("disk.qcow2", "1G");
    qemu_img(&["resize", "-q", file.to_str().unwrap(), "2G"]);
    let mut bytes = std::fs::read(&file).unwrap();
    // Distinct bytes everywhere, so a range from the wrong offset cannot pass.
    let header_len = bytes.len();
    bytes.extend((0..200_000u32).map(|i| (i % 251) as u8));
    std::fs::write(&file, &bytes).unwrap();
    let actor = app.sign_up("acme").await;
    let id = app
        .services
        .create_image(
            &actor,
            &create_form("ubuntu base", &source.url("files", "disk.qcow2")),
        )
        .await
        .unwrap();
    app.wait_for_import(&actor, &id).await;
    let client = Client::new(&app);
    let link = app
        .services
        .create_download_link(&actor, &id)
        .await
        .unwrap();
    assert!(
        link.path
            .starts_with(&format!("/downloads/{id}/ubuntu-base.qcow2?exp=")),
        "{}",
        link.path
    );

    // The whole file, without any cookie.
    let whole = client.get(&link.path, None).await;
    assert_eq!(whole.status(), StatusCode::OK);
    let headers = whole.headers().clone();
    assert_eq!(
        headers[header::CONTENT_LENGTH],
        bytes.len().to_string().as_str()
    );
    assert_eq!(headers[header::ACCEPT_RANGES], "bytes");
    assert!(
        headers.get(header::CONTENT_ENCODING).is_none(),
        "bytes are sent as stored"
    );
    assert_eq!(
        headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"ubuntu-base.qcow2\"; filename*=UTF-8''ubuntu-base.qcow2"
    );
    assert_eq!(body_bytes(whole).await, bytes);

    // Ranges: a middle slice, an open end, a suffix; and one past the end.
    let range = |r: String| {
        let client = &client;
        let path = link.path.clone();
        async move {
            client
                .send(
                    Request::get(path)
                        .header(header::RANGE, r)
                        .header(header::ACCEPT_ENCODING, "br")
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
        }
    };
    let start = header_len as u64 + 1000;
    let middle = range(format!("bytes={start}-{}", start + 99)).await;
    assert_eq!(middle.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        middle.headers()[header::CONTENT_RANGE],
        format!("bytes {start}-{}/{}", start + 99, bytes.len()).as_str()
    );
    assert_eq!(middle.headers()[header::CONTENT_LENGTH], "100");
    assert_eq!(
        body_bytes(middle).await,
        &bytes[start as usize..start as usize + 100]
    );
    let tail = range(format!("bytes={}-", bytes.len() - 10)).await;
    assert_eq!(tail.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(body_bytes(tail).await, &bytes[bytes.len() - 10..]);
    let suffix = range("bytes=-7".into()).await;
    assert_eq!(body_bytes(suffix).await, &bytes[bytes.len() - 7..]);
    let past_end = range(format!("bytes={}-", bytes.len())).await;
    assert_eq!(past_end.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        past_end.headers()[header::CONTENT_RANGE],
        format!("bytes */{}", bytes.len()).as_str()
    );

    // Tampering with any part of the link is refused with 403 and never the bytes.
    let tampered = [
        link.path.replace("exp=", "exp=9"),
        link.path.replace("gen=0", "gen=1"),
        link.path.replace(&id, &uuid::Uuid::new_v4().to_string()),
        format!("{}A", link.path),
        link.path.split("&sig=").next().unwrap().to_owned(),
    ];
    for path in tampered {
        let response = client.get(&path, None).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        let message = text(response).await;
        assert_eq!(
            message,
            "This download link is not valid. Create a new link on the image's Details page.",
            "{path}"
        );
    }

    // An expired link.
    let expired = app
        .services
        .issue_download_link(&actor, &id, -1000)
        .await
        .unwrap();
    let response = client.get(&expired.path, None).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        text(response)
            .await
            .starts_with("This download link has expired")
    );

    // Revoking stops every earlier link; a new link works.
    app.services
        .revoke_download_links(&actor, &id)
        .await
        .unwrap();
    let response = client.get(&link.path, None).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        text(response)
            .await
            .starts_with("This download link was revoked")
    );
    let fresh = app
        .services
        .create_download_link(&actor, &id)
        .await
        .unwrap();
    assert_eq!(client.get(&fresh.path, None).await.status(), StatusCode::OK);

    // Another account can neither issue nor revoke links to the image.
    let other = app.sign_up("other").await;
    assert!(matches!(
        app.services.create_download_link(&other, &id).await,
        Err(ServiceError::NotFound(_))
    ));
    assert!(matches!(
        app.services.revoke_download_links(&other, &id).await,
        Err(ServiceError::NotFound(_))
    ));

    // Deleting the image ends every link.
    app.services.delete_image(&actor, &id).await.unwrap();
    let response = client.get(&fresh.path, None).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

async fn only_active_images_get_links(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let actor = app.sign_up("acme").await;
    let id = crate::support::seed_image(
        &app.services,
        &actor,
        crate::support::Seed {
            status: image_console::domain::image::ImageStatus::Failed,
            ..Default::default()
        },
    )
    .await;
    let refused = app
        .services
        .create_download_link(&actor, &id)
        .await
        .unwrap_err();
    assert!(matches!(refused, ServiceError::Conflict(_)));
}

/// An Active image whose stored object went missing (outside the console's hands) is a fault
/// the answer names by its reference, 503 rather than 500, for a signed link and through the
/// image API alike; the rest of the console keeps working.
async fn a_missing_stored_object_answers_503_with_a_reference(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let source = SourceServer::start().await;
    source.qcow2("disk.qcow2", "16M");
    let actor = app.sign_up("acme").await;
    let id = app
        .services
        .create_image(
            &actor,
            &create_form("vanished", &source.url("files", "disk.qcow2")),
        )
        .await
        .unwrap();
    app.wait_for_import(&actor, &id).await;
    let link = app
        .services
        .create_download_link(&actor, &id)
        .await
        .unwrap();
    let token = app
        .services
        .create_api_token(&actor, "reader", "30")
        .await
        .unwrap()
        .secret;
    let key = app
        .services
        .store()
        .find_download_target(&id)
        .await
        .unwrap()
        .unwrap()
        .blob_key
        .unwrap();
    app.services.blobs().remove_blob(&key).await.unwrap();

    let client = Client::new(&app);
    let by_link = client.get(&link.path, None).await;
    let by_api = client
        .send(
            Request::get(format!("/v2/images/{id}/file"))
                .header("x-auth-token", &token)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    for answer in [by_link, by_api] {
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        let reference = answer.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let said = text(answer).await;
        assert!(
            said.contains(&format!(
                "The image's data cannot be read on the server now (reference {reference})"
            )),
            "{said}"
        );
    }
    // The image itself is still there to look at.
    let shown = client
        .send(
            Request::get(format!("/v2/images/{id}"))
                .header("x-auth-token", &token)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(shown.status(), StatusCode::OK);
    assert_eq!(shown.headers()[header::CACHE_CONTROL], "no-store");
}

crate::on_every_backend!(
    download_links_serve_ranges_and_refuse_bad_links,
    only_active_images_get_links,
    a_missing_stored_object_answers_503_with_a_reference,
);
