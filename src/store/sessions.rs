//! Sign-in sessions, stored by a keyed hash of the cookie value.

use sqlx::Row;

use super::Store;

/// The user behind a live session.
#[derive(Clone, Debug)]
pub struct SessionUser {
    pub user_id: String,
    pub user_name: String,
    pub account_id: String,
}

impl Store {
    pub async fn insert_session(
        &self,
        token_hash: &str,
        user_id: &str,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(now_ms)
        .bind(expires_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The user of an unexpired session.
    pub async fn find_session_user(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> sqlx::Result<Option<SessionUser>> {
        let row = sqlx::query(
            "SELECT u.id, u.user_name, u.account_id FROM sessions s \
             JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(token_hash)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SessionUser {
                user_id: r.try_get("id")?,
                user_name: r.try_get("user_name")?,
                account_id: r.try_get("account_id")?,
            })
        })
        .transpose()
    }

    pub async fn delete_session(&self, token_hash: &str) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn delete_expired_sessions(&self, now_ms: i64) -> sqlx::Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
