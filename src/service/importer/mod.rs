//! Imports images from URLs in the background.
//!
//! One task per image: wait for a slot, claim the row (Queued → Importing), stream the body
//! through `ingest` (the blob writer and the hashers, on their own threads; fsynced), inspect
//! and verify it (`ingest::check`), move it into the blob store, and only then mark the row
//! Active. Any failure marks
//! the row Failed with a reason a person can act on and removes the partial bytes. A shutdown
//! leaves the row Importing; the next start requeues it (`recover`).

mod body;
mod convert;
pub mod qemu_img;
mod reasons;
mod transfer;

pub use body::BodyUploadError;
pub use convert::ConversionSettings;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ingest::{self, Claims, Ingest};
use super::keys::KeyRing;
use super::leases::{LeaseGuard, Leases};
use super::now_ms;
use super::url_guard::{AddressPolicy, GuardedResolver, Refused};
use crate::domain::image::{DiskFormat, ImageStatus, replica_source};
use crate::domain::notices;
use crate::domain::units::format_bytes;
use crate::store::blobs::sealed::SegmentCipher;
use crate::store::blobs::{BlobWriter, Incoming, IncomingState};
use crate::store::images::Reservation;
use crate::store::leases::import_lease;
use crate::store::{BlobStore, Store};
use reasons::*;
use transfer::Source;

/// How many times an import may be cut off by a restart before it is marked Failed, so an
/// image that crashes the server cannot do so for ever.
pub const MAX_IMPORT_ATTEMPTS: u32 = 3;

/// Progress is written at most this often; the list polls about once a second.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Clone, Copy, Debug)]
pub struct ImportLimits {
    pub max_bytes: u64,
    /// Imports running at once, in all and for one account.
    pub concurrency: usize,
    pub per_account: usize,
    /// The account's storage quota; an import may not take it past this.
    pub max_account_bytes: u64,
    /// The slowest a source may send, averaged over each window, before the import fails.
    pub min_bytes_per_second: u64,
    pub min_speed_window: Duration,
    /// How long a body sent through the image API may send nothing before it is ended.
    pub body_idle: Duration,
    /// The fastest Replicate reads its source; 0: no limit.
    pub replicate_max_bytes_per_second: u64,
}

/// How far ahead of the bytes received an import of unknown length reserves storage: a few
/// reservations per second at full speed, and never much more than it needs.
const RESERVATION_STEP: u64 = 16 << 20;

#[derive(Clone)]
pub struct Importer {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    blobs: BlobStore,
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
    limits: ImportLimits,
    slots: Arc<Semaphore>,
    /// One semaphore per account with imports waiting or running, so one account's imports
    /// can take at most `per_account` of the slots.
    account_slots: Mutex<HashMap<String, Arc<Semaphore>>>,
    running: Mutex<HashMap<String, Running>>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    /// This process's claims: an import runs only under its lease.
    leases: Leases,
    /// Data keys of encrypted images.
    keys: KeyRing,
    /// Conversion's scratch space and its qemu-img.
    scratch: convert::Scratch,
}

/// An import task of this process: how to stop it, and when it has ended.
struct Running {
    cancel: CancellationToken,
    ended: CancellationToken,
}

/// How one import attempt ended, short of success.
#[derive(Debug)]
enum Stop {
    /// The image cannot be imported; the text is shown on it.
    Failed(String),
    /// Its bytes are larger than the size limit or the account's storage quota allows; the
    /// text says which.
    TooLarge(String),
    /// The image was deleted or the server is stopping; leave the row to its new owner.
    Cancelled,
    /// A body sent nothing for this long (an upload through the image API).
    Idle(Duration),
    /// Another console process took the lease over (this one was paused or cut off from
    /// the database): touch nothing more.
    TakenOver,
    /// Our fault (database, disk): logged, and the image marked Failed with a generic reason.
    Internal(anyhow::Error),
}

impl From<sqlx::Error> for Stop {
    fn from(e: sqlx::Error) -> Self {
        Stop::Internal(anyhow::Error::new(e).context("database"))
    }
}

impl From<std::io::Error> for Stop {
    fn from(e: std::io::Error) -> Self {
        Stop::Internal(anyhow::Error::new(e).context("writing image bytes"))
    }
}

/// What becomes of bytes that passed inspection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// The image is Active with them.
    Activate,
    /// They are staged: the image is Uploading with them until an import makes it Active.
    Stage,
}

/// An import's bytes, durable in the staging area.
struct Written {
    size_bytes: u64,
    digests: ingest::Digests,
    /// The cipher they are sealed with, for an encrypted image.
    seal: Option<SegmentCipher>,
    /// Its data key, wrapped, when the attempt left recording it to the end
    /// (`DataKeyFor::Result`).
    wrapped: Option<crate::store::keys::WrappedDataKey>,
    /// The blob store's state of the bytes.
    state: IncomingState,
}

impl Importer {
    pub fn new(
        store: Store,
        blobs: BlobStore,
        leases: Leases,
        keys: KeyRing,
        limits: ImportLimits,
        policy: AddressPolicy,
        conversion: ConversionSettings,
    ) -> anyhow::Result<Self> {
        let policy = Arc::new(policy);
        // See url_guard: the resolver, the redirect rule and the checks in `import` keep every
        // connection on permitted addresses; no proxy from the environment may reroute it.
        let client = reqwest::Client::builder()
            .user_agent(concat!("image-console/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver::new(Arc::clone(&policy))))
            .redirect(policy.redirect_policy())
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(60))
            .build()
            .context("building the HTTP client for imports")?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                blobs,
                client,
                policy,
                slots: Arc::new(Semaphore::new(limits.concurrency.max(1))),
                account_slots: Mutex::new(HashMap::new()),
                limits,
                running: Mutex::new(HashMap::new()),
                tracker: TaskTracker::new(),
                leases,
                keys,
                scratch: convert::Scratch::new(conversion),
                shutdown: CancellationToken::new(),
            }),
        })
    }

    /// Takes a new Queued image's lease and starts importing it in the background. The lease
    /// is taken before the task starts, so an account's imports wait for its slots in the
    /// order they were created. If the lease cannot be taken now, the heartbeat of whichever
    /// process can will take the import over.
    pub async fn enqueue(&self, account_id: &str, image_id: &str) {
        match self.inner.leases.acquire(&import_lease(image_id)).await {
            Ok(Some(lease)) => self.enqueue_under(account_id, image_id, lease),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(image.id = %image_id, error = %e, "could not claim the import; a heartbeat will");
            }
        }
    }

    /// Starts importing a Queued image under its lease.
    fn enqueue_under(&self, account_id: &str, image_id: &str, lease: LeaseGuard) {
        let cancel = self.inner.shutdown.child_token();
        let ended = CancellationToken::new();
        self.running().insert(
            image_id.to_owned(),
            Running {
                cancel: cancel.clone(),
                ended: ended.clone(),
            },
        );
        let this = self.clone();
        let (account_id, image_id) = (account_id.to_owned(), image_id.to_owned());
        let span = tracing::info_span!(parent: None, "import", image.id = %image_id, account.id = %account_id);
        self.inner.tracker.spawn(tracing::Instrument::instrument(
            async move {
                let _ended = ended.drop_guard();
                let attempt = Attempt::new(&account_id, &image_id, &lease, cancel);
                this.run(&attempt).await;
                this.running().remove(&image_id);
                drop(attempt);
                lease.release().await;
            },
            span,
        ));
    }

    /// Stops an image's import, if one is running here (the image is being deleted), and
    /// waits (at most 10 s) until it has stopped writing and removed what it wrote.
    pub async fn cancel(&self, image_id: &str) {
        let running = self.running().remove(image_id);
        if let Some(running) = running {
            running.cancel.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(10), running.ended.cancelled()).await;
        }
    }

    /// Checks an image file URL's host before the image is created (see url_guard).
    pub fn check_source(&self, url: &url::Url) -> Result<(), Refused> {
        self.inner.policy.check_url(url)
    }

    /// Whether any import task is still running; tests wait on this.
    pub fn is_idle(&self) -> bool {
        self.running().is_empty()
    }

    /// Cancels running imports and waits for their tasks to end. Their rows stay Importing
    /// and are requeued by the next start.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tracker.close();
        self.inner.tracker.wait().await;
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.inner.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes over the imports no running lease covers: those of a process that stopped (at
    /// start-up, this one's previous run). Each is requeued and imported from the beginning,
    /// unless it was cut off `MAX_IMPORT_ATTEMPTS` times already; then it is marked Failed.
    /// Runs at start-up, before requests are served, and with every heartbeat.
    pub async fn take_over(&self) -> anyhow::Result<()> {
        let store = &self.inner.store;
        for (import, lease) in self.inner.leases.claim_unleased_imports(100).await? {
            if self.running().contains_key(&import.id) {
                // Its lease lapsed while it ran here (the heartbeat failed for a while); the
                // run keeps going, and the lease is left to whoever claims it next.
                tracing::warn!(image.id = %import.id, "import lease renewed late");
                drop(lease);
                continue;
            }
            let fence = lease.fence();
            if import.status == ImageStatus::Converting {
                if import.import_attempts >= MAX_IMPORT_ATTEMPTS {
                    let reason = format!(
                        "The conversion was interrupted by a server restart {} times; create the image again.",
                        import.import_attempts
                    );
                    let attempt = Attempt::new(
                        &import.account_id,
                        &import.id,
                        &lease,
                        CancellationToken::new(),
                    );
                    self.fail_conversion(&attempt, &reason).await;
                    drop(attempt);
                    tracing::warn!(image.id = %import.id, "interrupted conversion given up");
                    lease.release().await;
                    continue;
                }
                // Its bytes arrived and are stored: the conversion starts again from them.
                self.remove_recorded_import_bytes(&import.id, &fence)
                    .await?;
                tracing::info!(image.id = %import.id, "taking over conversion");
                self.enqueue_under(&import.account_id, &import.id, lease);
                continue;
            }
            if !import.from_url {
                // Data a client sent through the image API: only it can send it again. What
                // the stopped process recorded is its, and goes.
                self.remove_recorded_import_bytes(&import.id, &fence)
                    .await?;
                store
                    .return_body_upload(
                        &import.account_id,
                        &import.id,
                        &fence,
                        &crate::domain::history::notes::api_upload_returned(
                            "The console process receiving the upload stopped.",
                        ),
                        now_ms(),
                    )
                    .await?;
                tracing::info!(image.id = %import.id, "interrupted API upload queued again");
                // Ended now: its client may send the data again at once.
                lease.release().await;
                continue;
            }
            let interrupted = import.status == ImageStatus::Importing;
            if interrupted && import.import_attempts >= MAX_IMPORT_ATTEMPTS {
                let reason = format!(
                    "The import was interrupted by a server restart {} times; create the image again.",
                    import.import_attempts
                );
                store
                    .fail_import(&import.account_id, &import.id, &fence, &reason, now_ms())
                    .await?;
                tracing::warn!(image.id = %import.id, "interrupted import given up");
                lease.release().await;
                continue;
            }
            store
                .requeue_import(&import.account_id, &import.id, &fence, now_ms())
                .await?;
            tracing::info!(image.id = %import.id, interrupted, "taking over import");
            self.enqueue_under(&import.account_id, &import.id, lease);
        }
        Ok(())
    }

    /// The account's own semaphore, created on first use.
    fn account_slots(&self, account_id: &str) -> Arc<Semaphore> {
        let mut map = self
            .inner
            .account_slots
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let per_account = self.inner.limits.per_account.max(1);
        Arc::clone(
            map.entry(account_id.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(per_account))),
        )
    }

    /// Forgets an account's semaphore once no import holds or awaits it.
    fn release_account_slots(&self, account_id: &str, slots: Arc<Semaphore>) {
        let mut map = self
            .inner
            .account_slots
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        drop(slots);
        if map
            .get(account_id)
            .is_some_and(|s| Arc::strong_count(s) == 1)
        {
            map.remove(account_id);
        }
    }

    async fn run(&self, attempt: &Attempt<'_>) {
        let account_slots = self.account_slots(attempt.account_id);
        self.run_in_slots(attempt, &account_slots).await;
        self.release_account_slots(attempt.account_id, account_slots);
    }

    /// Waits for one of the account's slots, then one of the server's, then imports. The
    /// account's slot comes first, so an account with many imports waiting holds at most
    /// `per_account` server slots and never starves the others.
    async fn run_in_slots(&self, attempt: &Attempt<'_>, account_slots: &Semaphore) {
        let slots = async {
            let account = account_slots.acquire().await.ok()?;
            let server = self.inner.slots.clone().acquire_owned().await.ok()?;
            Some((account, server))
        };
        let _slots = tokio::select! {
            slots = slots => match slots {
                Some(slots) => slots,
                None => return,
            },
            () = attempt.cancel.cancelled() => return,
        };
        let store = &self.inner.store;
        let (account_id, image_id) = (attempt.account_id, attempt.image_id);
        let claimed = match store
            .claim_import(account_id, image_id, &attempt.fence, now_ms())
            .await
        {
            Ok(Some(claimed)) => claimed,
            // Not Queued: its bytes may have arrived and wait for their conversion.
            Ok(None) => return self.convert_claimed(attempt).await,
            Err(e) => {
                tracing::error!(error = %e, "could not start import");
                return;
            }
        };
        tracing::info!("import started");
        let started = Instant::now();
        // What the bytes must prove: the creator's checksum, and the signature's certificate.
        let (claims, loaded) = match Claims::load(
            store,
            account_id,
            claimed.expected_checksum.as_deref(),
            &claimed.signature,
        )
        .await
        {
            Ok(claims) => (claims, Ok(())),
            Err(e) => (Claims::default(), Err(Stop::Internal(e))),
        };
        // What this attempt wrote, as far as it got: removed if the import does not finish.
        let mut written = None;
        let key_id = claimed.encryption_key_id.as_deref();
        let outcome = match (loaded, replica_source(&claimed.source_url)) {
            (Err(stop), _) => Err(stop),
            (Ok(()), Some(source_id)) => {
                self.replicate(attempt, source_id, &claims, key_id, &mut written)
                    .await
            }
            (Ok(()), None) => {
                self.import(attempt, &claimed.source_url, &claims, key_id, &mut written)
                    .await
            }
        };
        let stop = match outcome {
            Ok(bytes) => {
                let size_bytes = bytes.size_bytes;
                match self
                    .finish(
                        attempt,
                        bytes,
                        &claims,
                        claimed.declared_format,
                        Keep::Activate,
                    )
                    .await
                {
                    Ok(status) => {
                        tracing::info!(
                            size_bytes,
                            duration_ms = started.elapsed().as_millis() as u64,
                            "import finished"
                        );
                        if status == ImageStatus::Converting {
                            self.convert_claimed(attempt).await;
                        }
                        return;
                    }
                    Err(stop) => stop,
                }
            }
            Err(stop) => stop,
        };
        let stop = self.settle(attempt, stop).await;
        self.discard(attempt, written.as_ref()).await;
        let reason = match stop {
            Stop::Cancelled => {
                tracing::info!("import cancelled");
                return;
            }
            Stop::TakenOver => return,
            Stop::Idle(idle) => {
                let reason = format!(
                    "The source sent nothing for {}.",
                    crate::domain::units::describe_duration(idle)
                );
                tracing::info!(%reason, "import failed");
                reason
            }
            Stop::Failed(reason) | Stop::TooLarge(reason) => {
                tracing::info!(%reason, "import failed");
                reason
            }
            Stop::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "import failed on our side");
                "The import stopped because of a storage error on the server. Try again later."
                    .to_owned()
            }
        };
        if let Err(e) = store
            .fail_import(account_id, image_id, &attempt.fence, &reason, now_ms())
            .await
        {
            tracing::error!(error = %e, "could not mark import failed");
        }
    }

    /// Whether an attempt that stopped lost its lease: then it stopped because another
    /// process took the work over, whatever the stop says, and must touch nothing more.
    async fn settle(&self, attempt: &Attempt<'_>, stop: Stop) -> Stop {
        if matches!(stop, Stop::TakenOver) {
            return stop;
        }
        let held = attempt.lost.is_cancelled()
            || matches!(
                self.inner.store.holds_lease(&attempt.fence).await,
                Ok(false)
            );
        if held {
            tracing::warn!(image.id = %attempt.image_id, "import attempt stopped: another console process took its lease over; its late writes were refused");
            return Stop::TakenOver;
        }
        stop
    }

    /// Inspects and verifies the bytes, moves them into place and marks the image Active (or
    /// Converting, when it asked for another format). If the image was deleted meanwhile, the
    /// bytes go too. Returns the status the image took.
    async fn finish(
        &self,
        attempt: &Attempt<'_>,
        bytes: Written,
        claims: &Claims,
        declared: DiskFormat,
        keep: Keep,
    ) -> Result<ImageStatus, Stop> {
        let (account_id, image_id) = (attempt.account_id, attempt.image_id);
        let blobs = &self.inner.blobs;
        let checked = self
            .check_written(attempt, &bytes, claims, declared)
            .await?
            .map_err(Stop::Failed)?;
        let blob_key = blobs
            .commit(Incoming::Import, image_id, &bytes.state)
            .await?;
        let imported = checked.stored(blob_key.clone());
        let store = &self.inner.store;
        let updated = match keep {
            Keep::Activate => {
                store
                    .complete_import(account_id, image_id, &attempt.fence, &imported, now_ms())
                    .await
            }
            Keep::Stage => store
                .stage_body_data(account_id, image_id, &attempt.fence, &imported, now_ms())
                .await
                .map(|staged| staged.then_some(ImageStatus::Uploading)),
        };
        match updated {
            Ok(Some(status)) => Ok(status),
            updated => {
                let stop = self.settle(attempt, Stop::Cancelled).await;
                // A blob of this attempt's own key goes; on files the image's one place might
                // be the new holder's by now.
                if !matches!(stop, Stop::TakenOver) || blobs.keys_are_per_attempt() {
                    blobs.remove_blob(&blob_key).await?;
                }
                updated?;
                Err(stop)
            }
        }
    }

    /// Assembles an attempt's bytes and checks them (the checksum, inspection as `declared`);
    /// then, if they passed, asks whether the attempt still holds its lease. `Ok(Err(reason))`:
    /// refused.
    async fn check_written(
        &self,
        attempt: &Attempt<'_>,
        bytes: &Written,
        claims: &Claims,
        declared: DiskFormat,
    ) -> Result<Result<ingest::Checked, String>, Stop> {
        let blobs = &self.inner.blobs;
        blobs
            .assemble(Incoming::Import, attempt.image_id, &bytes.state)
            .await?;
        let received = ingest::Received {
            incoming: Incoming::Import,
            image_id: attempt.image_id,
            state: &bytes.state,
            length: bytes.size_bytes,
            seal: bytes.seal.as_ref(),
        };
        let checked = ingest::check(
            blobs,
            received,
            bytes.digests.clone(),
            claims,
            declared,
            now_ms(),
        )
        .await?;
        if checked.is_ok() && !self.inner.store.holds_lease(&attempt.fence).await? {
            return Err(Stop::TakenOver);
        }
        Ok(checked)
    }

    /// Reserves at least `needed` bytes of the account's storage quota for the import, and up
    /// to `wanted`; returns how much it now holds. Fails the import when `needed` does not fit.
    async fn reserve(&self, attempt: &Attempt<'_>, needed: u64, wanted: u64) -> Result<u64, Stop> {
        let quota = self.inner.limits.max_account_bytes;
        match self
            .inner
            .store
            .reserve_import_bytes(
                attempt.account_id,
                attempt.image_id,
                &attempt.fence,
                needed,
                wanted,
                quota,
            )
            .await?
        {
            Reservation::Granted(bytes) => Ok(bytes),
            Reservation::NoRoom { room } => Err(Stop::TooLarge(notices::storage_quota_exceeded(
                needed, room, quota,
            ))),
            Reservation::Gone => Err(Stop::Cancelled),
        }
    }
}

/// One attempt at an image's bytes, under its import lease: what it works on, its claim, and
/// what stops it.
pub(super) struct Attempt<'a> {
    account_id: &'a str,
    image_id: &'a str,
    fence: crate::store::leases::Fence,
    /// Deletion or shutdown.
    cancel: CancellationToken,
    /// Cancelled when the heartbeat finds the lease taken over.
    lost: CancellationToken,
}

impl<'a> Attempt<'a> {
    fn new(
        account_id: &'a str,
        image_id: &'a str,
        lease: &LeaseGuard,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            account_id,
            image_id,
            fence: lease.fence(),
            cancel,
            lost: lease.lost(),
        }
    }
}
