//! Image bytes as objects in an S3-compatible bucket, through the `object_store` crate.
//!
//! A blob is the object `<prefix>/images/<key>`. Each attempt at an image's bytes gets its own
//! key (the image id and 16 random hex digits), so a new attempt or a cleanup never touches
//! another's object. Incoming bytes are an S3 multipart upload to that object: each part is at
//! least 5 MiB, as S3 requires of every part but the last, so bytes that do not yet fill one
//! (the end of a tus piece) are kept durably as a small object of their own,
//! `<prefix>/incoming/<kind>/<key>/tail-<end offset>`, and join the next part when more arrive. The database records the upload's id, its parts' ETags and
//! the tail's length (`Multipart`), so any console process can go on with an upload or abort
//! it. `assemble` sends the tail as the last part and completes the upload: the object then
//! exists, but no row names it until the image is Active.

use std::collections::{HashSet, VecDeque};
use std::io;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use serde::{Deserialize, Serialize};

use super::Incoming;

/// Parts are this size unless the image needs bigger ones to fit S3's 10,000 parts.
const PART_BYTES: u64 = 8 << 20;
/// S3's smallest part (all but the last).
const MIN_PART_BYTES: u64 = 5 << 20;
/// Parts of one writer being sent at once.
const PARTS_IN_FLIGHT: usize = 2;
/// Downloads fetch ranges of this size, `READ_AHEAD` at a time: an S3 server answers one
/// GET at a time per connection, so several in flight are what fills the client's socket.
const READ_BLOCK: u64 = 8 << 20;
const READ_AHEAD: usize = 4;
/// The sweep leaves anything younger: another console process may be working on it.
const SWEEP_MIN_AGE: Duration = Duration::from_secs(3600);
/// How long the start-up check of the bucket may take.
const CONNECT_CHECK: Duration = Duration::from_secs(15);

#[derive(Clone, Debug)]
pub(super) struct S3 {
    store: Arc<AmazonS3>,
    bucket: String,
    prefix: String,
    endpoint: String,
    /// For the one call `object_store` does not have (ListMultipartUploads): the bucket's
    /// path-style URL, its region, and a client.
    bucket_url: String,
    region: String,
    http: reqwest::Client,
}

/// An incoming multipart upload as the database records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Multipart {
    /// The object the upload makes, below `images/`.
    key: String,
    /// The S3 upload id.
    id: String,
    /// The parts sent, in order.
    parts: Vec<Part>,
    /// Bytes after the parts, kept in the tail object.
    tail: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Part {
    etag: String,
    len: u64,
}

impl Multipart {
    pub(super) fn to_db(&self) -> String {
        serde_json::to_string(self).expect("a multipart state serializes")
    }

    pub(super) fn from_db(stored: &str) -> io::Result<Self> {
        serde_json::from_str(stored).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("recorded multipart upload: {e}"),
            )
        })
    }

    pub(super) fn key(&self) -> &str {
        &self.key
    }

    pub(super) fn upload_id(&self) -> &str {
        &self.id
    }

    fn parts_len(&self) -> u64 {
        self.parts.iter().map(|p| p.len).sum()
    }

    /// Every durable byte: the parts' and the tail's.
    fn durable_len(&self) -> u64 {
        self.parts_len() + self.tail
    }
}

/// ListMultipartUploads' answer, as far as the sweep reads it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListMultipartUploadsResult {
    #[serde(default)]
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_upload_id_marker: Option<String>,
    #[serde(default, rename = "Upload")]
    uploads: Vec<ListedUpload>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListedUpload {
    key: String,
    upload_id: String,
    /// ISO 8601 in UTC, `2026-12-03T09:00:00.000Z`.
    initiated: String,
}

/// The listed uploads to abort: under `prefix` (whatever the store answered, nothing else is
/// the console's), not recorded, and begun before `cutoff` (compared to the second, both
/// `YYYY-MM-DDTHH:MM:SS`).
fn abandoned<'a>(
    listed: &'a [ListedUpload],
    prefix: &'a str,
    recorded: &'a HashSet<String>,
    cutoff: &'a str,
) -> impl Iterator<Item = &'a ListedUpload> {
    listed.iter().filter(move |upload| {
        upload.key.starts_with(prefix)
            && upload.key.len() > prefix.len()
            && !recorded.contains(&upload.upload_id)
            && upload
                .initiated
                .get(..19)
                .is_some_and(|began| began < &cutoff[..19])
    })
}

/// `YYYY-MM-DDTHH:MM:SS` of a time, in UTC.
fn iso_seconds(at: std::time::SystemTime) -> String {
    let at = time::OffsetDateTime::from(at);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// The image id an attempt's key starts with.
fn image_id_of(key: &str) -> &str {
    key.get(..36).unwrap_or(key)
}

fn to_io(error: object_store::Error) -> io::Error {
    match error {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, error),
        other => io::Error::other(other),
    }
}

fn ignore_missing<T>(result: object_store::Result<T>) -> io::Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(to_io(e)),
    }
}

impl S3 {
    /// Builds the client from the standard `AWS_*` settings (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`,
    /// `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`, …; unknown ones are ignored) and checks that the
    /// bucket answers with these credentials.
    pub(super) async fn connect(
        bucket: &str,
        prefix: &str,
        aws: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let setting = |name: &str| aws.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let endpoint = setting("AWS_ENDPOINT_URL").or(setting("AWS_ENDPOINT"));
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            // Path-style requests (`endpoint/bucket/key`) unless told otherwise: every
            // S3-compatible store takes them.
            .with_virtual_hosted_style_request(false);
        for (name, value) in aws {
            if let Ok(key) = name.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                builder = builder.with_config(key, value);
            }
        }
        if setting("AWS_REGION").is_none() && setting("AWS_DEFAULT_REGION").is_none() {
            builder = builder.with_region("us-east-1");
        }
        // A long part upload or range read is not a hung one; connecting is quick.
        let builder = builder.with_client_options(
            ClientOptions::new()
                .with_timeout(Duration::from_secs(300))
                .with_connect_timeout(Duration::from_secs(5))
                .with_allow_http(endpoint.is_some_and(|e| e.starts_with("http://"))),
        );
        // The start-up check asks once: a wrong address or key fails at once, with its reason.
        let check = builder
            .clone()
            .with_retry(RetryConfig {
                max_retries: 0,
                ..RetryConfig::default()
            })
            .build()
            .context("STORAGE_URL: the S3 settings (AWS_* variables) are not usable")?;
        let store = builder
            .build()
            .context("STORAGE_URL: the S3 settings (AWS_* variables) are not usable")?;
        let region = setting("AWS_REGION")
            .or(setting("AWS_DEFAULT_REGION"))
            .unwrap_or("us-east-1")
            .to_owned();
        let bucket_url = match endpoint {
            Some(endpoint) => format!("{}/{bucket}", endpoint.trim_end_matches('/')),
            None => format!("https://s3.{region}.amazonaws.com/{bucket}"),
        };
        let s3 = Self {
            store: Arc::new(store),
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            endpoint: endpoint.unwrap_or("AWS").to_owned(),
            bucket_url,
            region,
            // Signed for one address: a redirect elsewhere is not followed.
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(60))
                .build()
                .context("building the HTTP client for S3 listings")?,
        };
        let where_ = s3.describe();
        let listed = tokio::time::timeout(
            CONNECT_CHECK,
            check.list_with_delimiter(Some(&s3.path("images"))),
        )
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "STORAGE_URL: {where_} did not answer within {} seconds (check AWS_ENDPOINT_URL and the network)",
                CONNECT_CHECK.as_secs()
            )
        })?;
        let keys = match setting("AWS_ACCESS_KEY_ID") {
            Some(_) => "the bucket, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be right",
            None => {
                "no AWS_ACCESS_KEY_ID is set, so the machine's instance role was asked for credentials"
            }
        };
        listed.map_err(|e| {
            anyhow::anyhow!("STORAGE_URL: {where_} refused the check ({keys}): {e}")
        })?;
        Ok(s3)
    }

    pub(super) fn describe(&self) -> String {
        match self.prefix.as_str() {
            "" => format!("S3 bucket {} at {}", self.bucket, self.endpoint),
            prefix => format!(
                "S3 bucket {}, prefix {prefix}/, at {}",
                self.bucket, self.endpoint
            ),
        }
    }

    fn path(&self, rest: &str) -> Path {
        match self.prefix.as_str() {
            "" => Path::from(rest),
            prefix => Path::from(format!("{prefix}/{rest}")),
        }
    }

    fn blob_path(&self, key: &str) -> Path {
        self.path(&format!("images/{key}"))
    }

    fn tails_dir(&self, incoming: Incoming, key: &str) -> Path {
        self.path(&format!("incoming/{}/{key}", incoming.as_str()))
    }

    /// The tail that ends at `end`: a new name for every end, so a tail the database does not
    /// record yet never replaces one it does.
    fn tail_path(&self, incoming: Incoming, key: &str, end: u64) -> Path {
        self.path(&format!(
            "incoming/{}/{key}/tail-{end:020}",
            incoming.as_str()
        ))
    }

    pub(super) async fn begin(&self, image_id: &str) -> io::Result<Multipart> {
        let key = format!("{image_id}-{:016x}", rand::random::<u64>());
        let id = self
            .store
            .create_multipart(&self.blob_path(&key))
            .await
            .map_err(to_io)?;
        Ok(Multipart {
            key,
            id,
            parts: Vec::new(),
            tail: 0,
        })
    }

    /// The recorded state's length if its tail is there (the parts are S3's to keep).
    pub(super) async fn durable_len(
        &self,
        incoming: Incoming,
        multipart: &Multipart,
    ) -> io::Result<Option<u64>> {
        if multipart.tail == 0 {
            return Ok(Some(multipart.durable_len()));
        }
        let path = self.tail_path(incoming, &multipart.key, multipart.durable_len());
        match self.store.head(&path).await {
            Ok(meta) if meta.size == multipart.tail => Ok(Some(multipart.durable_len())),
            Ok(_) => Ok(None),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(to_io(e)),
        }
    }

    pub(super) async fn open_writer(
        &self,
        incoming: Incoming,
        multipart: &Multipart,
        offset: u64,
        size_hint: u64,
    ) -> io::Result<Option<S3Writer>> {
        if offset != multipart.durable_len() {
            return Ok(None);
        }
        let mut buffer = Vec::new();
        if multipart.tail > 0 {
            let path = self.tail_path(incoming, &multipart.key, offset);
            match self.store.get(&path).await {
                Ok(tail) => buffer = tail.bytes().await.map_err(to_io)?.to_vec(),
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(to_io(e)),
            }
            if buffer.len() as u64 != multipart.tail {
                return Ok(None);
            }
        }
        // 10,000 parts at most: bigger parts for images that need them.
        let part_bytes = PART_BYTES.max(size_hint.div_ceil(9_000).next_multiple_of(1 << 20));
        let min_part = MIN_PART_BYTES.max(size_hint.div_ceil(9_000));
        buffer.reserve(part_bytes as usize - buffer.len().min(part_bytes as usize));
        Ok(Some(S3Writer {
            s3: self.clone(),
            path: self.blob_path(&multipart.key),
            incoming,
            state: Multipart {
                tail: 0,
                ..multipart.clone()
            },
            buffer,
            part_bytes: part_bytes as usize,
            min_part: min_part as usize,
            in_flight: VecDeque::new(),
            runtime: tokio::runtime::Handle::current(),
            written: 0,
        }))
    }

    /// Sends the tail as the last part and completes the upload. Completing one that an
    /// earlier attempt completed is no error when the object has every byte.
    pub(super) async fn assemble(
        &self,
        incoming: Incoming,
        multipart: &Multipart,
    ) -> io::Result<()> {
        let path = self.blob_path(&multipart.key);
        let total = multipart.durable_len();
        let mut parts: Vec<PartId> = multipart
            .parts
            .iter()
            .map(|p| PartId {
                content_id: p.etag.clone(),
            })
            .collect();
        if multipart.tail > 0 {
            let tail_path = self.tail_path(incoming, &multipart.key, total);
            match self.store.get(&tail_path).await {
                Ok(tail) => {
                    let tail = tail.bytes().await.map_err(to_io)?;
                    let part = self
                        .store
                        .put_part(&path, &multipart.id, parts.len(), PutPayload::from(tail))
                        .await
                        .map_err(to_io)?;
                    parts.push(part);
                }
                // Sent and completed by an earlier attempt, which then removed it.
                Err(object_store::Error::NotFound { .. }) => {
                    return self.assembled_before(&path, total).await;
                }
                Err(e) => return Err(to_io(e)),
            }
        }
        let completed = if parts.is_empty() {
            // S3 cannot complete an upload of no parts: an empty file is an empty object.
            ignore_missing(self.store.abort_multipart(&path, &multipart.id).await)?;
            self.store
                .put(&path, PutPayload::default())
                .await
                .map(|_| ())
        } else {
            self.store
                .complete_multipart(&path, &multipart.id, parts)
                .await
                .map(|_| ())
        };
        match completed {
            Ok(()) => {}
            Err(e) => {
                if self.assembled_before(&path, total).await.is_err() {
                    return Err(to_io(e));
                }
            }
        }
        self.remove_tails(incoming, &multipart.key).await
    }

    async fn assembled_before(&self, path: &Path, total: u64) -> io::Result<()> {
        match self.store.head(path).await {
            Ok(meta) if meta.size == total => Ok(()),
            Ok(meta) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the assembled object has {} bytes, not {total}", meta.size),
            )),
            Err(e) => Err(to_io(e)),
        }
    }

    pub(super) async fn read_ends(
        &self,
        multipart: &Multipart,
        head: usize,
        tail: usize,
    ) -> io::Result<(Vec<u8>, Vec<u8>)> {
        let path = self.blob_path(&multipart.key);
        let len = self.store.head(&path).await.map_err(to_io)?.size;
        if len == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        let first = self
            .store
            .get_range(&path, 0..(head as u64).min(len))
            .await
            .map_err(to_io)?;
        let last = self
            .store
            .get_range(&path, len.saturating_sub(tail as u64)..len)
            .await
            .map_err(to_io)?;
        Ok((first.to_vec(), last.to_vec()))
    }

    /// Aborts the upload, removes its tails and the object an `assemble` may have made (the
    /// attempt's own key, which no row names before `commit`).
    pub(super) async fn remove_incoming(
        &self,
        incoming: Incoming,
        multipart: &Multipart,
    ) -> io::Result<()> {
        let path = self.blob_path(&multipart.key);
        let aborted = match self.store.abort_multipart(&path, &multipart.id).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            // Completed already: some stores refuse to abort it (not all say NoSuchUpload).
            Err(_) if self.store.head(&path).await.is_ok() => Ok(()),
            Err(e) => Err(to_io(e)),
        };
        // The object and the tails go whatever the abort said.
        ignore_missing(self.store.delete(&path).await)?;
        self.remove_tails(incoming, &multipart.key).await?;
        aborted
    }

    async fn remove_tails(&self, incoming: Incoming, key: &str) -> io::Result<()> {
        let tails: Vec<_> = self
            .store
            .list(Some(&self.tails_dir(incoming, key)))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(to_io)?;
        for tail in tails {
            ignore_missing(self.store.delete(&tail).await)?;
        }
        Ok(())
    }

    /// Deletes `earlier`'s tail once `now` is recorded in its place, unless `now` names the
    /// same one.
    pub(super) async fn remove_superseded_tail(
        &self,
        incoming: Incoming,
        earlier: &Multipart,
        now: &Multipart,
    ) -> io::Result<()> {
        if earlier.tail == 0
            || earlier.key != now.key
            || (now.tail > 0 && now.durable_len() == earlier.durable_len())
        {
            return Ok(());
        }
        let path = self.tail_path(incoming, &earlier.key, earlier.durable_len());
        ignore_missing(self.store.delete(&path).await)
    }

    pub(super) async fn remove_blob(&self, key: &str) -> io::Result<()> {
        ignore_missing(self.store.delete(&self.blob_path(key)).await)
    }

    pub(super) async fn blob_len(&self, key: &str) -> io::Result<Option<u64>> {
        match self.store.head(&self.blob_path(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(to_io(e)),
        }
    }

    pub(super) async fn open_blob(&self, key: &str) -> io::Result<S3Reader> {
        let path = self.blob_path(key);
        // A missing object fails here, before a response promises its bytes.
        self.store.head(&path).await.map_err(to_io)?;
        Ok(S3Reader {
            store: self.store.clone(),
            path,
        })
    }

    /// Every object under the prefix, as (path below the prefix, last modified).
    async fn objects(&self, under: &str) -> io::Result<Vec<(String, i64)>> {
        let root = self.path("");
        let strip = |location: &Path| -> String {
            let full = location.as_ref();
            match root.as_ref() {
                "" => full.to_owned(),
                root => full
                    .strip_prefix(root)
                    .unwrap_or(full)
                    .trim_start_matches('/')
                    .to_owned(),
            }
        };
        self.store
            .list(Some(&self.path(under)))
            .map_ok(|meta| (strip(&meta.location), meta.last_modified.timestamp_millis()))
            .try_collect()
            .await
            .map_err(to_io)
    }

    pub(super) async fn list(&self) -> io::Result<super::StoredBlobs> {
        let mut stored = super::StoredBlobs::default();
        for (path, _) in self.objects("images").await? {
            stored
                .images
                .extend(path.strip_prefix("images/").map(str::to_owned));
        }
        stored.images.dedup();
        for (path, _) in self.objects("incoming").await? {
            let mut parts = path.split('/').skip(1);
            let (Some(kind), Some(id)) = (parts.next(), parts.next()) else {
                continue;
            };
            let list = match kind {
                "upload" => &mut stored.uploads,
                _ => &mut stored.imports,
            };
            list.push(image_id_of(id).to_owned());
        }
        stored.images.sort();
        stored.imports.sort();
        stored.imports.dedup();
        stored.uploads.sort();
        stored.uploads.dedup();
        Ok(stored)
    }

    /// Aborts the multipart uploads S3 lists under `images/` that the database never recorded
    /// (`recorded` upload ids) and that began over an hour ago: those of a process that died
    /// between creating one and recording it. `None` when the store does not list multipart
    /// uploads (s3s-fs does not).
    pub(super) async fn sweep_unrecorded_multiparts(
        &self,
        recorded: &HashSet<String>,
    ) -> io::Result<Option<usize>> {
        let Some(listed) = self.list_multipart_uploads().await? else {
            return Ok(None);
        };
        let cutoff = iso_seconds(std::time::SystemTime::now() - SWEEP_MIN_AGE);
        let prefix = self.multipart_prefix();
        let mut aborted = 0;
        for upload in abandoned(&listed, &prefix, recorded, &cutoff) {
            let path = Path::from(upload.key.as_str());
            ignore_missing(self.store.abort_multipart(&path, &upload.upload_id).await)?;
            aborted += 1;
        }
        Ok(Some(aborted))
    }

    /// Where the console's multipart uploads are: `<prefix>/images/`.
    fn multipart_prefix(&self) -> String {
        self.path("images").to_string() + "/"
    }

    /// ListMultipartUploads under `images/`, page by page, signed by `object_store`'s own
    /// SigV4 signer with the store's credentials.
    async fn list_multipart_uploads(&self) -> io::Result<Option<Vec<ListedUpload>>> {
        let prefix = self.multipart_prefix();
        let credential = self
            .store
            .credentials()
            .get_credential()
            .await
            .map_err(to_io)?;
        let mut listed = Vec::new();
        let mut markers: Option<(String, String)> = None;
        for _ in 0..100 {
            let mut url = url::Url::parse(&format!("{}?uploads", self.bucket_url))
                .map_err(io::Error::other)?;
            url.query_pairs_mut().append_pair("prefix", &prefix);
            if let Some((key, id)) = &markers {
                url.query_pairs_mut()
                    .append_pair("key-marker", key)
                    .append_pair("upload-id-marker", id);
            }
            let mut request = object_store::client::HttpRequest::new(bytes::Bytes::new().into());
            *request.uri_mut() = url.as_str().parse().map_err(io::Error::other)?;
            object_store::aws::AwsAuthorizer::new(&credential, "s3", &self.region)
                .authorize(&mut request, None);
            let mut outgoing = self.http.get(url.as_str());
            for (name, value) in request.headers() {
                outgoing = outgoing.header(name, value);
            }
            let response = outgoing.send().await.map_err(io::Error::other)?;
            let status = response.status();
            let body = response.text().await.map_err(io::Error::other)?;
            if !status.is_success() {
                // NotImplemented, or a policy without s3:ListBucketMultipartUploads.
                tracing::debug!(%status, "the store does not list multipart uploads");
                return Ok(None);
            }
            let page: ListMultipartUploadsResult =
                quick_xml::de::from_str(&body).map_err(io::Error::other)?;
            listed.extend(page.uploads);
            match (
                page.is_truncated,
                page.next_key_marker,
                page.next_upload_id_marker,
            ) {
                (true, Some(key), Some(id)) => markers = Some((key, id)),
                _ => break,
            }
        }
        Ok(Some(listed))
    }

    pub(super) async fn sweep_orphans(
        &self,
        live_keys: &HashSet<String>,
        live_uploads: &HashSet<String>,
    ) -> io::Result<usize> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as i64;
        let old = now_ms - SWEEP_MIN_AGE.as_millis() as i64;
        let mut removed = 0;
        for (path, modified) in self.objects("images").await? {
            let key = path.strip_prefix("images/").unwrap_or(&path);
            if modified < old && !live_keys.contains(key) {
                ignore_missing(self.store.delete(&self.path(&path)).await)?;
                removed += 1;
            }
        }
        for (path, modified) in self.objects("incoming").await? {
            let mut parts = path.split('/').skip(1);
            let (kind, key) = (parts.next(), parts.next().unwrap_or_default());
            let live = kind == Some("upload") && live_uploads.contains(image_id_of(key));
            if modified < old && !live {
                ignore_missing(self.store.delete(&self.path(&path)).await)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Sends incoming bytes as parts, `PARTS_IN_FLIGHT` at a time. Runs on a blocking thread and
/// waits on the runtime for each part it must see sent.
pub(super) struct S3Writer {
    s3: S3,
    path: Path,
    incoming: Incoming,
    /// The parts sent so far (those whose ETag came back).
    state: Multipart,
    /// Bytes not yet in a part, starting with the tail the last request left.
    buffer: Vec<u8>,
    part_bytes: usize,
    min_part: usize,
    in_flight: VecDeque<(tokio::task::JoinHandle<object_store::Result<PartId>>, u64)>,
    runtime: tokio::runtime::Handle,
    written: u64,
}

impl S3Writer {
    pub(super) fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.written += data.len() as u64;
        while !data.is_empty() {
            let take = (self.part_bytes - self.buffer.len()).min(data.len());
            self.buffer.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buffer.len() == self.part_bytes {
                let part = std::mem::replace(&mut self.buffer, Vec::with_capacity(self.part_bytes));
                self.send(Bytes::from(part))?;
            }
        }
        Ok(())
    }

    fn send(&mut self, part: Bytes) -> io::Result<()> {
        let index = self.state.parts.len() + self.in_flight.len();
        let len = part.len() as u64;
        let (store, path, id) = (
            self.s3.store.clone(),
            self.path.clone(),
            self.state.id.clone(),
        );
        let task = self.runtime.spawn(async move {
            store
                .put_part(&path, &id, index, PutPayload::from(part))
                .await
        });
        self.in_flight.push_back((task, len));
        while self.in_flight.len() > PARTS_IN_FLIGHT {
            self.wait_oldest()?;
        }
        Ok(())
    }

    fn wait_oldest(&mut self) -> io::Result<()> {
        if let Some((task, len)) = self.in_flight.pop_front() {
            let part = self
                .runtime
                .block_on(task)
                .map_err(io::Error::other)?
                .map_err(to_io)?;
            self.state.parts.push(Part {
                etag: part.content_id,
                len,
            });
        }
        Ok(())
    }

    /// Waits for every part and keeps what is not yet in one as a tail object at its end
    /// offset, so the state returned names every byte written. The bytes stay in the buffer:
    /// they go out in the next part as before.
    pub(super) fn checkpoint(&mut self) -> io::Result<(u64, Multipart)> {
        while !self.in_flight.is_empty() {
            self.wait_oldest()?;
        }
        self.state.tail = self.buffer.len() as u64;
        if !self.buffer.is_empty() {
            let end = self.state.durable_len();
            let tail = self.s3.tail_path(self.incoming, &self.state.key, end);
            let store = self.s3.store.clone();
            let bytes = Bytes::copy_from_slice(&self.buffer);
            self.runtime
                .block_on(async move { store.put(&tail, PutPayload::from(bytes)).await })
                .map_err(to_io)?;
        }
        Ok((self.written, self.state.clone()))
    }

    /// Waits for every part, then sends what is left as a part if it is big enough, or keeps
    /// it as the tail. Every byte written is durable when this returns.
    pub(super) fn finish(mut self) -> io::Result<(u64, Multipart)> {
        let rest = std::mem::take(&mut self.buffer);
        self.state.tail = 0;
        if rest.len() >= self.min_part {
            self.send(Bytes::from(rest))?;
        } else if !rest.is_empty() {
            while !self.in_flight.is_empty() {
                self.wait_oldest()?;
            }
            let end = self.state.parts_len() + rest.len() as u64;
            self.state.tail = rest.len() as u64;
            let tail = self.s3.tail_path(self.incoming, &self.state.key, end);
            let store = self.s3.store.clone();
            self.runtime
                .block_on(async move { store.put(&tail, PutPayload::from(rest)).await })
                .map_err(to_io)?;
        }
        while !self.in_flight.is_empty() {
            self.wait_oldest()?;
        }
        Ok((self.written, self.state.clone()))
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        // A writer dropped before `finish` (the request failed) leaves no part being sent.
        for (task, _) in self.in_flight.drain(..) {
            task.abort();
        }
    }
}

/// A committed object open for ranged reads.
pub(super) struct S3Reader {
    store: Arc<AmazonS3>,
    path: Path,
}

impl S3Reader {
    /// `len` bytes from `start` on, one ranged GET per block, `READ_AHEAD` ahead of the
    /// socket. `hold` is dropped with the last read in flight.
    pub(super) fn range<H: Send + Sync + 'static>(
        self,
        start: u64,
        len: u64,
        hold: H,
    ) -> impl futures::Stream<Item = io::Result<Bytes>> + Send + 'static {
        let reader = Arc::new((self, hold));
        futures::stream::iter(super::blocks(start, len, READ_BLOCK))
            .map(move |(at, n)| {
                let reader = Arc::clone(&reader);
                async move {
                    reader
                        .0
                        .store
                        .get_range(&reader.0.path, at..at + n)
                        .await
                        .map_err(to_io)
                }
            })
            .buffered(READ_AHEAD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_uploads_are_parsed_and_only_old_unrecorded_ones_go() {
        // As S3 documents ListMultipartUploads' answer.
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>images</Bucket>
  <KeyMarker></KeyMarker>
  <UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>console/images/c</NextKeyMarker>
  <NextUploadIdMarker>id-c</NextUploadIdMarker>
  <MaxUploads>1000</MaxUploads>
  <IsTruncated>true</IsTruncated>
  <Upload>
    <Key>console/images/a</Key>
    <UploadId>id-a</UploadId>
    <Initiator><ID>x</ID><DisplayName>x</DisplayName></Initiator>
    <StorageClass>STANDARD</StorageClass>
    <Initiated>2026-12-03T08:00:00.000Z</Initiated>
  </Upload>
  <Upload>
    <Key>console/images/b</Key>
    <UploadId>id-b</UploadId>
    <Initiated>2026-12-03T08:30:00.000Z</Initiated>
  </Upload>
  <Upload>
    <Key>console/images/c</Key>
    <UploadId>id-c</UploadId>
    <Initiated>2026-12-03T09:30:00.000Z</Initiated>
  </Upload>
</ListMultipartUploadsResult>"#;
        let page: ListMultipartUploadsResult = quick_xml::de::from_str(body).unwrap();
        assert!(page.is_truncated);
        assert_eq!(page.next_key_marker.as_deref(), Some("console/images/c"));
        assert_eq!(page.uploads.len(), 3);
        let recorded = HashSet::from(["id-b".to_owned()]);
        let gone: Vec<&str> = abandoned(
            &page.uploads,
            "console/images/",
            &recorded,
            "2026-12-03T09:00:00",
        )
        .map(|u| u.upload_id.as_str())
        .collect();
        // b is recorded, c is too recent.
        assert_eq!(gone, ["id-a"]);
        // Keys outside the console's prefix are never the console's, whatever the store says.
        let none = HashSet::new();
        let elsewhere: Vec<&str> =
            abandoned(&page.uploads, "other/images/", &none, "2026-12-03T10:00:00")
                .map(|u| u.upload_id.as_str())
                .collect();
        assert!(elsewhere.is_empty());
        let empty: ListMultipartUploadsResult = quick_xml::de::from_str(
            "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>",
        )
        .unwrap();
        assert!(empty.uploads.is_empty() && !empty.is_truncated);
        assert_eq!(
            iso_seconds(std::time::UNIX_EPOCH + Duration::from_secs(1_796_381_376)),
            "2026-12-04T10:49:36"
        );
    }
}
