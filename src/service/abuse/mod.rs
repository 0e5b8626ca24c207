//! Limits that keep one client, one guessed user name or one account from exhausting the
//! console: rate limits on sign-in, sign-up and failed API tokens (`rate`, keyed by client
//! address and by user name, shared by every process on PostgreSQL), a bound on concurrent
//! password hashing, and the settings of the upload and import limits that `uploads` and
//! `importer` apply.

pub mod rate;

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use super::{ServiceError, ServiceResult, now_ms};
use crate::store::Store;
use rate::{Gcra, RateLimits};

/// Every limit, with the defaults docs/configuration.md documents.
#[derive(Clone, Debug)]
pub struct AbuseLimits {
    /// Sign-in attempts from one client address (`SIGN_IN_PER_ADDRESS_PER_MINUTE`).
    pub sign_in_per_address_per_minute: u32,
    /// Sign-in attempts for one user name, from anywhere (`SIGN_IN_PER_USER_PER_MINUTE`).
    pub sign_in_per_user_per_minute: u32,
    /// Accounts created from one client address (`SIGN_UP_PER_ADDRESS_PER_HOUR`).
    pub sign_up_per_address_per_hour: u32,
    /// Image API requests with a wrong, expired or revoked token from one client address
    /// (`API_TOKEN_FAILURES_PER_ADDRESS_PER_MINUTE`); past it, the address's requests are
    /// refused before any token is looked up.
    pub api_token_failures_per_address_per_minute: u32,
    /// Passwords hashed or verified at once (`PASSWORD_HASH_CONCURRENCY`); each argon2 run
    /// holds about 19 MiB and a blocking thread.
    pub password_hash_concurrency: usize,
    /// A signed-in session unused for this long ends (`SESSION_IDLE_HOURS`).
    pub session_idle: Duration,
    /// A tus PATCH that receives nothing for this long ends, keeping what arrived
    /// (`UPLOAD_IDLE_SECONDS`).
    pub upload_idle: Duration,
    /// PATCH requests streaming at once, in all (`UPLOAD_PATCHES_MAX`) and per account
    /// (`UPLOAD_PATCHES_PER_ACCOUNT`).
    pub upload_patches: usize,
    pub upload_patches_per_account: usize,
    /// URL imports running at once for one account (`IMPORTS_PER_ACCOUNT`).
    pub imports_per_account: usize,
    /// An import slower than this over `import_min_speed_window` fails
    /// (`IMPORT_MIN_SPEED`, `IMPORT_MIN_SPEED_WINDOW_SECONDS`).
    pub import_min_bytes_per_second: u64,
    pub import_min_speed_window: Duration,
    /// The fastest one Replicate reads its source (`REPLICATE_MAX_SPEED`; 0: no limit), so
    /// copies in the background leave the storage to downloads and uploads.
    pub replicate_max_bytes_per_second: u64,
}

impl Default for AbuseLimits {
    fn default() -> Self {
        Self {
            sign_in_per_address_per_minute: 20,
            sign_in_per_user_per_minute: 10,
            sign_up_per_address_per_hour: 10,
            api_token_failures_per_address_per_minute: 30,
            password_hash_concurrency: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(2),
            session_idle: Duration::from_secs(12 * 3600),
            upload_idle: Duration::from_secs(60),
            upload_patches: 64,
            upload_patches_per_account: 4,
            imports_per_account: 2,
            import_min_bytes_per_second: 64 << 10,
            import_min_speed_window: Duration::from_secs(300),
            replicate_max_bytes_per_second: 0,
        }
    }
}

/// The address a request came from, as the HTTP layer established it (the socket's peer, or
/// `X-Forwarded-For` from a trusted proxy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The client of a request that reached a handler without passing the router's client
    /// address layer (only in tests that call handlers directly).
    pub const UNKNOWN: ClientAddr = ClientAddr(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));

    /// The key a client is counted under. An IPv6 host usually holds a whole /64, so it is
    /// counted as one client rather than 2^64.
    fn key(self) -> IpAddr {
        match self.0 {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let mut segments = v6.segments();
                    segments[4..].fill(0);
                    IpAddr::V6(segments.into())
                }
            },
        }
    }
}

/// Requests over a limit, waiting for more hashing than the server allows, or for a client
/// that has used up its attempts.
pub struct AbuseGuard {
    limits: RateLimits,
    sign_in_by_address: Gcra,
    sign_in_by_user: Gcra,
    sign_up_by_address: Gcra,
    api_token_failures_by_address: Gcra,
    hashing: Semaphore,
    /// Requests waiting for a hashing permit; past `MAX_HASH_WAITERS` more are turned away
    /// rather than queued without end.
    hash_waiters: AtomicUsize,
}

/// How many requests may queue for a password hash before the server answers "busy".
const MAX_HASH_WAITERS: usize = 64;

impl AbuseGuard {
    /// The limits, kept where `store` says (`RateLimits::for_store`).
    pub fn new(limits: &AbuseLimits, store: &Store) -> Self {
        Self::with(limits, RateLimits::for_store(store))
    }

    fn with(limits: &AbuseLimits, rates: RateLimits) -> Self {
        Self {
            limits: rates,
            sign_in_by_address: Gcra::per_minute(limits.sign_in_per_address_per_minute),
            sign_in_by_user: Gcra::per_minute(limits.sign_in_per_user_per_minute),
            sign_up_by_address: Gcra::per_hour(limits.sign_up_per_address_per_hour),
            api_token_failures_by_address: Gcra::per_minute(
                limits.api_token_failures_per_address_per_minute,
            ),
            hashing: Semaphore::new(limits.password_hash_concurrency.max(1)),
            hash_waiters: AtomicUsize::new(0),
        }
    }

    async fn admit(&self, key: String, limit: Gcra) -> ServiceResult<()> {
        self.limits
            .admit(&key, limit, now_ms())
            .await?
            .map_err(ServiceError::RateLimited)
    }

    /// Counts a sign-in attempt from `client` for `user_name` (already lower-case and valid,
    /// or `None` for a name that cannot exist). Every attempt counts, right or wrong.
    pub async fn sign_in_attempt(
        &self,
        client: ClientAddr,
        user_name: Option<&str>,
    ) -> ServiceResult<()> {
        self.admit(
            format!("sign-in:address:{}", client.key()),
            self.sign_in_by_address,
        )
        .await?;
        if let Some(name) = user_name {
            self.admit(format!("sign-in:user:{name}"), self.sign_in_by_user)
                .await?;
        }
        Ok(())
    }

    /// Counts an account creation from `client`.
    pub async fn sign_up_attempt(&self, client: ClientAddr) -> ServiceResult<()> {
        self.admit(
            format!("sign-up:address:{}", client.key()),
            self.sign_up_by_address,
        )
        .await
    }

    fn token_failures_key(client: ClientAddr) -> String {
        format!("api-token-failure:address:{}", client.key())
    }

    /// Refuses an image API request from `client` before its token is looked up, while the
    /// address is over its limit of failed tokens.
    pub async fn api_token_allowed(&self, client: ClientAddr) -> ServiceResult<()> {
        match self
            .limits
            .refused(
                &Self::token_failures_key(client),
                self.api_token_failures_by_address,
                now_ms(),
            )
            .await?
        {
            Some(wait) => Err(ServiceError::RateLimited(wait)),
            None => Ok(()),
        }
    }

    /// Counts a request from `client` whose token was missing, wrong, expired or revoked. It
    /// counts against the address's failed tokens only, never its sign-ins: a job with a
    /// revoked token does not lock people out of the console.
    pub async fn api_token_failed(&self, client: ClientAddr) -> ServiceResult<()> {
        self.admit(
            Self::token_failures_key(client),
            self.api_token_failures_by_address,
        )
        .await
    }

    /// A permit to run one argon2 hash or verification.
    pub async fn hashing_permit(&self) -> ServiceResult<SemaphorePermit<'_>> {
        if let Ok(permit) = self.hashing.try_acquire() {
            return Ok(permit);
        }
        if self.hash_waiters.fetch_add(1, Ordering::SeqCst) >= MAX_HASH_WAITERS {
            self.hash_waiters.fetch_sub(1, Ordering::SeqCst);
            return Err(ServiceError::Busy(Duration::from_secs(2)));
        }
        let permit = self.hashing.acquire().await;
        self.hash_waiters.fetch_sub(1, Ordering::SeqCst);
        permit.map_err(|_| ServiceError::Busy(Duration::from_secs(2)))
    }

    /// Forgets clients and names whose limits have refilled, so the state stays small.
    pub async fn forget_idle(&self) -> sqlx::Result<()> {
        self.limits.forget_refilled(now_ms()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_minute: u32) -> AbuseLimits {
        AbuseLimits {
            sign_in_per_address_per_minute: per_minute,
            sign_in_per_user_per_minute: per_minute,
            sign_up_per_address_per_hour: 2,
            api_token_failures_per_address_per_minute: 2,
            ..AbuseLimits::default()
        }
    }

    fn guard(limits: &AbuseLimits) -> AbuseGuard {
        AbuseGuard::with(limits, RateLimits::InProcess(Default::default()))
    }

    fn addr(text: &str) -> ClientAddr {
        ClientAddr(text.parse().unwrap())
    }

    #[tokio::test]
    async fn sign_in_is_limited_per_address_and_per_user_name() {
        let guard = guard(&limits(3));
        for _ in 0..3 {
            guard
                .sign_in_attempt(addr("10.0.0.1"), Some("alice"))
                .await
                .unwrap();
        }
        let Err(ServiceError::RateLimited(wait)) =
            guard.sign_in_attempt(addr("10.0.0.1"), Some("bob")).await
        else {
            panic!("the fourth attempt from one address must be refused");
        };
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        // Another address may still try another name, but not alice's.
        guard
            .sign_in_attempt(addr("10.0.0.2"), Some("bob"))
            .await
            .unwrap();
        assert!(matches!(
            guard.sign_in_attempt(addr("10.0.0.3"), Some("alice")).await,
            Err(ServiceError::RateLimited(_))
        ));
    }

    #[tokio::test]
    async fn an_ipv6_client_counts_as_its_slash_64() {
        let guard = guard(&limits(1));
        guard
            .sign_in_attempt(addr("2001:db8:1:2::1"), None)
            .await
            .unwrap();
        assert!(
            guard
                .sign_in_attempt(addr("2001:db8:1:2:ffff::9"), None)
                .await
                .is_err(),
            "same /64"
        );
        guard
            .sign_in_attempt(addr("2001:db8:1:3::1"), None)
            .await
            .unwrap();
        assert_eq!(addr("::ffff:10.1.2.3").key(), addr("10.1.2.3").key());
    }

    #[tokio::test]
    async fn sign_up_is_limited_per_address() {
        let guard = guard(&limits(10));
        guard.sign_up_attempt(addr("10.0.0.1")).await.unwrap();
        guard.sign_up_attempt(addr("10.0.0.1")).await.unwrap();
        assert!(guard.sign_up_attempt(addr("10.0.0.1")).await.is_err());
        guard.sign_up_attempt(addr("10.0.0.2")).await.unwrap();
    }

    #[tokio::test]
    async fn failed_tokens_have_their_own_limit_checked_first() {
        let guard = guard(&limits(1));
        let client = addr("10.0.0.9");
        guard.api_token_allowed(client).await.unwrap();
        guard.api_token_failed(client).await.unwrap();
        guard.api_token_allowed(client).await.unwrap();
        guard.api_token_failed(client).await.unwrap();
        // Past the limit the address is refused before any token is looked up...
        assert!(matches!(
            guard.api_token_allowed(client).await,
            Err(ServiceError::RateLimited(_))
        ));
        // ...while its sign-ins, and other addresses, are untouched.
        guard.sign_in_attempt(client, Some("alice")).await.unwrap();
        guard.api_token_allowed(addr("10.0.0.10")).await.unwrap();
    }

    #[tokio::test]
    async fn hashing_is_bounded() {
        let guard = guard(&AbuseLimits {
            password_hash_concurrency: 1,
            ..AbuseLimits::default()
        });
        let first = guard.hashing_permit().await.unwrap();
        let waiting = guard.hashing_permit();
        tokio::pin!(waiting);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut waiting)
                .await
                .is_err(),
            "a second hash waits for the first"
        );
        drop(first);
        assert!(waiting.await.is_ok());
    }
}
