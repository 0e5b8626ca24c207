//! Rate limits shared by every console process on PostgreSQL (see `service::abuse::rate`):
//! one row per key with its theoretical arrival time, changed by one atomic statement.

use super::Store;

impl Store {
    /// Counts one attempt under `key` at `now_ms` for a limit of `burst` attempts at once and
    /// one per `interval_ms`: `true` when it is admitted (GCRA, as `service::abuse::rate::Gcra`
    /// computes it). One statement decides and records, so attempts arriving at once through
    /// any number of processes are counted one after the other.
    pub async fn admit_rate(
        &self,
        key: &str,
        interval_ms: i64,
        burst: i64,
        now_ms: i64,
    ) -> sqlx::Result<bool> {
        let admitted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO rate_limits (key, tat) VALUES ($1, $2 + $3) \
             ON CONFLICT (key) DO UPDATE SET tat = GREATEST(rate_limits.tat, $2) + $3 \
             WHERE GREATEST(rate_limits.tat, $2) + $3 - $4 <= $2 \
             RETURNING tat",
        )
        .bind(key)
        .bind(now_ms)
        .bind(interval_ms)
        .bind(burst * interval_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(admitted.is_some())
    }

    /// The key's theoretical arrival time, if it has one.
    pub async fn rate_tat(&self, key: &str) -> sqlx::Result<Option<i64>> {
        sqlx::query_scalar("SELECT tat FROM rate_limits WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
    }

    /// Forgets keys whose time has passed: they are as good as new.
    pub async fn forget_refilled_rates(&self, now_ms: i64) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM rate_limits WHERE tat <= $1")
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
