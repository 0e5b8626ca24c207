//! This console process's leases (see `store::leases`): its name among the processes sharing
//! the database, the claims it holds now, and the heartbeat that keeps exactly those running.
//! A claim ends when its guard drops, whatever ended the work, so a request cut off by its
//! client leaves no claim behind to be renewed for ever. A claim the heartbeat finds taken
//! over is marked lost at once (`LeaseGuard::lost`), so its work stops without waiting for a
//! write to be refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::now_ms;
use crate::store::Store;
use crate::store::leases::{Claim, Fence, Taken, new_token};

#[derive(Clone, Debug)]
pub struct Leases {
    store: Store,
    /// Random per start: a restarted process is a new holder.
    holder: Arc<str>,
    ttl_ms: i64,
    /// The claims held now, by resource.
    held: Arc<Mutex<HashMap<String, Held>>>,
}

/// A claim held now: its token, what the heartbeat cancels if it finds it taken over, and
/// whether the database has it yet (a reservation being claimed is not renewed).
#[derive(Debug)]
struct Held {
    token: String,
    lost: CancellationToken,
    claimed: bool,
}

impl Leases {
    pub fn new(store: Store, ttl: Duration) -> Self {
        Self {
            store,
            holder: hex::encode(rand::random::<[u8; 8]>()).into(),
            ttl_ms: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4),
            held: Arc::default(),
        }
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    fn claim(&self) -> Claim<'_> {
        Claim {
            holder: &self.holder,
            now_ms: now_ms(),
            ttl_ms: self.ttl_ms,
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the lease; `None` while another claim runs, this process's too. Within the
    /// process the resource is reserved first, so two of its requests never both claim it;
    /// a claim of this process that ended but whose row is still being deleted may then be
    /// taken again at once.
    pub async fn acquire(&self, resource: &str) -> sqlx::Result<Option<LeaseGuard>> {
        let token = new_token();
        let lost = CancellationToken::new();
        {
            let mut held = self.held();
            if held.contains_key(resource) {
                return Ok(None);
            }
            held.insert(
                resource.to_owned(),
                Held {
                    token: token.clone(),
                    lost: lost.clone(),
                    claimed: false,
                },
            );
        }
        let guard = LeaseGuard {
            leases: self.clone(),
            resource: resource.to_owned(),
            token: token.clone(),
            lost,
            claimed: false,
        };
        match self
            .store
            .acquire_lease(resource, &self.claim(), &token)
            .await?
        {
            // Dropping the unclaimed guard gives the reservation back.
            Taken::Refused => Ok(None),
            Taken::Claimed => Ok(Some(guard.claimed())),
            Taken::TakenOver { from } => {
                tracing::warn!(%resource, from = %from, "took over work whose process stopped renewing its lease");
                Ok(Some(guard.claimed()))
            }
        }
    }

    /// Holds a claim the store took on this process's behalf.
    fn adopt(&self, resource: String, token: String) -> LeaseGuard {
        let lost = CancellationToken::new();
        self.held().insert(
            resource.clone(),
            Held {
                token: token.clone(),
                lost: lost.clone(),
                claimed: true,
            },
        );
        LeaseGuard {
            leases: self.clone(),
            resource,
            token,
            lost,
            claimed: true,
        }
    }

    /// Whether another process holds a running lease on the resource.
    pub async fn held_elsewhere(&self, resource: &str) -> sqlx::Result<bool> {
        Ok(self
            .store
            .lease_holder(resource, now_ms())
            .await?
            .is_some_and(|holder| *holder != *self.holder))
    }

    /// The heartbeat: every claim held now runs for another period. A claim that is no
    /// longer this process's (another took it over while this one was paused or cut off from
    /// the database) is marked lost, which stops its work at once.
    pub async fn renew(&self) -> anyhow::Result<()> {
        let tokens: Vec<String> = self
            .held()
            .values()
            .filter(|h| h.claimed)
            .map(|h| h.token.clone())
            .collect();
        if tokens.is_empty() {
            return Ok(());
        }
        let renewed: std::collections::HashSet<String> = self
            .store
            .renew_leases(&self.claim(), &tokens)
            .await?
            .into_iter()
            .collect();
        let mut held = self.held();
        let lost: Vec<String> = held
            .iter()
            .filter(|(_, h)| tokens.contains(&h.token) && !renewed.contains(&h.token))
            .map(|(resource, _)| resource.clone())
            .collect();
        for resource in lost {
            if let Some(h) = held.remove(&resource) {
                tracing::warn!(%resource, "lease taken over by another console process; stopping this process's work on it");
                h.lost.cancel();
            }
        }
        Ok(())
    }

    /// Ends every claim of this process (it shuts down: others may take over at once).
    pub async fn release_all(&self) -> sqlx::Result<()> {
        self.store.release_leases(&self.holder).await
    }

    /// Claims the leases of imports whose process stopped (see `Store::claim_unleased_imports`).
    pub async fn claim_unleased_imports(
        &self,
        limit: i64,
    ) -> sqlx::Result<Vec<(crate::store::images::InterruptedImport, LeaseGuard)>> {
        // Work this process holds is never claimed again here, even if its row expired while
        // the heartbeat could not reach the database: a new claim would fence it out.
        let here: std::collections::HashSet<String> = self.held().keys().cloned().collect();
        let claimed = self
            .store
            .claim_unleased_imports(&self.claim(), limit, &here)
            .await?;
        Ok(claimed
            .into_iter()
            .map(|(import, token)| {
                let guard = self.adopt(crate::store::leases::import_lease(&import.id), token);
                (import, guard)
            })
            .collect())
    }
}

/// One claim held; dropping it ends the claim.
pub struct LeaseGuard {
    leases: Leases,
    resource: String,
    token: String,
    lost: CancellationToken,
    /// Whether the database holds the claim (else only the in-process reservation).
    claimed: bool,
}

impl LeaseGuard {
    fn claimed(mut self) -> Self {
        if let Some(held) = self.leases.held().get_mut(&self.resource)
            && held.token == self.token
        {
            held.claimed = true;
        }
        self.claimed = true;
        self
    }

    /// What every write under this claim carries.
    pub fn fence(&self) -> Fence {
        Fence {
            resource: self.resource.clone(),
            token: self.token.clone(),
        }
    }

    /// Cancelled when the heartbeat finds the claim taken over.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }
}

impl LeaseGuard {
    /// Ends the claim now and waits for it to end, for work that a client may follow at
    /// once (a request that sent an image's data: its client may send again straight away).
    pub async fn release(mut self) {
        let claimed = std::mem::replace(&mut self.claimed, false);
        let (store, resource, token) = (
            self.leases.store.clone(),
            self.resource.clone(),
            self.token.clone(),
        );
        drop(self);
        if claimed {
            end_claim(&store, &resource, &token).await;
        }
    }
}

/// Deletes claim `token`'s row, saying so when another process had taken it over.
async fn end_claim(store: &Store, resource: &str, token: &str) {
    match store.release_lease(resource, token).await {
        Ok(true) => {}
        // The work ended before the heartbeat saw the claim go (a request cut off while this
        // process was paused, say): say so all the same.
        Ok(false) => tracing::warn!(
            %resource,
            "lease taken over by another console process before this process's work on it ended"
        ),
        Err(e) => tracing::warn!(%resource, error = %e, "could not end a lease; it expires"),
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        {
            let mut held = self.leases.held();
            if held.get(&self.resource).map(|h| &h.token) == Some(&self.token) {
                held.remove(&self.resource);
            }
        }
        // The row goes in the background (a drop cannot wait); until then the heartbeat no
        // longer renews it, and the token keeps a late delete off a newer claim.
        if !self.claimed {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (store, resource, token) = (
                self.leases.store.clone(),
                std::mem::take(&mut self.resource),
                std::mem::take(&mut self.token),
            );
            runtime.spawn(async move { end_claim(&store, &resource, &token).await });
        }
    }
}
