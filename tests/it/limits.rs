//! Limits that keep stalled or greedy clients from holding the server, through a real HTTP
//! server on 127.0.0.1 (the accept loop `main` runs): the header read timeout, the idle
//! timeout of a tus PATCH, the caps on concurrent PATCHes, expiry despite a stuck request,
//! an upload finished at start-up, and inspection of uploaded files.

use std::time::{Duration, Instant};

use image_console::domain::image::ImageStatus;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::on_both_databases;
use crate::support::{Backend, qemu_img, test_settings};
use crate::uploads::{HEADER_TIMEOUT, LiveServer, Tus, client, header, qcow2_with_data};

/// Opens a PATCH at `offset` that promises `promised` bytes and sends the first `body`.
async fn open_patch(
    server: &LiveServer,
    cookie: &str,
    location: &str,
    offset: u64,
    promised: u64,
    body: &[u8],
) -> TcpStream {
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\nTus-Resumable: 1.0.0\r\n\
         Upload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n\
         Content-Length: {promised}\r\n\r\n",
        server.addr
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(body).await.unwrap();
    socket.flush().await.unwrap();
    socket
}

/// Everything the server sends until it closes the connection, waiting at most `limit`.
async fn read_until_closed(socket: &mut TcpStream, limit: Duration) -> String {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(limit, socket.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "the server kept the connection open for {limit:?}"
    );
    String::from_utf8_lossy(&answer).into_owned()
}

/// A PATCH whose body stops arriving is ended after the idle timeout: the bytes that came
/// are kept, the answer says where to resume, and the connection is closed.
async fn a_stalled_patch_is_cut_after_the_idle_timeout(backend: Backend) {
    let mut settings = test_settings();
    settings.limits.upload_idle = Duration::from_millis(500);
    let server = LiveServer::start_with(backend, settings).await;
    let alice = server.app.sign_up("alice").await;
    let cookie = alice.cookie.clone();
    let image = qcow2_with_data(server.app.data.path(), "disk.qcow2", 2);
    let len = image.len() as u64;
    let id = server
        .create_upload_image(&alice, "disk.qcow2", len, "")
        .await;
    let tus = Tus {
        base: &server.base,
        cookie: &cookie,
        http: client(),
    };
    let location = server.create_upload(&cookie, &id, len).await;

    let started = Instant::now();
    let mut socket = open_patch(&server, &cookie, &location, 0, len, &image[..300_000]).await;
    let answer = read_until_closed(&mut socket, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(
        answer.contains(
            "No bytes arrived for 500 milliseconds, so the request was ended; the upload kept the bytes up to 300000."
        ),
        "{answer}"
    );
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(tus.offset(&location).await, 300_000);

    let rest = tus
        .patch(&location, 300_000, image[300_000..].to_vec())
        .await;
    assert_eq!(rest.status(), StatusCode::NO_CONTENT);
    server.assert_active_with(&alice, &id, &image).await;
}

/// A request that trickles a byte now and then never times out as idle, but it moves no
/// durable bytes either: the upload still expires, and the request is stopped.
async fn a_stuck_request_does_not_keep_an_upload_alive(backend: Backend) {
    let mut settings = test_settings();
    settings.upload_expiry = Duration::from_secs(600);
    let clock = settings.clock.clone();
    let server = LiveServer::start_with(backend, settings).await;
    let alice = server.app.sign_up("alice").await;
    let cookie = alice.cookie.clone();
    let id = server
        .create_upload_image(&alice, "disk.qcow2", 1 << 20, "")
        .await;
    let location = server.create_upload(&cookie, &id, 1 << 20).await;
    let mut socket = open_patch(&server, &cookie, &location, 0, 1 << 20, b"Q").await;
    let (mut reader, mut writer) = socket.split();
    let trickle = async {
        // One byte every 200 ms, until the server stops listening; the expiry passes after
        // the second byte.
        for sent in 0..100 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if writer.write_all(b"F").await.is_err() {
                break;
            }
            if sent == 1 {
                clock.advance(Duration::from_secs(601));
                assert_eq!(server.app.services.expire_uploads().await.unwrap(), 1);
            }
        }
    };
    let answer = async {
        let mut answer = Vec::new();
        let _ = reader.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    };
    let (answer, ()) = tokio::time::timeout(Duration::from_secs(15), async {
        tokio::join!(answer, trickle)
    })
    .await
    .expect("the stuck request was ended");
    assert!(answer.starts_with("HTTP/1.1 410"), "{answer}");
    let image = server
        .app
        .wait_until(&alice, &id, |i| i.status == ImageStatus::Failed)
        .await;
    assert!(
        image
            .failure_reason
            .as_deref()
            .unwrap()
            .starts_with("The upload expired"),
        "{image:?}"
    );
    assert_eq!(server.upload_files().await, Vec::<String>::new());
}

/// A request that keeps bringing bytes (a whole large file in one PATCH) keeps its upload
/// alive past the expiry, although nothing is durable until it ends.
async fn a_long_patch_that_makes_headway_does_not_expire(backend: Backend) {
    let mut settings = test_settings();
    settings.upload_expiry = Duration::from_secs(600);
    let clock = settings.clock.clone();
    let server = LiveServer::start_with(backend, settings).await;
    let alice = server.app.sign_up("alice").await;
    let cookie = alice.cookie.clone();
    let image = qcow2_with_data(server.app.data.path(), "disk.qcow2", 7);
    let len = image.len() as u64;
    let id = server
        .create_upload_image(&alice, "disk.qcow2", len, "")
        .await;
    let location = server.create_upload(&cookie, &id, len).await;
    let mut socket = open_patch(&server, &cookie, &location, 0, len, &[]).await;
    // 1 MiB every 4 minutes: half an hour in all, past the 10 minutes' expiry.
    for piece in image.chunks(1 << 20) {
        socket.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        clock.advance(Duration::from_secs(4 * 60));
        assert_eq!(server.app.services.expire_uploads().await.unwrap(), 0);
    }
    let answer = read_until_closed_or_answered(&mut socket).await;
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    server.assert_active_with(&alice, &id, &image).await;
}

/// The status line and headers of one answer on a kept-alive connection.
async fn read_until_closed_or_answered(socket: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(30), socket.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// At most `upload_patches_per_account` PATCHes of one account stream at once (429 beyond),
/// and at most `upload_patches` in all (503 beyond), each with Retry-After; a slot frees as
/// soon as its request ends.
async fn concurrent_patches_are_capped(backend: Backend) {
    let mut settings = test_settings();
    settings.limits.upload_patches_per_account = 2;
    settings.limits.upload_patches = 3;
    let server = LiveServer::start_with(backend, settings).await;
    let alice = server.app.sign_up("alice").await;
    let alice_cookie = alice.cookie.clone();
    let bob = server.app.sign_up("bob").await;
    let bob_cookie = bob.cookie.clone();
    let mut uploads = Vec::new();
    for (actor, cookie, count) in [(&alice, &alice_cookie, 3), (&bob, &bob_cookie, 2)] {
        for _ in 0..count {
            let id = server.create_upload_image(actor, "a.qcow2", 1000, "").await;
            let location = server.create_upload(cookie, &id, 1000).await;
            uploads.push((cookie.clone(), location));
        }
    }
    let stall = |n: usize| open_patch(&server, &uploads[n].0, &uploads[n].1, 0, 1000, b"x");
    let services = &server.app.services;
    let streaming = |count: usize| async move {
        let deadline = Instant::now() + Duration::from_secs(10);
        while services.uploads_streaming() != count {
            assert!(Instant::now() < deadline, "{count} PATCHes never streamed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let alice_first = stall(0).await;
    let alice_second = stall(1).await;
    streaming(2).await;
    let patch = |n: usize| {
        let tus = Tus {
            base: &server.base,
            cookie: &uploads[n].0,
            http: client(),
        };
        let location = uploads[n].1.clone();
        async move { tus.patch(&location, 0, vec![7; 1000]).await }
    };
    let refused = patch(2).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&refused, "retry-after"), Some("5"));
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .starts_with("This account already has 2 upload requests streaming")
    );
    let bob_first = stall(3).await;
    streaming(3).await;
    let busy = patch(4).await;
    assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&busy, "retry-after"), Some("5"));

    // Requests that end give their slots back.
    drop((alice_first, alice_second, bob_first));
    let deadline = Instant::now() + Duration::from_secs(10);
    for n in [2, 4] {
        loop {
            let status = patch(n).await.status();
            if status == StatusCode::NO_CONTENT {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "upload {n} still refused: {status}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// An upload whose last byte was made durable but which the server did not get to finish
/// (here, storing it failed) is finished when the server starts: inspected, hashed from its
/// saved state and made Active.
async fn a_complete_upload_is_finished_at_start(backend: Backend) {
    let server = LiveServer::start(backend).await;
    let alice = server.app.sign_up("alice").await;
    let cookie = alice.cookie.clone();
    let image = qcow2_with_data(server.app.data.path(), "disk.qcow2", 2);
    let len = image.len() as u64;
    let id = server
        .create_upload_image(&alice, "disk.qcow2", len, "")
        .await;
    let tus = Tus {
        base: &server.base,
        cookie: &cookie,
        http: client(),
    };
    let location = server.create_upload(&cookie, &id, len).await;
    // Sabotage: the folder the finished file is renamed into is a plain file.
    let images = server.app.blob_dir().join("images");
    std::fs::remove_dir(&images).unwrap();
    std::fs::write(&images, b"not a folder").unwrap();
    let failed = tus.patch(&location, 0, image.clone()).await;
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let request_id = header(&failed, "x-request-id").unwrap().to_owned();
    let text = failed.text().await.unwrap();
    assert!(
        text.contains(&format!("(reference {request_id})")),
        "the answer names the request's reference: {text}"
    );
    assert_eq!(tus.offset(&location).await, len, "every byte is durable");
    let waiting = server.app.services.get_image(&alice, &id).await.unwrap();
    assert_eq!(waiting.status, ImageStatus::Uploading);

    std::fs::remove_file(&images).unwrap();
    std::fs::create_dir(&images).unwrap();
    let server = server.restart().await;
    server.assert_active_with(&alice, &id, &image).await;
    assert_eq!(server.upload_files().await, Vec::<String>::new());
}

/// Uploaded files are inspected like imported ones, including formats found by a trailer at
/// the end of the file (read back from disk when the upload finishes).
async fn uploaded_files_in_formats_qemu_probes_are_refused(backend: Backend) {
    let server = LiveServer::start(backend).await;
    let alice = server.app.sign_up("alice").await;
    let cookie = alice.cookie.clone();
    let tus = Tus {
        base: &server.base,
        cookie: &cookie,
        http: client(),
    };
    let vdi_path = server.app.data.path().join("disk.vdi");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "vdi",
        vdi_path.to_str().unwrap(),
        "16M",
    ]);
    let vdi = std::fs::read(&vdi_path).unwrap();
    let mut dmg = vec![0u8; 3 << 20];
    let trailer = dmg.len() - 512;
    dmg[trailer..trailer + 4].copy_from_slice(b"koly");
    dmg[trailer + 8..trailer + 12].copy_from_slice(&512u32.to_be_bytes());
    for (bytes, detected) in [(vdi, "VDI"), (dmg, "DMG")] {
        let len = bytes.len() as u64;
        let id = server
            .create_upload_image(&alice, "disk.img", len, "")
            .await;
        let location = server.create_upload(&cookie, &id, len).await;
        assert_eq!(
            tus.patch(&location, 0, bytes).await.status(),
            StatusCode::NO_CONTENT
        );
        let image = server.app.services.get_image(&alice, &id).await.unwrap();
        assert_eq!(image.status, ImageStatus::Failed);
        assert_eq!(
            image.failure_reason.as_deref(),
            Some(
                format!(
                    "The file is a {detected} image, not the Raw image it was declared to be; {detected} images are not accepted (convert it to qcow2 or raw with qemu-img convert first)."
                )
                .as_str()
            )
        );
    }
    assert_eq!(server.upload_files().await, Vec::<String>::new());
}

/// A connection that sends its headers too slowly, or nothing at all, is closed after the
/// header timeout instead of holding a connection for ever.
async fn slow_headers_are_cut_off(backend: Backend) {
    let server = LiveServer::start(backend).await;
    let started = Instant::now();
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let limit = HEADER_TIMEOUT + Duration::from_secs(5);
    read_until_closed(&mut slow, limit).await;
    read_until_closed(&mut silent, limit).await;
    assert!(started.elapsed() >= HEADER_TIMEOUT - Duration::from_millis(100));
    // A prompt client is served as usual.
    let ok = client()
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}

on_both_databases!(
    a_stalled_patch_is_cut_after_the_idle_timeout,
    a_stuck_request_does_not_keep_an_upload_alive,
    a_long_patch_that_makes_headway_does_not_expire,
    concurrent_patches_are_capped,
    a_complete_upload_is_finished_at_start,
    uploaded_files_in_formats_qemu_probes_are_refused,
    slow_headers_are_cut_off,
);
