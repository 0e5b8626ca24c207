//! The image API's data routes (`PUT /v2/images/{id}/file` and `/stage`) under the limits the
//! browser's uploads have, through a real HTTP server on 127.0.0.1: the upload slots per
//! account and in all (429 and 503 with Retry-After), and the idle timeout, after which the
//! image is queued again with nothing stored. Others keep being served meanwhile.

use std::time::{Duration, Instant};

use image_console::server_fns::auth::SignIn;
use image_console::service::Actor;
use leptos::server_fn::ServerFn;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::on_every_backend;
use crate::support::{Backend, PASSWORD, test_settings};
use crate::uploads::{LiveServer, client, header, qcow2_with_data};

async fn token_for(server: &LiveServer, actor: &Actor) -> String {
    server
        .app
        .services
        .create_api_token(actor, "limits", "30")
        .await
        .unwrap()
        .secret
}

async fn json_of(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A queued image through the API; its id.
async fn create_queued(server: &LiveServer, token: &str, name: &str) -> String {
    let created = client()
        .post(format!("{}/v2/images", server.base))
        .header("x-auth-token", token)
        .header("content-type", "application/json")
        .body(
            json!({
                "name": name,
                "disk_format": "qcow2",
                "container_format": "bare",
                "os_distro": "ubuntu"
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let status = created.status();
    let body = json_of(created).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// Opens a `PUT {path}` that promises `promised` bytes and sends only `body`.
async fn open_put(
    server: &LiveServer,
    token: &str,
    path: &str,
    promised: u64,
    body: &[u8],
) -> TcpStream {
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {}\r\nX-Auth-Token: {token}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {promised}\r\n\r\n",
        server.addr
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(body).await.unwrap();
    socket.flush().await.unwrap();
    socket
}

/// Waits until `count` requests stream image bytes in.
async fn wait_streaming(server: &LiveServer, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.app.services.uploads_streaming() != count {
        assert!(
            Instant::now() < deadline,
            "{count} requests never streamed (now {})",
            server.app.services.uploads_streaming()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn put_file(server: &LiveServer, token: &str, id: &str, data: Vec<u8>) -> reqwest::Response {
    client()
        .put(format!("{}/v2/images/{id}/file", server.base))
        .header("x-auth-token", token)
        .header("content-type", "application/octet-stream")
        .body(data)
        .send()
        .await
        .unwrap()
}

/// The image API's data routes take the upload slots: at most `upload_patches_per_account`
/// of one account stream at once (429), at most `upload_patches` in all (503), each refusal
/// with Retry-After and Glance's JSON. While they stall, other users sign in and download.
async fn api_data_requests_take_the_upload_slots(backend: Backend) {
    let mut settings = test_settings();
    settings.limits.upload_patches_per_account = 2;
    settings.limits.upload_patches = 3;
    let server = LiveServer::start_with(backend, settings).await;
    let alice = server.app.sign_up("alice").await;
    let carol = server.app.sign_up("carol").await;
    let bob = server.app.sign_up("bob").await;
    let (alice_token, carol_token, bob_token) = (
        token_for(&server, &alice).await,
        token_for(&server, &carol).await,
        token_for(&server, &bob).await,
    );
    // Bob's image, Active before the attack.
    let data = qcow2_with_data(server.app.data.path(), "bob.qcow2", 3);
    let bobs = create_queued(&server, &bob_token, "bob-image").await;
    assert_eq!(
        put_file(&server, &bob_token, &bobs, data.clone())
            .await
            .status(),
        StatusCode::NO_CONTENT
    );

    let mut alice_images = Vec::new();
    for n in 0..3 {
        alice_images.push(create_queued(&server, &alice_token, &format!("a{n}")).await);
    }
    let carols = create_queued(&server, &carol_token, "c0").await;
    let stalled_file = open_put(
        &server,
        &alice_token,
        &format!("/v2/images/{}/file", alice_images[0]),
        1 << 20,
        b"Q",
    )
    .await;
    let stalled_stage = open_put(
        &server,
        &alice_token,
        &format!("/v2/images/{}/stage", alice_images[1]),
        1 << 20,
        b"Q",
    )
    .await;
    wait_streaming(&server, 2).await;

    let refused = put_file(&server, &alice_token, &alice_images[2], vec![0; 4096]).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&refused, "retry-after"), Some("5"));
    let body = json_of(refused).await;
    assert_eq!(body["error"]["code"], 429);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("This account already has 2 upload requests streaming"),
        "{body}"
    );

    let stalled_carol = open_put(
        &server,
        &carol_token,
        &format!("/v2/images/{carols}/file"),
        1 << 20,
        b"Q",
    )
    .await;
    wait_streaming(&server, 3).await;
    let busy = put_file(&server, &bob_token, &alice_images[2], vec![0; 4096]).await;
    assert_eq!(
        busy.status(),
        StatusCode::NOT_FOUND,
        "another account's image is missing, whatever the load"
    );
    let bobs_second = create_queued(&server, &bob_token, "bob-second").await;
    let busy = put_file(&server, &bob_token, &bobs_second, vec![0; 4096]).await;
    assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&busy, "retry-after"), Some("5"));

    // Meanwhile Bob signs in and downloads his image.
    let signed_in = client()
        .post(format!("{}{}", server.base, SignIn::PATH))
        .header("accept", "application/json")
        .header("sec-fetch-site", "same-origin")
        .form(&[("user_name", "admin@bob"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::OK);
    assert!(header(&signed_in, "set-cookie").is_some());
    let download = client()
        .get(format!("{}/v2/images/{bobs}/file", server.base))
        .header("x-auth-token", &bob_token)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.bytes().await.unwrap(), data);

    // Requests that end give their slots back; the images they held wait again.
    drop((stalled_file, stalled_stage, stalled_carol));
    wait_streaming(&server, 0).await;
    let small = qcow2_with_data(server.app.data.path(), "small.qcow2", 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = put_file(&server, &alice_token, &alice_images[0], small.clone())
            .await
            .status();
        if status == StatusCode::NO_CONTENT {
            break;
        }
        // The stalled request may still be giving the image back.
        assert!(Instant::now() < deadline, "still refused: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A PUT whose body stops arriving is ended after the idle timeout with 408 and a closed
/// connection; the image is queued again and nothing it sent is kept.
async fn an_idle_api_put_is_cut_and_the_image_waits_again(backend: Backend) {
    let mut settings = test_settings();
    settings.limits.upload_idle = Duration::from_millis(500);
    let server = LiveServer::start_with(backend, settings).await;
    let alice = server.app.sign_up("alice").await;
    let token = token_for(&server, &alice).await;
    let data = qcow2_with_data(server.app.data.path(), "disk.qcow2", 4);
    for route in ["file", "stage"] {
        let id = create_queued(&server, &token, route).await;
        let started = Instant::now();
        let mut socket = open_put(
            &server,
            &token,
            &format!("/v2/images/{id}/{route}"),
            data.len() as u64,
            &data[..(3 << 20) + 12_345],
        )
        .await;
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), socket.read_to_end(&mut answer))
            .await
            .expect("the server closed the connection")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
        assert!(
            answer.contains(
                "No bytes arrived for 500 milliseconds, so the upload was ended and nothing it sent was kept."
            ),
            "{answer}"
        );
        assert!(answer.contains("queued again"), "{answer}");
        assert!(started.elapsed() >= Duration::from_millis(500));

        let shown = json_of(
            client()
                .get(format!("{}/v2/images/{id}", server.base))
                .header("x-auth-token", &token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(shown["status"], "queued", "{shown}");
        assert_eq!(shown["size"], Value::Null, "{shown}");
        let (images, imports) = server.app.stored_files().await;
        assert!(
            !images.contains(&id) && imports.is_empty(),
            "{images:?} {imports:?}"
        );
        assert!(
            server
                .app
                .services
                .store()
                .all_incoming_states()
                .await
                .unwrap()
                .is_empty(),
            "no incoming bytes are recorded"
        );
        let history = server
            .app
            .services
            .image_history(&alice, &id, 1)
            .await
            .unwrap();
        assert!(
            history
                .entries
                .iter()
                .any(|e| e.message.contains("No bytes arrived")),
            "{history:?}"
        );
        // The image takes its data again, whole.
        let route_path = format!("{}/v2/images/{id}/{route}", server.base);
        let again = client()
            .put(route_path)
            .header("x-auth-token", &token)
            .header("content-type", "application/octet-stream")
            .body(data.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NO_CONTENT, "{route}");
    }
}

on_every_backend!(
    api_data_requests_take_the_upload_slots,
    an_idle_api_put_is_cut_and_the_image_waits_again,
);
