//! Sealed bytes: how an encrypted image's bytes lie in storage.
//!
//! The plain bytes are cut into segments of `SEGMENT_BYTES` (64 KiB). Each is sealed with
//! AES-256-GCM under the image's data key in the STREAM construction (`aead_stream::
//! StreamBE32`): the nonce is the data key's 7-byte prefix, the segment's index (32 bits,
//! big-endian) and a byte that is 1 on the last segment only. Every segment but the last holds
//! exactly `SEGMENT_BYTES`; the last holds what is left, 0 to `SEGMENT_BYTES - 1` bytes, so a
//! stream whose length is a multiple of the segment ends with an empty segment (its tag alone)
//! and the writer never has to know in advance where the stream ends. A sealed segment is its
//! ciphertext followed by its 16-byte tag, and segments follow one another with nothing
//! between them, so a plain offset maps to a stored one by arithmetic and a range reads only
//! the segments it needs. A flipped bit fails the segment's tag, a moved segment its index, and
//! a stream cut at a segment boundary lacks the segment marked last.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::stream::{BoxStream, StreamExt};
use rand::RngCore;
use sealed_segments::StreamCipher;
use zeroize::Zeroizing;

/// Plain bytes per segment.
pub const SEGMENT_BYTES: usize = 64 << 10;
/// The AEAD tag after each segment's ciphertext.
pub const TAG_BYTES: usize = sealed_segments::TAG_BYTES;
/// A whole sealed segment in storage.
const SEALED_SEGMENT: u64 = (SEGMENT_BYTES + TAG_BYTES) as u64;
/// The part of the nonce that is the data key's own; STREAM fills the other five bytes.
pub const NONCE_PREFIX_BYTES: usize = sealed_segments::NONCE_PREFIX_BYTES;
/// The name the database records with each data key, so the format can change later.
pub const FORMAT: &str = "aes256gcm-stream-be32-64k";

/// An image's data key: the AES-256 key and the nonce prefix of its segments. Never stored
/// as it is; the key provider wraps it.
pub struct DataKey {
    key: Zeroizing<[u8; 32]>,
    nonce_prefix: [u8; NONCE_PREFIX_BYTES],
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A fresh random key and nonce prefix.
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        let mut nonce_prefix = [0u8; NONCE_PREFIX_BYTES];
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        rand::rngs::OsRng.fill_bytes(&mut nonce_prefix);
        Self { key, nonce_prefix }
    }

    /// The key from its 32 bytes (what a key provider unwraps) and its nonce prefix.
    pub fn from_parts(key: &[u8], nonce_prefix: &[u8]) -> io::Result<Self> {
        let invalid = |what| io::Error::new(io::ErrorKind::InvalidData, what);
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| invalid("a data key is 32 bytes"))?;
        let nonce_prefix = nonce_prefix
            .try_into()
            .map_err(|_| invalid("a nonce prefix is 7 bytes"))?;
        Ok(Self {
            key: Zeroizing::new(key),
            nonce_prefix,
        })
    }

    /// The key's bytes, for the key provider to wrap.
    pub fn key_bytes(&self) -> &[u8; 32] {
        &self.key
    }

    pub fn nonce_prefix(&self) -> &[u8; NONCE_PREFIX_BYTES] {
        &self.nonce_prefix
    }

    pub fn cipher(&self) -> SegmentCipher {
        SegmentCipher(Arc::new(StreamCipher::new(&self.key, &self.nonce_prefix)))
    }
}

/// Seals and opens one data key's segments; cheap to clone.
#[derive(Clone)]
pub struct SegmentCipher(Arc<StreamCipher>);

/// A segment that did not authenticate, or one missing from where it must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("segment {0} of the stored bytes failed authentication")]
    Tampered(u64),
    #[error("the stored bytes end before segment {0}")]
    Truncated(u64),
    #[error("the stored bytes go on past their last segment")]
    TooLong,
}

impl From<SealError> for io::Error {
    fn from(e: SealError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

fn position(index: u64) -> io::Result<u32> {
    u32::try_from(index).map_err(|_| io::Error::other("too many segments for one stream"))
}

impl SegmentCipher {
    /// Seals the plain segment at the end of `out` (from `start`) in place, its tag appended.
    fn seal(&self, index: u64, last: bool, out: &mut Vec<u8>, start: usize) -> io::Result<()> {
        self.0
            .seal(position(index)?, last, out, start)
            .map_err(|_| io::Error::other("sealing a segment failed"))
    }

    /// Opens the sealed segment in `buffer` in place (its tag removed), or says it was
    /// tampered with; a segment that fails leaves nothing in the buffer.
    fn open(&self, index: u64, last: bool, buffer: &mut BytesMut) -> Result<(), SealError> {
        let position = u32::try_from(index).map_err(|_| SealError::Tampered(index))?;
        self.0
            .open(position, last, buffer)
            .map_err(|_| SealError::Tampered(index))
    }
}

/// The stored length of `plain_len` sealed bytes, the last segment included.
pub fn sealed_len(plain_len: u64) -> u64 {
    plain_len + (plain_len / SEGMENT_BYTES as u64 + 1) * TAG_BYTES as u64
}

/// The stored offset of a plain offset at a segment boundary.
pub fn sealed_offset(plain_offset: u64) -> u64 {
    debug_assert!(plain_offset.is_multiple_of(SEGMENT_BYTES as u64));
    plain_offset / SEGMENT_BYTES as u64 * SEALED_SEGMENT
}

/// The segment boundary at or before a plain offset: where sealed bytes can be made durable
/// without sealing a partial segment.
pub fn segment_floor(plain_offset: u64) -> u64 {
    plain_offset - plain_offset % SEGMENT_BYTES as u64
}

/// Seals plain bytes as they arrive, from a segment boundary on.
pub struct Sealer {
    cipher: SegmentCipher,
    /// The index of the segment being filled.
    index: u64,
    /// Its plain bytes so far (fewer than a segment).
    pending: Vec<u8>,
}

impl Sealer {
    /// Goes on sealing at `plain_offset`, which must be a segment boundary.
    pub fn at(cipher: SegmentCipher, plain_offset: u64) -> io::Result<Self> {
        if !plain_offset.is_multiple_of(SEGMENT_BYTES as u64) {
            return Err(io::Error::other(
                "sealed bytes resume only at a segment boundary",
            ));
        }
        Ok(Self {
            cipher,
            index: plain_offset / SEGMENT_BYTES as u64,
            pending: Vec::with_capacity(SEGMENT_BYTES + TAG_BYTES),
        })
    }

    /// Plain bytes sealed so far, from the start of the stream: always a segment boundary.
    pub fn sealed_through(&self) -> u64 {
        self.index * SEGMENT_BYTES as u64
    }

    /// Plain bytes taken but not sealed yet (they wait for the rest of their segment).
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Seals every segment `plain` completes, appending the sealed bytes to `out`. Whole
    /// segments are copied once, into `out`, and sealed there.
    pub fn push(&mut self, mut plain: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        while !plain.is_empty() {
            let whole = if self.pending.is_empty() && plain.len() >= SEGMENT_BYTES {
                let (segment, rest) = plain.split_at(SEGMENT_BYTES);
                plain = rest;
                segment
            } else {
                let take = (SEGMENT_BYTES - self.pending.len()).min(plain.len());
                self.pending.extend_from_slice(&plain[..take]);
                plain = &plain[take..];
                if self.pending.len() < SEGMENT_BYTES {
                    continue;
                }
                &self.pending
            };
            let start = out.len();
            out.extend_from_slice(whole);
            self.cipher.seal(self.index, false, out, start)?;
            self.pending.clear();
            self.index += 1;
        }
        Ok(())
    }

    /// Ends the stream: seals what is pending as the last segment into `out`.
    pub fn finish(self, out: &mut Vec<u8>) -> io::Result<()> {
        let start = out.len();
        out.extend_from_slice(&self.pending);
        self.cipher.seal(self.index, true, out, start)
    }
}

/// The stored bytes that hold a plain range of a sealed stream, and how to cut the range out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealedRange {
    /// Where the first needed segment starts in storage.
    pub stored_start: u64,
    /// How many stored bytes the needed segments take.
    pub stored_len: u64,
    first: u64,
    /// The last needed segment (inclusive).
    last_needed: u64,
    /// The stream's last segment (the one sealed as last).
    last: u64,
    /// Plain bytes to drop from the first needed segment.
    skip: u64,
    /// Plain bytes wanted.
    len: u64,
}

impl SealedRange {
    /// The segments holding plain bytes `start..start + len` of a stream of `plain_len`
    /// bytes. A range that reaches the end also reads the last segment (perhaps empty), so a
    /// whole read proves the stream was not cut short.
    pub fn of(plain_len: u64, start: u64, len: u64) -> Self {
        let segment = SEGMENT_BYTES as u64;
        let end = (start + len).min(plain_len);
        let last = plain_len / segment;
        let start = start.min(plain_len);
        let first = start / segment;
        // An empty range short of the end still names its segment.
        let last_needed = if end == plain_len {
            last
        } else {
            (end.max(start + 1) - 1) / segment
        };
        let stored_start = first * SEALED_SEGMENT;
        let stored_end = if last_needed == last {
            sealed_len(plain_len)
        } else {
            (last_needed + 1) * SEALED_SEGMENT
        };
        Self {
            stored_start,
            stored_len: stored_end - stored_start,
            first,
            last_needed,
            last,
            skip: start - first * segment,
            len: end - start,
        }
    }
}

/// Opens the segments of a `SealedRange` as their stored bytes arrive, in pieces of any size,
/// and hands out only authenticated plain bytes of the range.
pub struct Opener {
    cipher: SegmentCipher,
    range: SealedRange,
    /// The segment being gathered.
    index: u64,
    buffer: BytesMut,
    /// Plain bytes still to hand out.
    remaining: u64,
}

impl Opener {
    pub fn new(cipher: SegmentCipher, range: SealedRange) -> Self {
        Self {
            cipher,
            index: range.first,
            buffer: BytesMut::with_capacity(SEALED_SEGMENT as usize),
            remaining: range.len,
            range,
        }
    }

    /// Takes the next stored bytes; the plain bytes of every segment they complete go to
    /// `plain`.
    pub fn push(
        &mut self,
        mut stored: &[u8],
        plain: &mut VecDeque<Bytes>,
    ) -> Result<(), SealError> {
        let whole = SEALED_SEGMENT as usize;
        while !stored.is_empty() {
            if self.index > self.range.last_needed {
                return Err(SealError::TooLong);
            }
            if self.index == self.range.last {
                // The last segment is whatever is left; `finish` opens it.
                self.buffer.extend_from_slice(stored);
                if self.buffer.len() >= whole {
                    return Err(SealError::TooLong);
                }
                return Ok(());
            }
            let take = (whole - self.buffer.len()).min(stored.len());
            self.buffer.extend_from_slice(&stored[..take]);
            stored = &stored[take..];
            if self.buffer.len() == whole {
                self.open_segment(false, plain)?;
            }
        }
        Ok(())
    }

    fn open_segment(&mut self, last: bool, plain: &mut VecDeque<Bytes>) -> Result<(), SealError> {
        self.cipher.open(self.index, last, &mut self.buffer)?;
        let skip = if self.index == self.range.first {
            self.range.skip as usize
        } else {
            0
        };
        let available = self.buffer.len().saturating_sub(skip) as u64;
        let take = available.min(self.remaining) as usize;
        // The opened segment becomes the bytes handed out, without a copy.
        let opened = self.buffer.split().freeze();
        self.buffer.reserve(SEALED_SEGMENT as usize);
        if take > 0 {
            plain.push_back(opened.slice(skip..skip + take));
        }
        self.remaining -= take as u64;
        self.index += 1;
        Ok(())
    }

    /// The stored bytes have ended: opens the last segment if the range reaches it, and says
    /// whether every needed segment came.
    pub fn finish(mut self, plain: &mut VecDeque<Bytes>) -> Result<(), SealError> {
        if self.index == self.range.last && self.range.last_needed == self.range.last {
            if self.buffer.len() < TAG_BYTES {
                return Err(SealError::Truncated(self.index));
            }
            self.open_segment(true, plain)?;
        }
        if self.index <= self.range.last_needed || self.remaining > 0 {
            return Err(SealError::Truncated(self.index));
        }
        Ok(())
    }
}

/// A read block of whole sealed segments, of about `about` bytes.
pub fn sealed_block(about: u64) -> u64 {
    (about / SEGMENT_BYTES as u64).max(1) * SEALED_SEGMENT
}

/// Blocks opened at once: one per core of a two-core machine, so a download decrypts on
/// both while the socket takes what is ready.
const BLOCKS_IN_FLIGHT: usize = 2;

/// The plain bytes of `range` from its stored bytes, which arrive in blocks of whole segments
/// (aligned to `sealed_block`). Blocks are opened on blocking threads, two at a time, and
/// handed on in order; a segment that fails, or stored bytes that end early, end the stream
/// with an error before any byte of that block.
pub fn open_blocks(
    cipher: SegmentCipher,
    range: SealedRange,
    stored: BoxStream<'static, io::Result<Bytes>>,
) -> BoxStream<'static, io::Result<Bytes>> {
    use futures::TryStreamExt;
    let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = seen.clone();
    let mut offset = range.stored_start;
    let opened = stored
        .map(move |piece| {
            let at = offset;
            if let Ok(piece) = &piece {
                offset += piece.len() as u64;
            }
            let cipher = cipher.clone();
            let counted = counted.clone();
            async move {
                let piece = piece?;
                counted.fetch_add(piece.len() as u64, std::sync::atomic::Ordering::SeqCst);
                tokio::task::spawn_blocking(move || open_block(&cipher, &range, at, piece))
                    .await
                    .map_err(io::Error::other)?
                    .map_err(io::Error::from)
            }
        })
        .buffered(BLOCKS_IN_FLIGHT)
        .map_ok(|pieces| futures::stream::iter(pieces.into_iter().map(Ok)))
        .try_flatten();
    // Every stored byte the range needs must have come.
    let end = futures::stream::once(async move {
        let got = seen.load(std::sync::atomic::Ordering::SeqCst);
        if got < range.stored_len {
            let at = range.stored_start + got;
            Err(io::Error::from(SealError::Truncated(at / SEALED_SEGMENT)))
        } else {
            Ok(Bytes::new())
        }
    })
    .try_filter(|piece| std::future::ready(!piece.is_empty()));
    opened.chain(end).boxed()
}

/// Opens the whole segments of one block that starts at stored offset `at`, keeping the plain
/// bytes of `range` they hold. Each segment is opened where it lies in the block (the block
/// read from a file is this reader's alone, so it is taken without a copy).
fn open_block(
    cipher: &SegmentCipher,
    range: &SealedRange,
    at: u64,
    block: Bytes,
) -> Result<Vec<Bytes>, SealError> {
    let segment = SEGMENT_BYTES as u64;
    let wanted = range.first * segment + range.skip..range.first * segment + range.skip + range.len;
    let mut block = block
        .try_into_mut()
        .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
    let mut plain = Vec::new();
    let mut index = at / SEALED_SEGMENT;
    while !block.is_empty() {
        if index > range.last_needed {
            return Err(SealError::TooLong);
        }
        let last = index == range.last;
        let whole = SEALED_SEGMENT as usize;
        if block.len() < whole && !last {
            return Err(SealError::Truncated(index));
        }
        let mut buffer = block.split_to(whole.min(block.len()));
        cipher.open(index, last, &mut buffer)?;
        let start = index * segment;
        let from = wanted.start.max(start);
        let to = wanted.end.min(start + buffer.len() as u64);
        if from < to {
            plain.push(
                buffer
                    .freeze()
                    .slice((from - start) as usize..(to - start) as usize),
            );
        }
        index += 1;
    }
    Ok(plain)
}

#[cfg(test)]
mod tests;
