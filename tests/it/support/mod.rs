//! Test harness: a fresh database per test (SQLite file or PostgreSQL database), the services
//! over it, a local HTTP server that serves image files to import, and the one request
//! client (`client.rs`).

use image_console::store::key_provider::{KeyProviderSettings, MasterKeys};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Path as UrlPath;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use image_console::domain::image::ImageDetail;
use image_console::domain::image_spec::CreateImageForm;
use image_console::domain::list_query::ListQuery;
use image_console::service::accounts::SessionToken;
use image_console::service::{AbuseLimits, Actor, ClientAddr, ServiceSettings, Services};
use image_console::store::blobs::StorageLocation;
use image_console::store::{BlobStore, Store};
use secrecy::SecretSlice;
use tempfile::TempDir;

mod client;
pub use client::{Client, PASSWORD, body_bytes, sign_up_form, text};

/// A signed-up user: the actor the services take (which it derefs to), and the session
/// cookie (`name=value`) a browser would send.
#[derive(Clone, Debug)]
pub struct SignedUp {
    pub actor: Actor,
    pub cookie: String,
}

impl std::ops::Deref for SignedUp {
    type Target = Actor;
    fn deref(&self) -> &Actor {
        &self.actor
    }
}

/// Where a test keeps its rows and its image bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file, and files.
    Sqlite,
    /// PostgreSQL, and files.
    Postgres,
    /// PostgreSQL, and objects in an S3 bucket (the s3s-fs server scripts/test starts), as
    /// several console processes would share them.
    S3,
}

impl Backend {
    pub fn database(self) -> image_console::store::Backend {
        match self {
            Backend::Sqlite => image_console::store::Backend::Sqlite,
            Backend::Postgres | Backend::S3 => image_console::store::Backend::Postgres,
        }
    }
}

/// Runs each listed test against SQLite and PostgreSQL with files, and against PostgreSQL
/// with S3 object storage.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        $crate::on_both_databases!($($name),*);
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::S3).await
                }
            )*
        }
    };
}

/// Runs each listed test against SQLite and against PostgreSQL.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Postgres).await
                }
            )*
        }
    };
}

/// Logs stay quiet unless `TEST_LOG` is set.
pub fn init_logging() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            image_console::server::telemetry::init();
        }
    });
}

/// A database used by one test and removed after it.
pub struct TestDb {
    url: String,
    postgres: Option<(String, String)>,
    _dir: Option<TempDir>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend.database() {
            image_console::store::Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                Self {
                    url,
                    postgres: None,
                    _dir: Some(dir),
                }
            }
            image_console::store::Backend::Postgres => {
                let admin_url = std::env::var("TEST_DATABASE_URL").expect(
                    "PostgreSQL tests need TEST_DATABASE_URL (scripts/test starts a server and sets it)",
                );
                let name = format!("it_{}", uuid::Uuid::new_v4().simple());
                use sqlx::Connection;
                let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                admin.close().await.unwrap();
                let mut url = url::Url::parse(&admin_url).unwrap();
                url.set_path(&name);
                Self {
                    url: url.to_string(),
                    postgres: Some((admin_url, name)),
                    _dir: None,
                }
            }
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.postgres.take() {
            // Drop runs inside the test's runtime; a helper thread with its own runtime can
            // block on the cleanup without stalling it.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    use sqlx::Connection;
                    if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut admin)
                                .await;
                    }
                });
            })
            .join();
        }
    }
}

pub fn test_settings() -> ServiceSettings {
    ServiceSettings {
        price_per_gb_month: 0.05,
        currency: "USD".into(),
        import_size_limit_bytes: 64 << 20,
        import_concurrency: 2,
        // The tests' source servers listen on 127.0.0.1 only.
        import_allowed_networks: vec!["127.0.0.1/32".parse().unwrap()],
        max_images_per_account: 1000,
        max_storage_bytes_per_account: 1 << 40,
        session_ttl: Duration::from_secs(3600),
        upload_expiry: Duration::from_secs(24 * 3600),
        session_secret: SecretSlice::from(vec![7u8; 32]),
        // Stories sign many accounts up from one address; the abuse tests set their own limits.
        limits: AbuseLimits {
            sign_in_per_address_per_minute: 10_000,
            sign_in_per_user_per_minute: 10_000,
            sign_up_per_address_per_hour: 10_000,
            ..AbuseLimits::default()
        },
        lease_ttl: Duration::from_secs(30),
        clock: Default::default(),
        keys: KeyProviderSettings::Local(MasterKeys::generate()),
        // Each app's own, under its data directory (see `TestApp::spawn_with`).
        conversion: image_console::service::importer::ConversionSettings::new(
            std::env::temp_dir().join("image-console-scratch-unset"),
        ),
    }
}

/// The client address of requests the tests make straight to the services.
pub const CLIENT: ClientAddr = ClientAddr(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

/// Where a test's bytes go: a folder of its own, or a prefix of its own in the test bucket;
/// and the `AWS_*` settings for the bucket.
pub fn test_storage(backend: Backend, data: &Path) -> (StorageLocation, Vec<(String, String)>) {
    if backend != Backend::S3 {
        return (StorageLocation::Files(data.join("blobs")), Vec::new());
    }
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("S3 tests need {name} (scripts/test starts s3s-fs and sets it)")
        })
    };
    let aws = vec![
        ("AWS_ENDPOINT_URL".to_owned(), var("TEST_S3_ENDPOINT")),
        ("AWS_ACCESS_KEY_ID".to_owned(), var("TEST_S3_ACCESS_KEY")),
        (
            "AWS_SECRET_ACCESS_KEY".to_owned(),
            var("TEST_S3_SECRET_KEY"),
        ),
        ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
    ];
    let location = StorageLocation::S3 {
        bucket: var("TEST_S3_BUCKET"),
        prefix: format!("it/{}", uuid::Uuid::new_v4().simple()),
    };
    (location, aws)
}

/// The services over a fresh database and blob store.
pub struct TestApp {
    pub services: Services,
    pub data: TempDir,
    pub storage: StorageLocation,
    pub aws: Vec<(String, String)>,
    settings: ServiceSettings,
    // Declared last: dropped after the services close their pool.
    pub db: TestDb,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, test_settings()).await
    }

    pub async fn spawn_with(backend: Backend, settings: ServiceSettings) -> Self {
        Self::spawn_on(backend, TestDb::new(backend).await, settings).await
    }

    /// The console started on a database that already holds data (as an upgrade finds it).
    pub async fn spawn_on(backend: Backend, db: TestDb, mut settings: ServiceSettings) -> Self {
        init_logging();
        let data = tempfile::tempdir().unwrap();
        if settings
            .conversion
            .scratch_dir
            .ends_with("image-console-scratch-unset")
        {
            settings.conversion.scratch_dir = data.path().join("scratch");
        }
        let (storage, aws) = test_storage(backend, data.path());
        let services = start_services(db.url(), &storage, &aws, settings.clone()).await;
        Self {
            services,
            data,
            storage,
            aws,
            settings,
            db,
        }
    }

    /// Stops the services as a shutdown would and starts new ones on the same data,
    /// as a server restart does.
    pub async fn restart(self) -> Self {
        self.services.shutdown().await;
        self.services.store().close().await;
        let services = start_services(
            self.db.url(),
            &self.storage,
            &self.aws,
            self.settings.clone(),
        )
        .await;
        Self { services, ..self }
    }

    pub fn blob_dir(&self) -> PathBuf {
        self.data.path().join("blobs")
    }

    /// Signs `account_id` up through the Sign Up form: its user, `admin@<account_id>`, as the
    /// services' actor and with the session cookie.
    pub async fn sign_up(&self, account_id: &str) -> SignedUp {
        let cookie = Client::new(self).sign_up(account_id).await;
        let (_, value) = cookie.split_once('=').unwrap();
        let token = SessionToken::from_cookie(value).unwrap();
        let actor = self.services.authenticate(&token).await.unwrap().unwrap();
        SignedUp { actor, cookie }
    }

    /// Waits until the image's import has finished one way or the other.
    pub async fn wait_for_import(&self, actor: &Actor, id: &str) -> ImageDetail {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let image = self.services.get_image(actor, id).await.unwrap();
            if !image.status.is_in_progress() {
                return image;
            }
            assert!(
                Instant::now() < deadline,
                "import of {id} did not finish: {image:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until `check` holds for the image.
    pub async fn wait_until(
        &self,
        actor: &Actor,
        id: &str,
        check: impl Fn(&ImageDetail) -> bool,
    ) -> ImageDetail {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let image = self.services.get_image(actor, id).await.unwrap();
            if check(&image) {
                return image;
            }
            assert!(
                Instant::now() < deadline,
                "condition never held for {id}: {image:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The images whose bytes the blob store holds, and those with import bytes on their
    /// way in (image ids, whatever the backend names them by).
    pub async fn stored_files(&self) -> (Vec<String>, Vec<String>) {
        let stored = self.services.blobs().list().await.unwrap();
        (image_ids(stored.images), stored.imports)
    }

    /// The images with upload bytes on their way in.
    pub async fn stored_uploads(&self) -> Vec<String> {
        self.services.blobs().list().await.unwrap().uploads
    }

    /// The bytes the blob store holds for the image.
    pub async fn stored_bytes(&self, image_id: &str) -> Vec<u8> {
        use futures::StreamExt;
        let blobs = self.services.blobs();
        let key = blobs
            .list()
            .await
            .unwrap()
            .images
            .into_iter()
            .find(|key| key.starts_with(image_id))
            .unwrap_or_else(|| panic!("no bytes stored for {image_id}"));
        let len = blobs.blob_len(&key).await.unwrap().unwrap();
        let blocks: Vec<_> = blobs
            .open_blob(&key)
            .await
            .unwrap()
            .range(0, len)
            .collect()
            .await;
        blocks
            .into_iter()
            .flat_map(|block| block.unwrap())
            .collect()
    }
}

impl TestApp {
    /// Replaces the bytes the blob store holds for the image (tampering, as someone with
    /// access to the storage could).
    pub async fn replace_stored_bytes(&self, image_id: &str, bytes: Vec<u8>) {
        let key = self
            .services
            .blobs()
            .list()
            .await
            .unwrap()
            .images
            .into_iter()
            .find(|key| key.starts_with(image_id))
            .unwrap_or_else(|| panic!("no bytes stored for {image_id}"));
        match &self.storage {
            StorageLocation::Files(root) => {
                std::fs::write(root.join("images").join(&key), bytes).unwrap();
            }
            StorageLocation::S3 { bucket, prefix } => {
                use object_store::ObjectStoreExt;
                let setting = |name: &str| {
                    self.aws
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                        .unwrap()
                };
                let store = object_store::aws::AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_endpoint(setting("AWS_ENDPOINT_URL"))
                    .with_access_key_id(setting("AWS_ACCESS_KEY_ID"))
                    .with_secret_access_key(setting("AWS_SECRET_ACCESS_KEY"))
                    .with_region("us-east-1")
                    .with_allow_http(true)
                    .build()
                    .unwrap();
                let path = object_store::path::Path::from(if prefix.is_empty() {
                    format!("images/{key}")
                } else {
                    format!("{prefix}/images/{key}")
                });
                store.put(&path, bytes.into()).await.unwrap();
            }
        }
    }
}

/// The names in a folder, sorted; none if it does not exist.
pub fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The parts S3 lists for a recorded multipart upload (`incoming_blobs.state`), by ListParts
/// as any S3 client sends it: none once it is completed or aborted (S3 answers 404; s3s-fs
/// an empty list).
pub fn s3_open_parts(
    storage: &StorageLocation,
    aws: &[(String, String)],
    multipart: &serde_json::Value,
) -> usize {
    let setting = |name: &str| {
        aws.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let StorageLocation::S3 { bucket, prefix } = storage else {
        panic!("not on S3")
    };
    let url = format!(
        "{}/{bucket}/{prefix}/images/{}?uploadId={}",
        setting("AWS_ENDPOINT_URL"),
        multipart["key"].as_str().unwrap(),
        multipart["id"].as_str().unwrap()
    );
    let output = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}"])
        .args(["--aws-sigv4", "aws:amz:us-east-1:s3"])
        .arg("--user")
        .arg(format!(
            "{}:{}",
            setting("AWS_ACCESS_KEY_ID"),
            setting("AWS_SECRET_ACCESS_KEY")
        ))
        .arg("-H")
        .arg("x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        .arg(url)
        .output()
        .expect("curl is needed by the S3 tests");
    let said = String::from_utf8_lossy(&output.stdout);
    let (body, status) = said.rsplit_once('\n').unwrap();
    match status {
        "200" => body.matches("<Part>").count(),
        _ => 0,
    }
}

/// Blob keys as image ids: on object storage a key is the image id and a suffix.
fn image_ids(keys: Vec<String>) -> Vec<String> {
    let mut ids: Vec<String> = keys
        .into_iter()
        .map(|key| key.get(..36).unwrap_or(&key).to_owned())
        .collect();
    ids.dedup();
    ids
}

async fn start_services(
    url: &str,
    storage: &StorageLocation,
    aws: &[(String, String)],
    settings: ServiceSettings,
) -> Services {
    let store = Store::connect(url).await.unwrap();
    let blobs = BlobStore::connect(storage, aws).await.unwrap();
    Services::start(store, blobs, settings).await.unwrap()
}

/// Every image of the actor's account, newest first (one large page).
pub async fn all_images(
    services: &Services,
    actor: &Actor,
) -> Vec<image_console::domain::image::ImageSummary> {
    let query = ListQuery {
        per_page: 100,
        ..ListQuery::default()
    };
    services.list_images(actor, &query).await.unwrap().images
}

/// A Create Image form for `url` with valid values elsewhere.
pub fn create_form(name: &str, url: &str) -> CreateImageForm {
    CreateImageForm {
        attributes: image_console::domain::image_spec::AttributesForm {
            name: name.into(),
            os_family: "linux".into(),
            os_platform: "ubuntu".into(),
            min_disk: "10".into(),
            min_ram: "2".into(),
            protected: None,
            description: "made by a test".into(),
            ..Default::default()
        },
        source_url: url.into(),
        visibility: "private".into(),
        ..Default::default()
    }
}

/// Runs qemu-img, which makes real image files for the import tests.
pub fn qemu_img(args: &[&str]) {
    let output = Command::new("qemu-img")
        .args(args)
        .output()
        .expect("qemu-img is needed by the import tests (apt-get install qemu-utils)");
    assert!(
        output.status.success(),
        "qemu-img {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A local HTTP server, on 127.0.0.1 only, serving image files from a folder:
/// `/files/<name>` serves the file, `/slow/<name>` trickles it out in small pieces,
/// `/crawl/<name>` sends 1 KiB every 100 ms (far below any minimum speed),
/// `/chunked/<name>` streams it without a Content-Length, `/truncated/<name>` promises the
/// whole file and hangs up half-way.
pub struct SourceServer {
    pub dir: TempDir,
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl SourceServer {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let app = Router::new()
            .nest_service("/files", tower_http::services::ServeDir::new(root.clone()))
            .route(
                "/slow/{name}",
                get({
                    let root = root.clone();
                    move |UrlPath(name): UrlPath<String>| trickle(root.clone(), name)
                }),
            )
            .route(
                "/crawl/{name}",
                get({
                    let root = root.clone();
                    move |UrlPath(name): UrlPath<String>| crawl(root.clone(), name)
                }),
            )
            .route(
                "/chunked/{name}",
                get({
                    let root = root.clone();
                    move |UrlPath(name): UrlPath<String>| chunked(root.clone(), name)
                }),
            )
            .route(
                "/truncated/{name}",
                get({
                    let root = root.clone();
                    move |UrlPath(name): UrlPath<String>| truncated(root.clone(), name)
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { dir, addr, task }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn url(&self, route: &str, name: &str) -> String {
        format!("http://{}/{route}/{name}", self.addr)
    }

    /// A real, empty qcow2 image of `size` (as qemu-img writes it).
    pub fn qcow2(&self, name: &str, size: &str) -> PathBuf {
        let path = self.path(name);
        qemu_img(&["create", "-q", "-f", "qcow2", path.to_str().unwrap(), size]);
        path
    }

    /// Writes bytes under `name`.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for SourceServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn read_file(root: &Path, name: &str) -> Option<Vec<u8>> {
    if name.contains('/') || name.contains("..") {
        return None;
    }
    std::fs::read(root.join(name)).ok()
}

/// Sends the file 16 KiB every 20 ms, with its Content-Length, so an import stays in
/// progress long enough to be seen and interrupted.
async fn trickle(root: PathBuf, name: String) -> Response {
    let Some(bytes) = read_file(&root, &name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let len = bytes.len();
    let chunks: Vec<bytes::Bytes> = bytes
        .chunks(16 << 10)
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    let stream = futures::stream::iter(chunks).then(|chunk| async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok::<_, std::io::Error>(chunk)
    });
    Response::builder()
        .header(header::CONTENT_LENGTH, len)
        .body(Body::from_stream(stream))
        .unwrap()
}

/// Sends 1 KiB every 100 ms (10 KiB/s), with its Content-Length.
async fn crawl(root: PathBuf, name: String) -> Response {
    let Some(bytes) = read_file(&root, &name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let len = bytes.len();
    let chunks: Vec<bytes::Bytes> = bytes
        .chunks(1 << 10)
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    let stream = futures::stream::iter(chunks).then(|chunk| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok::<_, std::io::Error>(chunk)
    });
    Response::builder()
        .header(header::CONTENT_LENGTH, len)
        .body(Body::from_stream(stream))
        .unwrap()
}

/// Streams the file in 256 KiB pieces every 10 ms with no Content-Length (chunked), so the
/// importer learns its size only at the end.
async fn chunked(root: PathBuf, name: String) -> Response {
    let Some(bytes) = read_file(&root, &name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let chunks: Vec<bytes::Bytes> = bytes
        .chunks(256 << 10)
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    let stream = futures::stream::iter(chunks).then(|chunk| async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Ok::<_, std::io::Error>(chunk)
    });
    Response::builder().body(Body::from_stream(stream)).unwrap()
}

/// Promises the whole file but sends only its first half, then fails the body.
async fn truncated(root: PathBuf, name: String) -> Response {
    let Some(bytes) = read_file(&root, &name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let len = bytes.len();
    let half = bytes::Bytes::copy_from_slice(&bytes[..len / 2]);
    let stream = futures::stream::iter(vec![Ok(half), Err(())]).then(|item| async move {
        if item.is_err() {
            // Let the first half reach the client before the connection breaks.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        item.map_err(|()| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "source went away"))
    });
    Response::builder()
        .header(header::CONTENT_LENGTH, len)
        .body(Body::from_stream(stream))
        .unwrap()
}

use futures::StreamExt;

/// The sha512 of a file, hex.
pub fn sha512_hex(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha512::digest(std::fs::read(path).unwrap()))
}

/// What a seeded image should look like.
pub struct Seed<'a> {
    pub name: &'a str,
    pub os_platform: image_console::domain::os_catalogue::OsPlatform,
    /// A version the platform offers for x86_64, or none.
    pub os_version: Option<&'a str>,
    pub visibility: image_console::domain::image_spec::Visibility,
    pub status: image_console::domain::image::ImageStatus,
    pub size_bytes: u64,
    pub protected: bool,
    pub tags: &'a [(&'a str, &'a str)],
    pub description: &'a str,
    pub created_at_ms: i64,
}

impl Default for Seed<'_> {
    fn default() -> Self {
        Self {
            name: "seed",
            os_platform: image_console::domain::os_catalogue::OsPlatform::Ubuntu,
            os_version: None,
            visibility: image_console::domain::image_spec::Visibility::Private,
            status: image_console::domain::image::ImageStatus::Active,
            size_bytes: 1 << 20,
            protected: false,
            tags: &[],
            description: "",
            created_at_ms: 1_700_000_000_000,
        }
    }
}

/// Puts an image straight into the store in the given status, without a real import (for
/// list, export and quota tests, which need many images in known states).
/// A claim on the image's import lease, as a console process would hold it while it imports,
/// for tests that drive the store's import steps themselves. It expires at once, so a
/// heartbeat may take the work over as from a process that stopped.
pub async fn import_fence(store: &Store, image_id: &str) -> image_console::store::leases::Fence {
    use image_console::store::leases::{Claim, Fence, Taken, import_lease, new_token};
    let resource = import_lease(image_id);
    let token = new_token();
    let claim = Claim {
        holder: "tests",
        now_ms: image_console::service::now_ms(),
        ttl_ms: 0,
    };
    let taken = store
        .acquire_lease(&resource, &claim, &token)
        .await
        .unwrap();
    assert_ne!(taken, Taken::Refused, "no process works on {image_id}");
    Fence { resource, token }
}

pub async fn seed_image(services: &Services, actor: &Actor, seed: Seed<'_>) -> String {
    use image_console::domain::history::HistoryTopic;
    use image_console::domain::image::{DiskFormat, ImageStatus};
    use image_console::domain::tags::{Tag, TagKey, TagValue};
    use image_console::store::history::NewEvent;
    use image_console::store::images::{ImportedBytes, NewImageRow, QuotaLimits};
    let store = services.store();
    let id = uuid::Uuid::new_v4().to_string();
    let tags: Vec<Tag> = seed
        .tags
        .iter()
        .map(|(k, v)| Tag {
            key: TagKey::parse(k).unwrap(),
            value: TagValue::parse(v).unwrap(),
        })
        .collect();
    store
        .create_image(
            &NewImageRow {
                attributes: image_console::domain::image_spec::ImageAttributes {
                    name: seed.name.into(),
                    description: seed.description.into(),
                    os: Some(image_console::domain::os_catalogue::OperatingSystem {
                        platform: seed.os_platform,
                        version: seed.os_version.map(|v| {
                            image_console::domain::os_catalogue::OsVersion::stored(
                                seed.os_platform,
                                v,
                            )
                            .expect("a catalogue version")
                        }),
                    }),
                    min_disk_gb: 1,
                    min_ram_gb: 1,
                    protected: seed.protected,
                    architecture: Default::default(),
                    boot_mode: Default::default(),
                    features: Default::default(),
                },
                id: id.clone(),
                account_id: actor.account_id.clone(),
                visibility: seed.visibility,
                image_type: "Image-Based",
                source_url: Some("https://example.com/seed.qcow2".into()),
                expected_checksum: None,
                declared_format: image_console::domain::image::DiskFormat::Qcow2,
                encryption_key: None,
                convert_to: None,
                signature: Default::default(),
                source_image_id: None,
                note: None,
                local_file: (seed.status == ImageStatus::Uploading).then(|| {
                    image_console::store::images::LocalFileRow {
                        name: "seed.qcow2".into(),
                        size_bytes: seed.size_bytes,
                    }
                }),
                created_by: actor.user_name.clone(),
                created_at_ms: seed.created_at_ms,
            },
            &tags,
            QuotaLimits {
                max_images: u64::MAX,
                max_stored_bytes: u64::MAX,
            },
        )
        .await
        .unwrap();
    let account = &actor.account_id;
    // Deactivated and the Recycle Bin's statuses start from an Active image.
    let reached = if seed.status.in_recycle_bin() || seed.status == ImageStatus::Deactivated {
        ImageStatus::Active
    } else {
        seed.status
    };
    let fence = match reached {
        ImageStatus::Queued | ImageStatus::Uploading => None,
        _ => Some(import_fence(store, &id).await),
    };
    let fence = fence.as_ref();
    match reached {
        ImageStatus::Queued | ImageStatus::Uploading => {}
        ImageStatus::Importing => {
            store
                .claim_import(account, &id, fence.unwrap(), seed.created_at_ms)
                .await
                .unwrap();
            store
                .record_import_progress(account, &id, fence.unwrap(), 0, Some(seed.size_bytes))
                .await
                .unwrap();
        }
        ImageStatus::Active => {
            store
                .claim_import(account, &id, fence.unwrap(), seed.created_at_ms)
                .await
                .unwrap();
            let bytes = ImportedBytes {
                disk_format: DiskFormat::Qcow2,
                size_bytes: seed.size_bytes,
                virtual_size_bytes: seed.size_bytes * 4,
                hash_algo: "sha512",
                hash_value: "0".repeat(128),
                checksum_md5: "0".repeat(32),
                blob_key: id.clone(),
                verified_signature: None,
            };
            assert!(
                store
                    .complete_import(account, &id, fence.unwrap(), &bytes, seed.created_at_ms)
                    .await
                    .unwrap()
                    .is_some()
            );
        }
        ImageStatus::Failed => {
            store
                .claim_import(account, &id, fence.unwrap(), seed.created_at_ms)
                .await
                .unwrap();
            store
                .fail_import(
                    account,
                    &id,
                    fence.unwrap(),
                    "seeded failure",
                    seed.created_at_ms,
                )
                .await
                .unwrap();
        }
        _ => unreachable!("seeded from Active"),
    }
    let at = seed.created_at_ms;
    match seed.status {
        ImageStatus::Deactivated => {
            let event = NewEvent::succeeded(HistoryTopic::Deactivated, &actor.user_name);
            store
                .set_activation(account, &id, ImageStatus::Deactivated, &event, at)
                .await
                .unwrap();
        }
        ImageStatus::Deleted | ImageStatus::Deleting => {
            store
                .move_to_recycle_bin(account, &id, &actor.user_name, "", at, at + 86_400_000)
                .await
                .unwrap();
            if seed.status == ImageStatus::Deleting {
                store
                    .begin_destroy(account, &id, &actor.user_name, at)
                    .await
                    .unwrap();
            }
        }
        _ => {}
    }
    id
}
