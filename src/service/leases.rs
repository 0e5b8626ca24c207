//! This console process's leases (see `store::leases`): its name among the processes sharing
//! the database, the claims it holds now, and the heartbeat that keeps exactly those running.
//! A claim ends when its guard drops, whatever ended the work, so a request cut off by its
//! client leaves no claim behind to be renewed for ever.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::now_ms;
use crate::store::Store;
use crate::store::leases::{Claim, new_token};

#[derive(Clone, Debug)]
pub struct Leases {
    store: Store,
    /// Random per start: a restarted process is a new holder.
    holder: Arc<str>,
    ttl_ms: i64,
    /// The claims held now: resource → token.
    held: Arc<Mutex<HashMap<String, String>>>,
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

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the lease; `None` while another process holds it.
    pub async fn acquire(&self, resource: &str) -> sqlx::Result<Option<LeaseGuard>> {
        let token = new_token();
        if !self
            .store
            .acquire_lease(resource, &self.claim(), &token)
            .await?
        {
            return Ok(None);
        }
        Ok(Some(self.adopt(resource.to_owned(), token)))
    }

    /// Holds a claim the store took on this process's behalf.
    pub fn adopt(&self, resource: String, token: String) -> LeaseGuard {
        self.held().insert(resource.clone(), token.clone());
        LeaseGuard {
            leases: self.clone(),
            resource,
            token,
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

    /// The heartbeat: every claim held now runs for another period.
    pub async fn renew(&self) -> anyhow::Result<()> {
        let tokens: Vec<String> = self.held().values().cloned().collect();
        self.store.renew_leases(&self.claim(), &tokens).await?;
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
        let claimed = self
            .store
            .claim_unleased_imports(&self.claim(), limit)
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
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        {
            let mut held = self.leases.held();
            if held.get(&self.resource) == Some(&self.token) {
                held.remove(&self.resource);
            }
        }
        // The row goes in the background (a drop cannot wait); until then the heartbeat no
        // longer renews it, and the token keeps a late delete off a newer claim.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (store, resource, token) = (
                self.leases.store.clone(),
                std::mem::take(&mut self.resource),
                std::mem::take(&mut self.token),
            );
            runtime.spawn(async move {
                if let Err(e) = store.release_lease(&resource, &token).await {
                    tracing::warn!(%resource, error = %e, "could not end a lease; it expires");
                }
            });
        }
    }
}
