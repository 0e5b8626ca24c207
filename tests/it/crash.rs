//! The real server binary killed with SIGKILL in the middle of an upload: after a restart the
//! upload resumes from its last acknowledged offset, the image ends Active with the right
//! SHA-512, and nothing is left behind. And a second server on the same SQLite file, which
//! is refused while the first runs.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use image_console::server_fns::images::{CreateImage, GetImage};
use leptos::server_fn::ServerFn;
use reqwest::StatusCode;
use sha2::{Digest, Sha512};

use crate::on_both_databases;
use crate::support::{Backend, Client, TestDb, list_dir, text};
use crate::uploads::qcow2_with_data;

/// The console's release-like binary on a free port of 127.0.0.1.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
    /// Where its warnings and errors go.
    log: std::path::PathBuf,
}

impl Server {
    /// A server whose leases expire after 3 seconds, so a killed one's work is taken over
    /// quickly.
    fn start(database_url: &str, data_dir: &std::path::Path) -> Self {
        Self::start_with(database_url, data_dir, &[])
    }

    pub(crate) fn start_with(
        database_url: &str,
        data_dir: &std::path::Path,
        env: &[(String, String)],
    ) -> Self {
        let log = data_dir.join(format!("console-{}.log", rand::random::<u32>()));
        let mut child = Command::new(env!("CARGO_BIN_EXE_image-console"))
            .env("DATABASE_URL", database_url)
            .env("DATA_DIR", data_dir)
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("SITE_ROOT", data_dir.join("site"))
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .env("LEASE_SECONDS", "3")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the image-console binary starts");
        let address = image_console::server::read_announced_address(child.stdout.take().unwrap())
            .expect("the server prints its address");
        let base = format!("http://{address}");
        Self { child, base, log }
    }

    /// What it logged so far (warnings and errors).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGSTOP: the process stops where it is, holding its leases, sockets and tasks, as a
    /// stopped VM or a long pause would.
    pub(crate) fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT: it goes on from where it stopped.
    pub(crate) fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, which: &str) {
        let sent = Command::new("kill")
            .args([which, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill {which}");
    }

    /// SIGKILL: no shutdown code runs.
    pub(crate) fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates an image from `source` (the form's source fields) with valid values elsewhere;
/// its id.
pub(crate) async fn create_image(
    base: &str,
    cookie: &str,
    name: &str,
    source: &[(&str, &str)],
) -> String {
    let mut form = vec![
        ("name", name),
        ("os_family", "linux"),
        ("os_platform", "ubuntu"),
        ("min_disk", "10"),
        ("min_ram", "1"),
        ("visibility", "private"),
        ("description", ""),
    ];
    form.extend_from_slice(source);
    let created = Client::remote(base)
        .call(CreateImage::PATH, &form, Some(cookie))
        .await;
    assert_eq!(created.status(), StatusCode::OK);
    serde_json::from_str(&text(created).await).unwrap()
}

/// Creates an image for a local file of `len` bytes (`disk.qcow2`); its id.
pub(crate) async fn create_file_image(base: &str, cookie: &str, name: &str, len: usize) -> String {
    let size = len.to_string();
    let source = [
        ("source", "file"),
        ("file_name", "disk.qcow2"),
        ("file_size", size.as_str()),
    ];
    create_image(base, cookie, name, &source).await
}

/// Image Details as the server function returns them.
pub(crate) async fn image_detail(base: &str, cookie: &str, id: &str) -> serde_json::Value {
    let response = Client::remote(base)
        .call(GetImage::PATH, &[("id", id)], Some(cookie))
        .await;
    assert_eq!(response.status(), StatusCode::OK, "GetImage on {base}");
    serde_json::from_str(&text(response).await).unwrap()
}

/// A tus client of one signed-in user, speaking to whichever console process `base` names, as
/// a browser behind a load balancer would.
pub(crate) struct TusClient<'a> {
    pub(crate) http: &'a reqwest::Client,
    pub(crate) cookie: &'a str,
}

impl TusClient<'_> {
    fn request(&self, method: reqwest::Method, url: String) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .header("cookie", self.cookie)
            .header("tus-resumable", "1.0.0")
    }

    fn patch_at(&self, base: &str, location: &str, offset: usize) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::PATCH, format!("{base}{location}"))
            .header("upload-offset", offset.to_string())
            .header("content-type", "application/offset+octet-stream")
    }

    /// Creates the upload of file image `id` for `len` bytes; its path.
    pub(crate) async fn create(&self, base: &str, id: &str, len: usize) -> String {
        let created = self
            .request(reqwest::Method::POST, format!("{base}/images/{id}/uploads"))
            .header("upload-length", len.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        created.headers()["location"].to_str().unwrap().to_owned()
    }

    /// One PATCH of `body` at `offset`; its status.
    pub(crate) async fn patch(
        &self,
        base: &str,
        location: &str,
        offset: usize,
        body: &[u8],
    ) -> StatusCode {
        self.patch_at(base, location, offset)
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
            .status()
    }

    /// One PATCH of `bytes` at `offset` sent in the background, `piece` bytes every `every`;
    /// `sent` counts what went out.
    pub(crate) fn patch_paced(
        &self,
        (base, location): (&str, &str),
        offset: usize,
        bytes: &[u8],
        (piece, every): (usize, Duration),
        sent: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
        let pieces: Vec<bytes::Bytes> = bytes
            .chunks(piece)
            .map(bytes::Bytes::copy_from_slice)
            .collect();
        let paced = futures::stream::iter(pieces).then(move |piece| {
            let sent = std::sync::Arc::clone(&sent);
            async move {
                tokio::time::sleep(every).await;
                sent.fetch_add(piece.len(), std::sync::atomic::Ordering::SeqCst);
                Ok::<_, std::io::Error>(piece)
            }
        });
        tokio::spawn(
            self.patch_at(base, location, offset)
                .header("content-length", bytes.len().to_string())
                .body(reqwest::Body::wrap_stream(paced))
                .send(),
        )
    }

    /// The durable offset HEAD reports.
    pub(crate) async fn offset(&self, base: &str, location: &str) -> usize {
        let head = self
            .request(reqwest::Method::HEAD, format!("{base}{location}"))
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), StatusCode::OK);
        head.headers()["upload-offset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// The rest of the file from `offset`, sent again while another process's claim on the
    /// upload has not run out (409, which tus clients retry); its status.
    pub(crate) async fn finish_when_free(
        &self,
        base: &str,
        location: &str,
        offset: usize,
        file: &[u8],
    ) -> StatusCode {
        patch_when_free(|| {
            self.patch_at(base, location, offset)
                .body(file[offset..].to_vec())
        })
        .await
        .status()
    }
}

async fn a_server_killed_mid_upload_resumes_after_a_restart(backend: Backend) {
    let db = TestDb::new(backend).await;
    let data = tempfile::tempdir().unwrap();
    let image = qcow2_with_data(data.path(), "disk.qcow2", 8);
    let len = image.len();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    let server = Server::start(db.url(), data.path());
    let cookie = Client::remote(&server.base).sign_up("crash-test").await;
    let id = create_file_image(&server.base, &cookie, "survivor", len).await;

    let tus = TusClient {
        http: &http,
        cookie: &cookie,
    };
    let location = tus.create(&server.base, &id, len).await;
    let acknowledged = 1 << 20;
    let first = tus
        .patch(&server.base, &location, 0, &image[..acknowledged])
        .await;
    assert_eq!(first, StatusCode::NO_CONTENT);

    // The next PATCH trickles in; the server is killed while it arrives.
    let in_flight = tus.patch_paced(
        (&server.base, &location),
        acknowledged,
        &image[acknowledged..],
        (64 << 10, Duration::from_millis(20)),
        Default::default(),
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    server.kill();
    assert!(
        in_flight.await.unwrap().is_err(),
        "the request died with the server"
    );

    // After the restart the upload is where the last acknowledged PATCH left it.
    let server = Server::start(db.url(), data.path());
    let offset = tus.offset(&server.base, &location).await;
    assert_eq!(offset, acknowledged);
    // On PostgreSQL the killed process's claim on the upload runs out first (409 until then,
    // which tus clients retry); a SQLite file has one process, which drops it at start.
    let done = tus
        .finish_when_free(&server.base, &location, offset, &image)
        .await;
    assert_eq!(done, StatusCode::NO_CONTENT);

    let detail = image_detail(&server.base, &cookie, &id).await;
    assert_eq!(detail["status"], "Active", "{detail}");
    assert_eq!(
        detail["hash_value"].as_str(),
        Some(hex::encode(Sha512::digest(&image)).as_str())
    );
    let blobs = data.path().join("blobs");
    assert_eq!(list_dir(&blobs.join("images")), vec![id]);
    assert_eq!(list_dir(&blobs.join("uploads")), Vec::<String>::new());
    assert_eq!(list_dir(&blobs.join("staging")), Vec::<String>::new());
}

on_both_databases!(a_server_killed_mid_upload_resumes_after_a_restart);

/// The settings that put the console's bytes where `test_storage` says: nothing for files
/// (under the data directory), `STORAGE_URL` and the `AWS_*` settings for S3.
fn storage_env(backend: Backend, data: &std::path::Path) -> Vec<(String, String)> {
    let (location, mut env) = crate::support::test_storage(backend, data);
    if let image_console::store::blobs::StorageLocation::S3 { bucket, prefix } = location {
        env.push(("STORAGE_URL".to_owned(), format!("s3://{bucket}/{prefix}")));
    }
    env
}

/// A client sending a whole file in one PATCH (as curl, tuspy and tus-js-client do with their
/// default chunk size) loses at most one checkpoint of it when the server is killed: after the
/// restart the upload's offset is within `CHECKPOINT_BYTES` of what was sent, and the upload
/// finishes from there with the right SHA-512.
async fn a_server_killed_during_one_long_patch_keeps_its_checkpoints(backend: Backend) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let checkpoint = image_console::service::uploads::CHECKPOINT_BYTES as usize;
    let db = TestDb::new(backend).await;
    let data = tempfile::tempdir().unwrap();
    let env = storage_env(backend, data.path());
    let image = qcow2_with_data(data.path(), "disk.qcow2", 128);
    let len = image.len();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    let server = Server::start_with(db.url(), data.path(), &env);
    let cookie = Client::remote(&server.base).sign_up("checkpoints").await;
    let id = create_file_image(&server.base, &cookie, "one-request", len).await;
    let tus = TusClient {
        http: &http,
        cookie: &cookie,
    };
    let location = tus.create(&server.base, &id, len).await;

    // The whole file in one request, about 12 MiB a second; the client counts what it sent.
    let sent = Arc::new(AtomicUsize::new(0));
    let in_flight = tus.patch_paced(
        (&server.base, &location),
        0,
        &image,
        (256 << 10, Duration::from_millis(20)),
        Arc::clone(&sent),
    );
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    server.kill();
    let sent = sent.load(Ordering::SeqCst);
    assert!(in_flight.await.unwrap().is_err(), "the request died");
    assert!(sent < len, "the kill came before the end ({sent} of {len})");

    let server = Server::start_with(db.url(), data.path(), &env);
    let offset = tus.offset(&server.base, &location).await;
    assert!(
        offset > 0 && offset <= sent && sent - offset <= checkpoint,
        "after the restart the upload is at {offset}, of {sent} sent: more than one checkpoint ({checkpoint}) was lost"
    );
    let done = tus
        .finish_when_free(&server.base, &location, offset, &image)
        .await;
    assert_eq!(done, StatusCode::NO_CONTENT);
    let detail = image_detail(&server.base, &cookie, &id).await;
    assert_eq!(detail["status"], "Active", "{detail}");
    assert_eq!(
        detail["hash_value"].as_str(),
        Some(hex::encode(Sha512::digest(&image)).as_str())
    );
}

mod checkpoints {
    use super::*;
    crate::on_every_backend!(a_server_killed_during_one_long_patch_keeps_its_checkpoints);
}

/// Sends the request again while it is refused with 409 (another process's claim on the upload
/// has not run out), as tus clients do, for at most 30 seconds. The refusal comes before the
/// body is read and closes the connection, so a large body may meet a closed socket instead
/// of the answer: that is retried the same way.
pub(crate) async fn patch_when_free(
    request: impl Fn() -> reqwest::RequestBuilder,
) -> reqwest::Response {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let late = std::time::Instant::now() > deadline;
        match request().send().await {
            Ok(response) if response.status() != StatusCode::CONFLICT || late => return response,
            Err(e) if late => panic!("the request kept failing: {e}"),
            Ok(_) | Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn a_second_server_on_one_sqlite_file_is_refused() {
    let db = TestDb::new(Backend::Sqlite).await;
    let data = tempfile::tempdir().unwrap();
    let first = Server::start(db.url(), data.path());
    let second = Command::new(env!("CARGO_BIN_EXE_image-console"))
        .env("DATABASE_URL", db.url())
        .env("DATA_DIR", data.path())
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("SITE_ROOT", data.path().join("site"))
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!second.status.success(), "the second server must not start");
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(
        said.contains("another console process is already using the SQLite database")
            && said.contains("PostgreSQL"),
        "{said}"
    );
    assert!(
        !String::from_utf8_lossy(&second.stdout).contains("running at"),
        "it never listened"
    );
    // The first one still serves; once it is gone, however it ended, a new one starts.
    let healthy = reqwest::get(format!("{}/healthz", first.base))
        .await
        .unwrap();
    assert_eq!(healthy.status(), StatusCode::OK);
    first.kill();
    let again = Server::start(db.url(), data.path());
    let healthy = reqwest::get(format!("{}/healthz", again.base))
        .await
        .unwrap();
    assert_eq!(healthy.status(), StatusCode::OK);
}
