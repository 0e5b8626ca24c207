//! API tokens' rows: created, listed and revoked by their user, found by their hash.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::Store;
use crate::domain::api_token::ApiTokenSummary;

/// A token's new row.
pub struct NewApiTokenRow<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub account_id: &'a str,
    pub name: &'a str,
    pub token_hash: &'a str,
    pub now_ms: i64,
    pub expires_at_ms: Option<i64>,
}

/// Who a token acts as.
#[derive(Clone, Debug)]
pub struct TokenUser {
    pub token_id: String,
    pub user_id: String,
    pub user_name: String,
    pub account_id: String,
    pub last_used_at_ms: Option<i64>,
}

/// Why a token was not created.
#[derive(Debug)]
pub enum CreateTokenError {
    /// The user has `limit` tokens already.
    TooMany,
    Db(sqlx::Error),
}

impl From<sqlx::Error> for CreateTokenError {
    fn from(e: sqlx::Error) -> Self {
        CreateTokenError::Db(e)
    }
}

fn summary(r: &AnyRow) -> sqlx::Result<ApiTokenSummary> {
    Ok(ApiTokenSummary {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        created_at_ms: r.try_get("created_at")?,
        expires_at_ms: r.try_get("expires_at")?,
        last_used_at_ms: r.try_get("last_used_at")?,
    })
}

impl Store {
    /// Inserts the token unless its user already has `limit`; the count and the insert are one
    /// transaction, which locks the user's row first so two creations are counted in turn.
    pub async fn create_api_token(
        &self,
        token: &NewApiTokenRow<'_>,
        limit: usize,
    ) -> Result<(), CreateTokenError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE users SET id = id WHERE id = $1")
            .bind(token.user_id)
            .execute(&mut *tx)
            .await?;
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens WHERE user_id = $1")
            .bind(token.user_id)
            .fetch_one(&mut *tx)
            .await?;
        if usize::try_from(held).unwrap_or(usize::MAX) >= limit {
            return Err(CreateTokenError::TooMany);
        }
        sqlx::query(
            "INSERT INTO api_tokens (id, user_id, account_id, name, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(token.id)
        .bind(token.user_id)
        .bind(token.account_id)
        .bind(token.name)
        .bind(token.token_hash)
        .bind(token.now_ms)
        .bind(token.expires_at_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The user's tokens, newest first.
    pub async fn list_api_tokens(&self, user_id: &str) -> sqlx::Result<Vec<ApiTokenSummary>> {
        let rows = sqlx::query(
            "SELECT id, name, created_at, expires_at, last_used_at FROM api_tokens \
             WHERE user_id = $1 ORDER BY created_at DESC, id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(summary).collect()
    }

    /// Deletes the user's token; `false` if the user has no such token.
    pub async fn revoke_api_token(&self, user_id: &str, id: &str) -> sqlx::Result<bool> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The user a token with this hash acts as, unless it has expired.
    pub async fn find_token_user(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> sqlx::Result<Option<TokenUser>> {
        let row = sqlx::query(
            "SELECT t.id, t.user_id, u.user_name, u.account_id, t.last_used_at \
             FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND (t.expires_at IS NULL OR t.expires_at > $2)",
        )
        .bind(token_hash)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(TokenUser {
                token_id: r.try_get("id")?,
                user_id: r.try_get("user_id")?,
                user_name: r.try_get("user_name")?,
                account_id: r.try_get("account_id")?,
                last_used_at_ms: r.try_get("last_used_at")?,
            })
        })
        .transpose()
    }

    pub async fn touch_api_token(&self, id: &str, now_ms: i64) -> sqlx::Result<()> {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now_ms)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
