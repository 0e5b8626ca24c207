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
//!
//! `transfer` holds the writer and the reader; `sweep` the listing and the sweeps of what no
//! row needs.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use serde::{Deserialize, Serialize};

use super::Incoming;

mod sweep;
mod transfer;

pub(super) use transfer::{S3Reader, S3Writer};

/// Parts are this size unless the image needs bigger ones to fit S3's 10,000 parts.
const PART_BYTES: u64 = 8 << 20;
/// S3's smallest part (all but the last).
const MIN_PART_BYTES: u64 = 5 << 20;
/// Parts of one writer being sent at once.
const PARTS_IN_FLIGHT: usize = 2;
/// Downloads fetch ranges of this size, `READ_AHEAD` at a time: an S3 server answers one
/// GET at a time per connection, so several in flight are what fills the client's socket.
pub(super) const READ_BLOCK: u64 = 8 << 20;
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

    pub(super) async fn read_range(
        &self,
        multipart: &Multipart,
        start: u64,
        len: u64,
    ) -> io::Result<Vec<u8>> {
        let path = self.blob_path(&multipart.key);
        let size = self.store.head(&path).await.map_err(to_io)?.size;
        let end = start.saturating_add(len).min(size);
        if start >= end {
            return Ok(Vec::new());
        }
        let read = self
            .store
            .get_range(&path, start..end)
            .await
            .map_err(to_io)?;
        Ok(read.to_vec())
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
}
