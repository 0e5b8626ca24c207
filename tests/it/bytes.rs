//! Image bytes through a real HTTP server on 127.0.0.1: downloads read in blocks (whole,
//! and Ranges on and across block boundaries), downloads the client abandons, and digests
//! that agree with coreutils' `sha512sum` and `md5sum`, also across a restart.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use image_console::service::Actor;
use image_console::store::blobs::READ_BLOCK;
use reqwest::StatusCode;

use crate::on_every_backend;
use crate::support::Backend;
use crate::uploads::{LiveServer, Tus, client, header, qcow2_with_data};

/// Uploads `bytes` as a new image in one PATCH; returns its id once it is Active.
async fn upload(server: &LiveServer, actor: &Actor, cookie: &str, bytes: &[u8]) -> String {
    let id = server
        .create_upload_image(actor, "disk.qcow2", bytes.len() as u64, "")
        .await;
    let location = server.create_upload(cookie, &id, bytes.len() as u64).await;
    let tus = Tus {
        base: &server.base,
        cookie,
        http: client(),
    };
    let done = tus.patch(&location, 0, bytes.to_vec()).await;
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    server.assert_active_with(actor, &id, bytes).await;
    id
}

/// A qcow2 image of `megabytes` of data, followed by `tail` more bytes that all differ from
/// their neighbours, so a range read from the wrong offset cannot match.
fn image_bytes(dir: &Path, megabytes: usize, tail: usize) -> Vec<u8> {
    let mut bytes = qcow2_with_data(dir, "disk.qcow2", megabytes);
    bytes.extend((0..tail as u32).map(|i| (i % 251) as u8));
    bytes
}

async fn download_link(server: &LiveServer, actor: &Actor, id: &str) -> String {
    let link = server
        .app
        .services
        .create_download_link(actor, id)
        .await
        .unwrap();
    format!("{}{}", server.base, link.path)
}

async fn multi_block_downloads_and_ranges_at_block_boundaries(backend: Backend) {
    let server = LiveServer::start(backend).await;
    let alice = server.app.sign_up("alice").await;
    let cookie = alice.cookie.clone();
    let bytes = image_bytes(server.app.data.path(), 5, 777_777);
    let size = bytes.len() as u64;
    let block = READ_BLOCK;
    assert!(size > 2 * block + 1, "the file spans at least three blocks");
    let id = upload(&server, &alice, &cookie, &bytes).await;
    let link = download_link(&server, &alice, &id).await;
    let http = client();

    let whole = http.get(&link).send().await.unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(
        header(&whole, "content-length"),
        Some(size.to_string().as_str())
    );
    assert!(whole.bytes().await.unwrap() == bytes, "byte-identical");

    let get_range = |range: String| {
        let (http, link) = (&http, &link);
        async move { http.get(link).header("range", range).send().await.unwrap() }
    };
    // (Range header, first byte, last byte)
    let cases = [
        ("bytes=0-0".to_owned(), 0, 0),
        (
            format!("bytes={}-{}", size - 1, size - 1),
            size - 1,
            size - 1,
        ),
        (format!("bytes={}-", size - 1), size - 1, size - 1),
        // The last byte of a block, the first of the next, and both.
        (
            format!("bytes={}-{}", block - 1, block - 1),
            block - 1,
            block - 1,
        ),
        (format!("bytes={block}-{block}"), block, block),
        (
            format!("bytes={}-{}", block - 5, block + 4),
            block - 5,
            block + 4,
        ),
        // Exactly the second block; and across three blocks.
        (
            format!("bytes={block}-{}", 2 * block - 1),
            block,
            2 * block - 1,
        ),
        (
            format!("bytes=100-{}", 2 * block + 100),
            100,
            2 * block + 100,
        ),
        // Suffixes: shorter and longer than a block.
        ("bytes=-10".to_owned(), size - 10, size - 1),
        (format!("bytes=-{}", block + 7), size - block - 7, size - 1),
    ];
    for (range, first, last) in cases {
        let response = get_range(range.clone()).await;
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            header(&response, "content-range"),
            Some(format!("bytes {first}-{last}/{size}").as_str()),
            "{range}"
        );
        let body = response.bytes().await.unwrap();
        assert!(
            body == bytes[first as usize..=last as usize],
            "{range}: the bytes of that range"
        );
    }
    let past_end = get_range(format!("bytes={size}-")).await;
    assert_eq!(past_end.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        header(&past_end, "content-range"),
        Some(format!("bytes */{size}").as_str())
    );
}

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

async fn aborted_downloads_free_their_readers(backend: Backend) {
    let server = LiveServer::start(backend).await;
    let alice = server.app.sign_up("alice").await;
    let cookie = alice.cookie.clone();
    // Larger than loopback's socket buffers, so the server is still sending when the client
    // goes away.
    let bytes = image_bytes(server.app.data.path(), 32, 1);
    let id = upload(&server, &alice, &cookie, &bytes).await;
    let link = download_link(&server, &alice, &id).await;
    let path = link.strip_prefix(&server.base).unwrap().to_owned();
    let blobs = server.app.services.blobs().clone();
    let fds_before = open_fds();

    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        for _ in 0..100 {
            let mut socket = std::net::TcpStream::connect(addr).unwrap();
            write!(
                socket,
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            // Some of the body, then the client is gone.
            let mut some = vec![0u8; 256 * 1024];
            socket.read_exact(&mut some).unwrap();
            assert!(some.starts_with(b"HTTP/1.1 200 OK"));
        }
    })
    .await
    .unwrap();

    let began = Instant::now();
    while blobs.open_readers() > 0 || open_fds() > fds_before + 10 {
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "after 100 aborted downloads, {} readers and {} more file descriptors are open",
            blobs.open_readers(),
            open_fds().saturating_sub(fds_before)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And the server still sends the whole file.
    let whole = client().get(&link).send().await.unwrap();
    assert!(whole.bytes().await.unwrap() == bytes);
    assert_eq!(blobs.open_readers(), 0);
}

/// What a coreutils digest command prints for `path`.
fn coreutils_digest(command: &str, path: &Path) -> String {
    let output = std::process::Command::new(command)
        .arg(path)
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

async fn upload_digests_match_coreutils_across_a_restart(backend: Backend) {
    let server = LiveServer::start(backend).await;
    let alice = server.app.sign_up("alice").await;
    let cookie = alice.cookie.clone();
    let bytes = image_bytes(server.app.data.path(), 3, 123_457);
    let file = server.app.data.path().join("upload.qcow2");
    std::fs::write(&file, &bytes).unwrap();
    let size = bytes.len() as u64;
    let id = server
        .create_upload_image(&alice, "upload.qcow2", size, "")
        .await;
    let location = server.create_upload(&cookie, &id, size).await;
    // An odd place to stop, inside a hash block and a write block.
    let cut = 1_234_567;
    {
        let tus = Tus {
            base: &server.base,
            cookie: &cookie,
            http: client(),
        };
        let first = tus.patch(&location, 0, bytes[..cut].to_vec()).await;
        assert_eq!(first.status(), StatusCode::NO_CONTENT);
    }
    let server = server.restart().await;
    let tus = Tus {
        base: &server.base,
        cookie: &cookie,
        http: client(),
    };
    assert_eq!(tus.offset(&location).await, cut as u64);
    let rest = tus
        .patch(&location, cut as u64, bytes[cut..].to_vec())
        .await;
    assert_eq!(rest.status(), StatusCode::NO_CONTENT);
    let detail = server.assert_active_with(&alice, &id, &bytes).await;
    assert_eq!(
        detail.hash_value.as_deref(),
        Some(coreutils_digest("sha512sum", &file).as_str())
    );
    assert_eq!(
        detail.checksum_md5.as_deref(),
        Some(coreutils_digest("md5sum", &file).as_str())
    );
    // The stored file is the file.
    let link = download_link(&server, &alice, &id).await;
    let stored = server.app.data.path().join("downloaded.qcow2");
    let body = client()
        .get(&link)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    std::fs::write(&stored, &body).unwrap();
    assert_eq!(
        coreutils_digest("sha512sum", &stored),
        coreutils_digest("sha512sum", &file)
    );
}

on_every_backend!(
    multi_block_downloads_and_ranges_at_block_boundaries,
    aborted_downloads_free_their_readers,
    upload_digests_match_coreutils_across_a_restart,
);
