//! The rules. Every method that acts for a person takes the `Actor` and scopes what it reads
//! and writes to the actor's account; the HTTP and UI layers only translate.

pub mod abuse;
pub mod accounts;
pub mod api_tokens;
mod clock;
pub mod downloads;
pub mod image_api;
pub mod images;
pub mod importer;
pub mod ingest;
pub mod keys;
mod leases;
pub mod lifecycle;
pub mod replicate;
pub mod shares;
pub mod signatures;
pub mod uploads;
pub mod url_guard;

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::Context;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::SecretSlice;

use crate::domain::FieldErrors;
use crate::store::key_provider::{KeyProvider, KeyProviderSettings};
use crate::store::{BlobStore, Store};
pub use abuse::{AbuseLimits, ClientAddr};
pub use clock::Clock;
pub use importer::Importer;
use leases::Leases;

/// Who is asking: a signed-in user of one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub user_id: String,
    pub user_name: String,
    pub account_id: String,
}

/// What went wrong, in terms the boundary can turn into a status and a message.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Input broke a rule; each error names its field.
    #[error("invalid input")]
    Invalid(FieldErrors),
    /// No session, or it expired.
    #[error("sign in required")]
    Unauthorized,
    /// Nothing by that id in the actor's account. Also said for another account's images, so
    /// ids cannot be probed.
    #[error("{0}")]
    NotFound(String),
    /// It was there and has ended (an upload cancelled or expired): asking again will not
    /// find it.
    #[error("{0}")]
    Gone(String),
    /// The request is understood but the current state forbids it; the text says why.
    #[error("{0}")]
    Conflict(String),
    /// The actor may see the image (another account shares it) but not do this to it.
    #[error("{0}")]
    Forbidden(String),
    /// The data sent is larger than a limit or the account's quota allows; the text says which.
    #[error("{0}")]
    TooLarge(String),
    /// Too many attempts from this client or for this name; try again after the wait.
    #[error("too many attempts")]
    RateLimited(Duration),
    /// The server is at a limit of its own (password hashing, uploads streaming); try again
    /// after the wait.
    #[error("server busy")]
    Busy(Duration),
    /// The account is at a limit of its own (uploads streaming at once); the text says which.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after: Duration,
    },
    /// A request body sent nothing for too long; the text says what became of it.
    #[error("{0}")]
    TimedOut(String),
    /// An image's stored data cannot be read (its object is missing, or the storage cannot be
    /// reached): our fault, logged with the request's reference, and answered 503 rather
    /// than 500 since the rest of the console works.
    #[error("image data unavailable")]
    DataUnavailable(anyhow::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ServiceError {
    fn from(error: sqlx::Error) -> Self {
        ServiceError::Internal(anyhow::Error::new(error).context("database"))
    }
}

impl From<std::io::Error> for ServiceError {
    fn from(error: std::io::Error) -> Self {
        ServiceError::Internal(anyhow::Error::new(error).context("image storage"))
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;

/// Refuses a batch action (Delete, Approve, Reject) on no images or on more than `max`;
/// `verb` completes "Select at least one image to …".
pub(crate) fn check_batch(ids: &[String], max: usize, verb: &str) -> ServiceResult<()> {
    let message = if ids.is_empty() {
        format!("Select at least one image to {verb}.")
    } else if ids.len() > max {
        format!("Select at most {max} images to {verb} at once.")
    } else {
        return Ok(());
    };
    Err(ServiceError::Invalid(vec![crate::domain::FieldError::new(
        "ids", message,
    )]))
}

/// Settings the rules need, taken from the server configuration.
#[derive(Clone, Debug)]
pub struct ServiceSettings {
    pub price_per_gb_month: f64,
    pub currency: String,
    pub import_size_limit_bytes: u64,
    pub import_concurrency: usize,
    /// Networks imports may reach although they are not public (`IMPORT_ALLOWED_NETWORKS`).
    pub import_allowed_networks: Vec<ipnet::IpNet>,
    /// Quotas per account: images, and bytes stored (Active images plus imports announced).
    pub max_images_per_account: u64,
    pub max_storage_bytes_per_account: u64,
    pub session_ttl: Duration,
    /// How long an upload may go without receiving bytes before it expires.
    pub upload_expiry: Duration,
    /// Keys the session-token hashes, so a copy of the database cannot be used to sign in.
    pub session_secret: SecretSlice<u8>,
    /// Rate limits, timeouts and caps against abuse.
    pub limits: AbuseLimits,
    /// How long a console process's claim on an upload or an import lasts without its
    /// heartbeat: the longest its work waits for another process after it dies.
    pub lease_ttl: Duration,
    /// The time session idleness and upload expiry are judged by.
    pub clock: Clock,
    /// `KEY_PROVIDER`: where encryption keys live.
    pub keys: KeyProviderSettings,
    /// Conversion on import: the default target, scratch space and qemu-img.
    pub conversion: importer::ConversionSettings,
}

/// The service layer: cheap to clone, shared by server functions, routes and tests.
#[derive(Clone)]
pub struct Services {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    blobs: BlobStore,
    importer: Importer,
    keys: keys::KeyRing,
    /// This process's leases.
    leases: Leases,
    settings: ServiceSettings,
    upload_locks: uploads::UploadLocks,
    patch_slots: uploads::PatchSlots,
    abuse: abuse::AbuseGuard,
    api_token_touches: api_tokens::Touches,
    /// Stops the background sweepers.
    shutdown: tokio_util::sync::CancellationToken,
}

impl Services {
    /// Builds the services and prepares the stores: sweeps orphaned bytes and picks up
    /// imports a previous run left unfinished. Call once, before serving requests.
    pub async fn start(
        store: Store,
        blobs: BlobStore,
        settings: ServiceSettings,
    ) -> anyhow::Result<Self> {
        let leases = Leases::new(store.clone(), settings.lease_ttl);
        let provider = KeyProvider::new(&settings.keys)?;
        tracing::info!(keys = %provider.describe(), "encryption keys");
        let keys = keys::KeyRing::new(store.clone(), provider);
        let importer = Importer::new(
            store.clone(),
            blobs.clone(),
            leases.clone(),
            keys.clone(),
            importer::ImportLimits {
                max_bytes: settings.import_size_limit_bytes,
                concurrency: settings.import_concurrency,
                max_account_bytes: settings.max_storage_bytes_per_account,
                per_account: settings.limits.imports_per_account,
                min_bytes_per_second: settings.limits.import_min_bytes_per_second,
                replicate_max_bytes_per_second: settings.limits.replicate_max_bytes_per_second,
                min_speed_window: settings.limits.import_min_speed_window,
                body_idle: settings.limits.upload_idle,
            },
            url_guard::AddressPolicy::new(settings.import_allowed_networks.clone()),
            settings.conversion.clone(),
        )?;
        let abuse = abuse::AbuseGuard::new(&settings.limits, &store);

        let services = Self {
            inner: Arc::new(Inner {
                store,
                blobs,
                importer,
                keys,
                leases,
                upload_locks: uploads::UploadLocks::new(settings.clock.clone()),
                patch_slots: uploads::PatchSlots::new(&settings.limits),
                abuse,
                api_token_touches: Default::default(),
                settings,
                shutdown: tokio_util::sync::CancellationToken::new(),
            }),
        };
        tracing::info!(instance = %services.inner.leases.holder(), "console process");
        services.store().clear_leases_of_a_single_process().await?;
        services.sweep_orphaned_bytes().await?;
        services
            .inner
            .importer
            .sweep_scratch()
            .context("clearing the conversion scratch space (SCRATCH_DIR)")?;
        services.inner.importer.take_over().await?;
        services.recover_uploads().await?;
        services.delete_expired_sessions().await?;
        services.rewrap_key_materials().await?;
        services.spawn_heartbeat();
        services.spawn_upload_sweeper();
        services.spawn_session_sweeper();
        services.spawn_recycle_bin_purge();
        services.spawn_key_upkeep();
        Ok(services)
    }

    /// Removes bytes no row points at: staging files, files of uploads no longer receiving,
    /// and blobs without an image.
    async fn sweep_orphaned_bytes(&self) -> anyhow::Result<()> {
        let store = self.store();
        let live: HashSet<String> = store.list_blob_keys().await?.into_iter().collect();
        let uploads: HashSet<String> = store
            .list_receiving_uploads()
            .await?
            .into_iter()
            .map(|u| u.image_id)
            .collect();
        let swept = self
            .blobs()
            .sweep_orphans(&live, &uploads)
            .await
            .context("sweeping orphaned image files")?;
        if swept > 0 {
            tracing::info!(files = swept, "removed image files that no image refers to");
        }
        let abandoned = self.sweep_incoming().await?;
        if abandoned > 0 {
            tracing::info!(
                uploads = abandoned,
                "aborted multipart uploads no longer needed"
            );
        }
        Ok(())
    }

    /// Runs `job` every `every` in the background until shutdown; a failed run is logged
    /// and the next one comes as usual.
    fn spawn_every<F, Fut>(&self, every: Duration, what: &'static str, job: F)
    where
        F: Fn(Services) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
    {
        let this = self.clone();
        let stop = self.inner.shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    () = stop.cancelled() => return,
                }
                if let Err(e) = job(this.clone()).await {
                    tracing::error!(error = format!("{e:#}"), "{what} failed");
                }
            }
        });
    }

    /// Renews this process's leases three times per lease period, and takes over the imports of
    /// processes that stopped renewing theirs.
    fn spawn_heartbeat(&self) {
        let every = self.settings().lease_ttl / 3;
        self.spawn_every(every, "heartbeat", |this| async move {
            this.inner.leases.renew().await?;
            this.inner.importer.take_over().await
        });
    }

    /// Expires idle uploads in the background, checking a few times per expiry period, and
    /// removes incoming bytes no import or upload needs any longer.
    fn spawn_upload_sweeper(&self) {
        let every = (self.settings().upload_expiry / 4)
            .clamp(Duration::from_secs(1), Duration::from_secs(300));
        self.spawn_every(every, "upload expiry sweep", |this| async move {
            this.expire_uploads().await?;
            this.sweep_incoming().await.map(drop)
        });
    }

    /// Destroys images whose time in the Recycle Bin is over, once a minute.
    fn spawn_recycle_bin_purge(&self) {
        self.spawn_every(
            Duration::from_secs(60),
            "Recycle Bin purge",
            |this| async move {
                let destroyed = this.purge_recycle_bin(now_ms()).await?;
                if destroyed > 0 {
                    tracing::info!(images = destroyed, "Recycle Bin purge destroyed images");
                }
                Ok(())
            },
        );
    }

    /// Once a minute: deletes keys whose deletion time has come, and re-wraps data keys left
    /// under older versions of their keys (after a rotation, or by a process that stopped).
    fn spawn_key_upkeep(&self) {
        self.spawn_every(Duration::from_secs(60), "key upkeep", |this| async move {
            let deleted = this.delete_due_keys(now_ms()).await?;
            if deleted > 0 {
                tracing::info!(
                    keys = deleted,
                    "deleted encryption keys whose time had come"
                );
            }
            let rewrapped = this.rewrap_stale_data_keys().await?;
            if rewrapped > 0 {
                tracing::info!(
                    images = rewrapped,
                    "re-wrapped data keys under their keys' new versions"
                );
            }
            Ok(())
        });
    }

    /// Ends expired and idle sessions, and forgets rate-limit state that has refilled, a dozen
    /// times per idle period (at most every ten minutes).
    fn spawn_session_sweeper(&self) {
        let every = (self.settings().limits.session_idle / 12)
            .clamp(Duration::from_secs(1), Duration::from_secs(600));
        self.spawn_every(every, "session sweep", |this| async move {
            this.inner.abuse.forget_idle().await?;
            this.delete_expired_sessions()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))
        });
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.inner.blobs
    }

    pub fn key_provider(&self) -> &KeyProvider {
        self.inner.keys.provider()
    }

    pub(crate) fn key_ring(&self) -> &keys::KeyRing {
        &self.inner.keys
    }

    pub fn importer(&self) -> &Importer {
        &self.inner.importer
    }

    pub fn settings(&self) -> &ServiceSettings {
        &self.inner.settings
    }

    /// Now, by the clock session idleness and upload expiry are judged by.
    fn clock_ms(&self) -> i64 {
        self.inner.settings.clock.now_ms()
    }

    /// Stops background work, waiting for imports to reach a resumable point.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.importer.shutdown().await;
        // Another process may take over the requeued imports at once.
        if let Err(e) = self.inner.leases.release_all().await {
            tracing::warn!(error = %e, "could not give back leases; they expire");
        }
    }
}

/// Milliseconds since the Unix epoch, the unit of every stored time.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
