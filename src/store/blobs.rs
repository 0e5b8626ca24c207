//! Image bytes on the local filesystem.
//!
//! Bytes of a URL import arrive in `staging/<image id>.part`, those of a local-file upload in
//! `uploads/<image id>.part` (kept across restarts, so the upload can resume). Either is
//! fsynced, then renamed into `images/<image id>` and the directory fsynced: only then may a
//! row point at them. A file without a row is an orphan and is swept at start-up.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;

#[derive(Clone, Debug)]
pub struct BlobStore {
    root: PathBuf,
    /// Blob readers open (see `open_readers`).
    readers: Arc<AtomicUsize>,
}

/// Image ids are UUIDs; anything else must never become part of a path.
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

/// Bytes on their way in, not yet an image's: a URL import's or a local-file upload's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incoming {
    Import,
    Upload,
}

impl Incoming {
    fn dir(self) -> &'static str {
        match self {
            Incoming::Import => "staging",
            Incoming::Upload => "uploads",
        }
    }
}

impl BlobStore {
    /// Opens (creating) the store under `root`.
    pub fn open(root: impl Into<PathBuf>) -> anyhow::Result<Self> {
        let root = root.into();
        for dir in ["images", "staging", "uploads"] {
            std::fs::create_dir_all(root.join(dir))
                .with_context(|| format!("creating {}", root.join(dir).display()))?;
        }
        Ok(Self {
            root,
            readers: Default::default(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where bytes on their way in accumulate.
    fn incoming_path(&self, incoming: Incoming, image_id: &str) -> io::Result<PathBuf> {
        Ok(self
            .root
            .join(incoming.dir())
            .join(format!("{}.part", checked(image_id)?)))
    }

    /// Creates an upload's empty file and makes its name durable. Fails with `AlreadyExists`
    /// if the image has one.
    pub async fn create_upload_file(&self, image_id: &str) -> io::Result<()> {
        let path = self.incoming_path(Incoming::Upload, image_id)?;
        let dir = self.root.join(Incoming::Upload.dir());
        tokio::task::spawn_blocking(move || {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)?
                .sync_all()?;
            std::fs::File::open(dir)?.sync_all()
        })
        .await
        .map_err(io::Error::other)?
    }

    /// How many bytes of the image's incoming file are on disk (`None`: there is no file).
    pub async fn incoming_len(
        &self,
        incoming: Incoming,
        image_id: &str,
    ) -> io::Result<Option<u64>> {
        match tokio::fs::metadata(self.incoming_path(incoming, image_id)?).await {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Where a committed blob lives.
    fn blob_path(&self, key: &str) -> io::Result<PathBuf> {
        Ok(self.root.join("images").join(checked(key)?))
    }

    /// Moves complete, already fsynced incoming bytes into place and makes the rename
    /// durable. Returns the blob key to store in the row.
    pub async fn commit(&self, incoming: Incoming, image_id: &str) -> io::Result<String> {
        let from = self.incoming_path(incoming, image_id)?;
        let to = self.blob_path(image_id)?;
        tokio::fs::rename(&from, &to).await?;
        let dir = self.root.join("images");
        tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all())
            .await
            .map_err(io::Error::other)??;
        Ok(image_id.to_owned())
    }

    /// Removes a blob; a missing file is not an error.
    pub async fn remove_blob(&self, key: &str) -> io::Result<()> {
        ignore_missing(tokio::fs::remove_file(self.blob_path(key)?).await)
    }

    /// Removes an image's incoming bytes; a missing file is not an error.
    pub async fn remove_incoming(&self, incoming: Incoming, image_id: &str) -> io::Result<()> {
        ignore_missing(tokio::fs::remove_file(self.incoming_path(incoming, image_id)?).await)
    }

    /// The first `head` and last `tail` bytes of an image's incoming file (they overlap for a
    /// short file), for inspecting it without reading it all.
    pub async fn read_incoming_ends(
        &self,
        incoming: Incoming,
        image_id: &str,
        head: usize,
        tail: usize,
    ) -> io::Result<(Vec<u8>, Vec<u8>)> {
        use std::io::{Read, Seek, SeekFrom};
        let path = self.incoming_path(incoming, image_id)?;
        tokio::task::spawn_blocking(move || {
            let mut file = std::fs::File::open(path)?;
            let len = file.metadata()?.len();
            let mut first = Vec::with_capacity(head.min(len as usize));
            (&mut file).take(head as u64).read_to_end(&mut first)?;
            let tail_start = len.saturating_sub(tail as u64);
            file.seek(SeekFrom::Start(tail_start))?;
            let mut last = Vec::with_capacity(tail);
            file.take(tail as u64).read_to_end(&mut last)?;
            Ok((first, last))
        })
        .await
        .map_err(io::Error::other)?
    }

    pub async fn blob_exists(&self, key: &str) -> io::Result<bool> {
        tokio::fs::try_exists(self.blob_path(key)?).await
    }

    /// Opens a committed blob for reading (downloads).
    pub async fn open_blob(&self, key: &str) -> io::Result<BlobReader> {
        let path = self.blob_path(key)?;
        let file = tokio::task::spawn_blocking(move || std::fs::File::open(path))
            .await
            .map_err(io::Error::other)??;
        self.readers.fetch_add(1, Ordering::SeqCst);
        Ok(BlobReader {
            file,
            readers: self.readers.clone(),
        })
    }

    /// How many blob readers are open: files held for downloads in progress.
    pub fn open_readers(&self) -> usize {
        self.readers.load(Ordering::SeqCst)
    }

    /// Deletes every staging file, every upload file whose upload is no longer receiving and
    /// every blob no row names. Returns how many went. Run at start-up, before imports resume
    /// and requests are served, so nothing is in flight.
    pub async fn sweep_orphans(
        &self,
        live_keys: &HashSet<String>,
        live_uploads: &HashSet<String>,
    ) -> io::Result<usize> {
        let mut removed = 0;
        let mut staging = tokio::fs::read_dir(self.root.join(Incoming::Import.dir())).await?;
        while let Some(entry) = staging.next_entry().await? {
            ignore_missing(tokio::fs::remove_file(entry.path()).await)?;
            removed += 1;
        }
        let mut uploads = tokio::fs::read_dir(self.root.join(Incoming::Upload.dir())).await?;
        while let Some(entry) = uploads.next_entry().await? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let image_id = name.strip_suffix(".part").unwrap_or(&name);
            if !live_uploads.contains(image_id) {
                ignore_missing(tokio::fs::remove_file(entry.path()).await)?;
                removed += 1;
            }
        }
        let mut blobs = tokio::fs::read_dir(self.root.join("images")).await?;
        while let Some(entry) = blobs.next_entry().await? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !live_keys.contains(&name) {
                ignore_missing(tokio::fs::remove_file(entry.path()).await)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// A committed blob open for reading, counted in `BlobStore::open_readers` until dropped.
pub struct BlobReader {
    file: std::fs::File,
    readers: Arc<AtomicUsize>,
}

/// Downloads read the file in blocks of this size, each in one blocking call (a positioned
/// read straight into the block the response sends), and keep `READ_AHEAD` of them in flight,
/// so the next block is ready when the socket takes this one. No thread waits on a slow
/// client: a block is read only when the response asks for one.
pub const READ_BLOCK: u64 = 2 << 20;
const READ_AHEAD: usize = 2;

impl BlobReader {
    /// `len` bytes from `start` on, as a stream of blocks. The blocks are aligned to
    /// `READ_BLOCK` in the file (the first and last may be shorter). Dropping the stream
    /// stops it: reads in flight finish, and the file closes with the last of them.
    pub fn range(
        self,
        start: u64,
        len: u64,
    ) -> impl futures::Stream<Item = io::Result<bytes::Bytes>> + Send + 'static {
        use futures::StreamExt;
        let end = start + len;
        let block_end = move |at: u64| ((at / READ_BLOCK + 1) * READ_BLOCK).min(end);
        let blocks = std::iter::successors(Some(start).filter(|_| len > 0), move |&at| {
            Some(block_end(at)).filter(|&next| next < end)
        })
        .map(move |at| (at, block_end(at) - at));
        let reader = Arc::new(self);
        futures::stream::iter(blocks)
            .map(move |(at, n)| {
                let reader = Arc::clone(&reader);
                async move {
                    tokio::task::spawn_blocking(move || reader.read_block(at, n as usize))
                        .await
                        .map_err(io::Error::other)?
                }
            })
            .buffered(READ_AHEAD)
    }

    fn read_block(&self, at: u64, n: usize) -> io::Result<bytes::Bytes> {
        use std::os::unix::fs::FileExt;
        let mut block = vec![0u8; n];
        self.file.read_exact_at(&mut block, at)?;
        Ok(bytes::Bytes::from(block))
    }
}

impl Drop for BlobReader {
    fn drop(&mut self) {
        self.readers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Appends to an incoming file from its durable offset on. Whole aligned blocks go straight
/// to the disk (O_DIRECT): an upload is written once and not read back soon, and copying it
/// through the page cache cost more CPU than hashing it. The unaligned start and end go
/// through the page cache. `finish` fsyncs both.
pub struct BlobWriter {
    buffered: std::fs::File,
    direct: Option<std::fs::File>,
    /// File offset of `block[0]`, aligned once past the unaligned start.
    block_start: u64,
    storage: Vec<u8>,
    block_offset: usize,
    block_len: usize,
    written: u64,
}

const DIRECT_ALIGN: usize = 4096;
const DIRECT_BLOCK: usize = 1 << 20;

impl BlobWriter {
    fn block(&mut self) -> &mut [u8] {
        &mut self.storage[self.block_offset..self.block_offset + DIRECT_BLOCK]
    }

    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.written += data.len() as u64;
        // Up to the first aligned offset, through the page cache.
        let misalignment = (self.block_start % DIRECT_ALIGN as u64) as usize;
        if misalignment != 0 && self.block_len == 0 {
            let head = (DIRECT_ALIGN - misalignment).min(data.len());
            self.buffered
                .write_all_at(&data[..head], self.block_start)?;
            self.block_start += head as u64;
            data = &data[head..];
        }
        while !data.is_empty() {
            let take = (DIRECT_BLOCK - self.block_len).min(data.len());
            let at = self.block_len;
            self.block()[at..at + take].copy_from_slice(&data[..take]);
            self.block_len += take;
            data = &data[take..];
            if self.block_len == DIRECT_BLOCK {
                self.flush_block(DIRECT_BLOCK)?;
            }
        }
        Ok(())
    }

    /// Writes the first `len` bytes of the block (a multiple of the alignment, or all that is
    /// left at the end) and moves the rest to its start.
    fn flush_block(&mut self, len: usize) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let start = self.block_start;
        let (aligned, offset) = (len - len % DIRECT_ALIGN, self.block_offset);
        let mut done = 0;
        if aligned > 0
            && let Some(direct) = &self.direct
        {
            match direct.write_all_at(&self.storage[offset..offset + aligned], start) {
                Ok(()) => done = aligned,
                // A filesystem without O_DIRECT for this size: the page cache it is.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.direct = None,
                Err(e) => return Err(e),
            }
        }
        self.buffered.write_all_at(
            &self.storage[offset + done..offset + len],
            start + done as u64,
        )?;
        self.block_start += len as u64;
        self.storage
            .copy_within(offset + len..offset + self.block_len, offset);
        self.block_len -= len;
        Ok(())
    }

    /// Writes what is left and makes every byte durable. Returns how many were written.
    pub fn finish(mut self) -> io::Result<u64> {
        if self.block_len > 0 {
            self.flush_block(self.block_len)?;
        }
        self.buffered.sync_data()?;
        Ok(self.written)
    }
}

impl BlobStore {
    /// Starts an import's file, empty (a file left by an earlier attempt is emptied).
    pub fn create_import_writer(&self, image_id: &str) -> io::Result<BlobWriter> {
        let path = self.incoming_path(Incoming::Import, image_id)?;
        std::fs::File::create(&path)?;
        self.open_incoming_at(Incoming::Import, image_id, 0)?
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    /// Opens an upload's file for appending at `offset`, dropping anything past it (bytes of
    /// a request cut off before its offset was saved). `None` if bytes before it are missing.
    pub fn open_upload_at(&self, image_id: &str, offset: u64) -> io::Result<Option<BlobWriter>> {
        self.open_incoming_at(Incoming::Upload, image_id, offset)
    }

    fn open_incoming_at(
        &self,
        incoming: Incoming,
        image_id: &str,
        offset: u64,
    ) -> io::Result<Option<BlobWriter>> {
        let path = self.incoming_path(incoming, image_id)?;
        let buffered = match std::fs::OpenOptions::new().write(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if buffered.metadata()?.len() < offset {
            return Ok(None);
        }
        buffered.set_len(offset)?;
        #[cfg(target_os = "linux")]
        let direct = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_DIRECT)
                .open(&path)
                .ok()
        };
        #[cfg(not(target_os = "linux"))]
        let direct = None;
        let storage = vec![0u8; DIRECT_BLOCK + DIRECT_ALIGN];
        let block_offset = storage.as_ptr().align_offset(DIRECT_ALIGN);
        Ok(Some(BlobWriter {
            buffered,
            direct,
            block_start: offset,
            storage,
            block_offset,
            block_len: 0,
            written: 0,
        }))
    }
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
    fn upload_writes_land_at_their_offsets_whatever_the_alignment() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let id = "0b5d3c1e-aaaa-4bbb-8ccc-0123456789ab";
        let path = dir.path().join("uploads").join(format!("{id}.part"));
        std::fs::write(&path, b"").unwrap();
        let data: Vec<u8> = (0..3_500_000u32).map(|i| (i % 251) as u8).collect();
        // Three requests: an odd start, pieces of every size, a short tail.
        let mut offset = 0;
        for end in [1_000_001usize, 2_100_000, data.len()] {
            let mut writer = store.open_upload_at(id, offset as u64).unwrap().unwrap();
            for piece in data[offset..end].chunks(77_777) {
                writer.write(piece).unwrap();
            }
            assert_eq!(writer.finish().unwrap(), (end - offset) as u64);
            offset = end;
        }
        assert_eq!(std::fs::read(&path).unwrap(), data);
        // Bytes past a durable offset are dropped when the next request opens the file.
        let writer = store.open_upload_at(id, 10).unwrap().unwrap();
        writer.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), &data[..10]);
        assert!(store.open_upload_at(id, 11).unwrap().is_none());
    }

    #[tokio::test]
    async fn ranges_are_read_in_aligned_blocks() {
        use futures::StreamExt;
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let key = "0b5d3c1e-aaaa-4bbb-8ccc-0123456789ab";
        let block = READ_BLOCK as usize;
        let data: Vec<u8> = (0..2 * block + 12_345).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("images").join(key), &data).unwrap();
        for (start, len) in [
            (0, data.len()),
            (0, 1),
            (block - 1, 2),
            (block, block),
            (100, 2 * block),
            (data.len() - 1, 1),
            (7, 0),
        ] {
            let pieces: Vec<bytes::Bytes> = store
                .open_blob(key)
                .await
                .unwrap()
                .range(start as u64, len as u64)
                .map(|piece| piece.unwrap())
                .collect()
                .await;
            assert_eq!(pieces.concat(), &data[start..start + len], "{start}+{len}");
            // Every block but the first starts on a block boundary.
            let mut at = start;
            for (i, piece) in pieces.iter().enumerate() {
                assert!(
                    i == 0 || at % block == 0,
                    "{start}+{len}: block {i} at {at}"
                );
                assert!(piece.len() <= block);
                at += piece.len();
            }
        }
        assert_eq!(store.open_readers(), 0);
    }

    #[test]
    fn keys_cannot_escape_the_store() {
        let store = BlobStore {
            root: PathBuf::from("/data"),
            readers: Default::default(),
        };
        assert!(store.blob_path("../etc/passwd").is_err());
        assert!(store.blob_path("a/b").is_err());
        assert!(store.blob_path("").is_err());
        assert_eq!(
            store
                .blob_path("0b5d3c1e-aaaa-4bbb-8ccc-0123456789ab")
                .unwrap(),
            PathBuf::from("/data/images/0b5d3c1e-aaaa-4bbb-8ccc-0123456789ab")
        );
    }
}
