//! SQL and bytes. Nothing else in the crate knows a table name or a file path.
//!
//! One `AnyPool` serves SQLite and PostgreSQL: every query is written once with `$n`
//! placeholders, and columns are limited to TEXT and 64-bit integers, which both drivers map
//! the same way. Each backend has its own migration set.

pub mod accounts;
pub mod api_tokens;
pub mod blobs;
pub mod certificates;
pub mod history;
pub mod images;
pub mod incoming;
pub mod key_provider;
pub mod keys;
pub mod leases;
mod listing;
pub mod rate_limits;
pub mod sessions;
pub mod shares;
mod sql;
pub mod uploads;

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use blobs::BlobStore;
pub use listing::ListTotal;
pub use listing::api::{ApiListOutcome, ApiPage};

/// Which database `DATABASE_URL` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

/// The database: a pool and which backend it talks to.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// On a SQLite file, the lock that keeps a second console process off it; released by
    /// `close` (or when the process ends).
    instance_lock: Arc<Mutex<Option<std::fs::File>>>,
    /// See `listing::CANDIDATE_LIMIT`; tests lower it to exercise every query plan.
    candidate_limit: i64,
    /// See `domain::list_query::COUNT_BOUND`; tests lower it to reach it with few images.
    count_bound: u64,
}

impl Store {
    /// Connects (creating a SQLite file if needed) and applies the backend's migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)
            .context("DATABASE_URL must start with sqlite: or postgres://")?;
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let instance_lock = match backend {
            Backend::Sqlite => lock_sqlite_file(&url)?,
            Backend::Postgres => None,
        };
        let options = AnyConnectOptions::from_str(&url).context("parsing DATABASE_URL")?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                // One writer at a time is all SQLite allows; a few readers share WAL snapshots.
                Backend::Sqlite => 4,
                Backend::Postgres => 10,
            })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .context("connecting to the database")?;
        let store = Self {
            pool,
            backend,
            instance_lock: Arc::new(Mutex::new(instance_lock)),
            candidate_limit: listing::CANDIDATE_LIMIT,
            count_bound: crate::domain::list_query::COUNT_BOUND,
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        let source = match self.backend {
            Backend::Sqlite => EmbeddedMigrations(embedded_migrations::SQLITE),
            Backend::Postgres => EmbeddedMigrations(embedded_migrations::POSTGRES),
        };
        sqlx::migrate::Migrator::new(source)
            .await?
            .run(&self.pool)
            .await
            .context("applying database migrations")
    }

    /// A column as a condition that no index serves: SQLite would otherwise read a page's
    /// few rows through the account's index over all its rows, where the primary key finds
    /// them (PostgreSQL's planner weighs both).
    pub(crate) fn unindexed(&self, column: &str) -> String {
        match self.backend {
            Backend::Sqlite => format!("+{column}"),
            Backend::Postgres => column.to_owned(),
        }
    }

    /// The same store, choosing index-driven plans only below `limit` candidates.
    pub fn with_candidate_limit(mut self, limit: i64) -> Self {
        self.candidate_limit = limit;
        self
    }

    /// The same store, counting a search's matches only up to `bound` unless asked for all.
    pub fn with_count_bound(mut self, bound: u64) -> Self {
        self.count_bound = bound;
        self
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), waiting for another writer if need be: a transaction that reads
    /// first and writes later fails with "database is locked", without waiting, when another
    /// connection wrote in between.
    pub(crate) async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Any>> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
        if let Ok(mut lock) = self.instance_lock.lock() {
            lock.take();
        }
    }
}

/// SQLite serves one console process: locks, upload writers and imports live in the process,
/// so a second instance on the same file would run the same imports and write the same
/// uploads. Takes an exclusive lock on `<database file>.lock` (released when the process ends,
/// however it ends) and refuses to start if another process holds it. An in-memory database
/// needs none.
fn lock_sqlite_file(url: &str) -> anyhow::Result<Option<std::fs::File>> {
    let options =
        sqlx::sqlite::SqliteConnectOptions::from_str(url).context("parsing DATABASE_URL")?;
    let database = options.get_filename();
    if url.contains("mode=memory") || database == Path::new(":memory:") {
        return Ok(None);
    }
    let mut path = database.as_os_str().to_owned();
    path.push(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", Path::new(&path).display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another console process is already using the SQLite database {} (it holds {}). \
             SQLite serves one console instance; to run several, give them one PostgreSQL \
             database in DATABASE_URL.",
            database.display(),
            Path::new(&path).display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", Path::new(&path).display()))
        }
    }
}

/// Whether an error is a unique-constraint violation (a race lost to another insert).
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

/// Reads a non-negative 64-bit column stored as a signed integer.
pub(crate) fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Writes a byte count into a signed 64-bit column (sizes never reach 2^63).
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The migrations `build.rs` embeds from `migrations/`: (version, description, SQL).
mod embedded_migrations {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

/// One backend's embedded migrations, as sqlx reads them from a folder.
#[derive(Debug)]
struct EmbeddedMigrations(&'static [(i64, &'static str, &'static str)]);

impl<'s> sqlx::migrate::MigrationSource<'s> for EmbeddedMigrations {
    fn resolve(
        self,
    ) -> futures::future::BoxFuture<
        's,
        Result<Vec<sqlx::migrate::Migration>, sqlx::error::BoxDynError>,
    > {
        let migrations = self
            .0
            .iter()
            .map(|&(version, description, sql)| {
                sqlx::migrate::Migration::new(
                    version,
                    description.into(),
                    sqlx::migrate::MigrationType::Simple,
                    sql.into(),
                    sql.starts_with("-- no-transaction"),
                )
            })
            .collect();
        Box::pin(std::future::ready(Ok(migrations)))
    }
}

#[cfg(test)]
mod migration_tests {
    use super::*;

    /// The embedded migrations are exactly those sqlx reads from the folders: same versions,
    /// descriptions and checksums, so databases migrated by earlier builds stay valid.
    #[tokio::test]
    async fn embedded_migrations_match_the_folders() {
        for (embedded, folder) in [
            (embedded_migrations::SQLITE, "migrations/sqlite"),
            (embedded_migrations::POSTGRES, "migrations/postgres"),
        ] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
            let from_folder = sqlx::migrate::Migrator::new(dir.as_path()).await.unwrap();
            let from_binary = sqlx::migrate::Migrator::new(EmbeddedMigrations(embedded))
                .await
                .unwrap();
            let summary = |m: &sqlx::migrate::Migrator| -> Vec<_> {
                m.iter()
                    .map(|m| {
                        (
                            m.version,
                            m.description.to_string(),
                            m.checksum.to_vec(),
                            m.no_tx,
                        )
                    })
                    .collect()
            };
            assert!(!embedded.is_empty());
            assert_eq!(summary(&from_binary), summary(&from_folder), "{folder}");
        }
    }
}
