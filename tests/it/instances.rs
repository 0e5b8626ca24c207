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

use crate::crash::{Server, TusClient, create_file_image, create_image, image_detail};
use crate::support::{Backend, Client, SourceServer, TestDb, test_storage, text};
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

    /// The image's Work History as the database holds it: (topic, message), oldest first.
    async fn history(&self, image_id: &str) -> Vec<(String, String)> {
        let mut conn = sqlx::PgConnection::connect(self.db.url()).await.unwrap();
        sqlx::query_as("SELECT topic, message FROM image_events WHERE image_id = $1 ORDER BY id")
            .bind(image_id)
            .fetch_all(&mut conn)
            .await
            .unwrap()
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

/// A tus upload of a `mib` MiB disk that `server` created and acknowledged one piece of: a
/// whole S3 part and a tail short of the next.
struct StartedUpload {
    _data: tempfile::TempDir,
    file: Vec<u8>,
    id: String,
    location: String,
    acknowledged: usize,
}

async fn upload_started(
    tus: &TusClient<'_>,
    server: &Server,
    name: &str,
    mib: usize,
) -> StartedUpload {
    let data = tempfile::tempdir().unwrap();
    let file = qcow2_with_data(data.path(), "disk.qcow2", mib);
    let id = create_file_image(&server.base, tus.cookie, name, file.len()).await;
    let location = tus.create(&server.base, &id, file.len()).await;
    let acknowledged = 11 << 20;
    let first = tus
        .patch(&server.base, &location, 0, &file[..acknowledged])
        .await;
    assert_eq!(first, StatusCode::NO_CONTENT);
    StartedUpload {
        _data: data,
        file,
        id,
        location,
        acknowledged,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_off_on_one_instance_is_finished_on_another() {
    let mut cluster = Cluster::new().await;
    let (a, b) = (cluster.start(), cluster.start());
    let http = http();
    let cookie = Client::remote(&a.base).sign_up("two-instances").await;
    let tus = TusClient {
        http: &http,
        cookie: &cookie,
    };
    let StartedUpload {
        _data,
        file,
        id,
        location,
        acknowledged,
    } = upload_started(&tus, &a, "survivor", 14).await;
    let recorded = cluster.incoming().await;
    assert_eq!(recorded.len(), 1, "the multipart upload is recorded");
    let multipart: serde_json::Value = serde_json::from_str(&recorded[0].2).unwrap();

    // The next piece trickles into A, which is killed while it arrives.
    let in_flight = tus.patch_paced(
        (&a.base, &location),
        acknowledged,
        &file[acknowledged..],
        (64 << 10, Duration::from_millis(20)),
        Default::default(),
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    a.kill();
    assert!(in_flight.await.unwrap().is_err(), "the request died with A");
    assert!(
        open_parts(&cluster, &multipart).await >= 1,
        "the upload is open, with A's acknowledged part"
    );

    // B reports the last acknowledged offset, and takes the rest once A's claim runs out.
    assert_eq!(tus.offset(&b.base, &location).await, acknowledged);
    let done = tus
        .finish_when_free(&b.base, &location, acknowledged, &file)
        .await;
    assert_eq!(done, StatusCode::NO_CONTENT);

    let detail = image_detail(&b.base, &cookie, &id).await;
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

/// A URL import from a slow source (6 MiB, about 800 KiB/s) that `server` has started and
/// received bytes of: the source (keep it while the import runs), the file and the image id.
async fn import_under_way(
    server: &Server,
    cookie: &str,
    name: &str,
) -> (SourceServer, Vec<u8>, String) {
    let source = SourceServer::start().await;
    let file = qcow2_with_data(source.dir.path(), "slow.qcow2", 6);
    let url = source.url("slow", "slow.qcow2");
    let form = [("source", "url"), ("source_url", url.as_str())];
    let id = create_image(&server.base, cookie, name, &form).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let detail = image_detail(&server.base, cookie, &id).await;
        if detail["status"] == "Importing" && detail["progress"]["bytes_done"].as_u64() > Some(0) {
            return (source, file, id);
        }
        assert!(
            Instant::now() < deadline,
            "the import never started: {detail}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_claimed_by_a_killed_instance_is_taken_over() {
    let mut cluster = Cluster::new().await;
    let (a, b) = (cluster.start(), cluster.start());
    let cookie = Client::remote(&a.base).sign_up("takeover").await;
    // A claims it and starts; it is killed part-way.
    let (_source, file, id) = import_under_way(&a, &cookie, "taken-over").await;
    let killed = Instant::now();
    a.kill();

    // B takes it over once A's claim runs out, and imports it from the start.
    let detail = loop {
        let detail = image_detail(&b.base, &cookie, &id).await;
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

/// How long a paused instance stays stopped: past its 3-second lease, so another takes over.
const PAUSE: Duration = Duration::from_millis(4_500);

/// After A was paused, B took its work over and finished it, and A went on: the image is
/// Active with `data`'s SHA-512 on both, its one object holds exactly `data`, nothing else is
/// left in the bucket or recorded, the takeover is in Work History once, and A said that its
/// late work was refused.
async fn assert_taken_over_cleanly(
    cluster: &Cluster,
    (a, b): (&Server, &Server),
    cookie: &str,
    id: &str,
    data: &[u8],
) {
    // A's heartbeat and its request or import run again, and find their lease gone.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !a.log().contains("taken over") {
        assert!(
            Instant::now() < deadline,
            "A never noticed the takeover: {}",
            a.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for server in [a, b] {
        let detail = image_detail(&server.base, cookie, id).await;
        assert_eq!(detail["status"], "Active", "{detail}");
        assert_eq!(
            detail["hash_value"].as_str(),
            Some(hex::encode(Sha512::digest(data)).as_str())
        );
    }
    let blobs = cluster.blobs().await;
    let stored = blobs.list().await.unwrap();
    assert_eq!(stored.images.len(), 1, "{stored:?}");
    assert!(stored.images[0].starts_with(id));
    assert!(
        stored.uploads.is_empty() && stored.imports.is_empty(),
        "{stored:?}\nA: {}\nB: {}",
        a.log(),
        b.log()
    );
    assert_eq!(cluster.incoming().await, Vec::new());
    // The object B completed is whole: none of its parts was replaced or removed.
    let key = &stored.images[0];
    use futures::StreamExt;
    let reader = blobs.open_blob(key).await.unwrap();
    let read: Vec<bytes::Bytes> = reader
        .range(0, data.len() as u64)
        .map(|block| block.unwrap())
        .collect()
        .await;
    assert_eq!(
        hex::encode(Sha512::digest(read.concat())),
        hex::encode(Sha512::digest(data))
    );
    let takeovers = cluster
        .history(id)
        .await
        .into_iter()
        .filter(|(topic, _)| topic == "taken_over")
        .count();
    assert_eq!(takeovers, 1, "{:?}", cluster.history(id).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_instance_cannot_spoil_an_upload_another_took_over() {
    let mut cluster = Cluster::new().await;
    let (a, b) = (cluster.start(), cluster.start());
    let http = http();
    let cookie = Client::remote(&a.base).sign_up("paused-upload").await;
    let tus = TusClient {
        http: &http,
        cookie: &cookie,
    };
    let StartedUpload {
        _data,
        file,
        id,
        location,
        acknowledged,
    } = upload_started(&tus, &a, "paused", 30).await;

    // The rest flows into A, which is paused while it writes.
    let in_flight = tus.patch_paced(
        (&a.base, &location),
        acknowledged,
        &file[acknowledged..],
        (256 << 10, Duration::from_millis(40)),
        Default::default(),
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    a.pause();
    tokio::time::sleep(PAUSE).await;
    // The client gives up on A and resumes on B from the offset B reports.
    in_flight.abort();
    let offset = tus.offset(&b.base, &location).await;
    assert!(offset >= acknowledged, "{offset}");
    let done = tus
        .finish_when_free(&b.base, &location, offset, &file)
        .await;
    assert_eq!(done, StatusCode::NO_CONTENT);
    a.resume();
    assert_taken_over_cleanly(&cluster, (&a, &b), &cookie, &id, &file).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_instance_cannot_spoil_an_api_upload_another_took_over() {
    let mut cluster = Cluster::new().await;
    let (a, b) = (cluster.start(), cluster.start());
    let http = http();
    let cookie = Client::remote(&a.base).sign_up("paused-api").await;
    let token = Client::remote(&a.base)
        .api_token(&cookie, "instances")
        .await;
    let data = tempfile::tempdir().unwrap();
    let file = qcow2_with_data(data.path(), "disk.qcow2", 20);
    let created = http
        .post(format!("{}/v2/images", a.base))
        .header("x-auth-token", &token)
        .header("content-type", "application/json")
        .body(r#"{"name": "paused", "disk_format": "qcow2", "container_format": "bare", "os_distro": "ubuntu"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: serde_json::Value = serde_json::from_str(&created.text().await.unwrap()).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();

    let pieces: Vec<bytes::Bytes> = file
        .chunks(256 << 10)
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    let slow = futures::stream::iter(pieces).then(|chunk| async move {
        tokio::time::sleep(Duration::from_millis(40)).await;
        Ok::<_, std::io::Error>(chunk)
    });
    let in_flight = tokio::spawn(
        http.put(format!("{}/v2/images/{id}/file", a.base))
            .header("x-auth-token", &token)
            .header("content-type", "application/octet-stream")
            .header("content-length", file.len().to_string())
            .body(reqwest::Body::wrap_stream(slow))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    a.pause();
    tokio::time::sleep(PAUSE).await;
    in_flight.abort();
    // B's heartbeat found A's claim run out and queued the image again: the client sends it
    // again, to B.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let shown = http
            .get(format!("{}/v2/images/{id}", b.base))
            .header("x-auth-token", &token)
            .send()
            .await
            .unwrap();
        let shown: serde_json::Value = serde_json::from_str(&shown.text().await.unwrap()).unwrap();
        if shown["status"] == "queued" {
            break;
        }
        assert!(Instant::now() < deadline, "never queued again: {shown}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let sent = http
        .put(format!("{}/v2/images/{id}/file", b.base))
        .header("x-auth-token", &token)
        .header("content-type", "application/octet-stream")
        .body(file.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::NO_CONTENT);
    a.resume();
    assert_taken_over_cleanly(&cluster, (&a, &b), &cookie, &id, &file).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_instance_cannot_spoil_an_import_another_took_over() {
    let mut cluster = Cluster::new().await;
    let (a, b) = (cluster.start(), cluster.start());
    let cookie = Client::remote(&a.base).sign_up("paused-import").await;
    let (_source, file, id) = import_under_way(&a, &cookie, "paused-import").await;
    a.pause();
    tokio::time::sleep(PAUSE).await;
    // B takes it over and imports it from the start, while A stays paused.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let detail = image_detail(&b.base, &cookie, &id).await;
        if detail["status"] == "Active" {
            break;
        }
        assert!(
            detail["status"] == "Importing" || detail["status"] == "Queued",
            "{detail}"
        );
        assert!(Instant::now() < deadline, "B never finished: {detail}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    a.resume();
    assert_taken_over_cleanly(&cluster, (&a, &b), &cookie, &id, &file).await;
}

/// Sign-in guesses spread over two instances are refused after one instance's limit in all:
/// the limits live in the database they share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_limits_hold_across_instances() {
    let mut cluster = Cluster::new().await;
    cluster
        .env
        .push(("SIGN_IN_PER_ADDRESS_PER_MINUTE".to_owned(), "6".to_owned()));
    let (a, b) = (cluster.start(), cluster.start());
    Client::remote(&a.base).sign_up("guarded").await;
    let guess = |base: String, user: String| async move {
        Client::remote(&base)
            .call(
                image_console::server_fns::auth::SignIn::PATH,
                &[
                    ("user_name", user.as_str()),
                    ("password", "not the password"),
                ],
                None,
            )
            .await
            .status()
    };
    let mut answers = Vec::new();
    for n in 0..10 {
        let base = if n % 2 == 0 { &a.base } else { &b.base };
        answers.push(guess(base.clone(), format!("user{n}@guarded")).await);
    }
    let refused = answers
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(refused, 4, "{answers:?}");
    assert!(
        answers[..6].iter().all(|s| *s == StatusCode::BAD_REQUEST),
        "{answers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_download_links_work_on_every_instance() {
    let mut cluster = Cluster::new().await;
    let (a, b) = (cluster.start(), cluster.start());
    let http = http();
    let cookie = Client::remote(&a.base).sign_up("everywhere").await;
    let data = tempfile::tempdir().unwrap();
    let file = qcow2_with_data(data.path(), "disk.qcow2", 2);
    // Created on B with A's session, uploaded to A.
    let id = create_file_image(&b.base, &cookie, "shared-state", file.len()).await;
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
        image_detail(&b.base, &cookie, &id).await["status"],
        "Active"
    );

    // A link made on A downloads from B, whole and in part.
    let link = Client::remote(&a.base)
        .call(CreateDownloadLink::PATH, &[("id", &id)], Some(&cookie))
        .await;
    assert_eq!(link.status(), StatusCode::OK);
    let link: serde_json::Value = serde_json::from_str(&text(link).await).unwrap();
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
