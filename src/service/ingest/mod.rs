// Over 600 lines: one pipeline (batches, three lanes, checkpoints, the check) and its tests, 590 lines of code.
//! The one path image bytes take into storage, for URL imports and local-file uploads alike.
//!
//! `Ingest` takes the bytes as they arrive, gathers the pieces (not copied: each is a `Bytes`
//! the HTTP stack already holds) into batches of at least 1 MiB and hands each batch to three
//! lanes through bounded channels: the blob writer, SHA-512 alone (the slowest step, about
//! 400 MiB/s on one core), and MD5 with SHA-256 when the creator's checksum is one. A lane
//! holds a blocking thread only while it works on a batch, never while the body stalls.
//! `checkpoint` makes what was taken durable mid-stream; `finish` waits for every lane, so
//! nothing writes after it returns, and makes the bytes durable. `Hashers` can be saved with a
//! durable offset and restored, so an upload resumed by another request hashes no byte twice.
//! Once every byte is in, `check` inspects the file (its head and tail, read back from the
//! blob store) and verifies the creator's checksum: one verdict for both ways in.

use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use md5::Md5;
use sha2::{Digest, Sha256, Sha512};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::domain::checksum::ExpectedChecksum;
use crate::domain::image::{DiskFormat, HASH_ALGORITHM};
use crate::domain::signature::{HashMethod, SignatureProperties, VerifiedSignature};
use crate::inspect::Inspector;
use crate::service::signatures::{self, SignatureCheck};
use crate::store::Store;
use crate::store::blobs::sealed::{Opener, SealedRange, SegmentCipher};
use crate::store::blobs::{BlobStore, BlobWriter, Incoming, IncomingState};
use crate::store::images::ImportedBytes;

mod hashers;

use hashers::SignedHasher;
pub use hashers::{Digests, Hashers};

/// Batches in flight between the receiving task and each of its lanes.
const CHANNEL_BATCHES: usize = 4;

/// The size of the batches handed to the threads: they wake per MiB, not per network piece.
const BATCH_BYTES: usize = 1 << 20;

/// Pieces of the bytes, in order, shared by the threads.
type Batch = Arc<Vec<Bytes>>;

/// Bytes on their way to the blob writer and the hashers.
pub struct Ingest {
    batch: Vec<Bytes>,
    batch_len: usize,
    file: Lane<FileLane>,
    sha512: Lane<Sha512Lane>,
    md5: Lane<Md5Lane>,
    /// Bytes taken so far.
    taken: u64,
    /// Bytes handed to the lanes so far.
    delivered: u64,
    /// The boundary the lanes' stopping points fall on (a segment, when the writer seals):
    /// bytes past the last one wait in `batch`, so a checkpoint or a pause is one there.
    align: Option<u64>,
    /// False once a lane has stopped (its error comes out of `finish`).
    flowing: bool,
    /// The signature's hash method, handed back with the hashers.
    signed_with: Option<HashMethod>,
}

/// What a lane is told: work on a batch, say where it stands (a checkpoint), or that the
/// stream's last bytes have come.
enum Message<S> {
    Batch(Batch),
    Checkpoint(oneshot::Sender<S>),
    Complete,
}

/// Where the lanes stopped: the bytes they took (from the ingest's start), the hashers there,
/// and the blob store's state to record with that offset.
pub struct Reached {
    pub at: u64,
    pub hashers: Hashers,
    pub state: IncomingState,
}

/// One of the three consumers of the bytes. Its task is async and waits for batches without a
/// thread; batches (and checkpoints) run on a blocking thread only while there are some to
/// work on, so a request whose body stalls holds no thread at all.
trait LaneWork: Send + 'static {
    /// Where the lane stands at a checkpoint.
    type Snapshot: Send + 'static;
    /// What it hands back at the end.
    type Output: Send + 'static;
    fn take(&mut self, batch: &[Bytes]) -> std::io::Result<()>;
    fn snapshot(&mut self) -> std::io::Result<Self::Snapshot>;
    /// The stream's last bytes have come.
    fn complete(&mut self) {}
    fn finish(self) -> std::io::Result<Self::Output>;
}

/// The blob writer, and whether the stream's last bytes came (so a sealing writer seals its
/// last segment at the end).
struct FileLane(BlobWriter, bool);

impl LaneWork for FileLane {
    type Snapshot = (u64, IncomingState);
    type Output = (u64, IncomingState);
    fn take(&mut self, batch: &[Bytes]) -> std::io::Result<()> {
        batch.iter().try_for_each(|piece| self.0.write(piece))
    }
    fn snapshot(&mut self) -> std::io::Result<Self::Snapshot> {
        self.0.checkpoint()
    }
    fn complete(&mut self) {
        self.1 = true;
    }
    fn finish(self) -> std::io::Result<Self::Output> {
        self.0.finish(self.1)
    }
}

struct Sha512Lane(Sha512);

impl LaneWork for Sha512Lane {
    type Snapshot = Sha512;
    type Output = Sha512;
    fn take(&mut self, batch: &[Bytes]) -> std::io::Result<()> {
        batch.iter().for_each(|piece| self.0.update(piece));
        Ok(())
    }
    fn snapshot(&mut self) -> std::io::Result<Sha512> {
        Ok(self.0.clone())
    }
    fn finish(self) -> std::io::Result<Sha512> {
        Ok(self.0)
    }
}

/// MD5, with SHA-256 and a signature's SHA-224 or SHA-384 when they are wanted.
#[derive(Clone)]
struct Md5Lane(Md5, Option<Sha256>, Option<SignedHasher>);

impl LaneWork for Md5Lane {
    type Snapshot = Md5Lane;
    type Output = Md5Lane;
    fn take(&mut self, batch: &[Bytes]) -> std::io::Result<()> {
        for piece in batch {
            self.0.update(piece);
            if let Some(sha256) = self.1.as_mut() {
                sha256.update(piece);
            }
            if let Some(signed) = self.2.as_mut() {
                signed.update(piece);
            }
        }
        Ok(())
    }
    fn snapshot(&mut self) -> std::io::Result<Self::Snapshot> {
        Ok(self.clone())
    }
    fn finish(self) -> std::io::Result<Self::Output> {
        Ok(self)
    }
}

struct Lane<L: LaneWork> {
    to: mpsc::Sender<Message<L::Snapshot>>,
    task: JoinHandle<std::io::Result<L::Output>>,
}

impl<L: LaneWork> Lane<L> {
    fn start(work: L) -> Self {
        let (to, from) = mpsc::channel(CHANNEL_BATCHES);
        Self {
            to,
            task: tokio::spawn(run_lane(work, from)),
        }
    }
}

/// Takes the lane's messages as they come. Waiting for one holds no thread; working holds one
/// blocking thread, which goes on with whatever else is queued by then, so a lane that keeps
/// up with a steady stream stays on its thread and one that waits gives it back.
async fn run_lane<L: LaneWork>(
    mut work: L,
    mut from: mpsc::Receiver<Message<L::Snapshot>>,
) -> std::io::Result<L::Output> {
    while let Some(first) = from.recv().await {
        let outcome;
        (work, from, outcome) = tokio::task::spawn_blocking(move || {
            let mut next = Some(first);
            while let Some(message) = next {
                let done = match message {
                    Message::Batch(batch) => work.take(&batch),
                    Message::Checkpoint(reply) => work.snapshot().map(|snapshot| {
                        let _ = reply.send(snapshot);
                    }),
                    Message::Complete => {
                        work.complete();
                        Ok(())
                    }
                };
                if let Err(e) = done {
                    return (work, from, Err(e));
                }
                next = from.try_recv().ok();
            }
            (work, from, Ok(()))
        })
        .await
        .map_err(std::io::Error::other)?;
        outcome?;
    }
    tokio::task::spawn_blocking(move || work.finish())
        .await
        .map_err(std::io::Error::other)?
}

/// A checkpoint the lanes are making: resolves to the hashers' state and the blob store's
/// state at `at`, once every lane has reached it. Waiting on it may be given up and taken up
/// again (`tokio::select!`) without losing the answer.
pub struct PendingCheckpoint {
    /// The number of bytes taken when it was asked for.
    pub at: u64,
    answer: oneshot::Receiver<anyhow::Result<(Hashers, IncomingState)>>,
}

impl PendingCheckpoint {
    pub async fn wait(&mut self) -> anyhow::Result<(Hashers, IncomingState)> {
        (&mut self.answer)
            .await
            .map_err(|_| anyhow::anyhow!("a lane stopped"))?
    }
}

impl Ingest {
    /// Starts the lanes: bytes go to `writer` and on from the hashers' state.
    pub fn start(writer: BlobWriter, hashers: Hashers) -> Self {
        let Hashers {
            sha512,
            md5,
            sha256,
            signed,
            signed_with,
        } = hashers;
        let align = writer.alignment();
        Self {
            batch: Vec::new(),
            batch_len: 0,
            file: Lane::start(FileLane(writer, false)),
            sha512: Lane::start(Sha512Lane(sha512)),
            md5: Lane::start(Md5Lane(md5, sha256, signed)),
            signed_with,
            taken: 0,
            delivered: 0,
            align,
            flowing: true,
        }
    }

    /// Bytes taken so far.
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// Takes a piece of the bytes. `false` once a lane has stopped: stop sending, and let
    /// `finish` say why.
    pub async fn push(&mut self, piece: Bytes) -> bool {
        if !self.flowing {
            return false;
        }
        self.taken += piece.len() as u64;
        self.batch_len += piece.len();
        self.batch.push(piece);
        if self.batch_len >= BATCH_BYTES {
            self.flowing = self.deliver(false).await;
        }
        self.flowing
    }

    /// Hands the gathered pieces to every lane: all of them, or (`all` false, and an
    /// alignment) those up to the last boundary, keeping the rest for later.
    async fn deliver(&mut self, all: bool) -> bool {
        let mut batch = std::mem::take(&mut self.batch);
        let mut kept = Vec::new();
        if let (Some(align), false) = (self.align, all) {
            let end = self.delivered + self.batch_len as u64;
            let mut keep = (end % align) as usize;
            while keep > 0 {
                let Some(last) = batch.last_mut() else { break };
                if last.len() <= keep {
                    keep -= last.len();
                    kept.push(batch.pop().unwrap_or_default());
                } else {
                    kept.push(last.split_off(last.len() - keep));
                    keep = 0;
                }
            }
            kept.reverse();
        }
        self.batch_len = kept.iter().map(Bytes::len).sum();
        self.batch = kept;
        if batch.is_empty() {
            return true;
        }
        self.delivered += batch.iter().map(|b| b.len() as u64).sum::<u64>();
        let batch: Batch = Arc::new(batch);
        self.sha512
            .to
            .send(Message::Batch(batch.clone()))
            .await
            .is_ok()
            && self
                .md5
                .to
                .send(Message::Batch(batch.clone()))
                .await
                .is_ok()
            && self.file.to.send(Message::Batch(batch)).await.is_ok()
    }

    /// Makes every byte taken so far durable without ending the stream (up to the last
    /// boundary, with an alignment): returns the hashers' state and the blob store's state
    /// there, to record as a durable offset. An error means a lane stopped; `finish` says why.
    pub async fn checkpoint(&mut self) -> anyhow::Result<(Hashers, IncomingState)> {
        self.begin_checkpoint().await?.wait().await
    }

    /// Asks every lane for a checkpoint at what it was handed (`taken()`, or with an alignment
    /// the last boundary before it) and goes on at once: bytes keep flowing while the lanes
    /// reach it (the writer makes what it wrote durable meanwhile).
    pub async fn begin_checkpoint(&mut self) -> anyhow::Result<PendingCheckpoint> {
        anyhow::ensure!(self.flowing, "a lane stopped");
        if !self.batch.is_empty() {
            self.flowing = self.deliver(false).await;
            anyhow::ensure!(self.flowing, "a lane stopped");
        }
        async fn ask<L: LaneWork>(
            lane: &Lane<L>,
        ) -> anyhow::Result<oneshot::Receiver<L::Snapshot>> {
            let (reply, answer) = oneshot::channel();
            lane.to
                .send(Message::Checkpoint(reply))
                .await
                .map_err(|_| anyhow::anyhow!("a lane stopped"))?;
            Ok(answer)
        }
        let asked = async {
            Ok::<_, anyhow::Error>((
                ask(&self.sha512).await?,
                ask(&self.md5).await?,
                ask(&self.file).await?,
            ))
        };
        let (sha512, md5, file) = match asked.await {
            Ok(asked) => asked,
            Err(e) => {
                self.flowing = false;
                return Err(e);
            }
        };
        let at = self.delivered;
        let signed_with = self.signed_with;
        let (reply, answer) = oneshot::channel();
        tokio::spawn(async move {
            let stopped = |_| anyhow::anyhow!("a lane stopped");
            let joined = async {
                let (sha512, md5, file) = tokio::try_join!(sha512, md5, file).map_err(stopped)?;
                reached(sha512, md5, file, at, signed_with)
            };
            let _ = reply.send(joined.await);
        });
        Ok(PendingCheckpoint { at, answer })
    }

    /// Stops without writing anything more: what was handed over and not yet written is
    /// dropped, and nothing is made durable (another writer owns the bytes now). A batch a
    /// lane is working on finishes on its thread; an object-store part in flight is aborted.
    pub fn abandon(self) {
        self.file.task.abort();
        self.sha512.task.abort();
        self.md5.task.abort();
    }

    /// Hands over what is left, waits for every lane and makes the bytes durable. `last`:
    /// these are the stream's last bytes; otherwise it goes on later from where the lanes
    /// stop (with an alignment, the last boundary: the bytes past it are dropped, to be sent
    /// again). Returns where they stopped, the hashers there, to finalize or to save with the
    /// new offset, and the blob store's state of the bytes, to record with it.
    pub async fn finish(mut self, last: bool) -> anyhow::Result<Reached> {
        if self.flowing && !self.batch.is_empty() {
            self.flowing = self.deliver(last).await;
        }
        if self.flowing && last {
            self.flowing = self.file.to.send(Message::Complete).await.is_ok();
        }
        let Ingest {
            file,
            sha512,
            md5,
            delivered,
            signed_with,
            ..
        } = self;
        drop((file.to, sha512.to, md5.to));
        // Every lane is waited for, whatever happened, so nothing writes after this returns.
        let written = file.task.await;
        let sha512 = sha512.task.await.context("hashing lane")?;
        let md5 = md5.task.await.context("hashing lane")?;
        let (written, state) = written
            .context("writer lane")?
            .context("writing image bytes")?;
        let (hashers, state) = reached(
            sha512.context("hashing")?,
            md5.context("hashing")?,
            (written, state),
            delivered,
            signed_with,
        )?;
        Ok(Reached {
            at: delivered,
            hashers,
            state,
        })
    }
}

/// What the lanes hand back at one byte, `at`: the hashers there, and the blob store's state,
/// provided the writer wrote exactly that many bytes.
fn reached(
    sha512: Sha512,
    Md5Lane(md5, sha256, signed): Md5Lane,
    (written, state): (u64, IncomingState),
    at: u64,
    signed_with: Option<HashMethod>,
) -> anyhow::Result<(Hashers, IncomingState)> {
    anyhow::ensure!(written == at, "wrote {written} of {at} bytes");
    Ok((
        Hashers {
            sha512,
            md5,
            sha256,
            signed,
            signed_with,
        },
        state,
    ))
}

/// An image's complete, assembled incoming bytes, as the blob store names them.
pub struct Received<'a> {
    pub incoming: Incoming,
    pub image_id: &'a str,
    pub state: &'a IncomingState,
    /// Plain bytes.
    pub length: u64,
    /// The cipher of sealed bytes.
    pub seal: Option<&'a SegmentCipher>,
}

impl Received<'_> {
    /// `len` plain bytes from `start` (fewer past the end), read back from the blob store and,
    /// if sealed, opened.
    async fn read(&self, blobs: &BlobStore, start: u64, len: u64) -> std::io::Result<Vec<u8>> {
        let start = start.min(self.length);
        let len = len.min(self.length - start);
        let Some(cipher) = self.seal else {
            return blobs
                .read_incoming_range(self.incoming, self.image_id, self.state, start, len)
                .await;
        };
        let range = SealedRange::of(self.length, start, len);
        let stored = blobs
            .read_incoming_range(
                self.incoming,
                self.image_id,
                self.state,
                range.stored_start,
                range.stored_len,
            )
            .await?;
        let mut opener = Opener::new(cipher.clone(), range);
        let mut plain = std::collections::VecDeque::new();
        opener.push(&stored, &mut plain)?;
        opener.finish(&mut plain)?;
        Ok(plain.into_iter().flat_map(|piece| piece.to_vec()).collect())
    }
}

/// What an image's received bytes must prove: the creator's checksum and its signature.
#[derive(Clone, Debug, Default)]
pub struct Claims {
    pub checksum: Option<ExpectedChecksum>,
    /// `None`: not signed. `Some(Err(reason))`: signed, but it cannot verify (properties
    /// incomplete, certificate unknown); the image fails with the reason.
    pub signature: Option<Result<SignatureCheck, String>>,
    /// The hash the signature covers, computed as the bytes stream past.
    pub signed_with: Option<HashMethod>,
}

impl Claims {
    /// Reads the certificate the signature names (from the image's account).
    pub async fn load(
        store: &Store,
        account_id: &str,
        checksum: Option<&str>,
        signature: &SignatureProperties,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            checksum: checksum.and_then(ExpectedChecksum::from_db),
            signature: signatures::resolve(store, account_id, signature).await?,
            signed_with: signature.hash_method,
        })
    }

    /// Fresh hashers for these claims.
    pub fn hashers(&self) -> Hashers {
        Hashers::new(self.checksum.as_ref(), self.signed_with)
    }
}

/// Inspects the image's received bytes and verifies them against the creator's checksum and
/// signature (at `now_ms`). The outer error is ours (storage); the inner one is the reason the
/// image is refused, shown on it. On success, what the image row records.
pub async fn check(
    blobs: &BlobStore,
    received: Received<'_>,
    digests: Digests,
    claims: &Claims,
    declared: DiskFormat,
    now_ms: i64,
) -> std::io::Result<Result<Checked, String>> {
    if let Some(expected) = &claims.checksum
        && let Err(reason) = digests.verify(expected)
    {
        return Ok(Err(reason));
    }
    let verified = match &claims.signature {
        None => None,
        Some(Err(reason)) => return Ok(Err(reason.clone())),
        Some(Ok(check)) => {
            match check.verify(digests.signed_digest(check.claim.hash_method), now_ms) {
                Ok(verified) => Some(verified),
                Err(reason) => return Ok(Err(reason)),
            }
        }
    };
    let length = received.length;
    let head = received
        .read(blobs, 0, Inspector::HEAD_BYTES as u64)
        .await?;
    let tail = received
        .read(
            blobs,
            length.saturating_sub(Inspector::TAIL_BYTES as u64),
            Inspector::TAIL_BYTES as u64,
        )
        .await?;
    Ok(Inspector::of_file(&head, &tail, length)
        .verdict(declared)
        .map(|inspection| Checked {
            disk_format: inspection.format,
            size_bytes: length,
            virtual_size_bytes: inspection.virtual_size_bytes,
            digests,
            verified,
        })
        .map_err(|refusal| refusal.to_string()))
}

/// Bytes that passed `check`.
pub struct Checked {
    disk_format: DiskFormat,
    size_bytes: u64,
    virtual_size_bytes: u64,
    digests: Digests,
    verified: Option<VerifiedSignature>,
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
            verified_signature: self.verified,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pieces_of_any_size_are_written_and_hashed_once() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path()).unwrap();
        let id = "0b5d3c1e-aaaa-4bbb-8ccc-0123456789ab";
        let data: Vec<u8> = (0..3_000_001u32).map(|i| (i % 253) as u8).collect();
        let state = blobs.begin_incoming(Incoming::Import, id).await.unwrap();
        let writer = blobs
            .open_writer(Incoming::Import, id, &state, 0, 1 << 30, None)
            .await
            .unwrap()
            .unwrap();
        let mut ingest = Ingest::start(writer, Hashers::new(None, None));
        for piece in data.chunks(65_521) {
            assert!(ingest.push(Bytes::copy_from_slice(piece)).await);
        }
        assert_eq!(ingest.taken(), data.len() as u64);
        let digests = ingest.finish(true).await.unwrap().hashers.finalize();
        assert_eq!(digests.sha512_hex, hex::encode(Sha512::digest(&data)));
        assert_eq!(digests.md5_hex, hex::encode(Md5::digest(&data)));
        let on_disk = std::fs::read(dir.path().join("staging").join(format!("{id}.part"))).unwrap();
        assert_eq!(on_disk, data);
    }

    /// Bodies that stall hold no thread: with a blocking pool of two threads and many
    /// ingests waiting for bytes, other blocking work still runs, and every ingest still
    /// finishes once its bytes come.
    #[test]
    fn waiting_ingests_hold_no_blocking_thread() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let blobs = BlobStore::open(dir.path()).unwrap();
            let mut waiting = Vec::new();
            for n in 0..8u32 {
                let id = format!("0b5d3c1e-aaaa-4bbb-8ccc-{n:012}");
                let state = blobs.begin_incoming(Incoming::Import, &id).await.unwrap();
                let writer = blobs
                    .open_writer(Incoming::Import, &id, &state, 0, 1 << 20, None)
                    .await
                    .unwrap()
                    .unwrap();
                let mut ingest = Ingest::start(writer, Hashers::new(None, None));
                assert!(ingest.push(Bytes::from(vec![n as u8; 3 << 20])).await);
                waiting.push((ingest, n));
            }
            let other = tokio::time::timeout(
                std::time::Duration::from_secs(30),
                tokio::task::spawn_blocking(|| 42),
            )
            .await
            .expect("other blocking work runs while the ingests wait");
            assert_eq!(other.unwrap(), 42);
            for (mut ingest, n) in waiting {
                let (hashers, _) = ingest.checkpoint().await.unwrap();
                assert!(ingest.push(Bytes::from_static(b"end")).await);
                let finished = ingest.finish(true).await.unwrap().hashers;
                let mut data = vec![n as u8; 3 << 20];
                assert_eq!(
                    hashers.finalize().sha512_hex,
                    hex::encode(Sha512::digest(&data))
                );
                data.extend_from_slice(b"end");
                assert_eq!(
                    finished.finalize().sha512_hex,
                    hex::encode(Sha512::digest(&data))
                );
            }
        });
    }
}
