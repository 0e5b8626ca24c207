//! Leases: which console process works on an upload or an import. A lease is taken with one
//! conditional upsert (free or expired), renewed for every lease of a process at once by its
//! heartbeat, and released when the work ends. Nothing else in a process's memory is needed
//! for correctness: a process that dies leaves leases that expire, and the work behind them is
//! taken over.
//!
//! Each claim has its own token, and every write made under it is fenced by it (`hold` in a
//! transaction, `fence_condition` in a single statement): a process paused past its lease
//! (a stopped VM, `kill -STOP`) finds its token replaced when it wakes, and none of its late
//! writes lands.

use sqlx::Row;

use super::history::{NewEvent, insert_event};
use super::images::{InterruptedImport, decode_error};
use super::{Backend, Store};
use crate::domain::history::{HistoryTopic, SYSTEM_WORKER, notes};
use crate::domain::image::ImageStatus;

/// The lease of an upload being written.
pub fn upload_lease(image_id: &str) -> String {
    format!("upload:{image_id}")
}

/// The lease of an import queued or running.
pub fn import_lease(image_id: &str) -> String {
    format!("import:{image_id}")
}

/// Who holds a claim on a lease: every write made under it names it, and is refused once
/// another claim replaced it (fencing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    pub resource: String,
    pub token: String,
}

/// How a claim went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Taken {
    /// Another holder's claim is running.
    Refused,
    /// The lease was free.
    Claimed,
    /// The lease had expired under holder `from`: its work is this claim's now.
    TakenOver { from: String },
}

/// Takes the lease as claim `token` unless another holder's claim is still running, inside the
/// caller's transaction. The holder may replace a claim of its own: it claims a resource only
/// when none of its work holds it (`service::leases` reserves it in the process first), so
/// such a claim ended and its row was not deleted yet.
async fn take(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    resource: &str,
    claim: &Claim<'_>,
    token: &str,
) -> sqlx::Result<Taken> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let earlier: Option<(String, i64)> = sqlx::query_as(&format!(
        "SELECT holder, expires_at FROM leases WHERE resource = $1{lock}"
    ))
    .bind(resource)
    .fetch_optional(&mut *conn)
    .await?;
    if earlier
        .as_ref()
        .is_some_and(|(holder, expires_at)| *expires_at > claim.now_ms && holder != claim.holder)
    {
        return Ok(Taken::Refused);
    }
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
    if done.rows_affected() != 1 {
        return Ok(Taken::Refused);
    }
    let Some((from, _)) = earlier.filter(|(holder, _)| holder != claim.holder) else {
        return Ok(Taken::Claimed);
    };
    record_takeover(conn, resource, &from, claim).await?;
    Ok(Taken::TakenOver { from })
}

/// Writes the takeover into the image's Work History, in the claim's transaction, so it is
/// recorded exactly once.
async fn record_takeover(
    conn: &mut sqlx::AnyConnection,
    resource: &str,
    from: &str,
    claim: &Claim<'_>,
) -> sqlx::Result<()> {
    let Some((work, image_id)) = resource.split_once(':') else {
        return Ok(());
    };
    let work = match work {
        "upload" => "upload",
        "import" => "import",
        _ => return Ok(()),
    };
    let image: Option<(String, String)> =
        sqlx::query_as("SELECT account_id, name FROM images WHERE id = $1")
            .bind(image_id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((account_id, name)) = image else {
        return Ok(());
    };
    let message = notes::taken_over(work, from, claim.holder);
    let event = NewEvent {
        message: &message,
        ..NewEvent::succeeded(HistoryTopic::TakenOver, SYSTEM_WORKER)
    };
    insert_event(conn, &account_id, image_id, &name, &event, claim.now_ms).await
}

/// Locks the claim's lease row for the caller's transaction and says whether the claim still
/// holds it. Every change made under a lease begins with this: a takeover either waits for the
/// change to commit or has already replaced the token, and then the change is not made.
pub(super) async fn hold(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    fence: &Fence,
) -> sqlx::Result<bool> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE",
        // A SQLite write transaction already excludes every other writer.
        Backend::Sqlite => "",
    };
    let held: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT 1 FROM leases WHERE resource = $1 AND token = $2{lock}"
    ))
    .bind(&fence.resource)
    .bind(&fence.token)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(held.is_some())
}

/// A condition for a single statement made under a lease, whose parameters `$n` and `$n+1`
/// are the fence's resource and token (bind them with `bind_fence`).
pub(super) fn fence_condition(n: usize) -> String {
    format!(
        "EXISTS (SELECT 1 FROM leases WHERE resource = ${n} AND token = ${})",
        n + 1
    )
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
    /// Takes the lease as claim `token`; `Refused` while another claim runs. A takeover of an
    /// image's work is written into its Work History.
    pub async fn acquire_lease(
        &self,
        resource: &str,
        claim: &Claim<'_>,
        token: &str,
    ) -> sqlx::Result<Taken> {
        let mut tx = self.begin_write().await?;
        let taken = take(&mut tx, self.backend, resource, claim, token).await?;
        tx.commit().await?;
        Ok(taken)
    }

    /// Whether the claim still holds its lease.
    pub async fn holds_lease(&self, fence: &Fence) -> sqlx::Result<bool> {
        let held: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM leases WHERE resource = $1 AND token = $2")
                .bind(&fence.resource)
                .bind(&fence.token)
                .fetch_optional(&self.pool)
                .await?;
        Ok(held.is_some())
    }

    /// Extends the holder's claims `tokens` (its heartbeat). Returns the tokens it still had:
    /// any other was taken over.
    pub async fn renew_leases(
        &self,
        claim: &Claim<'_>,
        tokens: &[String],
    ) -> sqlx::Result<Vec<String>> {
        let mut renewed = Vec::with_capacity(tokens.len());
        for chunk in tokens.chunks(500) {
            let list = (0..chunk.len())
                .map(|i| format!("${}", i + 3))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "UPDATE leases SET expires_at = $1 WHERE holder = $2 AND token IN ({list}) \
                 RETURNING token"
            );
            let mut query = sqlx::query_scalar(&sql)
                .bind(claim.now_ms + claim.ttl_ms)
                .bind(claim.holder);
            for token in chunk {
                query = query.bind(token);
            }
            renewed.extend(query.fetch_all(&self.pool).await?);
        }
        Ok(renewed)
    }

    /// Ends claim `token` of the lease, if it is still the lease's; `false` when it was not
    /// (another claim replaced it, or it was ended already).
    pub async fn release_lease(&self, resource: &str, token: &str) -> sqlx::Result<bool> {
        let ended = sqlx::query("DELETE FROM leases WHERE resource = $1 AND token = $2")
            .bind(resource)
            .bind(token)
            .execute(&self.pool)
            .await?;
        Ok(ended.rows_affected() == 1)
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

    /// Takes the leases of queued or running imports and conversions that no running lease
    /// covers (their
    /// process stopped), oldest first, at most `limit`; returns those taken, each with its
    /// claim's token. On PostgreSQL the rows are locked `FOR UPDATE SKIP LOCKED`, so processes
    /// looking at once split them.
    pub async fn claim_unleased_imports(
        &self,
        claim: &Claim<'_>,
        limit: i64,
        held_here: &std::collections::HashSet<String>,
    ) -> sqlx::Result<Vec<(InterruptedImport, String)>> {
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE OF i SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(&format!(
            "SELECT i.id, i.account_id, i.status, i.import_attempts, i.source_url FROM images i \
             WHERE ((i.status = $1 AND i.source_url IS NOT NULL) OR i.status IN ($2, $6)) AND NOT EXISTS (SELECT 1 FROM leases l \
                 WHERE l.resource = $3 || i.id AND l.expires_at > $4) \
             ORDER BY i.created_at, i.id LIMIT $5{lock}"
        ))
        .bind(ImageStatus::Queued.as_str())
        .bind(ImageStatus::Importing.as_str())
        .bind(import_lease(""))
        .bind(claim.now_ms)
        .bind(limit)
        .bind(ImageStatus::Converting.as_str())
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
            if held_here.contains(&import_lease(&import.id)) {
                continue;
            }
            let token = new_token();
            let taken = take(
                &mut tx,
                self.backend,
                &import_lease(&import.id),
                claim,
                &token,
            )
            .await?;
            if taken != Taken::Refused {
                claimed.push((import, token));
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }
}
