//! Image bytes as files under one directory.
//!
//! Bytes of a URL import arrive in `staging/<image id>.part`, those of a local-file upload in
//! `uploads/<image id>.part` (kept across restarts, so the upload can resume). Either is
//! fsynced, then renamed into `images/<image id>` and the directory fsynced: only then may a
//! row point at them. A file without a row is an orphan and is swept at start-up.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use super::{Incoming, checked, ignore_missing};

#[derive(Clone, Debug)]
pub(super) struct Files {
    root: PathBuf,
}

impl Incoming {
    fn dir(self) -> &'static str {
        match self {
            Incoming::Import => "staging",
            Incoming::Upload => "uploads",
        }
    }
}

impl Files {
    /// Opens (creating) the store under `root`.
    pub(super) fn open(root: PathBuf) -> anyhow::Result<Self> {
        for dir in ["images", "staging", "uploads"] {
            std::fs::create_dir_all(root.join(dir))
                .with_context(|| format!("creating {}", root.join(dir).display()))?;
        }
        Ok(Self { root })
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    /// Where bytes on their way in accumulate.
    fn incoming_path(&self, incoming: Incoming, image_id: &str) -> io::Result<PathBuf> {
        Ok(self
            .root
            .join(incoming.dir())
            .join(format!("{}.part", checked(image_id)?)))
    }

    /// Creates the incoming file and makes its name durable. An upload's must not exist yet
    /// (`AlreadyExists`: the image has one); an import's is emptied, whatever an earlier
    /// attempt left.
    pub(super) async fn begin_incoming(
        &self,
        incoming: Incoming,
        image_id: &str,
    ) -> io::Result<()> {
        let path = self.incoming_path(incoming, image_id)?;
        let dir = self.root.join(incoming.dir());
        tokio::task::spawn_blocking(move || {
            let mut options = std::fs::OpenOptions::new();
            options.write(true);
            match incoming {
                Incoming::Upload => options.create_new(true),
                Incoming::Import => options.create(true).truncate(true),
            };
            options.open(&path)?.sync_all()?;
            std::fs::File::open(dir)?.sync_all()
        })
        .await
        .map_err(io::Error::other)?
    }

    /// How many bytes of the image's incoming file are on disk (`None`: there is no file).
    pub(super) async fn incoming_len(
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
    pub(super) async fn commit(&self, incoming: Incoming, image_id: &str) -> io::Result<String> {
        self.commit_as(incoming, image_id, image_id).await
    }

    /// `commit`, under the blob key `key` instead of the image's id.
    pub(super) async fn commit_as(
        &self,
        incoming: Incoming,
        image_id: &str,
        key: &str,
    ) -> io::Result<String> {
        let from = self.incoming_path(incoming, image_id)?;
        let to = self.blob_path(key)?;
        tokio::fs::rename(&from, &to).await?;
        let dir = self.root.join("images");
        tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all())
            .await
            .map_err(io::Error::other)??;
        Ok(key.to_owned())
    }

    /// Where a committed blob's file is.
    pub(super) fn blob_file(&self, key: &str) -> io::Result<PathBuf> {
        self.blob_path(key)
    }

    pub(super) async fn remove_blob(&self, key: &str) -> io::Result<()> {
        ignore_missing(tokio::fs::remove_file(self.blob_path(key)?).await)
    }

    pub(super) async fn remove_incoming(
        &self,
        incoming: Incoming,
        image_id: &str,
    ) -> io::Result<()> {
        ignore_missing(tokio::fs::remove_file(self.incoming_path(incoming, image_id)?).await)
    }

    pub(super) async fn read_incoming_range(
        &self,
        incoming: Incoming,
        image_id: &str,
        start: u64,
        len: u64,
    ) -> io::Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let path = self.incoming_path(incoming, image_id)?;
        tokio::task::spawn_blocking(move || {
            let mut file = std::fs::File::open(path)?;
            file.seek(SeekFrom::Start(start))?;
            let mut read = Vec::with_capacity(len.min(16 << 20) as usize);
            file.take(len).read_to_end(&mut read)?;
            Ok(read)
        })
        .await
        .map_err(io::Error::other)?
    }

    pub(super) async fn blob_len(&self, key: &str) -> io::Result<Option<u64>> {
        match tokio::fs::metadata(self.blob_path(key)?).await {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn open_blob(&self, key: &str) -> io::Result<FileReader> {
        let path = self.blob_path(key)?;
        let file = tokio::task::spawn_blocking(move || std::fs::File::open(path))
            .await
            .map_err(io::Error::other)??;
        Ok(FileReader { file })
    }

    /// The committed blobs' keys and the image ids with incoming bytes of each kind.
    pub(super) async fn list(&self) -> io::Result<super::StoredBlobs> {
        let names = |dir: &'static str| {
            let dir = self.root.join(dir);
            async move {
                let mut names = Vec::new();
                let mut entries = tokio::fs::read_dir(dir).await?;
                while let Some(entry) = entries.next_entry().await? {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    names.push(name.strip_suffix(".part").unwrap_or(&name).to_owned());
                }
                names.sort();
                io::Result::Ok(names)
            }
        };
        Ok(super::StoredBlobs {
            images: names("images").await?,
            imports: names(Incoming::Import.dir()).await?,
            uploads: names(Incoming::Upload.dir()).await?,
        })
    }

    /// Deletes every staging file, every upload file whose upload is no longer receiving and
    /// every blob no row names. Returns how many went. Run at start-up, before imports resume
    /// and requests are served, so nothing is in flight.
    pub(super) async fn sweep_orphans(
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

/// A committed blob's open file.
pub(super) struct FileReader {
    file: std::fs::File,
}

/// Downloads read the file in blocks of this size, each in one blocking call (a positioned
/// read straight into the block the response sends), and keep `READ_AHEAD` of them in flight,
/// so the next block is ready when the socket takes this one. No thread waits on a slow
/// client: a block is read only when the response asks for one.
pub const READ_BLOCK: u64 = 2 << 20;
const READ_AHEAD: usize = 2;

impl FileReader {
    /// `len` bytes from `start` on, as a stream of blocks aligned to `READ_BLOCK` in the file
    /// (the first and last may be shorter). `hold` is dropped with the last read in flight.
    pub(super) fn range<H: Send + Sync + 'static>(
        self,
        start: u64,
        len: u64,
        block: u64,
        hold: H,
    ) -> impl futures::Stream<Item = io::Result<bytes::Bytes>> + Send + 'static {
        use futures::StreamExt;
        let reader = Arc::new((self, hold));
        futures::stream::iter(super::blocks(start, len, block))
            .map(move |(at, n)| {
                let reader = Arc::clone(&reader);
                async move {
                    tokio::task::spawn_blocking(move || reader.0.read_block(at, n as usize))
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

/// Appends to an incoming file from its durable offset on. Whole aligned blocks go straight
/// to the disk (O_DIRECT): an upload is written once and not read back soon, and copying it
/// through the page cache cost more CPU than hashing it. The unaligned start and end go
/// through the page cache. `finish` fsyncs both.
pub(super) struct FileWriter {
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

impl FileWriter {
    fn block(&mut self) -> &mut [u8] {
        &mut self.storage[self.block_offset..self.block_offset + DIRECT_BLOCK]
    }

    pub(super) fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
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

    /// Writes what is buffered and makes every byte durable; writing goes on after it (the
    /// next aligned block starts past the page-cache head). Returns how many were written.
    pub(super) fn checkpoint(&mut self) -> io::Result<u64> {
        if self.block_len > 0 {
            self.flush_block(self.block_len)?;
        }
        self.buffered.sync_data()?;
        Ok(self.written)
    }

    /// Writes what is left and makes every byte durable. Returns how many were written.
    pub(super) fn finish(mut self) -> io::Result<u64> {
        self.checkpoint()
    }
}

impl Files {
    /// Opens the image's incoming file for appending at `offset`, dropping anything past it
    /// (bytes of a request cut off before its offset was saved). `None` if the file is
    /// missing or bytes before `offset` are.
    pub(super) fn open_incoming_at(
        &self,
        incoming: Incoming,
        image_id: &str,
        offset: u64,
    ) -> io::Result<Option<FileWriter>> {
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
        Ok(Some(FileWriter {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_writes_land_at_their_offsets_whatever_the_alignment() {
        let dir = tempfile::tempdir().unwrap();
        let store = Files::open(dir.path().to_path_buf()).unwrap();
        let id = "0b5d3c1e-aaaa-4bbb-8ccc-0123456789ab";
        let path = dir.path().join("uploads").join(format!("{id}.part"));
        std::fs::write(&path, b"").unwrap();
        let data: Vec<u8> = (0..3_500_000u32).map(|i| (i % 251) as u8).collect();
        // Three requests: an odd start, pieces of every size, a short tail.
        let mut offset = 0;
        for end in [1_000_001usize, 2_100_000, data.len()] {
            let mut writer = store
                .open_incoming_at(Incoming::Upload, id, offset as u64)
                .unwrap()
                .unwrap();
            for piece in data[offset..end].chunks(77_777) {
                writer.write(piece).unwrap();
            }
            assert_eq!(writer.finish().unwrap(), (end - offset) as u64);
            offset = end;
        }
        assert_eq!(std::fs::read(&path).unwrap(), data);
        // Bytes past a durable offset are dropped when the next request opens the file.
        let writer = store
            .open_incoming_at(Incoming::Upload, id, 10)
            .unwrap()
            .unwrap();
        writer.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), &data[..10]);
        assert!(
            store
                .open_incoming_at(Incoming::Upload, id, 11)
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn ranges_are_read_in_aligned_blocks() {
        use futures::StreamExt;
        let dir = tempfile::tempdir().unwrap();
        let store = Files::open(dir.path().to_path_buf()).unwrap();
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
                .range(start as u64, len as u64, READ_BLOCK, ())
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
    }

    #[test]
    fn keys_cannot_escape_the_store() {
        let store = Files {
            root: PathBuf::from("/data"),
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
