//! Local-file uploads over tus 1.0, through a real HTTP server on 127.0.0.1: every status
//! and header of the protocol, interrupted bodies, restarts, expiry and termination, and
//! real tus clients (tus-js-client under Node, tuspy under Python).

use std::path::{Path, PathBuf};
use std::time::Duration;

use image_console::domain::image::ImageStatus;
use image_console::domain::image_spec::CreateImageForm;
use image_console::server::{AppState, CookiePolicy, HttpLimits, leptos_options, router};
use image_console::service::{Actor, ServiceSettings};
use reqwest::StatusCode;
use sha2::{Digest, Sha512};
use tokio::io::AsyncWriteExt;

use crate::on_every_backend;
use crate::support::{Backend, TestApp, qemu_img, test_settings};

/// A Create Image form for a local file of `size` bytes, valid elsewhere.
pub(crate) fn upload_form(file_name: &str, size: u64, checksum: &str) -> CreateImageForm {
    CreateImageForm {
        attributes: image_console::domain::image_spec::AttributesForm {
            name: "uploaded image".into(),
            os_family: "linux".into(),
            os_platform: "ubuntu".into(),
            min_disk: "10".into(),
            min_ram: "1".into(),
            ..Default::default()
        },
        source: "file".into(),
        file_name: file_name.into(),
        file_size: size.to_string(),
        visibility: "private".into(),
        checksum: checksum.into(),
        ..Default::default()
    }
}

/// The console's router served on 127.0.0.1, over a test's services.
pub(crate) struct LiveServer {
    pub app: TestApp,
    pub base: String,
    pub addr: std::net::SocketAddr,
    task: ServerTask,
}

/// How long the test server waits for a request's headers.
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// Stops serving when dropped.
struct ServerTask(tokio::task::JoinHandle<()>);

impl Drop for ServerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl LiveServer {
    pub(crate) async fn start(backend: Backend) -> Self {
        Self::start_with(backend, test_settings()).await
    }

    pub(crate) async fn start_with(backend: Backend, settings: ServiceSettings) -> Self {
        Self::serve(TestApp::spawn_with(backend, settings).await).await
    }

    async fn serve(app: TestApp) -> Self {
        let state = AppState {
            services: app.services.clone(),
            leptos_options: leptos_options(app.data.path(), "127.0.0.1:0".parse().unwrap()),
            cookie_policy: CookiePolicy::default(),
            http_limits: HttpLimits::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // The accept loop `main` runs, with a header timeout short enough for its test.
        let task = ServerTask(tokio::spawn(image_console::server::serve::serve(
            listener,
            router(state),
            HEADER_TIMEOUT,
            std::future::pending(),
        )));
        Self {
            app,
            base: format!("http://{addr}"),
            addr,
            task,
        }
    }

    /// Stops serving, restarts the services on the same data (a server restart) and serves
    /// again on a new port.
    pub(crate) async fn restart(self) -> Self {
        drop(self.task);
        let app = self.app.restart().await;
        Self::serve(app).await
    }

    /// Creates an image from a local file of `size` bytes; it waits Uploading.
    pub(crate) async fn create_upload_image(
        &self,
        actor: &Actor,
        file_name: &str,
        size: u64,
        checksum: &str,
    ) -> String {
        let form = upload_form(file_name, size, checksum);
        let id = self.app.services.create_image(actor, &form).await.unwrap();
        let image = self.app.services.get_image(actor, &id).await.unwrap();
        assert_eq!(image.status, ImageStatus::Uploading);
        assert_eq!(image.source_file_name.as_deref(), Some(file_name));
        id
    }

    /// Checks that the image is Active with the SHA-512 of `bytes`, and returns its details.
    pub(crate) async fn assert_active_with(
        &self,
        actor: &Actor,
        id: &str,
        bytes: &[u8],
    ) -> image_console::domain::image::ImageDetail {
        let detail = self.app.services.get_image(actor, id).await.unwrap();
        assert_eq!(
            detail.status,
            ImageStatus::Active,
            "{:?}",
            detail.failure_reason
        );
        assert_eq!(
            detail.hash_value.as_deref(),
            Some(sha512_hex(bytes).as_str())
        );
        detail
    }

    /// Creates the upload of an Uploading image for `len` bytes; returns its path.
    pub(crate) async fn create_upload(&self, cookie: &str, image_id: &str, len: u64) -> String {
        let tus = Tus {
            base: &self.base,
            cookie,
            http: client(),
        };
        let created = tus.create(image_id, len).await;
        assert_eq!(created.status(), StatusCode::CREATED);
        header(&created, "location").unwrap().to_owned()
    }

    /// Images with upload bytes left in the blob store.
    pub(crate) async fn upload_files(&self) -> Vec<String> {
        self.app.stored_uploads().await
    }
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

pub(crate) fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// A real qcow2 image with data in it, so its bytes are not all zeros.
pub(crate) fn qcow2_with_data(dir: &Path, name: &str, megabytes: usize) -> Vec<u8> {
    let raw = dir.join(format!("{name}.raw"));
    let bytes: Vec<u8> = (0..megabytes << 20)
        .map(|i| ((i as u64).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&raw, &bytes).unwrap();
    let out = dir.join(name);
    qemu_img(&[
        "convert",
        "-q",
        "-f",
        "raw",
        "-O",
        "qcow2",
        raw.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    std::fs::read(out).unwrap()
}

pub(crate) fn sha512_hex(bytes: &[u8]) -> String {
    hex::encode(Sha512::digest(bytes))
}

pub(crate) struct Tus<'a> {
    pub base: &'a str,
    pub cookie: &'a str,
    pub http: reqwest::Client,
}

impl Tus<'_> {
    pub(crate) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", self.cookie)
            .header("tus-resumable", "1.0.0")
    }

    pub(crate) async fn create(&self, image_id: &str, length: u64) -> reqwest::Response {
        self.request(
            reqwest::Method::POST,
            &format!("/images/{image_id}/uploads"),
        )
        .header("upload-length", length.to_string())
        .header("upload-metadata", "filename ZGlzay5xY293Mg==")
        .send()
        .await
        .unwrap()
    }

    pub(crate) async fn head(&self, location: &str) -> reqwest::Response {
        self.request(reqwest::Method::HEAD, location)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn offset(&self, location: &str) -> u64 {
        let response = self.head(location).await;
        assert_eq!(response.status(), StatusCode::OK);
        header(&response, "upload-offset").unwrap().parse().unwrap()
    }

    pub(crate) async fn patch(
        &self,
        location: &str,
        offset: u64,
        body: Vec<u8>,
    ) -> reqwest::Response {
        self.request(reqwest::Method::PATCH, location)
            .header("upload-offset", offset.to_string())
            .header("content-type", "application/offset+octet-stream")
            .body(body)
            .send()
            .await
            .unwrap()
    }
}

async fn tus_protocol_statuses_and_headers(backend: Backend) {
    let server = LiveServer::start(backend).await;
    let alice = server.app.sign_up("alice").await;
    let cookie = alice.cookie.clone();
    let bob_cookie = server.app.sign_up("bob").await.cookie;
    let image = qcow2_with_data(server.app.data.path(), "disk.qcow2", 3);
    let len = image.len() as u64;
    let id = server
        .create_upload_image(&alice, "disk.qcow2", len, "")
        .await;
    let tus = Tus {
        base: &server.base,
        cookie: &cookie,
        http: client(),
    };
    let bob = Tus {
        base: &server.base,
        cookie: &bob_cookie,
        http: client(),
    };

    // OPTIONS needs neither Tus-Resumable nor a session.
    for path in ["/uploads", &format!("/images/{id}/uploads")] {
        let options = client()
            .request(reqwest::Method::OPTIONS, format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(options.status(), StatusCode::NO_CONTENT, "{path}");
        assert_eq!(header(&options, "tus-version"), Some("1.0.0"));
        assert_eq!(
            header(&options, "tus-extension"),
            Some("creation,creation-with-upload,termination,expiration")
        );
        assert_eq!(header(&options, "tus-max-size"), Some("67108864"));
    }

    // Without Tus-Resumable: 412 and the version, and nothing is created.
    let no_version = client()
        .post(format!("{}/images/{id}/uploads", server.base))
        .header("cookie", &cookie)
        .header("upload-length", len.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(no_version.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(header(&no_version, "tus-version"), Some("1.0.0"));
    let wrong_version = client()
        .post(format!("{}/images/{id}/uploads", server.base))
        .header("cookie", &cookie)
        .header("tus-resumable", "0.2.2")
        .header("upload-length", len.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_version.status(), StatusCode::PRECONDITION_FAILED);
    let store = server.app.services.store();
    assert!(
        store
            .get_image_upload("alice", &id)
            .await
            .unwrap()
            .is_none()
    );

    // No session; another account's image; bad lengths and metadata.
    let anonymous = Tus {
        base: &server.base,
        cookie: "",
        http: client(),
    };
    assert_eq!(
        anonymous.create(&id, len).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(bob.create(&id, len).await.status(), StatusCode::NOT_FOUND);
    let too_large = tus.create(&id, (64 << 20) + 1).await;
    assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(header(&too_large, "tus-resumable"), Some("1.0.0"));
    let mismatch = tus.create(&id, len - 1).await;
    assert_eq!(mismatch.status(), StatusCode::BAD_REQUEST);
    assert!(
        mismatch
            .text()
            .await
            .unwrap()
            .contains("created for a file of")
    );
    for bad_length in ["-1", "1e6", " 12", ""] {
        let response = tus
            .request(reqwest::Method::POST, &format!("/images/{id}/uploads"))
            .header("upload-length", bad_length)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad_length:?}");
    }
    let bad_metadata = tus
        .request(reqwest::Method::POST, &format!("/images/{id}/uploads"))
        .header("upload-length", len.to_string())
        .header("upload-metadata", "filename not*base64")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_metadata.status(), StatusCode::BAD_REQUEST);
    assert!(
        store
            .get_image_upload("alice", &id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(server.upload_files().await, Vec::<String>::new());

    // Creation: 201 with Location and an Upload-Expires about a day away.
    let created = tus.create(&id, len).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(header(&created, "tus-resumable"), Some("1.0.0"));
    let location = header(&created, "location").unwrap().to_owned();
    assert!(location.starts_with("/uploads/"), "{location}");
    let expires = httpdate::parse_http_date(header(&created, "upload-expires").unwrap()).unwrap();
    let ahead = expires
        .duration_since(std::time::SystemTime::now())
        .unwrap();
    assert!(
        ahead > Duration::from_secs(23 * 3600) && ahead <= Duration::from_secs(24 * 3600),
        "{ahead:?}"
    );
    assert_eq!(tus.create(&id, len).await.status(), StatusCode::CONFLICT);

    // HEAD: the offset, length and metadata, never cached; another account gets 404.
    let head = tus.head(&location).await;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, "upload-offset"), Some("0"));
    assert_eq!(
        header(&head, "upload-length"),
        Some(len.to_string().as_str())
    );
    assert_eq!(
        header(&head, "upload-metadata"),
        Some("filename ZGlzay5xY293Mg==")
    );
    assert_eq!(header(&head, "cache-control"), Some("no-store"));
    let foreign = bob.head(&location).await;
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&foreign, "upload-offset"), None);
    assert_eq!(
        bob.patch(&location, 0, image[..100].to_vec())
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        tus.head("/uploads/00000000000000000000000000000000")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        tus.head("/uploads/..%2f..%2fetc").await.status(),
        StatusCode::NOT_FOUND
    );

    // PATCH: wrong type 415, wrong offset 409, too long 413; none of them writes a byte.
    let wrong_type = tus
        .request(reqwest::Method::PATCH, &location)
        .header("upload-offset", "0")
        .header("content-type", "application/octet-stream")
        .body(image[..100].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        header(&wrong_type, "connection"),
        Some("close"),
        "a refusal before the body was read ends the connection"
    );
    assert_eq!(
        tus.patch(&location, 7, image[..100].to_vec())
            .await
            .status(),
        StatusCode::CONFLICT
    );
    let mut too_long = image.clone();
    too_long.extend_from_slice(b"extra");
    assert_eq!(
        tus.patch(&location, 0, too_long).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(tus.offset(&location).await, 0);

    // Two halves; the first answers 204 with the new offset and a fresh expiry.
    let half = image.len() / 2;
    let first = tus.patch(&location, 0, image[..half].to_vec()).await;
    assert_eq!(first.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        header(&first, "upload-offset"),
        Some(half.to_string().as_str())
    );
    assert!(header(&first, "upload-expires").is_some());
    let detail = server.app.services.get_image(&alice, &id).await.unwrap();
    assert_eq!(detail.status, ImageStatus::Uploading);
    assert_eq!(detail.progress.unwrap().bytes_done, half as u64);
    assert_eq!(
        tus.patch(&location, 0, image[..10].to_vec()).await.status(),
        StatusCode::CONFLICT,
        "an offset behind the server's is refused"
    );
    let last = tus
        .patch(&location, half as u64, image[half..].to_vec())
        .await;
    assert_eq!(last.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        header(&last, "upload-offset"),
        Some(len.to_string().as_str())
    );

    // Complete: Active with the bytes' hashes; the upload file became the blob.
    let detail = server.assert_active_with(&alice, &id, &image).await;
    assert_eq!(
        detail.checksum_md5.as_deref(),
        Some(hex::encode(md5::Md5::digest(&image)).as_str())
    );
    assert_eq!(detail.size_bytes, Some(len));
    assert_eq!(detail.virtual_size_bytes, Some(3 << 20));
    assert_eq!(server.app.stored_bytes(&id).await, image);
    assert_eq!(server.upload_files().await, Vec::<String>::new());
    assert_eq!(
        tus.offset(&location).await,
        len,
        "HEAD reports a finished upload"
    );

    // Termination, through X-HTTP-Method-Override: 204, then 410 for ever; bytes gone.
    let second = server
        .create_upload_image(&alice, "second.qcow2", len, "")
        .await;
    let created = tus.create(&second, len).await;
    let second_location = header(&created, "location").unwrap().to_owned();
    tus.patch(&second_location, 0, image[..half].to_vec()).await;
    assert_eq!(server.upload_files().await, vec![second.clone()]);
    assert_eq!(
        bob.request(reqwest::Method::DELETE, &second_location)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let deleted = tus
        .request(reqwest::Method::POST, &second_location)
        .header("x-http-method-override", "DELETE")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&deleted, "tus-resumable"), Some("1.0.0"));
    let gone = tus.head(&second_location).await;
    assert_eq!(gone.status(), StatusCode::GONE);
    assert_eq!(header(&gone, "upload-offset"), None);
    assert_eq!(
        tus.patch(&second_location, half as u64, image[half..].to_vec())
            .await
            .status(),
        StatusCode::GONE
    );
    assert_eq!(
        tus.request(reqwest::Method::DELETE, &second_location)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::GONE
    );
    let cancelled = server
        .app
        .services
        .get_image(&alice, &second)
        .await
        .unwrap();
    assert_eq!(cancelled.status, ImageStatus::Failed);
    assert!(
        cancelled
            .failure_reason
            .as_deref()
            .unwrap()
            .starts_with("The upload was cancelled by admin@alice"),
        "{cancelled:?}"
    );
    assert_eq!(server.upload_files().await, Vec::<String>::new());
    let (images, staging) = server.app.stored_files().await;
    assert_eq!((images, staging), (vec![id.clone()], vec![]));
}

async fn creation_with_upload_and_a_broken_body_keep_what_arrived(backend: Backend) {
    let server = LiveServer::start(backend).await;
    let alice = server.app.sign_up("alice").await;
    let cookie = alice.cookie.clone();
    let image = qcow2_with_data(server.app.data.path(), "disk.qcow2", 4);
    let len = image.len() as u64;
    let id = server
        .create_upload_image(&alice, "disk.qcow2", len, "")
        .await;
    let tus = Tus {
        base: &server.base,
        cookie: &cookie,
        http: client(),
    };

    // creation-with-upload: the first 300,000 bytes come with the POST.
    let created = tus
        .request(reqwest::Method::POST, &format!("/images/{id}/uploads"))
        .header("upload-length", len.to_string())
        .header("content-type", "application/offset+octet-stream")
        .body(image[..300_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(header(&created, "upload-offset"), Some("300000"));
    let location = header(&created, "location").unwrap().to_owned();

    // A PATCH promising 1 MiB whose connection drops after 400,000 bytes.
    let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\nTus-Resumable: 1.0.0\r\n\
         Upload-Offset: 300000\r\nContent-Type: application/offset+octet-stream\r\n\
         Content-Length: 1048576\r\n\r\n",
        server.addr
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&image[300_000..700_000]).await.unwrap();
    socket.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(socket);

    // The server kept the 400,000 bytes and says so; the client resumes from there.
    let mut offset = 0;
    for _ in 0..200 {
        offset = tus.offset(&location).await;
        if offset != 300_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(offset, 700_000);
    let rest = tus
        .patch(&location, offset, image[700_000..].to_vec())
        .await;
    assert_eq!(rest.status(), StatusCode::NO_CONTENT);
    server.assert_active_with(&alice, &id, &image).await;
}

async fn uploads_resume_after_a_restart_and_bad_files_are_refused(backend: Backend) {
    let server = LiveServer::start(backend).await;
    let alice = server.app.sign_up("alice").await;
    let cookie = alice.cookie.clone();
    let image = qcow2_with_data(server.app.data.path(), "disk.qcow2", 2);
    let len = image.len() as u64;
    let sha256 = hex::encode(sha2::Sha256::digest(&image));
    let id = server
        .create_upload_image(&alice, "disk.qcow2", len, &format!("sha256:{sha256}"))
        .await;
    let location = {
        let tus = Tus {
            base: &server.base,
            cookie: &cookie,
            http: client(),
        };
        let created = tus.create(&id, len).await;
        let location = header(&created, "location").unwrap().to_owned();
        tus.patch(&location, 0, image[..500_000].to_vec()).await;
        location
    };

    // The restart's sweep keeps the partial upload; the offset and hasher state survive it.
    let server = server.restart().await;
    assert_eq!(server.upload_files().await, vec![id.clone()]);
    let tus = Tus {
        base: &server.base,
        cookie: &cookie,
        http: client(),
    };
    assert_eq!(tus.offset(&location).await, 500_000);
    let done = tus
        .patch(&location, 500_000, image[500_000..].to_vec())
        .await;
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    let detail = server.assert_active_with(&alice, &id, &image).await;
    assert_eq!(
        detail.expected_checksum.map(|c| c.hex),
        Some(sha256),
        "the SHA-256 given at creation was verified"
    );

    // Random bytes, and a qcow2 whose MD5 differs from the one given: Failed, with the
    // reason, and no bytes kept.
    let random: Vec<u8> = (0..70_000u32)
        .map(|i| (i.wrapping_mul(7919) >> 3) as u8)
        .collect();
    let cases = [
        (random.clone(), String::new(), "not a qcow2 image"),
        (
            image.clone(),
            "0123456789abcdef0123456789abcdef".to_owned(),
            "not the expected 0123456789abcdef0123456789abcdef",
        ),
    ];
    for (bytes, checksum, reason) in cases {
        let id = server
            .create_upload_image(&alice, "bad.qcow2", bytes.len() as u64, &checksum)
            .await;
        let created = tus.create(&id, bytes.len() as u64).await;
        let location = header(&created, "location").unwrap().to_owned();
        assert_eq!(
            tus.patch(&location, 0, bytes).await.status(),
            StatusCode::NO_CONTENT
        );
        let detail = server.app.services.get_image(&alice, &id).await.unwrap();
        assert_eq!(detail.status, ImageStatus::Failed);
        assert!(
            detail.failure_reason.as_deref().unwrap().contains(reason),
            "{:?}",
            detail.failure_reason
        );
    }
    assert_eq!(server.upload_files().await, Vec::<String>::new());
    assert_eq!(server.app.stored_files().await.0, vec![id]);
}

async fn idle_uploads_expire_and_lose_their_bytes(backend: Backend) {
    let settings = ServiceSettings {
        upload_expiry: Duration::from_secs(600),
        ..test_settings()
    };
    let clock = settings.clock.clone();
    let server = LiveServer::start_with(backend, settings).await;
    let alice = server.app.sign_up("alice").await;
    let cookie = alice.cookie.clone();
    let tus = Tus {
        base: &server.base,
        cookie: &cookie,
        http: client(),
    };
    let started = server
        .create_upload_image(&alice, "a.qcow2", 1000, "")
        .await;
    let never_started = server
        .create_upload_image(&alice, "b.qcow2", 1000, "")
        .await;
    let created = tus.create(&started, 1000).await;
    let location = header(&created, "location").unwrap().to_owned();
    tus.patch(&location, 0, vec![1; 100]).await;
    assert_eq!(server.app.services.expire_uploads().await.unwrap(), 0);

    clock.advance(Duration::from_secs(599));
    assert_eq!(tus.head(&location).await.status(), StatusCode::OK);
    assert_eq!(server.app.services.expire_uploads().await.unwrap(), 0);
    clock.advance(Duration::from_secs(2));
    // A request may come before the sweeper does: it is told the upload expired.
    assert_eq!(tus.head(&location).await.status(), StatusCode::GONE);
    for id in [&started, &never_started] {
        let image = server
            .app
            .wait_until(&alice, id, |i| i.status == ImageStatus::Failed)
            .await;
        assert!(
            image
                .failure_reason
                .as_deref()
                .unwrap()
                .starts_with("The upload expired: nothing arrived for 10 minutes."),
            "{image:?}"
        );
    }
    assert_eq!(
        tus.patch(&location, 100, vec![1; 100]).await.status(),
        StatusCode::GONE
    );
    assert_eq!(server.upload_files().await, Vec::<String>::new());
}

/// Runs a tus client script and returns its standard output.
fn run_client(program: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{} could not start: {e}", program.display()));
    assert!(
        output.status.success(),
        "{} {args:?} failed:\n{}\n{}",
        program.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// tus-js-client (Node) aborts an upload in the middle of a PATCH and resumes it from its
/// URL; tuspy (Python) uploads two chunks, stops, and a new uploader resumes with `url=`.
async fn real_tus_clients_resume_interrupted_uploads(backend: Backend) {
    let server = LiveServer::start(backend).await;
    let alice = server.app.sign_up("alice").await;
    let cookie = alice.cookie.clone();
    let dir = server.app.data.path();
    // Large enough that the abort lands before the whole file has left the socket.
    let image = qcow2_with_data(dir, "disk.qcow2", 40);
    let path = dir.join("disk.qcow2");
    let len = image.len() as u64;

    let js_image = server
        .create_upload_image(&alice, "disk.qcow2", len, "")
        .await;
    let out = run_client(
        Path::new("node"),
        &[
            repo_path("end2end/clients/tus-js-upload.mjs")
                .to_str()
                .unwrap(),
            &format!("{}/images/{js_image}/uploads", server.base),
            &cookie,
            path.to_str().unwrap(),
            "interrupt",
        ],
    );
    assert!(out.contains("aborted at"), "{out}");
    assert!(out.contains("resumed from"), "{out}");

    let py_image = server
        .create_upload_image(&alice, "disk.qcow2", len, "")
        .await;
    let python = std::env::var("TUSPY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_path("target/tools/tuspy/bin/python"));
    let out = run_client(
        &python,
        &[
            repo_path("tests/clients/tuspy_upload.py").to_str().unwrap(),
            &format!("{}/images/{py_image}/uploads", server.base),
            &cookie,
            path.to_str().unwrap(),
        ],
    );
    assert!(out.contains("resumed from"), "{out}");

    for id in [js_image, py_image] {
        server.assert_active_with(&alice, &id, &image).await;
    }
    assert_eq!(server.upload_files().await, Vec::<String>::new());
}

async fn cancel_upload_removes_partial_bytes_before_delete(backend: Backend) {
    let server = LiveServer::start(backend).await;
    let alice = server.app.sign_up("alice").await;
    let cookie = alice.cookie.clone();
    let tus = Tus {
        base: &server.base,
        cookie: &cookie,
        http: client(),
    };
    let id = server
        .create_upload_image(&alice, "a.qcow2", 5000, "")
        .await;
    let created = tus.create(&id, 5000).await;
    let location = header(&created, "location").unwrap().to_owned();
    tus.patch(&location, 0, vec![7; 1000]).await;
    assert_eq!(server.upload_files().await.len(), 1);
    // Delete waits for Cancel Upload, which removes the partial bytes.
    let refused = server.app.services.delete_image(&alice, &id).await;
    assert!(
        matches!(&refused, Err(image_console::service::ServiceError::Conflict(m)) if m.contains("Cancel Upload")),
        "{refused:?}"
    );
    assert_eq!(server.upload_files().await.len(), 1);
    let cancelled = tus
        .request(reqwest::Method::DELETE, &location)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), StatusCode::NO_CONTENT);
    assert_eq!(server.upload_files().await, Vec::<String>::new());
    server.app.services.delete_image(&alice, &id).await.unwrap();
    server
        .app
        .services
        .destroy_images(&alice, std::slice::from_ref(&id))
        .await
        .unwrap();
    assert_eq!(tus.head(&location).await.status(), StatusCode::NOT_FOUND);
}

async fn uploads_in_progress_are_capped_per_account(backend: Backend) {
    use image_console::domain::upload::MAX_UPLOADS_IN_PROGRESS;
    let server = LiveServer::start(backend).await;
    let alice = server.app.sign_up("alice").await;
    let cookie = alice.cookie.clone();
    let bob = server.app.sign_up("bob").await;
    let mut ids = Vec::new();
    for _ in 0..MAX_UPLOADS_IN_PROGRESS {
        ids.push(
            server
                .create_upload_image(&alice, "a.qcow2", 1000, "")
                .await,
        );
    }
    let form = upload_form("a.qcow2", 1000, "");
    let refused = server.app.services.create_image(&alice, &form).await;
    let Err(image_console::service::ServiceError::Conflict(message)) = refused else {
        panic!("the eleventh upload is refused: {refused:?}");
    };
    assert!(message.contains("10 uploads in progress"), "{message}");
    // Another account is not affected; and a cancelled upload frees a place.
    server.create_upload_image(&bob, "b.qcow2", 1000, "").await;
    let tus = Tus {
        base: &server.base,
        cookie: &cookie,
        http: client(),
    };
    let created = tus.create(&ids[0], 1000).await;
    let location = header(&created, "location").unwrap().to_owned();
    let cancelled = tus
        .request(reqwest::Method::DELETE, &location)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), StatusCode::NO_CONTENT);
    server
        .app
        .services
        .create_image(&alice, &form)
        .await
        .unwrap();
}

on_every_backend!(
    uploads_in_progress_are_capped_per_account,
    tus_protocol_statuses_and_headers,
    creation_with_upload_and_a_broken_body_keep_what_arrived,
    uploads_resume_after_a_restart_and_bad_files_are_refused,
    idle_uploads_expire_and_lose_their_bytes,
    real_tus_clients_resume_interrupted_uploads,
    cancel_upload_removes_partial_bytes_before_delete,
);
