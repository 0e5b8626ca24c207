//! Sign-in sessions, stored by a keyed hash of the cookie value.

use sqlx::Row;

use super::Store;

/// The user behind a live session.
#[derive(Clone, Debug)]
pub struct SessionUser {
    pub user_id: String,
    pub user_name: String,
    pub account_id: String,
    /// When the session was last used, as last recorded.
    pub last_seen_ms: i64,
}

impl Store {
    /// Stores a new session and ends the user's oldest beyond `max_per_user`, in one
    /// transaction.
    pub async fn insert_session(
        &self,
        token_hash: &str,
        user_id: &str,
        now_ms: i64,
        expires_at_ms: i64,
        max_per_user: u64,
    ) -> sqlx::Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $3)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(now_ms)
        .bind(expires_at_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM sessions WHERE user_id = $1 AND token_hash NOT IN \
             (SELECT token_hash FROM sessions WHERE user_id = $1 \
              ORDER BY created_at DESC, token_hash DESC LIMIT $2)",
        )
        .bind(user_id)
        .bind(i64::try_from(max_per_user).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The user of a session that has not expired and was used after `idle_since_ms`.
    pub async fn find_session_user(
        &self,
        token_hash: &str,
        now_ms: i64,
        idle_since_ms: i64,
    ) -> sqlx::Result<Option<SessionUser>> {
        let row = sqlx::query(
            "SELECT u.id, u.user_name, u.account_id, s.last_seen_at FROM sessions s \
             JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.last_seen_at > $3",
        )
        .bind(token_hash)
        .bind(now_ms)
        .bind(idle_since_ms)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SessionUser {
                user_id: r.try_get("id")?,
                user_name: r.try_get("user_name")?,
                account_id: r.try_get("account_id")?,
                last_seen_ms: r.try_get("last_seen_at")?,
            })
        })
        .transpose()
    }

    /// Records that a session was used now.
    pub async fn touch_session(&self, token_hash: &str, now_ms: i64) -> sqlx::Result<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
            .bind(now_ms)
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn delete_session(&self, token_hash: &str) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes sessions that expired or were last used before `idle_since_ms`.
    pub async fn delete_expired_sessions(
        &self,
        now_ms: i64,
        idle_since_ms: i64,
    ) -> sqlx::Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
            .bind(now_ms)
            .bind(idle_since_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// How many live sessions a user holds (for tests and the account page).
    pub async fn count_sessions(&self, user_id: &str) -> sqlx::Result<u64> {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
