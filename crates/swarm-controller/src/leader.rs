//! Leadership among controller replicas that share one store: the background loops
//! (reconcile, idle policy) run on one replica at a time. The leader holds the
//! store lease [`LEADER_LEASE`] and renews it every third of its TTL; a replica that
//! dies stops renewing, and another takes the lease once it expired (at once when the
//! dead one ran on the same host: its pid is gone). The lease is a row with an expiry,
//! so this holds on SQLite (processes sharing one file) and on PostgreSQL (replicas
//! on several hosts) alike.
//!
//! Leadership alone cannot rule out an overlap at a handover (a leader stalled past
//! its lease still finishes the pass it began), so each pass also holds a pass lease
//! of its own ([`Leadership::pass`]): two passes of one loop never run at once.

use std::sync::Arc;
use std::time::Duration;

use swarm_store::Store;
use swarm_store::lock::{LockError, WorkspaceLock, holder_is_dead, new_owner};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The store lease the leading replica holds.
pub const LEADER_LEASE: &str = "controller:leader";
/// A lease TTL: how long a dead leader's loops wait for a new one, at most.
pub const DEFAULT_LEADER_LEASE: Duration = Duration::from_secs(15);

/// This replica's part in the election.
#[derive(Debug)]
pub struct Leadership<S: Store> {
    store: Arc<S>,
    owner: String,
    ttl: Duration,
    leading: watch::Sender<bool>,
}

impl<S: Store> Leadership<S> {
    pub fn new(store: Arc<S>, ttl: Duration) -> Arc<Self> {
        let owner = new_owner();
        Arc::new(Self {
            store,
            owner,
            ttl,
            leading: watch::Sender::new(false),
        })
    }

    /// This replica, as the lease names it (`host:pid:uuid`).
    pub fn replica(&self) -> &str {
        &self.owner
    }

    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }

    /// Turns true when this replica leads.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.leading.subscribe()
    }

    /// One round of the election: the leader renews its lease, the others try to take
    /// it. Any store failure steps down: a replica that cannot reach the store
    /// cannot prove it still leads.
    pub async fn round(&self) -> bool {
        let leading = if self.is_leader() {
            match self
                .store
                .renew_lock(LEADER_LEASE, &self.owner, self.ttl)
                .await
            {
                Ok(true) => true,
                Ok(false) => {
                    tracing::warn!(replica = %self.owner, "leadership lost: the lease expired and was taken");
                    false
                }
                Err(error) => {
                    tracing::warn!(replica = %self.owner, %error, "leadership given up: cannot renew the lease");
                    false
                }
            }
        } else {
            match self
                .store
                .try_lock(LEADER_LEASE, &self.owner, "leader", self.ttl)
                .await
            {
                Ok(None) => {
                    tracing::info!(replica = %self.owner, "leading: the background loops run here");
                    true
                }
                Ok(Some(holder)) if holder_is_dead(&holder) => {
                    tracing::warn!(
                        pid = holder.pid,
                        "the leader's process is gone; taking over its lease"
                    );
                    match self.store.break_lock(LEADER_LEASE, &holder.owner).await {
                        Ok(()) => matches!(
                            self.store
                                .try_lock(LEADER_LEASE, &self.owner, "leader", self.ttl)
                                .await,
                            Ok(None)
                        ),
                        Err(error) => {
                            tracing::warn!(%error, "cannot break the dead leader's lease");
                            false
                        }
                    }
                }
                Ok(Some(_)) => false,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the leader lease");
                    false
                }
            }
        };
        self.leading.send_replace(leading);
        leading
    }

    /// Campaigns now and every third of the TTL until `stop` turns true; then a
    /// leader hands its lease back, so the next replica need not wait for it to expire.
    pub fn spawn(self: &Arc<Self>, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let period = (this.ttl / 3).max(Duration::from_millis(50));
            loop {
                this.round().await;
                tokio::select! {
                    () = tokio::time::sleep(period) => {}
                    _ = stop.wait_for(|stopped| *stopped) => break,
                }
            }
            if this.is_leader() {
                this.leading.send_replace(false);
                if let Err(error) = this.store.release_lock(LEADER_LEASE, &this.owner).await {
                    tracing::warn!(%error, "cannot hand back the leader lease");
                }
            }
        })
    }

    /// The lease of one pass of the loop `name`, held (and renewed) while the pass
    /// runs; waits up to `wait` while another replica's pass holds it.
    pub async fn pass(&self, name: &str, wait: Duration) -> Result<WorkspaceLock<S>, LockError> {
        let lease = format!("controller:{name}");
        WorkspaceLock::acquire(Arc::clone(&self.store), &lease, name, self.ttl, wait).await
    }
}
