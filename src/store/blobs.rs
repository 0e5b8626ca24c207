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
