//! API tokens: a signed-in user makes, lists and revokes them; a machine's request carries
//! one in `X-Auth-Token` and acts as that user. Only an HMAC of each token is stored; a wrong
//! token counts against the client's address as a wrong password does.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;

use super::{Actor, ClientAddr, ServiceError, ServiceResult, Services, now_ms};
use crate::domain::FieldErrors;
use crate::domain::api_token::{
    API_TOKEN_PREFIX, ApiTokenName, ApiTokenSummary, MAX_API_TOKENS_PER_USER, NewApiToken,
    TokenLifetime, looks_like_api_token,
};
use crate::domain::validation::collect;
use crate::store::api_tokens::{CreateTokenError, NewApiTokenRow};

/// A token's last use is written at most this often.
const TOUCH_INTERVAL_MS: i64 = 60_000;

impl Services {
    /// Makes a token for the signed-in user; its secret is in the answer and nowhere else.
    pub async fn create_api_token(
        &self,
        actor: &Actor,
        name: &str,
        lifetime: &str,
    ) -> ServiceResult<NewApiToken> {
        let mut errors = FieldErrors::new();
        let name = collect(ApiTokenName::parse(name), &mut errors);
        let lifetime = collect(TokenLifetime::parse(lifetime), &mut errors);
        let (Some(name), Some(lifetime)) = (name, lifetime) else {
            return Err(ServiceError::Invalid(errors));
        };
        let secret = format!(
            "{API_TOKEN_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
        );
        let id = hex::encode(rand::random::<[u8; 8]>());
        let now = now_ms();
        let expires_at_ms = lifetime.expires_at_ms(now);
        let created = self
            .store()
            .create_api_token(
                &NewApiTokenRow {
                    id: &id,
                    user_id: &actor.user_id,
                    account_id: &actor.account_id,
                    name: name.as_str(),
                    token_hash: &self.api_token_hash(&secret),
                    now_ms: now,
                    expires_at_ms,
                },
                MAX_API_TOKENS_PER_USER,
            )
            .await;
        match created {
            Ok(()) => {}
            Err(CreateTokenError::TooMany) => {
                return Err(ServiceError::Invalid(vec![crate::domain::FieldError::new(
                    "name",
                    format!(
                        "You have {MAX_API_TOKENS_PER_USER} API tokens, the most a user may have. Revoke one you no longer use first."
                    ),
                )]));
            }
            Err(CreateTokenError::Db(e)) => return Err(e.into()),
        }
        tracing::info!(account.id = %actor.account_id, token.id = %id, "API token created");
        Ok(NewApiToken {
            summary: ApiTokenSummary {
                id,
                name: name.as_str().to_owned(),
                created_at_ms: now,
                expires_at_ms,
                last_used_at_ms: None,
            },
            secret,
        })
    }

    /// The signed-in user's tokens, newest first.
    pub async fn list_api_tokens(&self, actor: &Actor) -> ServiceResult<Vec<ApiTokenSummary>> {
        Ok(self.store().list_api_tokens(&actor.user_id).await?)
    }

    /// Revokes one of the signed-in user's tokens; requests carrying it are refused from now on.
    pub async fn revoke_api_token(&self, actor: &Actor, id: &str) -> ServiceResult<()> {
        if !self.store().revoke_api_token(&actor.user_id, id).await? {
            return Err(ServiceError::NotFound(
                "You have no API token with that ID.".into(),
            ));
        }
        tracing::info!(account.id = %actor.account_id, token.id = %id, "API token revoked");
        Ok(())
    }

    /// The user a request's `X-Auth-Token` acts as. A missing, malformed, unknown, expired or
    /// revoked token is `Unauthorized` and counts against the client's address like a wrong
    /// sign-in; past that limit a failure is `RateLimited`, so tokens cannot be guessed.
    pub async fn authenticate_api_token(
        &self,
        client: ClientAddr,
        token: Option<&str>,
    ) -> ServiceResult<Actor> {
        // An address that sent too many wrong tokens is refused before any is looked up.
        self.inner.abuse.api_token_allowed(client).await?;
        let found = match token.filter(|t| looks_like_api_token(t)) {
            Some(token) => {
                self.store()
                    .find_token_user(&self.api_token_hash(token), now_ms())
                    .await?
            }
            None => None,
        };
        let Some(user) = found else {
            self.inner.abuse.api_token_failed(client).await?;
            return Err(ServiceError::Unauthorized);
        };
        let now = now_ms();
        if user
            .last_used_at_ms
            .is_none_or(|at| now - at >= TOUCH_INTERVAL_MS)
            && self.inner.api_token_touches.claim(&user.token_id, now)
        {
            // The last use is shown to people, not needed by the request: written off its
            // path, so a busy database never fails a read for it.
            let (store, token_id) = (self.store().clone(), user.token_id.clone());
            tokio::spawn(async move {
                if let Err(e) = store.touch_api_token(&token_id, now).await {
                    tracing::warn!(error = %e, "could not record an API token's last use");
                }
            });
        }
        Ok(Actor {
            user_id: user.user_id,
            user_name: user.user_name,
            account_id: user.account_id,
        })
    }

    fn api_token_hash(&self, token: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.settings().session_secret.expose_secret())
                .expect("HMAC accepts keys of any length");
        mac.update(b"api-token\0");
        mac.update(token.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// The API tokens whose last use this process is recording or recorded lately: requests that
/// come together write it once, not once each.
#[derive(Default)]
pub(super) struct Touches(std::sync::Mutex<std::collections::HashMap<String, i64>>);

impl Touches {
    /// Whether the request at `now_ms` is the one to record the token's use.
    pub(super) fn claim(&self, token_id: &str, now_ms: i64) -> bool {
        let mut touched = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if touched
            .get(token_id)
            .is_some_and(|at| now_ms - at < TOUCH_INTERVAL_MS)
        {
            return false;
        }
        if touched.len() >= 10_000 {
            touched.retain(|_, at| now_ms - *at < TOUCH_INTERVAL_MS);
        }
        touched.insert(token_id.to_owned(), now_ms);
        true
    }
}
