//! Leases: which console process works on an upload or an import. A lease is taken with one
//! conditional upsert (free, expired, or already the taker's), renewed for every lease of a
//! process at once by its heartbeat, and released when the work ends. Nothing else in a
//! process's memory is needed for correctness: a process that dies leaves leases that expire,
//! and the work behind them is taken over.

use sqlx::Row;

use super::images::{InterruptedImport, decode_error};
use super::{Backend, Store};
use crate::domain::image::ImageStatus;

/// The lease of an upload being written.
pub fn upload_lease(image_id: &str) -> String {
    format!("upload:{image_id}")
}

/// The lease of an import queued or running.
pub fn import_lease(image_id: &str) -> String {
    format!("import:{image_id}")
}

/// Takes the lease as claim `token` unless another holder's is still running, inside the
/// caller's transaction. The holder may take its own lease again (a new claim replaces its old
/// one).
async fn take(
    conn: &mut sqlx::AnyConnection,
    resource: &str,
    claim: &Claim<'_>,
    token: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO leases (resource, holder, token, expires_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (resource) DO UPDATE SET holder = excluded.holder, token = excluded.token, \
         expires_at = excluded.expires_at \
         WHERE leases.holder = excluded.holder OR leases.expires_at <= $5",
    )
    .bind(resource)
    .bind(claim.holder)
    .bind(token)
    .bind(claim.now_ms + claim.ttl_ms)
    .bind(claim.now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Who claims a lease, when, and for how long.
pub struct Claim<'a> {
    pub holder: &'a str,
    pub now_ms: i64,
    pub ttl_ms: i64,
}

/// A new claim's token.
pub fn new_token() -> String {
    hex::encode(rand::random::<[u8; 12]>())
}

impl Store {
    /// Takes the lease as claim `token`; `false` while another holder's runs.
    pub async fn acquire_lease(
        &self,
        resource: &str,
        claim: &Claim<'_>,
        token: &str,
    ) -> sqlx::Result<bool> {
        let mut conn = self.pool.acquire().await?;
        take(&mut conn, resource, claim, token).await
    }

    /// Extends the holder's claims `tokens` (its heartbeat). Returns how many it still had.
    pub async fn renew_leases(&self, claim: &Claim<'_>, tokens: &[String]) -> sqlx::Result<u64> {
        let mut renewed = 0;
        for chunk in tokens.chunks(500) {
            let list = (0..chunk.len())
                .map(|i| format!("${}", i + 3))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "UPDATE leases SET expires_at = $1 WHERE holder = $2 AND token IN ({list})"
            );
            let mut query = sqlx::query(&sql)
                .bind(claim.now_ms + claim.ttl_ms)
                .bind(claim.holder);
            for token in chunk {
                query = query.bind(token);
            }
            renewed += query.execute(&self.pool).await?.rows_affected();
        }
        Ok(renewed)
    }

    /// Ends claim `token` of the lease, if it is still the lease's.
    pub async fn release_lease(&self, resource: &str, token: &str) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM leases WHERE resource = $1 AND token = $2")
            .bind(resource)
            .bind(token)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Gives back every lease of the holder (it shuts down: others may take over at once).
    pub async fn release_leases(&self, holder: &str) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM leases WHERE holder = $1")
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets every lease. Only for a SQLite file, which one process holds (see
    /// `lock_sqlite_file`): whatever leases are left, their holder is gone.
    pub async fn clear_leases_of_a_single_process(&self) -> sqlx::Result<()> {
        if self.backend == Backend::Sqlite {
            sqlx::query("DELETE FROM leases")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// The holder of a running lease.
    pub async fn lease_holder(&self, resource: &str, now_ms: i64) -> sqlx::Result<Option<String>> {
        sqlx::query_scalar("SELECT holder FROM leases WHERE resource = $1 AND expires_at > $2")
            .bind(resource)
            .bind(now_ms)
            .fetch_optional(&self.pool)
            .await
    }

    /// Takes the leases of queued or running imports that no running lease covers (their
    /// process stopped), oldest first, at most `limit`; returns those taken, each with its
    /// claim's token. On PostgreSQL the rows are locked `FOR UPDATE SKIP LOCKED`, so processes
    /// looking at once split them.
    pub async fn claim_unleased_imports(
        &self,
        claim: &Claim<'_>,
        limit: i64,
    ) -> sqlx::Result<Vec<(InterruptedImport, String)>> {
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE OF i SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(&format!(
            "SELECT i.id, i.account_id, i.status, i.import_attempts, i.source_url FROM images i \
             WHERE ((i.status = $1 AND i.source_url IS NOT NULL) OR i.status = $2) AND NOT EXISTS (SELECT 1 FROM leases l \
                 WHERE l.resource = $3 || i.id AND l.expires_at > $4) \
             ORDER BY i.created_at, i.id LIMIT $5{lock}"
        ))
        .bind(ImageStatus::Queued.as_str())
        .bind(ImageStatus::Importing.as_str())
        .bind(import_lease(""))
        .bind(claim.now_ms)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut claimed = Vec::new();
        for r in &rows {
            let status: String = r.try_get("status")?;
            let import = InterruptedImport {
                id: r.try_get("id")?,
                account_id: r.try_get("account_id")?,
                status: ImageStatus::from_db(&status)
                    .ok_or_else(|| decode_error("status", &status))?,
                import_attempts: u32::try_from(r.try_get::<i64, _>("import_attempts")?)
                    .unwrap_or(u32::MAX),
                from_url: r.try_get::<Option<String>, _>("source_url")?.is_some(),
            };
            let token = new_token();
            if take(&mut tx, &import_lease(&import.id), claim, &token).await? {
                claimed.push((import, token));
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }
}
