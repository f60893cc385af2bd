//! Leadership among replicas sharing one store (here one SQLite file; the replica
//! test on PostgreSQL runs whole processes): one leads, a dead leader's lease runs out
//! and another takes over, a stopping leader hands its lease back, and one loop's
//! passes never overlap.

use std::sync::Arc;
use std::time::{Duration, Instant};

use swarm::SqliteStore;
use swarm_controller::Leadership;

const TTL: Duration = Duration::from_millis(800);

async fn store(dir: &tempfile::TempDir) -> Arc<SqliteStore> {
    let store = SqliteStore::open(dir.path().join("swarm.db"), "http://127.0.0.1:9")
        .await
        .expect("open store");
    Arc::new(store)
}

#[tokio::test]
async fn one_replica_leads_and_another_takes_over_only_after_the_lease_runs_out() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let a = Leadership::new(Arc::clone(&store), TTL);
    let b = Leadership::new(Arc::clone(&store), TTL);
    assert!(a.round().await, "the first replica to ask leads");
    assert!(!b.round().await, "a second one does not");
    assert!(a.round().await, "the leader renews");
    // `a` dies here: it renews no more.
    let died = Instant::now();
    assert!(!b.round().await, "the lease has not run out yet");
    let deadline = died + TTL * 5;
    while !b.round().await {
        assert!(
            Instant::now() < deadline,
            "no takeover within five lease periods"
        );
        tokio::time::sleep(TTL / 8).await;
    }
    assert!(
        died.elapsed() >= TTL / 2,
        "taken over after {:?}, before the lease ran out",
        died.elapsed()
    );
    assert!(b.is_leader());
    assert!(!a.round().await, "the old leader learns it lost");
    assert!(!a.is_leader());
}

#[tokio::test]
async fn a_stopping_leader_hands_its_lease_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let a = Leadership::new(Arc::clone(&store), Duration::from_secs(60));
    let b = Leadership::new(Arc::clone(&store), Duration::from_secs(60));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let campaign = a.spawn(stopped);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !a.is_leader() {
        assert!(Instant::now() < deadline, "never led");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(true).unwrap();
    campaign.await.unwrap();
    assert!(!a.is_leader());
    assert!(
        b.round().await,
        "the next replica leads at once, without waiting a minute for the lease"
    );
}

#[tokio::test]
async fn two_passes_of_one_loop_never_run_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let a = Leadership::new(Arc::clone(&store), TTL);
    let b = Leadership::new(Arc::clone(&store), TTL);
    let held = a.pass("reconcile", Duration::ZERO).await.expect("free");
    let refused = b.pass("reconcile", Duration::ZERO).await;
    assert!(refused.is_err(), "a second pass ran beside the first");
    let other_loop = b.pass("idle-policy", Duration::ZERO).await.expect("free");
    // The first pass outlives its TTL: renewal keeps its lease.
    tokio::time::sleep(TTL * 2).await;
    assert!(b.pass("reconcile", Duration::ZERO).await.is_err());
    held.release().await.unwrap();
    let next = b
        .pass("reconcile", Duration::ZERO)
        .await
        .expect("free again");
    next.release().await.unwrap();
    other_loop.release().await.unwrap();
}
