//! The one path image bytes take into storage, for URL imports and local-file uploads alike.
//!
//! `Ingest` takes the bytes as they arrive, gathers the pieces (not copied: each is a `Bytes`
//! the HTTP stack already holds) into batches of at least 1 MiB and hands each batch to three
//! threads through bounded channels: the blob writer, SHA-512 alone (the slowest step, about
//! 400 MiB/s on one core), and MD5 with SHA-256 when the creator's checksum is one. `finish`
//! waits for every thread, so nothing writes after it returns, and makes the bytes durable. `Hashers` can be saved with a durable offset and restored, so an
//! upload resumed by another request hashes no byte twice. Once every byte is in, `check`
//! inspects the file (its head and tail, read back from the blob store) and verifies the
//! creator's checksum: one verdict for both ways in.

use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use md5::Md5;
use sha2::digest::common::hazmat::SerializableState;
use sha2::{Digest, Sha256, Sha512};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::domain::checksum::{ChecksumAlgorithm, ExpectedChecksum};
use crate::domain::image::{DiskFormat, HASH_ALGORITHM};
use crate::inspect::Inspector;
use crate::store::blobs::{BlobStore, BlobWriter, Incoming, IncomingState};
use crate::store::images::ImportedBytes;

/// Batches in flight between the receiving task and each of its threads.
const CHANNEL_BATCHES: usize = 4;

/// The size of the batches handed to the threads: they wake per MiB, not per network piece.
const BATCH_BYTES: usize = 1 << 20;

/// Pieces of the bytes, in order, shared by the threads.
type Batch = Arc<Vec<Bytes>>;

/// The running digests of an image's bytes.
pub struct Hashers {
    sha512: Sha512,
    md5: Md5,
    sha256: Option<Sha256>,
}

impl Hashers {
    /// Fresh hashers; SHA-256 only when the creator's checksum is one.
    pub fn new(expected: Option<&ExpectedChecksum>) -> Self {
        Self {
            sha512: Sha512::new(),
            md5: Md5::new(),
            sha256: expected
                .is_some_and(|e| e.algorithm == ChecksumAlgorithm::Sha256)
                .then(Sha256::new),
        }
    }

    /// `sha512.md5[.sha256]`, each the hex of the hasher's serialized state.
    pub fn to_state(&self) -> String {
        let mut state = format!(
            "{}.{}",
            hex::encode(self.sha512.serialize()),
            hex::encode(self.md5.serialize())
        );
        if let Some(sha256) = &self.sha256 {
            state.push('.');
            state.push_str(&hex::encode(sha256.serialize()));
        }
        state
    }

    pub fn from_state(state: &str) -> anyhow::Result<Self> {
        fn restore<H: SerializableState>(part: Option<&str>) -> anyhow::Result<H> {
            let bytes = hex::decode(part.context("missing hasher state")?)?;
            let array = bytes
                .as_slice()
                .try_into()
                .map_err(|_| anyhow::anyhow!("hasher state has the wrong length"))?;
            H::deserialize(array).map_err(|_| anyhow::anyhow!("hasher state is invalid"))
        }
        let mut parts = state.split('.');
        let sha512 = restore::<Sha512>(parts.next())?;
        let md5 = restore::<Md5>(parts.next())?;
        let sha256 = match parts.next() {
            Some(part) => Some(restore::<Sha256>(Some(part))?),
            None => None,
        };
        Ok(Self {
            sha512,
            md5,
            sha256,
        })
    }

    pub fn finalize(self) -> Digests {
        Digests {
            sha512_hex: hex::encode(self.sha512.finalize()),
            md5_hex: hex::encode(self.md5.finalize()),
            sha256_hex: self.sha256.map(|h| hex::encode(h.finalize())),
        }
    }
}

/// The digests of an image's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digests {
    pub sha512_hex: String,
    pub md5_hex: String,
    /// Only when the creator's checksum is SHA-256.
    pub sha256_hex: Option<String>,
}

impl Digests {
    /// Compares the creator's checksum with the matching digest; the error is shown on the image.
    pub fn verify(&self, expected: &ExpectedChecksum) -> Result<(), String> {
        let actual = match expected.algorithm {
            ChecksumAlgorithm::Md5 => Some(self.md5_hex.as_str()),
            ChecksumAlgorithm::Sha256 => self.sha256_hex.as_deref(),
            ChecksumAlgorithm::Sha512 => Some(self.sha512_hex.as_str()),
        };
        match actual {
            Some(actual) if actual == expected.hex => Ok(()),
            Some(actual) => Err(format!(
                "The file's {} checksum is {actual}, not the expected {}; the file is not the one described.",
                expected.algorithm.label(),
                expected.hex
            )),
            None => Err("The checksum could not be computed.".into()),
        }
    }
}

/// Bytes on their way to the blob writer and the hashers.
pub struct Ingest {
    batch: Vec<Bytes>,
    batch_len: usize,
    to_file: mpsc::Sender<Batch>,
    to_sha512: mpsc::Sender<Batch>,
    to_md5: mpsc::Sender<Batch>,
    file_thread: JoinHandle<std::io::Result<(u64, IncomingState)>>,
    sha512_thread: JoinHandle<Sha512>,
    md5_thread: JoinHandle<(Md5, Option<Sha256>)>,
    /// Bytes taken so far.
    taken: u64,
    /// False once a thread has stopped (its error comes out of `finish`).
    flowing: bool,
}

impl Ingest {
    /// Starts the threads: bytes go to `writer` and on from the hashers' state.
    pub fn start(writer: BlobWriter, hashers: Hashers) -> Self {
        let Hashers {
            mut sha512,
            mut md5,
            mut sha256,
        } = hashers;
        let (to_file, mut file_batches) = mpsc::channel::<Batch>(CHANNEL_BATCHES);
        let (to_sha512, mut sha512_batches) = mpsc::channel::<Batch>(CHANNEL_BATCHES);
        let (to_md5, mut md5_batches) = mpsc::channel::<Batch>(CHANNEL_BATCHES);
        let file_thread = tokio::task::spawn_blocking(move || {
            let mut writer = writer;
            while let Some(batch) = file_batches.blocking_recv() {
                for piece in batch.iter() {
                    writer.write(piece)?;
                }
            }
            writer.finish()
        });
        let sha512_thread = tokio::task::spawn_blocking(move || {
            while let Some(batch) = sha512_batches.blocking_recv() {
                for piece in batch.iter() {
                    sha512.update(piece);
                }
            }
            sha512
        });
        let md5_thread = tokio::task::spawn_blocking(move || {
            while let Some(batch) = md5_batches.blocking_recv() {
                for piece in batch.iter() {
                    md5.update(piece);
                    if let Some(sha256) = sha256.as_mut() {
                        sha256.update(piece);
                    }
                }
            }
            (md5, sha256)
        });
        Self {
            batch: Vec::new(),
            batch_len: 0,
            to_file,
            to_sha512,
            to_md5,
            file_thread,
            sha512_thread,
            md5_thread,
            taken: 0,
            flowing: true,
        }
    }

    /// Bytes taken so far.
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// Takes a piece of the bytes. `false` once a thread has stopped: stop sending, and let
    /// `finish` say why.
    pub async fn push(&mut self, piece: Bytes) -> bool {
        if !self.flowing {
            return false;
        }
        self.taken += piece.len() as u64;
        self.batch_len += piece.len();
        self.batch.push(piece);
        if self.batch_len >= BATCH_BYTES {
            let full = Arc::new(std::mem::take(&mut self.batch));
            self.batch_len = 0;
            self.flowing = self.deliver(full).await;
        }
        self.flowing
    }

    async fn deliver(&self, batch: Batch) -> bool {
        for thread in [&self.to_sha512, &self.to_md5, &self.to_file] {
            if thread.send(batch.clone()).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Hands over what is left, waits for every thread and makes the bytes durable. Returns
    /// the hashers, to finalize or to save with the new offset, and the blob store's state of
    /// the bytes, to record with it.
    pub async fn finish(mut self) -> anyhow::Result<(Hashers, IncomingState)> {
        if self.flowing && !self.batch.is_empty() {
            let rest = Arc::new(std::mem::take(&mut self.batch));
            self.flowing = self.deliver(rest).await;
        }
        let Ingest {
            to_file,
            to_sha512,
            to_md5,
            file_thread,
            sha512_thread,
            md5_thread,
            taken,
            ..
        } = self;
        drop((to_file, to_sha512, to_md5));
        // Every thread is waited for, whatever happened, so nothing writes after this returns.
        let written = file_thread.await;
        let sha512 = sha512_thread.await.context("hashing thread")?;
        let (md5, sha256) = md5_thread.await.context("hashing thread")?;
        let (written, state) = written
            .context("writer thread")?
            .context("writing image bytes")?;
        anyhow::ensure!(written == taken, "wrote {written} of {taken} bytes");
        Ok((
            Hashers {
                sha512,
                md5,
                sha256,
            },
            state,
        ))
    }
}

/// An image's complete, assembled incoming bytes, as the blob store names them.
pub struct Received<'a> {
    pub incoming: Incoming,
    pub image_id: &'a str,
    pub state: &'a IncomingState,
    pub length: u64,
}

/// Inspects the image's received bytes and verifies them against the creator's checksum. The
/// outer error is ours (storage); the inner one is the reason the image is refused, shown on
/// it. On success, what the image row records.
pub async fn check(
    blobs: &BlobStore,
    received: Received<'_>,
    digests: Digests,
    expected: Option<&ExpectedChecksum>,
    declared: DiskFormat,
) -> std::io::Result<Result<Checked, String>> {
    if let Some(expected) = expected
        && let Err(reason) = digests.verify(expected)
    {
        return Ok(Err(reason));
    }
    let (head, tail) = blobs
        .read_incoming_ends(
            received.incoming,
            received.image_id,
            received.state,
            Inspector::HEAD_BYTES,
            Inspector::TAIL_BYTES,
        )
        .await?;
    let length = received.length;
    Ok(Inspector::of_file(&head, &tail, length)
        .verdict(declared)
        .map(|inspection| Checked {
            disk_format: inspection.format,
            size_bytes: length,
            virtual_size_bytes: inspection.virtual_size_bytes,
            digests,
        })
        .map_err(|refusal| refusal.to_string()))
}

/// Bytes that passed `check`.
pub struct Checked {
    disk_format: DiskFormat,
    size_bytes: u64,
    virtual_size_bytes: u64,
    digests: Digests,
}

impl Checked {
    /// What the image row records once the bytes are committed under `blob_key`.
    pub fn stored(self, blob_key: String) -> ImportedBytes {
        ImportedBytes {
            disk_format: self.disk_format,
            size_bytes: self.size_bytes,
            virtual_size_bytes: self.virtual_size_bytes,
            hash_algo: HASH_ALGORITHM,
            hash_value: self.digests.sha512_hex,
            checksum_md5: self.digests.md5_hex,
            blob_key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hasher_state_survives_a_round_trip_mid_stream() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let sha256 = ExpectedChecksum {
            algorithm: ChecksumAlgorithm::Sha256,
            hex: String::new(),
        };
        let mut first = Hashers::new(Some(&sha256));
        let head = &data[..123_457];
        first.sha512.update(head);
        first.md5.update(head);
        first.sha256.as_mut().unwrap().update(head);
        let mut resumed = Hashers::from_state(&first.to_state()).unwrap();
        let rest = &data[123_457..];
        resumed.sha512.update(rest);
        resumed.md5.update(rest);
        resumed.sha256.as_mut().unwrap().update(rest);
        let digests = resumed.finalize();
        assert_eq!(digests.sha512_hex, hex::encode(Sha512::digest(&data)));
        assert_eq!(digests.md5_hex, hex::encode(Md5::digest(&data)));
        assert_eq!(
            digests.sha256_hex.unwrap(),
            hex::encode(Sha256::digest(&data))
        );
        assert!(Hashers::from_state("00.11").is_err());
        assert!(Hashers::new(None).to_state().matches('.').count() == 1);
    }

    #[tokio::test]
    async fn pieces_of_any_size_are_written_and_hashed_once() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path()).unwrap();
        let id = "0b5d3c1e-aaaa-4bbb-8ccc-0123456789ab";
        let data: Vec<u8> = (0..3_000_001u32).map(|i| (i % 253) as u8).collect();
        let state = blobs.begin_incoming(Incoming::Import, id).await.unwrap();
        let writer = blobs
            .open_writer(Incoming::Import, id, &state, 0, 1 << 30)
            .await
            .unwrap()
            .unwrap();
        let mut ingest = Ingest::start(writer, Hashers::new(None));
        for piece in data.chunks(65_521) {
            assert!(ingest.push(Bytes::copy_from_slice(piece)).await);
        }
        assert_eq!(ingest.taken(), data.len() as u64);
        let digests = ingest.finish().await.unwrap().0.finalize();
        assert_eq!(digests.sha512_hex, hex::encode(Sha512::digest(&data)));
        assert_eq!(digests.md5_hex, hex::encode(Md5::digest(&data)));
        let on_disk = std::fs::read(dir.path().join("staging").join(format!("{id}.part"))).unwrap();
        assert_eq!(on_disk, data);
    }
}
