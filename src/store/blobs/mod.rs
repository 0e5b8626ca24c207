//! Image bytes: the blob store, the only code that knows where they are kept.
//!
//! Two backends, chosen by `STORAGE_URL`: files under a directory (`files`, the default) or
//! objects in an S3-compatible bucket (`s3`). Callers name bytes by image id, and bytes on
//! their way in by `Incoming` kind; they never see a path or an object key.
//!
//! Incoming bytes go through the same steps on both: `begin_incoming` (its `IncomingState`
//! goes into the database before any byte is sent), `open_writer` at the durable offset,
//! `BlobWriter::finish` (every byte written is durable; the new state goes into the database
//! with the new offset), `assemble` once all are in, `read_incoming_ends` for the inspector,
//! then `commit`, after which a row may name the blob. `remove_incoming` undoes any of it.

mod files;
mod s3;
pub mod sealed;

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::stream::BoxStream;

pub use files::READ_BLOCK;

/// Where image bytes are kept: `STORAGE_URL`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageLocation {
    /// `file:///path`: files under a directory.
    Files(PathBuf),
    /// `s3://bucket/prefix`: objects in a bucket, under an optional prefix.
    S3 { bucket: String, prefix: String },
}

impl StorageLocation {
    /// Parses `file:///absolute/path` or `s3://bucket[/prefix]`; the error says what is wrong.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = url::Url::parse(raw)
            .map_err(|e| format!("{e}; expected file:///absolute/path or s3://bucket/prefix"))?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err("a storage URL takes no query or fragment".into());
        }
        match url.scheme() {
            "file" => {
                if url.host_str().is_some_and(|h| !h.is_empty()) {
                    return Err("a file URL names a local path: file:///absolute/path".into());
                }
                let path = url
                    .to_file_path()
                    .map_err(|()| "the file URL's path is not an absolute local path".to_owned())?;
                Ok(Self::Files(path))
            }
            "s3" => {
                let bucket = url.host_str().unwrap_or_default();
                if !valid_bucket(bucket) {
                    return Err(format!(
                        "\"{bucket}\" is not a bucket name (3 to 63 lower-case letters, digits, '.' and '-'): use s3://bucket/prefix"
                    ));
                }
                let prefix = url.path().trim_matches('/');
                if prefix
                    .split('/')
                    .any(|part| part.is_empty() && !prefix.is_empty())
                    || prefix.contains("..")
                {
                    return Err(format!("\"{prefix}\" is not a usable key prefix"));
                }
                Ok(Self::S3 {
                    bucket: bucket.to_owned(),
                    prefix: prefix.to_owned(),
                })
            }
            other => Err(format!(
                "\"{other}:\" is not a storage scheme; use file:///absolute/path or s3://bucket/prefix"
            )),
        }
    }
}

fn valid_bucket(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

#[derive(Clone, Debug)]
pub struct BlobStore {
    backend: Backend,
    /// Blob readers open (see `open_readers`).
    readers: Arc<AtomicUsize>,
}

#[derive(Clone, Debug)]
enum Backend {
    Files(files::Files),
    S3(s3::S3),
}

/// Bytes on their way in, not yet an image's: a URL import's or a local-file upload's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Incoming {
    Import,
    Upload,
}

impl Incoming {
    /// The word the database records.
    pub fn as_str(self) -> &'static str {
        match self {
            Incoming::Import => "import",
            Incoming::Upload => "upload",
        }
    }
}

/// What the database must keep about incoming bytes so that any console process can go on
/// with them or remove them: nothing for files (the file is all there is); for S3 the
/// multipart upload's id, its parts and the length of the tail kept beside them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IncomingState(Option<s3::Multipart>);

impl IncomingState {
    /// What to store, if anything.
    pub fn to_db(&self) -> Option<String> {
        self.0.as_ref().map(s3::Multipart::to_db)
    }

    pub fn from_db(stored: Option<&str>) -> io::Result<Self> {
        stored
            .map(s3::Multipart::from_db)
            .transpose()
            .map(IncomingState)
    }

    /// The multipart upload's id, on object storage.
    pub fn multipart_id(&self) -> Option<&str> {
        self.0.as_ref().map(s3::Multipart::upload_id)
    }
}

/// What the store holds: committed blobs' keys, and the image ids with incoming bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredBlobs {
    pub images: Vec<String>,
    pub imports: Vec<String>,
    pub uploads: Vec<String>,
}

/// Image ids are UUIDs and blob keys are image ids; anything else must never become part of
/// a path or an object key.
fn checked(key: &str) -> io::Result<&str> {
    if !key.is_empty() && key.len() <= 64 && key.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
    {
        Ok(key)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "invalid blob key",
        ))
    }
}

impl BlobStore {
    /// Opens (creating) a file store under `root`.
    pub fn open(root: impl Into<PathBuf>) -> anyhow::Result<Self> {
        Ok(Self::with(Backend::Files(files::Files::open(root.into())?)))
    }

    /// Opens the store `STORAGE_URL` names; `aws` holds the `AWS_*` settings for S3 (name and
    /// value). A bucket is checked first: one that cannot be reached or refuses the
    /// credentials stops the start with the reason.
    pub async fn connect(
        location: &StorageLocation,
        aws: &[(String, String)],
    ) -> anyhow::Result<Self> {
        match location {
            StorageLocation::Files(root) => Self::open(root.clone()),
            StorageLocation::S3 { bucket, prefix } => Ok(Self::with(Backend::S3(
                s3::S3::connect(bucket, prefix, aws).await?,
            ))),
        }
    }

    fn with(backend: Backend) -> Self {
        Self {
            backend,
            readers: Default::default(),
        }
    }

    /// The store, for the start-up log: a directory or a bucket and prefix.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Files(files) => format!("files under {}", files.root().display()),
            Backend::S3(s3) => s3.describe(),
        }
    }

    /// Whether each attempt at an image's bytes gets keys of its own (object storage), so
    /// removing one attempt's never touches another's. On files an image's incoming bytes
    /// and its blob each have one place.
    pub fn keys_are_per_attempt(&self) -> bool {
        matches!(self.backend, Backend::S3(_))
    }

    /// The directory of a file store (`None` on object storage).
    pub fn root(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Files(files) => Some(files.root()),
            Backend::S3(_) => None,
        }
    }

    /// Starts incoming bytes for the image. An upload's must not have begun already
    /// (`AlreadyExists`, on files); an import's starts over. The state must be recorded before
    /// any byte is written.
    pub async fn begin_incoming(
        &self,
        incoming: Incoming,
        image_id: &str,
    ) -> io::Result<IncomingState> {
        checked(image_id)?;
        match &self.backend {
            Backend::Files(files) => {
                files.begin_incoming(incoming, image_id).await?;
                Ok(IncomingState::default())
            }
            Backend::S3(s3) => Ok(IncomingState(Some(s3.begin(image_id).await?))),
        }
    }

    /// How many of the image's incoming bytes are durable (`None`: they are gone).
    pub async fn incoming_len(
        &self,
        incoming: Incoming,
        image_id: &str,
        state: &IncomingState,
    ) -> io::Result<Option<u64>> {
        match (&self.backend, &state.0) {
            (Backend::Files(files), _) => files.incoming_len(incoming, image_id).await,
            (Backend::S3(s3), Some(multipart)) => s3.durable_len(incoming, multipart).await,
            (Backend::S3(_), None) => Ok(None),
        }
    }

    /// Opens the image's incoming bytes for appending at `offset`, the durable offset the
    /// database recorded with `state`. Anything written past it by a request cut off before
    /// its offset was saved is dropped. `None` if bytes before `offset` are missing.
    /// `size_hint` is the most the bytes will come to: object storage sizes its parts by it.
    /// With `seal` the bytes are sealed as they are written (see `sealed`): `offset` and
    /// `size_hint` count plain bytes, and `offset` must be a segment boundary.
    pub async fn open_writer(
        &self,
        incoming: Incoming,
        image_id: &str,
        state: &IncomingState,
        offset: u64,
        size_hint: u64,
        seal: Option<&sealed::SegmentCipher>,
    ) -> io::Result<Option<BlobWriter>> {
        let image_id = checked(image_id)?.to_owned();
        let (stored_offset, stored_hint) = match seal {
            Some(_) => (sealed::sealed_offset(offset), sealed::sealed_len(size_hint)),
            None => (offset, size_hint),
        };
        let sealing = seal
            .map(|cipher| sealed::Sealer::at(cipher.clone(), offset))
            .transpose()?
            .map(|sealer| Sealing {
                sealer: Some(sealer),
                buffer: Vec::new(),
                plain_start: offset,
            });
        let kind = match (&self.backend, &state.0) {
            (Backend::Files(files), _) => {
                let files = files.clone();
                let writer = tokio::task::spawn_blocking(move || {
                    files.open_incoming_at(incoming, &image_id, stored_offset)
                })
                .await
                .map_err(io::Error::other)??;
                writer.map(WriterKind::File)
            }
            (Backend::S3(s3), Some(multipart)) => s3
                .open_writer(incoming, multipart, stored_offset, stored_hint)
                .await?
                .map(|w| WriterKind::S3(Box::new(w))),
            (Backend::S3(_), None) => None,
        };
        Ok(kind.map(|kind| BlobWriter { kind, sealing }))
    }

    /// Joins every durable piece of complete incoming bytes into one, ready to inspect.
    pub async fn assemble(
        &self,
        incoming: Incoming,
        image_id: &str,
        state: &IncomingState,
    ) -> io::Result<()> {
        checked(image_id)?;
        match (&self.backend, &state.0) {
            (Backend::Files(_), _) => Ok(()),
            (Backend::S3(s3), Some(multipart)) => s3.assemble(incoming, multipart).await,
            (Backend::S3(_), None) => Err(not_recorded()),
        }
    }

    /// `len` stored bytes from `start` of the image's assembled incoming bytes (fewer past
    /// their end), for inspecting it without reading it all.
    pub async fn read_incoming_range(
        &self,
        incoming: Incoming,
        image_id: &str,
        state: &IncomingState,
        start: u64,
        len: u64,
    ) -> io::Result<Vec<u8>> {
        match (&self.backend, &state.0) {
            (Backend::Files(files), _) => {
                files
                    .read_incoming_range(incoming, image_id, start, len)
                    .await
            }
            (Backend::S3(s3), Some(multipart)) => s3.read_range(multipart, start, len).await,
            (Backend::S3(_), None) => Err(not_recorded()),
        }
    }

    /// Makes assembled, inspected incoming bytes the image's blob. Returns the blob key to
    /// store in the row.
    pub async fn commit(
        &self,
        incoming: Incoming,
        image_id: &str,
        state: &IncomingState,
    ) -> io::Result<String> {
        match (&self.backend, &state.0) {
            (Backend::Files(files), _) => files.commit(incoming, checked(image_id)?).await,
            // `assemble` already put the object where the blob lives.
            (Backend::S3(_), Some(multipart)) => Ok(multipart.key().to_owned()),
            (Backend::S3(_), None) => Err(not_recorded()),
        }
    }

    /// `commit` for bytes that replace the image's blob (its converted bytes): on files they
    /// get a key of their own beside the image's id, so the blob they replace stays where it
    /// is until the row names the new one. Object storage keys are per attempt already.
    pub async fn commit_replacement(
        &self,
        incoming: Incoming,
        image_id: &str,
        state: &IncomingState,
    ) -> io::Result<String> {
        match (&self.backend, &state.0) {
            (Backend::Files(files), _) => {
                let key = format!("{}-{:016x}", checked(image_id)?, rand::random::<u64>());
                files.commit_as(incoming, image_id, &key).await
            }
            (Backend::S3(_), Some(multipart)) => Ok(multipart.key().to_owned()),
            (Backend::S3(_), None) => Err(not_recorded()),
        }
    }

    /// The local file of a committed blob, for a program to read in place; `None` on object
    /// storage.
    pub fn blob_file(&self, key: &str) -> io::Result<Option<PathBuf>> {
        match &self.backend {
            Backend::Files(files) => files.blob_file(key).map(Some),
            Backend::S3(_) => Ok(None),
        }
    }

    /// Removes an image's incoming bytes, whatever step they reached before `commit`. A file,
    /// object or tail already gone is not an error; aborting a multipart upload twice is, on
    /// stores that answer an unknown upload id with 403 rather than S3's 404.
    pub async fn remove_incoming(
        &self,
        incoming: Incoming,
        image_id: &str,
        state: &IncomingState,
    ) -> io::Result<()> {
        match &self.backend {
            Backend::Files(files) => files.remove_incoming(incoming, checked(image_id)?).await,
            Backend::S3(s3) => match &state.0 {
                Some(multipart) => s3.remove_incoming(incoming, multipart).await,
                // Nothing was recorded, so nothing was sent.
                None => Ok(()),
            },
        }
    }

    /// Removes the tail object `earlier` named once the database records `now` instead (a
    /// tail is named by its end, so a later state never names an earlier one's). Nothing on
    /// files.
    pub async fn remove_superseded_tail(
        &self,
        incoming: Incoming,
        earlier: &IncomingState,
        now: &IncomingState,
    ) -> io::Result<()> {
        match (&self.backend, &earlier.0, &now.0) {
            (Backend::S3(s3), Some(earlier), Some(now)) => {
                s3.remove_superseded_tail(incoming, earlier, now).await
            }
            _ => Ok(()),
        }
    }

    /// Removes a blob; a missing one is not an error.
    pub async fn remove_blob(&self, key: &str) -> io::Result<()> {
        match &self.backend {
            Backend::Files(files) => files.remove_blob(key).await,
            Backend::S3(s3) => s3.remove_blob(checked(key)?).await,
        }
    }

    /// A committed blob's length (`None`: there is no such blob).
    pub async fn blob_len(&self, key: &str) -> io::Result<Option<u64>> {
        match &self.backend {
            Backend::Files(files) => files.blob_len(key).await,
            Backend::S3(s3) => s3.blob_len(checked(key)?).await,
        }
    }

    /// Opens a committed blob for reading (downloads).
    pub async fn open_blob(&self, key: &str) -> io::Result<BlobReader> {
        let kind = match &self.backend {
            Backend::Files(files) => ReaderKind::File(files.open_blob(key).await?),
            Backend::S3(s3) => ReaderKind::S3(s3.open_blob(checked(key)?).await?),
        };
        self.readers.fetch_add(1, Ordering::SeqCst);
        Ok(BlobReader {
            kind,
            open: OpenReader(self.readers.clone()),
            seal: None,
        })
    }

    /// How many blob readers are open: downloads in progress.
    pub fn open_readers(&self) -> usize {
        self.readers.load(Ordering::SeqCst)
    }

    /// What the store holds (for checks and tests; it lists the whole store).
    pub async fn list(&self) -> io::Result<StoredBlobs> {
        match &self.backend {
            Backend::Files(files) => files.list().await,
            Backend::S3(s3) => s3.list().await,
        }
    }

    /// Aborts multipart uploads the store lists that the database never recorded
    /// (`recorded` ids), begun over an hour ago. `None` on files, and on stores that do not
    /// list multipart uploads.
    pub async fn sweep_unrecorded_multiparts(
        &self,
        recorded: &HashSet<String>,
    ) -> io::Result<Option<usize>> {
        match &self.backend {
            Backend::Files(_) => Ok(None),
            Backend::S3(s3) => s3.sweep_unrecorded_multiparts(recorded).await,
        }
    }

    /// Deletes incoming bytes no live upload keeps and blobs no row names. Returns how many
    /// went. Files: run at start-up, before imports resume and requests are served. Objects:
    /// other console processes may be writing, so only what has not changed for an hour goes.
    pub async fn sweep_orphans(
        &self,
        live_keys: &HashSet<String>,
        live_uploads: &HashSet<String>,
    ) -> io::Result<usize> {
        match &self.backend {
            Backend::Files(files) => files.sweep_orphans(live_keys, live_uploads).await,
            Backend::S3(s3) => s3.sweep_orphans(live_keys, live_uploads).await,
        }
    }
}

/// Writes incoming bytes from a durable offset on. `write` runs on a blocking thread (the
/// ingest writer lane's); `checkpoint` and `finish` make every byte written durable and
/// return how many there were and the state to record with the new offset. A sealing writer
/// counts plain bytes, and makes durable only whole segments until the stream's end.
pub struct BlobWriter {
    kind: WriterKind,
    sealing: Option<Sealing>,
}

enum WriterKind {
    File(files::FileWriter),
    S3(Box<s3::S3Writer>),
}

/// A writer's sealer, and its buffer of sealed bytes on their way to the store.
struct Sealing {
    /// `None` once the last segment is sealed.
    sealer: Option<sealed::Sealer>,
    buffer: Vec<u8>,
    /// The plain offset the writer opened at.
    plain_start: u64,
}

impl Sealing {
    fn sealed_since_start(&self) -> u64 {
        self.sealer
            .as_ref()
            .map_or(0, |s| s.sealed_through() - self.plain_start)
    }
}

impl WriterKind {
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            WriterKind::File(writer) => writer.write(data),
            WriterKind::S3(writer) => writer.write(data),
        }
    }

    fn checkpoint(&mut self) -> io::Result<(u64, IncomingState)> {
        match self {
            WriterKind::File(writer) => Ok((writer.checkpoint()?, IncomingState::default())),
            WriterKind::S3(writer) => {
                let (written, multipart) = writer.checkpoint()?;
                Ok((written, IncomingState(Some(multipart))))
            }
        }
    }

    fn finish(self) -> io::Result<(u64, IncomingState)> {
        match self {
            WriterKind::File(writer) => Ok((writer.finish()?, IncomingState::default())),
            WriterKind::S3(writer) => {
                let (written, multipart) = writer.finish()?;
                Ok((written, IncomingState(Some(multipart))))
            }
        }
    }
}

fn unaligned() -> io::Error {
    io::Error::other("sealed bytes are made durable only at a segment boundary")
}

impl BlobWriter {
    /// The boundary durable offsets must fall on: a segment when sealing.
    pub fn alignment(&self) -> Option<u64> {
        self.sealing.as_ref().map(|_| sealed::SEGMENT_BYTES as u64)
    }

    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.sealing {
            None => self.kind.write(data),
            Some(sealing) => {
                let sealer = sealing.sealer.as_mut().ok_or_else(unaligned)?;
                sealer.push(data, &mut sealing.buffer)?;
                if !sealing.buffer.is_empty() {
                    self.kind.write(&sealing.buffer)?;
                    sealing.buffer.clear();
                }
                Ok(())
            }
        }
    }

    /// Makes every byte written so far durable and goes on: how many there were and the
    /// state to record with that offset. On object storage a short remainder becomes a tail
    /// object (the bytes also stay in the buffer for the next part).
    pub fn checkpoint(&mut self) -> io::Result<(u64, IncomingState)> {
        let (written, state) = self.kind.checkpoint()?;
        match &self.sealing {
            None => Ok((written, state)),
            Some(sealing) if sealing.sealer.as_ref().is_some_and(|s| s.pending() == 0) => {
                Ok((sealing.sealed_since_start(), state))
            }
            Some(_) => Err(unaligned()),
        }
    }

    /// Writes what is left and makes every byte durable. `last`: these are the stream's last
    /// bytes (a sealing writer seals its last segment); otherwise the stream goes on later
    /// from here, which for sealed bytes must be a segment boundary.
    pub fn finish(mut self, last: bool) -> io::Result<(u64, IncomingState)> {
        let Some(mut sealing) = self.sealing.take() else {
            return self.kind.finish();
        };
        let sealer = sealing.sealer.take().ok_or_else(unaligned)?;
        let plain = sealer.sealed_through() + sealer.pending() as u64 - sealing.plain_start;
        if last {
            sealer.finish(&mut sealing.buffer)?;
            self.kind.write(&sealing.buffer)?;
        } else if sealer.pending() != 0 {
            return Err(unaligned());
        }
        let (_, state) = self.kind.finish()?;
        Ok((plain, state))
    }
}

/// A committed blob open for reading, counted in `BlobStore::open_readers` until dropped.
pub struct BlobReader {
    kind: ReaderKind,
    open: OpenReader,
    /// A sealed blob's cipher and plain length: ranges are plain bytes, opened as they come.
    seal: Option<(sealed::SegmentCipher, u64)>,
}

enum ReaderKind {
    File(files::FileReader),
    S3(s3::S3Reader),
}

/// Counts a reader as open until the last read in flight drops it.
struct OpenReader(Arc<AtomicUsize>);

impl Drop for OpenReader {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl BlobReader {
    /// Reads the blob as sealed bytes of `plain_len` plain bytes, opened with `cipher`.
    pub fn sealed(mut self, cipher: sealed::SegmentCipher, plain_len: u64) -> Self {
        self.seal = Some((cipher, plain_len));
        self
    }

    /// `len` bytes from `start` on, as a stream of blocks. Dropping the stream stops it: reads
    /// in flight finish, and the blob closes with the last of them. A sealed blob's range is
    /// of plain bytes: only the segments it needs are read, and a segment that fails
    /// authentication ends the stream with an error before any of its bytes.
    pub fn range(self, start: u64, len: u64) -> BoxStream<'static, io::Result<bytes::Bytes>> {
        use futures::StreamExt;
        let block = match &self.kind {
            ReaderKind::File(_) => files::READ_BLOCK,
            ReaderKind::S3(_) => s3::READ_BLOCK,
        };
        // Sealed bytes are read in blocks of whole segments, which open independently.
        let (stored_start, stored_len, block) = match &self.seal {
            None => (start, len, block),
            Some((_, plain_len)) => {
                let range = sealed::SealedRange::of(*plain_len, start, len);
                (
                    range.stored_start,
                    range.stored_len,
                    sealed::sealed_block(block),
                )
            }
        };
        let stored = match self.kind {
            ReaderKind::File(file) => file
                .range(stored_start, stored_len, block, self.open)
                .boxed(),
            ReaderKind::S3(object) => object
                .range(stored_start, stored_len, block, self.open)
                .boxed(),
        };
        match self.seal {
            None => stored,
            Some((cipher, plain_len)) => sealed::open_blocks(
                cipher,
                sealed::SealedRange::of(plain_len, start, len),
                stored,
            ),
        }
    }
}

/// The blocks `(offset, length)` of `len` bytes from `start`, aligned to `block` (the first
/// and last may be shorter).
fn blocks(start: u64, len: u64, block: u64) -> impl Iterator<Item = (u64, u64)> + Send {
    let end = start + len;
    let block_end = move |at: u64| ((at / block + 1) * block).min(end);
    std::iter::successors(Some(start).filter(|_| len > 0), move |&at| {
        Some(block_end(at)).filter(|&next| next < end)
    })
    .map(move |at| (at, block_end(at) - at))
}

fn not_recorded() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no multipart upload recorded")
}

fn ignore_missing(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_urls_are_parsed_or_refused_with_the_reason() {
        assert_eq!(
            StorageLocation::parse("file:///var/lib/images").unwrap(),
            StorageLocation::Files("/var/lib/images".into())
        );
        assert_eq!(
            StorageLocation::parse("s3://images-prod/console/blobs/").unwrap(),
            StorageLocation::S3 {
                bucket: "images-prod".into(),
                prefix: "console/blobs".into()
            }
        );
        assert_eq!(
            StorageLocation::parse("s3://images").unwrap(),
            StorageLocation::S3 {
                bucket: "images".into(),
                prefix: String::new()
            }
        );
        for (bad, says) in [
            ("/var/lib/images", "relative URL"),
            ("ftp://host/x", "not a storage scheme"),
            ("file://host/x", "local path"),
            ("s3://Images", "not a bucket name"),
            ("s3://ab/x", "not a bucket name"),
            ("s3://images/a//b", "not a usable key prefix"),
            ("s3://images/x?region=eu", "no query"),
        ] {
            let error = StorageLocation::parse(bad).unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
        }
    }

    #[test]
    fn blocks_are_aligned() {
        let aligned: Vec<_> = blocks(5, 20, 8).collect();
        assert_eq!(aligned, [(5, 3), (8, 8), (16, 8), (24, 1)]);
        assert_eq!(blocks(7, 0, 8).count(), 0);
    }
}
