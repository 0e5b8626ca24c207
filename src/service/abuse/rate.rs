//! Rate limits as GCRA (the generic cell rate algorithm): each key keeps one number, its
//! theoretical arrival time (TAT). An attempt at `now` is admitted when the TAT it would move
//! to, `max(TAT, now) + interval`, is at most `burst` intervals ahead of `now`; then that is the
//! new TAT. A key whose TAT has passed is as good as new and can be forgotten.
//!
//! One process keeps the TATs in memory. Several processes on PostgreSQL keep them in the
//! database (`store::rate_limits`), where one statement admits or refuses an attempt, so N
//! processes together allow exactly what one allows. Both use this arithmetic: the SQL writes
//! the same comparison.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::store::Store;

/// One limit: `burst` attempts at once, then one per `interval_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gcra {
    pub interval_ms: i64,
    pub burst: i64,
}

impl Gcra {
    /// `n` attempts a minute, all of them at once if they come together.
    pub fn per_minute(n: u32) -> Self {
        Self::per(n, 60_000)
    }

    /// `n` attempts an hour.
    pub fn per_hour(n: u32) -> Self {
        Self::per(n, 3_600_000)
    }

    fn per(n: u32, period_ms: i64) -> Self {
        let n = i64::from(n.max(1));
        Self {
            interval_ms: (period_ms / n).max(1),
            burst: n,
        }
    }

    /// Admits one attempt at `now_ms` for a key whose TAT is `tat` (`None`: never seen):
    /// the new TAT, or how long until an attempt would be admitted.
    pub fn admit(&self, tat: Option<i64>, now_ms: i64) -> Result<i64, Duration> {
        let next = tat.unwrap_or(now_ms).max(now_ms) + self.interval_ms;
        let allowed_at = next - self.burst * self.interval_ms;
        if allowed_at <= now_ms {
            Ok(next)
        } else {
            Err(Duration::from_millis((allowed_at - now_ms) as u64))
        }
    }
}

/// Where the TATs are kept.
pub enum RateLimits {
    /// In this process: one console process (a SQLite file belongs to one).
    InProcess(Mutex<HashMap<String, i64>>),
    /// In the database, shared by every console process.
    Shared(Store),
}

impl RateLimits {
    /// In the database on PostgreSQL, where several processes may serve one console; in
    /// memory on SQLite.
    pub fn for_store(store: &Store) -> Self {
        match store.backend() {
            crate::store::Backend::Postgres => RateLimits::Shared(store.clone()),
            crate::store::Backend::Sqlite => RateLimits::InProcess(Mutex::default()),
        }
    }

    fn memory(
        map: &Mutex<HashMap<String, i64>>,
    ) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one attempt under `key`; `Err` with the wait when the limit refuses it.
    pub async fn admit(
        &self,
        key: &str,
        limit: Gcra,
        now_ms: i64,
    ) -> sqlx::Result<Result<(), Duration>> {
        match self {
            RateLimits::InProcess(map) => {
                let mut map = Self::memory(map);
                Ok(limit.admit(map.get(key).copied(), now_ms).map(|tat| {
                    map.insert(key.to_owned(), tat);
                }))
            }
            RateLimits::Shared(store) => match store
                .admit_rate(key, limit.interval_ms, limit.burst, now_ms)
                .await?
            {
                true => Ok(Ok(())),
                false => {
                    let tat = store.rate_tat(key).await?;
                    // Refused, so the TAT is ahead; should it have passed meanwhile, the
                    // client may simply try again at once.
                    Ok(Err(limit
                        .admit(tat, now_ms)
                        .err()
                        .unwrap_or(Duration::from_millis(1))))
                }
            },
        }
    }

    /// Whether an attempt under `key` would be refused now, without counting one: the wait.
    pub async fn refused(
        &self,
        key: &str,
        limit: Gcra,
        now_ms: i64,
    ) -> sqlx::Result<Option<Duration>> {
        let tat = match self {
            RateLimits::InProcess(map) => Self::memory(map).get(key).copied(),
            RateLimits::Shared(store) => store.rate_tat(key).await?,
        };
        Ok(limit.admit(tat, now_ms).err())
    }

    /// Forgets keys whose TAT has passed (they are as good as new).
    pub async fn forget_refilled(&self, now_ms: i64) -> sqlx::Result<()> {
        match self {
            RateLimits::InProcess(map) => {
                let mut map = Self::memory(map);
                map.retain(|_, tat| *tat > now_ms);
                map.shrink_to_fit();
                Ok(())
            }
            RateLimits::Shared(store) => store.forget_refilled_rates(now_ms).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_per_interval() {
        let limit = Gcra::per_minute(3);
        assert_eq!(limit.interval_ms, 20_000);
        let mut tat = None;
        for _ in 0..3 {
            tat = Some(limit.admit(tat, 1_000).unwrap());
        }
        assert_eq!(limit.admit(tat, 1_000), Err(Duration::from_millis(20_000)));
        // One more is admitted once one interval has refilled, not before.
        assert!(limit.admit(tat, 20_999).is_err());
        let refilled = limit.admit(tat, 21_000).unwrap();
        assert!(limit.admit(Some(refilled), 21_000).is_err());
        // A key idle for a whole period is as good as new.
        let mut later = Some(refilled);
        for _ in 0..3 {
            later = Some(limit.admit(later, 200_000).unwrap());
        }
    }

    #[test]
    fn a_limit_of_one_an_hour() {
        let limit = Gcra::per_hour(1);
        let tat = limit.admit(None, 0).unwrap();
        assert_eq!(
            limit.admit(Some(tat), 1),
            Err(Duration::from_millis(3_599_999))
        );
        assert!(limit.admit(Some(tat), 3_600_000).is_ok());
    }
}
