//! Who may write an upload now: one request per image (`UploadLocks`), and a bounded number
//! of streaming requests in all and per account (`PatchSlots`), so that stalled requests
//! cannot hold every thread and file the server has.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{UploadError, UploadResult};
use crate::service::Clock;

/// One writer per image: a PATCH holds its image's entry while it writes, and termination or
/// deletion cancels it through the token.
pub struct UploadLocks {
    held: Mutex<HashMap<String, Arc<Writer>>>,
    clock: Clock,
}

/// The request writing an upload: how to stop it, and when it last made headway.
pub struct Writer {
    token: CancellationToken,
    /// When the request last completed a `HEADWAY_BYTES` stretch of body, in ms since the
    /// epoch. A request that keeps making headway keeps its upload from expiring, whatever
    /// the durable offset says; one that trickles does not.
    headway_at_ms: AtomicI64,
    clock: Clock,
}

/// How much body a writer must receive to count as making headway.
const HEADWAY_BYTES: u64 = 1 << 20;

impl Writer {
    fn made_headway_since(&self, since_ms: i64) -> bool {
        self.headway_at_ms.load(Ordering::Relaxed) > since_ms
    }

    /// Notes that the request's body went from `before` to `after` bytes.
    pub(super) fn received(&self, before: u64, after: u64) {
        if after / HEADWAY_BYTES > before / HEADWAY_BYTES {
            self.headway_at_ms
                .store(self.clock.now_ms(), Ordering::Relaxed);
        }
    }

    /// Resolves when termination, deletion or expiry stops the request.
    pub(super) async fn stopped(&self) {
        self.token.cancelled().await;
    }
}

pub struct UploadLock<'a> {
    locks: &'a UploadLocks,
    image_id: String,
    pub(super) writer: Arc<Writer>,
}

impl Drop for UploadLock<'_> {
    fn drop(&mut self) {
        self.locks.map().remove(&self.image_id);
    }
}

impl UploadLocks {
    pub fn new(clock: Clock) -> Self {
        Self {
            held: Mutex::default(),
            clock,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Writer>>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn try_lock(&self, image_id: &str) -> Option<UploadLock<'_>> {
        let mut map = self.map();
        if map.contains_key(image_id) {
            return None;
        }
        let writer = Arc::new(Writer {
            token: CancellationToken::new(),
            headway_at_ms: AtomicI64::new(self.clock.now_ms()),
            clock: self.clock.clone(),
        });
        map.insert(image_id.to_owned(), Arc::clone(&writer));
        Some(UploadLock {
            locks: self,
            image_id: image_id.to_owned(),
            writer,
        })
    }

    /// Whether a request writing the image's upload has made headway since `since_ms`.
    pub(super) fn writer_made_headway_since(&self, image_id: &str, since_ms: i64) -> bool {
        self.map()
            .get(image_id)
            .is_some_and(|w| w.made_headway_since(since_ms))
    }

    /// Stops the request writing the image's upload, if any, and takes the lock once it ends.
    pub async fn cancel_and_lock(&self, image_id: &str) -> Option<UploadLock<'_>> {
        if let Some(writer) = self.map().get(image_id) {
            writer.token.cancel();
        }
        for _ in 0..100 {
            if let Some(lock) = self.try_lock(image_id) {
                return Some(lock);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

/// Bounds the requests that stream image bytes in at once (tus PATCH, the image API's PUT
/// `/file` and `/stage`), in all and per account, so that stalled requests cannot hold every
/// connection, file and buffer the server has.
pub struct PatchSlots {
    global: Arc<tokio::sync::Semaphore>,
    per_account: usize,
    held: Arc<Mutex<HashMap<String, usize>>>,
}

/// One streaming PATCH; its slot is given back when it is dropped.
pub struct PatchSlot {
    _global: tokio::sync::OwnedSemaphorePermit,
    account_id: String,
    held: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for PatchSlot {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = held.get_mut(&self.account_id) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.account_id);
            }
        }
    }
}

/// How long a client refused for too many requests is told to wait.
const PATCH_RETRY_AFTER: Duration = Duration::from_secs(5);

impl PatchSlots {
    pub fn new(limits: &crate::service::AbuseLimits) -> Self {
        Self {
            global: Arc::new(tokio::sync::Semaphore::new(limits.upload_patches.max(1))),
            per_account: limits.upload_patches_per_account.max(1),
            held: Arc::default(),
        }
    }

    /// PATCH requests streaming now.
    pub(super) fn streaming(&self) -> usize {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .sum()
    }

    /// A slot for one more PATCH of `account_id`, or why not. Never waits: a client told to
    /// retry costs nothing, a queued request holds a connection.
    pub(crate) fn try_take(&self, account_id: &str) -> UploadResult<PatchSlot> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let count = held.get(account_id).copied().unwrap_or(0);
        if count >= self.per_account {
            return Err(UploadError::TooManyRequests {
                message: format!(
                    "This account already has {count} upload requests streaming, the most allowed at once; try again when one ends."
                ),
                retry_after: PATCH_RETRY_AFTER,
            });
        }
        let global =
            Arc::clone(&self.global)
                .try_acquire_owned()
                .map_err(|_| UploadError::ServerBusy {
                    retry_after: PATCH_RETRY_AFTER,
                })?;
        held.insert(account_id.to_owned(), count + 1);
        Ok(PatchSlot {
            _global: global,
            account_id: account_id.to_owned(),
            held: Arc::clone(&self.held),
        })
    }
}
