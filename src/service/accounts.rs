//! Sign up, sign in, sessions.

use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use secrecy::ExposeSecret;
use sha2::Sha256;

use super::{Actor, ClientAddr, ServiceError, ServiceResult, Services, now_ms};
use crate::domain::FieldError;
use crate::domain::account::{Password, SignUpForm, SignedInUser, UserName, field};
use crate::store::accounts::{CreateAccountError, UserRow};

/// The opaque value of a session cookie. Only its keyed hash is stored.
#[derive(Clone)]
pub struct SessionToken(String);

impl SessionToken {
    fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn from_cookie(value: &str) -> Option<Self> {
        // 32 bytes in unpadded base64url; anything else was not issued here.
        (value.len() == 43
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| Self(value.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(…)")
    }
}

const WRONG_CREDENTIALS: &str = "The user name or password is incorrect.";

/// Live sessions one user may hold; signing in once more ends the oldest. Enough for every
/// browser and device a person uses, few enough that a leaked password cannot mint thousands.
pub const MAX_SESSIONS_PER_USER: u64 = 20;

/// How often a session's last use is written, at most: often enough for an idle timeout of
/// hours, rarely enough that reading a page costs no write. (A shorter idle timeout is
/// touched a few times within it.)
const SESSION_TOUCH_INTERVAL_MS: i64 = 60_000;

/// Hashes a password off the async executor (argon2 is deliberately slow).
async fn hash_password(password: Password) -> ServiceResult<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await
    .context("password hashing task")?
    .map_err(ServiceError::Internal)
}

/// Checks a password against a stored hash, off the executor. Without a hash (unknown user)
/// it checks against a decoy, so the answer takes as long and is always `false`.
async fn verify_password(password: Password, hash: Option<String>) -> ServiceResult<bool> {
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(decoy_hash);
        let parsed = PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
        let matches = Argon2::default()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok();
        Ok(known && matches)
    })
    .await
    .context("password verification task")?
    .map_err(ServiceError::Internal)
}

/// A real argon2 hash of a random password, verified against when a user name is unknown so
/// that unknown and known names take the same time to refuse.
static DECOY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn decoy_hash() -> String {
    DECOY_HASH
        .get_or_init(|| {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            Argon2::default()
                .hash_password(b"decoy password never used", &salt)
                .map(|h| h.to_string())
                .unwrap_or_default()
        })
        .clone()
}

impl Services {
    fn session_hash(&self, token: &SessionToken) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.settings().session_secret.expose_secret())
                .expect("HMAC accepts keys of any length");
        mac.update(token.expose().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Opens a session for the user; beyond `MAX_SESSIONS_PER_USER` the oldest ends.
    async fn open_session(&self, user_id: &str) -> ServiceResult<SessionToken> {
        let token = SessionToken::generate();
        let now = self.clock_ms();
        let ttl_ms = i64::try_from(self.settings().session_ttl.as_millis()).unwrap_or(i64::MAX);
        self.store()
            .insert_session(
                &self.session_hash(&token),
                user_id,
                now,
                now.saturating_add(ttl_ms),
                MAX_SESSIONS_PER_USER,
            )
            .await?;
        Ok(token)
    }

    /// Creates an account and its first user, and signs that user in. `client` counts
    /// against the sign-up limit.
    #[tracing::instrument(skip_all, fields(account.id = %form.account_id))]
    pub async fn sign_up(
        &self,
        client: ClientAddr,
        form: &SignUpForm,
    ) -> ServiceResult<(SignedInUser, SessionToken)> {
        let new = form.parse().map_err(ServiceError::Invalid)?;
        self.inner.abuse.sign_up_attempt(client).await?;
        let password_hash = {
            let _permit = self.inner.abuse.hashing_permit().await?;
            hash_password(new.password).await?
        };
        let user = UserRow {
            id: uuid::Uuid::new_v4().to_string(),
            account_id: new.account_id.as_str().to_owned(),
            user_name: new.user_name.as_str().to_owned(),
            password_hash,
        };
        match self
            .store()
            .create_account_with_user(new.account_id.as_str(), &user, now_ms())
            .await
        {
            Ok(()) => {}
            Err(CreateAccountError::AccountIdTaken) => {
                return Err(ServiceError::Invalid(vec![FieldError::new(
                    field::ACCOUNT_ID,
                    format!(
                        "Account ID '{}' is already taken; choose another.",
                        new.account_id
                    ),
                )]));
            }
            Err(CreateAccountError::UserNameTaken) => {
                return Err(ServiceError::Invalid(vec![FieldError::new(
                    field::USER_NAME,
                    format!(
                        "User name '{}' is already taken; choose another.",
                        user.user_name
                    ),
                )]));
            }
            Err(CreateAccountError::Db(e)) => return Err(e.into()),
        }
        tracing::info!(user.id = %user.id, "account created");
        let token = self.open_session(&user.id).await?;
        Ok((
            SignedInUser {
                user_name: user.user_name,
                account_id: user.account_id,
            },
            token,
        ))
    }

    /// Checks a user name and password from `client` and opens a session. Each attempt
    /// counts against the limits of the client's address and of the user name.
    #[tracing::instrument(skip_all)]
    pub async fn sign_in(
        &self,
        client: ClientAddr,
        user_name: &str,
        password: &str,
    ) -> ServiceResult<(SignedInUser, SessionToken)> {
        let wrong =
            || ServiceError::Invalid(vec![FieldError::new(field::PASSWORD, WRONG_CREDENTIALS)]);
        let password =
            Password::for_sign_in(password).map_err(|e| ServiceError::Invalid(vec![e]))?;
        let name = UserName::parse(user_name).ok();
        self.inner
            .abuse
            .sign_in_attempt(client, name.as_ref().map(UserName::as_str))
            .await?;
        let user = match &name {
            Some(name) => self.store().find_user_by_name(name.as_str()).await?,
            None => None,
        };
        let permit = self.inner.abuse.hashing_permit().await?;
        let Some(user) = user else {
            verify_password(password, None).await?;
            return Err(wrong());
        };
        if !verify_password(password, Some(user.password_hash.clone())).await? {
            return Err(wrong());
        }
        drop(permit);
        let token = self.open_session(&user.id).await?;
        tracing::info!(user.id = %user.id, "signed in");
        Ok((
            SignedInUser {
                user_name: user.user_name,
                account_id: user.account_id,
            },
            token,
        ))
    }

    /// Ends a session. Unknown tokens are ignored: signing out twice is not an error.
    pub async fn sign_out(&self, token: &SessionToken) -> ServiceResult<()> {
        self.store()
            .delete_session(&self.session_hash(token))
            .await?;
        Ok(())
    }

    /// The actor behind a session cookie, if the session is live: unexpired, and used within
    /// the idle timeout. Using it keeps it alive (recorded at most once a minute).
    pub async fn authenticate(&self, token: &SessionToken) -> ServiceResult<Option<Actor>> {
        let now = self.clock_ms();
        let hash = self.session_hash(token);
        let user = self
            .store()
            .find_session_user(&hash, now, now - self.session_idle_ms())
            .await?;
        let touch_every = SESSION_TOUCH_INTERVAL_MS.min(self.session_idle_ms() / 4);
        if let Some(user) = &user
            && now - user.last_seen_ms >= touch_every
        {
            self.store().touch_session(&hash, now).await?;
        }
        Ok(user.map(|u| Actor {
            user_id: u.user_id,
            user_name: u.user_name,
            account_id: u.account_id,
        }))
    }

    pub(super) async fn delete_expired_sessions(&self) -> ServiceResult<()> {
        let now = self.clock_ms();
        let removed = self
            .store()
            .delete_expired_sessions(now, now - self.session_idle_ms())
            .await?;
        if removed > 0 {
            tracing::info!(sessions = removed, "expired sessions removed");
        }
        Ok(())
    }
}

impl Services {
    fn session_idle_ms(&self) -> i64 {
        i64::try_from(self.settings().limits.session_idle.as_millis()).unwrap_or(i64::MAX / 2)
    }
}

impl Actor {
    pub fn signed_in_user(&self) -> SignedInUser {
        SignedInUser {
            user_name: self.user_name.clone(),
            account_id: self.account_id.clone(),
        }
    }
}
