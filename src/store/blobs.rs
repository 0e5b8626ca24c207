//! Image bytes on the local filesystem.
//!
//! Bytes of a URL import arrive in `staging/<image id>.part`, those of a local-file upload in
//! `uploads/<image id>.part` (kept across restarts, so the upload can resume). Either is
//! fsynced, then renamed into `images/<image id>` and the directory fsynced: only then may a
//! row point at them. A file without a row is an orphan and is swept at start-up.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::Context;

#[derive(Clone, Debug)]
pub struct BlobStore {
    root: PathBuf,
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

impl BlobStore {
    /// Opens (creating) the store under `root`.
    pub fn open(root: impl Into<PathBuf>) -> anyhow::Result<Self> {
        let root = root.into();
        for dir in ["images", "staging", "uploads"] {
            std::fs::create_dir_all(root.join(dir))
                .with_context(|| format!("creating {}", root.join(dir).display()))?;
        }
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the bytes of an import in progress are written.
    pub fn staging_path(&self, image_id: &str) -> io::Result<PathBuf> {
        Ok(self
            .root
            .join("staging")
            .join(format!("{}.part", checked(image_id)?)))
    }

    /// Where the bytes of a local-file upload accumulate, chunk after chunk.
    pub fn upload_path(&self, image_id: &str) -> io::Result<PathBuf> {
        Ok(self
            .root
            .join("uploads")
            .join(format!("{}.part", checked(image_id)?)))
    }

    /// Creates an upload's empty file and makes its name durable. Fails with `AlreadyExists`
    /// if the image has one.
    pub async fn create_upload_file(&self, image_id: &str) -> io::Result<()> {
        let path = self.upload_path(image_id)?;
        let dir = self.root.join("uploads");
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

    /// Where a committed blob lives.
    pub fn blob_path(&self, key: &str) -> io::Result<PathBuf> {
        Ok(self.root.join("images").join(checked(key)?))
    }

    /// Moves a complete, already fsynced staging file into place and makes the rename
    /// durable. Returns the blob key to store in the row.
    pub async fn commit_staged(&self, image_id: &str) -> io::Result<String> {
        self.commit(self.staging_path(image_id)?, image_id).await
    }

    /// Moves a complete, already fsynced upload into place, as `commit_staged` does.
    pub async fn commit_upload(&self, image_id: &str) -> io::Result<String> {
        self.commit(self.upload_path(image_id)?, image_id).await
    }

    async fn commit(&self, from: PathBuf, image_id: &str) -> io::Result<String> {
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

    /// Removes an import's partial bytes; a missing file is not an error.
    pub async fn remove_staging(&self, image_id: &str) -> io::Result<()> {
        ignore_missing(tokio::fs::remove_file(self.staging_path(image_id)?).await)
    }

    /// Removes an upload's partial bytes; a missing file is not an error.
    pub async fn remove_upload(&self, image_id: &str) -> io::Result<()> {
        ignore_missing(tokio::fs::remove_file(self.upload_path(image_id)?).await)
    }

    /// The first `head` and last `tail` bytes of an upload's file (they overlap for a short
    /// file), for inspecting a finished upload without reading it all.
    pub async fn read_upload_ends(
        &self,
        image_id: &str,
        head: usize,
        tail: usize,
    ) -> io::Result<(Vec<u8>, Vec<u8>)> {
        use std::io::{Read, Seek, SeekFrom};
        let path = self.upload_path(image_id)?;
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

    /// Deletes every staging file, every upload file whose upload is no longer receiving and
    /// every blob no row names. Returns how many went. Run at start-up, before imports resume
    /// and requests are served, so nothing is in flight.
    pub async fn sweep_orphans(
        &self,
        live_keys: &HashSet<String>,
        live_uploads: &HashSet<String>,
    ) -> io::Result<usize> {
        let mut removed = 0;
        let mut staging = tokio::fs::read_dir(self.root.join("staging")).await?;
        while let Some(entry) = staging.next_entry().await? {
            ignore_missing(tokio::fs::remove_file(entry.path()).await)?;
            removed += 1;
        }
        let mut uploads = tokio::fs::read_dir(self.root.join("uploads")).await?;
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

/// Appends to an upload's file from its durable offset on. Whole aligned blocks go straight
/// to the disk (O_DIRECT): an upload is written once and not read back soon, and copying it
/// through the page cache cost more CPU than hashing it. The unaligned start and end go
/// through the page cache. `finish` fsyncs both.
pub struct UploadFileWriter {
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

impl UploadFileWriter {
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
    /// Opens an upload's file for appending at `offset`, dropping anything past it (bytes of
    /// a request cut off before its offset was saved). `None` if bytes before it are missing.
    pub fn open_upload_at(
        &self,
        image_id: &str,
        offset: u64,
    ) -> io::Result<Option<UploadFileWriter>> {
        let path = self.upload_path(image_id)?;
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
        Ok(Some(UploadFileWriter {
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
        std::fs::write(store.upload_path(id).unwrap(), b"").unwrap();
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
        assert_eq!(std::fs::read(store.upload_path(id).unwrap()).unwrap(), data);
        // Bytes past a durable offset are dropped when the next request opens the file.
        let writer = store.open_upload_at(id, 10).unwrap().unwrap();
        writer.finish().unwrap();
        assert_eq!(
            std::fs::read(store.upload_path(id).unwrap()).unwrap(),
            &data[..10]
        );
        assert!(store.open_upload_at(id, 11).unwrap().is_none());
    }

    #[test]
    fn keys_cannot_escape_the_store() {
        let store = BlobStore {
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
