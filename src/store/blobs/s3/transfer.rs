//! Bytes in and out: `S3Writer` sends incoming bytes as multipart parts while they arrive,
//! and `S3Reader` reads a committed object by ranges, several in flight.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use object_store::aws::AmazonS3;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

use super::{Multipart, PARTS_IN_FLIGHT, Part, READ_AHEAD, S3, to_io};
use crate::store::blobs::{Incoming, blocks};

/// Sends incoming bytes as parts, `PARTS_IN_FLIGHT` at a time. Runs on a blocking thread and
/// waits on the runtime for each part it must see sent.
pub(in crate::store::blobs) struct S3Writer {
    pub(super) s3: S3,
    pub(super) path: Path,
    pub(super) incoming: Incoming,
    /// The parts sent so far (those whose ETag came back).
    pub(super) state: Multipart,
    /// Bytes not yet in a part, starting with the tail the last request left.
    pub(super) buffer: Vec<u8>,
    pub(super) part_bytes: usize,
    pub(super) min_part: usize,
    pub(super) in_flight: VecDeque<(tokio::task::JoinHandle<object_store::Result<PartId>>, u64)>,
    pub(super) runtime: tokio::runtime::Handle,
    pub(super) written: u64,
}

impl S3Writer {
    pub(in crate::store::blobs) fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
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
    pub(in crate::store::blobs) fn checkpoint(&mut self) -> io::Result<(u64, Multipart)> {
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
    pub(in crate::store::blobs) fn finish(mut self) -> io::Result<(u64, Multipart)> {
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
pub(in crate::store::blobs) struct S3Reader {
    pub(super) store: Arc<AmazonS3>,
    pub(super) path: Path,
}

impl S3Reader {
    /// `len` bytes from `start` on, one ranged GET per block, `READ_AHEAD` ahead of the
    /// socket. `hold` is dropped with the last read in flight.
    pub(in crate::store::blobs) fn range<H: Send + Sync + 'static>(
        self,
        start: u64,
        len: u64,
        block: u64,
        hold: H,
    ) -> impl futures::Stream<Item = io::Result<Bytes>> + Send + 'static {
        let reader = Arc::new((self, hold));
        futures::stream::iter(blocks(start, len, block))
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
