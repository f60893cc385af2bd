//! One operation at a time per workspace, also across processes: a lease row in the
//! store, renewed while the operation runs, stale after its expiry so a crashed
//! process does not block the workspace for ever.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::{LockHolder, Store, StoreError};

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("workspace {name} is busy: {} by pid {} since {}", .holder.operation, .holder.pid, crate::lock::since(&.holder.acquired_at))]
    Busy { name: String, holder: LockHolder },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// True when the holder ran on this host and its process is gone (it crashed), so
/// its lock need not run out its lease. Owners are `host:pid:uuid`.
pub fn holder_is_dead(holder: &LockHolder) -> bool {
    let proc_fs = std::path::Path::new("/proc/self");
    let same_host = holder.owner.split(':').next() == Some(host_name().as_str());
    holder.pid != 0
        && holder.pid != std::process::id()
        && same_host
        && proc_fs.exists()
        && !std::path::Path::new(&format!("/proc/{}", holder.pid)).exists()
}

/// A lease owner for this process: `host:pid:uuid`, the form [`holder_is_dead`] reads.
pub fn new_owner() -> String {
    format!(
        "{}:{}:{}",
        host_name(),
        std::process::id(),
        uuid::Uuid::new_v4()
    )
}

pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().replace(':', "_"))
        .unwrap_or_else(|_| "localhost".to_owned())
}

pub fn since(at: &time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

/// A held workspace lock. Renewed in the background; [`WorkspaceLock::release`] frees
/// it (dropping it stops renewal, so it expires after its TTL at the latest).
#[derive(Debug)]
pub struct WorkspaceLock<S: Store> {
    store: Arc<S>,
    name: String,
    owner: String,
    renewal: Option<JoinHandle<()>>,
}

impl<S: Store> WorkspaceLock<S> {
    /// Takes the lock on `name`, waiting up to `wait` for a busy one.
    pub async fn acquire(
        store: Arc<S>,
        name: &str,
        operation: &str,
        ttl: Duration,
        wait: Duration,
    ) -> Result<Self, LockError> {
        let owner = new_owner();
        let deadline = Instant::now() + wait;
        let mut delay = Duration::from_millis(20);
        loop {
            match store.try_lock(name, &owner, operation, ttl).await? {
                None => break,
                Some(holder) if holder_is_dead(&holder) => {
                    tracing::warn!(workspace = name, pid = holder.pid, operation = %holder.operation, "taking over the lock of a process that is gone");
                    store.break_lock(name, &holder.owner).await?;
                }
                Some(holder) => {
                    if Instant::now() >= deadline {
                        return Err(LockError::Busy {
                            name: name.to_owned(),
                            holder,
                        });
                    }
                    tracing::debug!(workspace = name, holder = %holder.operation, pid = holder.pid, "workspace busy, waiting");
                    tokio::time::sleep(
                        delay.min(deadline.saturating_duration_since(Instant::now())),
                    )
                    .await;
                    delay = (delay * 2).min(Duration::from_millis(500));
                }
            }
        }
        let renewal = {
            let store = Arc::clone(&store);
            let name = name.to_owned();
            let owner = owner.clone();
            tokio::spawn(async move {
                let period = (ttl / 3).max(Duration::from_millis(100));
                loop {
                    tokio::time::sleep(period).await;
                    match store.renew_lock(&name, &owner, ttl).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(workspace = %name, "workspace lock lost (expired and taken over)");
                            return;
                        }
                        Err(error) => {
                            tracing::warn!(workspace = %name, %error, "renewing workspace lock failed")
                        }
                    }
                }
            })
        };
        Ok(Self {
            store,
            name: name.to_owned(),
            owner,
            renewal: Some(renewal),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Forgets a lock the store has already freed (in the same transaction as the
    /// operation's last journal write): stops renewal, releases nothing more.
    pub fn released(mut self) {
        if let Some(renewal) = self.renewal.take() {
            renewal.abort();
        }
    }

    /// Frees the lock.
    pub async fn release(mut self) -> Result<(), StoreError> {
        if let Some(renewal) = self.renewal.take() {
            renewal.abort();
        }
        self.store.release_lock(&self.name, &self.owner).await
    }
}

/// Releases started by `Drop` (error paths), for [`finish_releases`].
static RELEASES: std::sync::Mutex<Vec<JoinHandle<()>>> = std::sync::Mutex::new(Vec::new());

/// Waits for the locks dropped on error paths to be freed. A program calls it before
/// closing its store: otherwise a release still queued finds the store closed and the
/// lock stays behind (the next process takes it over, with a warning, or waits out
/// its lease when the holder's pid is alive again or on another host).
pub async fn finish_releases() {
    loop {
        let pending = std::mem::take(&mut *RELEASES.lock().unwrap_or_else(|e| e.into_inner()));
        if pending.is_empty() {
            return;
        }
        for release in pending {
            let _ = release.await;
        }
    }
}

impl<S: Store> Drop for WorkspaceLock<S> {
    fn drop(&mut self) {
        if let Some(renewal) = self.renewal.take() {
            renewal.abort();
            // Not released explicitly (an error path): free it in the background.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let store = Arc::clone(&self.store);
                let name = std::mem::take(&mut self.name);
                let owner = std::mem::take(&mut self.owner);
                let release = runtime.spawn(async move {
                    if let Err(error) = store.release_lock(&name, &owner).await {
                        tracing::warn!(workspace = %name, %error, "releasing workspace lock failed");
                    }
                });
                let mut releases = RELEASES.lock().unwrap_or_else(|e| e.into_inner());
                releases.retain(|done| !done.is_finished());
                releases.push(release);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteStore;

    #[tokio::test]
    async fn second_holder_waits_then_fails_clearly_and_gets_it_after_release() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(
            SqliteStore::open(dir.path().join("s.db"), "local")
                .await
                .expect("open"),
        );
        let ttl = Duration::from_millis(600);
        let first =
            WorkspaceLock::acquire(Arc::clone(&store), "alice", "create", ttl, Duration::ZERO)
                .await
                .expect("first");
        // Held longer than its TTL: renewal keeps it.
        let error = WorkspaceLock::acquire(
            Arc::clone(&store),
            "alice",
            "delete",
            ttl,
            Duration::from_millis(1500),
        )
        .await
        .expect_err("busy");
        let text = error.to_string();
        assert!(
            text.starts_with("workspace alice is busy: create by pid "),
            "{text}"
        );
        assert!(text.contains(&std::process::id().to_string()), "{text}");
        first.release().await.expect("release");
        let second =
            WorkspaceLock::acquire(Arc::clone(&store), "alice", "delete", ttl, Duration::ZERO)
                .await
                .expect("free now");
        drop(second);
        // Dropped without release: freed in the background.
        let third =
            WorkspaceLock::acquire(store, "alice", "stop", ttl, Duration::from_secs(5)).await;
        assert!(third.is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lock_dropped_just_before_the_store_closes_is_still_freed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        let ttl = Duration::from_secs(30);
        for round in 0..20 {
            let store = Arc::new(SqliteStore::open(&path, "local").await.expect("open"));
            let lock =
                WorkspaceLock::acquire(Arc::clone(&store), "alice", "x", ttl, Duration::ZERO)
                    .await
                    .expect("free");
            // An error path drops the lock, then the program closes its store at once.
            drop(lock);
            finish_releases().await;
            store.close().await;
            let reopened = SqliteStore::open(&path, "local").await.expect("reopen");
            let holder = reopened
                .try_lock("alice", "someone-else", "y", ttl)
                .await
                .expect("try");
            assert_eq!(
                holder, None,
                "round {round}: the dropped lock is still held"
            );
            reopened
                .release_lock("alice", "someone-else")
                .await
                .expect("release");
            reopened.close().await;
        }
    }
}
