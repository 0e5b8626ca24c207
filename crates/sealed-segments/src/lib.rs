//! One key's STREAM cipher: AES-256-GCM with aead-stream's `StreamBE32` (nonce = a 7-byte
//! prefix, the segment's index as 32 bits big-endian, and a last-segment byte).
//!
//! Why a crate of its own: the AEAD's code is generic and is compiled where it is made
//! concrete. The console's crate is built at opt-level 1 without LTO (for build time), which
//! left AES-GCM at about 200 MiB/s instead of 3 GiB/s; made concrete here, in one codegen unit
//! at opt-level 3 (the console's `Cargo.toml` says so), it runs at the machine's speed.

use aead_stream::{NewStream, StreamBE32, StreamPrimitive};
use aes_gcm::aead::Buffer;
use aes_gcm::{Aes256Gcm, Key, KeyInit};
use bytes::BytesMut;

/// Bytes of the nonce that are the key's own.
pub const NONCE_PREFIX_BYTES: usize = 7;
/// The tag after each segment's ciphertext.
pub const TAG_BYTES: usize = 16;

/// A segment that did not authenticate (or could not be sealed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failed;

/// Seals and opens the segments of one data key.
pub struct StreamCipher(StreamBE32<Aes256Gcm>);

impl std::fmt::Debug for StreamCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamCipher(..)")
    }
}

impl StreamCipher {
    pub fn new(key: &[u8; 32], nonce_prefix: &[u8; NONCE_PREFIX_BYTES]) -> Self {
        let aead = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key));
        Self(StreamBE32::from_aead(aead, &(*nonce_prefix).into()))
    }

    /// Seals the plain segment at the end of `buffer` (from `start`) in place, appending its
    /// tag: sealed bytes are gathered where they are written from, without another copy.
    pub fn seal(
        &self,
        position: u32,
        last: bool,
        buffer: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), Failed> {
        let mut tail = Tail { vec: buffer, start };
        self.0
            .encrypt_in_place(position, last, &[], &mut tail)
            .map_err(|_| Failed)
    }

    /// Opens the sealed segment in `buffer` in place, removing its tag; on failure the buffer
    /// holds nothing usable.
    pub fn open(&self, position: u32, last: bool, buffer: &mut BytesMut) -> Result<(), Failed> {
        self.0
            .decrypt_in_place(position, last, &[], buffer)
            .map_err(|_| {
                buffer.clear();
                Failed
            })
    }
}

/// The bytes of a `Vec` from `start` on, as the AEAD's in-place buffer.
struct Tail<'a> {
    vec: &'a mut Vec<u8>,
    start: usize,
}

impl AsRef<[u8]> for Tail<'_> {
    fn as_ref(&self) -> &[u8] {
        &self.vec[self.start..]
    }
}

impl AsMut<[u8]> for Tail<'_> {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.vec[self.start..]
    }
}

impl Buffer for Tail<'_> {
    fn extend_from_slice(&mut self, other: &[u8]) -> aes_gcm::aead::Result<()> {
        self.vec.extend_from_slice(other);
        Ok(())
    }

    fn truncate(&mut self, len: usize) {
        self.vec.truncate(self.start + len);
    }
}
