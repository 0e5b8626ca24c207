//! Two console processes (the real binary) on one PostgreSQL database and one S3 bucket, as
//! behind a load balancer: one is killed with SIGKILL mid-upload or mid-import and the other
//! finishes the work; a session and a download link from one work on the other.

use std::time::{Duration, Instant};

use futures::StreamExt;
use image_console::server_fns::images::CreateDownloadLink;
use image_console::store::BlobStore;
use image_console::store::blobs::StorageLocation;
use leptos::server_fn::ServerFn;
use reqwest::StatusCode;
use sha2::{Digest, Sha512};
use sqlx::Connection;

use crate::crash::{Server, call, create_image, image_detail, patch_when_free, sign_up};
use crate::support::{Backend, SourceServer, TestDb, test_storage};
use crate::uploads::qcow2_with_data;

/// What every instance shares: the database, the bucket and prefix, the session secret.
struct Cluster {
    db: TestDb,
    storage: StorageLocation,
    aws: Vec<(String, String)>,
    env: Vec<(String, String)>,
    dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    async fn new() -> Self {
        let db = TestDb::new(Backend::S3).await;
        let scratch = tempfile::tempdir().unwrap();
        let (storage, aws) = test_storage(Backend::S3, scratch.path());
        let StorageLocation::S3 { bucket, prefix } = &storage else {
            unreachable!("the S3 backend")
        };
        let mut env = aws.clone();
        env.extend([
            ("STORAGE_URL".to_owned(), format!("s3://{bucket}/{prefix}")),
            (
                "SESSION_SECRET".to_owned(),
                // 32 bytes or more, base64: "shared by every instance of the console".
                "c2hhcmVkIGJ5IGV2ZXJ5IGluc3RhbmNlIG9mIHRoZSBjb25zb2xl".to_owned(),
            ),
            (
                "IMPORT_ALLOWED_NETWORKS".to_owned(),
                "127.0.0.1/32".to_owned(),
            ),
        ]);
        Self {
            db,
            storage,
            aws,
            env,
            dirs: vec![scratch],
        }
    }

    /// Another instance, with a data directory of its own.
    fn start(&mut self) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start_with(self.db.url(), dir.path(), &self.env);
        self.dirs.push(dir);
        server
    }

    async fn blobs(&self) -> BlobStore {
        BlobStore::connect(&self.storage, &self.aws).await.unwrap()
    }

    /// The recorded incoming bytes: (image id, kind, state).
    async fn incoming(&self) -> Vec<(String, String, String)> {
        let mut conn = sqlx::PgConnection::connect(self.db.url()).await.unwrap();
        sqlx::query_as("SELECT image_id, kind, state FROM incoming_blobs ORDER BY image_id")
            .fetch_all(&mut conn)
            .await
            .unwrap()
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn create_file_image(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    name: &str,
    len: usize,
) -> String {
    let size = len.to_string();
    let source = [
        ("source", "file"),
        ("file_name", "disk.qcow2"),
        ("file_size", size.as_str()),
    ];
    create_image(http, base, cookie, name, &source).await
}

fn tus(
    http: &reqwest::Client,
    cookie: &str,
    method: reqwest::Method,
    url: String,
) -> reqwest::RequestBuilder {
    http.request(method, url)
        .header("cookie", cookie)
        .header("tus-resumable", "1.0.0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_off_on_one_instance_is_finished_on_another() {
    let mut cluster = Cluster::new().await;
    let (a, b) = (cluster.start(), cluster.start());
    let http = http();
    let cookie = sign_up(&http, &a.base, "two-instances").await;
    let data = tempfile::tempdir().unwrap();
    let file = qcow2_with_data(data.path(), "disk.qcow2", 14);
    let id = create_file_image(&http, &a.base, &cookie, "survivor", file.len()).await;

    let created = tus(
        &http,
        &cookie,
        reqwest::Method::POST,
        format!("{}/images/{id}/uploads", a.base),
    )
    .header("upload-length", file.len().to_string())
    .send()
    .await
    .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    // One acknowledged piece on A: a whole part and a tail short of the next.
    let acknowledged = 11 << 20;
    let first = tus(
        &http,
        &cookie,
        reqwest::Method::PATCH,
        format!("{}{location}", a.base),
    )
    .header("upload-offset", "0")
    .header("content-type", "application/offset+octet-stream")
    .body(file[..acknowledged].to_vec())
    .send()
    .await
    .unwrap();
    assert_eq!(first.status(), StatusCode::NO_CONTENT);
    let recorded = cluster.incoming().await;
    assert_eq!(recorded.len(), 1, "the multipart upload is recorded");
    let multipart: serde_json::Value = serde_json::from_str(&recorded[0].2).unwrap();

    // The next piece trickles into A, which is killed while it arrives.
    let rest: Vec<bytes::Bytes> = file[acknowledged..]
        .chunks(64 << 10)
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    let slow = futures::stream::iter(rest).then(|chunk| async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok::<_, std::io::Error>(chunk)
    });
    let in_flight = tokio::spawn(
        tus(
            &http,
            &cookie,
            reqwest::Method::PATCH,
            format!("{}{location}", a.base),
        )
        .header("upload-offset", acknowledged.to_string())
        .header("content-length", (file.len() - acknowledged).to_string())
        .header("content-type", "application/offset+octet-stream")
        .body(reqwest::Body::wrap_stream(slow))
        .send(),
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    a.kill();
    assert!(in_flight.await.unwrap().is_err(), "the request died with A");
    assert!(
        open_parts(&cluster, &multipart).await >= 1,
        "the upload is open, with A's acknowledged part"
    );

    // B reports the last acknowledged offset, and takes the rest once A's claim runs out.
    let head = tus(
        &http,
        &cookie,
        reqwest::Method::HEAD,
        format!("{}{location}", b.base),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()["upload-offset"].to_str().unwrap(),
        acknowledged.to_string()
    );
    let done = patch_when_free(|| {
        tus(
            &http,
            &cookie,
            reqwest::Method::PATCH,
            format!("{}{location}", b.base),
        )
        .header("upload-offset", acknowledged.to_string())
        .header("content-type", "application/offset+octet-stream")
        .body(file[acknowledged..].to_vec())
    })
    .await;
    assert_eq!(done.status(), StatusCode::NO_CONTENT);

    let detail = image_detail(&http, &b.base, &cookie, &id).await;
    assert_eq!(detail["status"], "Active", "{detail}");
    assert_eq!(
        detail["hash_value"].as_str(),
        Some(hex::encode(Sha512::digest(&file)).as_str())
    );
    // The bucket holds the image's object and nothing else; no upload is recorded as open,
    // and the one that was is closed: S3 no longer lists its parts.
    let stored = cluster.blobs().await.list().await.unwrap();
    assert_eq!(stored.images.len(), 1);
    assert!(stored.images[0].starts_with(&id));
    assert!(stored.uploads.is_empty() && stored.imports.is_empty());
    assert_eq!(cluster.incoming().await, Vec::new());
    assert_eq!(
        open_parts(&cluster, &multipart).await,
        0,
        "the multipart upload is not left open"
    );
}

/// The parts S3 lists for a multipart upload (ListParts, as any S3 client sends it): none once
/// it is completed or aborted (S3 answers 404; s3s-fs an empty list).
async fn open_parts(cluster: &Cluster, multipart: &serde_json::Value) -> usize {
    crate::support::s3_open_parts(&cluster.storage, &cluster.aws, multipart)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_claimed_by_a_killed_instance_is_taken_over() {
    let mut cluster = Cluster::new().await;
    let (a, b) = (cluster.start(), cluster.start());
    let http = http();
    let cookie = sign_up(&http, &a.base, "takeover").await;
    let source = SourceServer::start().await;
    let file = qcow2_with_data(source.dir.path(), "slow.qcow2", 6);
    let url = source.url("slow", "slow.qcow2");
    let source = [("source", "url"), ("source_url", url.as_str())];
    let id = create_image(&http, &a.base, &cookie, "taken-over", &source).await;

    // A claims it and starts; it is killed part-way.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let detail = image_detail(&http, &a.base, &cookie, &id).await;
        if detail["status"] == "Importing" && detail["progress"]["bytes_done"].as_u64() > Some(0) {
            break;
        }
        assert!(Instant::now() < deadline, "A never started: {detail}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let killed = Instant::now();
    a.kill();

    // B takes it over once A's claim runs out, and imports it from the start.
    let detail = loop {
        let detail = image_detail(&http, &b.base, &cookie, &id).await;
        if detail["status"] != "Importing" && detail["status"] != "Queued" {
            break detail;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "not taken over within a minute: {detail}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(detail["status"], "Active", "{detail}");
    assert_eq!(
        detail["hash_value"].as_str(),
        Some(hex::encode(Sha512::digest(&file)).as_str())
    );
    let stored = cluster.blobs().await.list().await.unwrap();
    assert_eq!(stored.images.len(), 1, "A's partial bytes are gone");
    assert_eq!(cluster.incoming().await, Vec::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_download_links_work_on_every_instance() {
    let mut cluster = Cluster::new().await;
    let (a, b) = (cluster.start(), cluster.start());
    let http = http();
    let cookie = sign_up(&http, &a.base, "everywhere").await;
    let data = tempfile::tempdir().unwrap();
    let file = qcow2_with_data(data.path(), "disk.qcow2", 2);
    // Created on B with A's session, uploaded to A.
    let id = create_file_image(&http, &b.base, &cookie, "shared-state", file.len()).await;
    let created = tus(
        &http,
        &cookie,
        reqwest::Method::POST,
        format!("{}/images/{id}/uploads", a.base),
    )
    .header("upload-length", file.len().to_string())
    .header("content-type", "application/offset+octet-stream")
    .body(file.clone())
    .send()
    .await
    .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(
        image_detail(&http, &b.base, &cookie, &id).await["status"],
        "Active"
    );

    // A link made on A downloads from B, whole and in part.
    let link = call(
        &http,
        &a.base,
        CreateDownloadLink::PATH,
        &[("id", &id)],
        Some(&cookie),
    )
    .await;
    assert_eq!(link.status(), StatusCode::OK);
    let link: serde_json::Value = serde_json::from_str(&link.text().await.unwrap()).unwrap();
    let url = format!("{}{}", b.base, link["path"].as_str().unwrap());
    let whole = http.get(&url).send().await.unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.bytes().await.unwrap(), file);
    let part = http
        .get(&url)
        .header("range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes().await.unwrap(), &file[1000..2000]);
}

/// The server's exit and what it said, started with `env` on top of a working setup.
fn start_and_fail(cluster: &Cluster, env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_image-console"))
        .env("DATABASE_URL", cluster.db.url())
        .env("DATA_DIR", dir.path())
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("SITE_ROOT", dir.path().join("site"))
        .env("RUST_LOG", "off")
        .envs(cluster.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "the server must not start with {env:?}"
    );
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("running at"),
        "it never listened"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_storage_settings_stop_the_start_and_say_which() {
    let cluster = Cluster::new().await;
    let said = start_and_fail(&cluster, &[("STORAGE_URL", "ftp://images/x")]);
    assert!(
        said.contains("STORAGE_URL") && said.contains("not a storage scheme"),
        "{said}"
    );
    let said = start_and_fail(&cluster, &[("STORAGE_URL", "s3://No_Such_Bucket")]);
    assert!(
        said.contains("STORAGE_URL") && said.contains("bucket name"),
        "{said}"
    );
    // Nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let nowhere = format!("http://127.0.0.1:{port}");
    let said = start_and_fail(&cluster, &[("AWS_ENDPOINT_URL", &nowhere)]);
    assert!(
        said.contains("STORAGE_URL") && said.contains(&nowhere),
        "{said}"
    );
    // The right server with the wrong key.
    let said = start_and_fail(&cluster, &[("AWS_SECRET_ACCESS_KEY", "not-the-key")]);
    assert!(
        said.contains("STORAGE_URL") && said.contains("refused"),
        "{said}"
    );
}
