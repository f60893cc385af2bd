//! Locks: exclusion, expiry, takeover from a crashed local process.

use super::*;

#[tokio::test]
async fn locks_exclude_others_until_released_or_expired() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("swarm.db"), "local")
        .await
        .expect("open");
    let ttl = Duration::from_secs(30);
    assert_eq!(
        store
            .try_lock("alice", "a", "create", ttl)
            .await
            .expect("lock"),
        None
    );
    let holder = store
        .try_lock("alice", "b", "delete", ttl)
        .await
        .expect("lock")
        .expect("busy");
    assert_eq!(holder.owner, "a");
    assert_eq!(holder.operation, "create");
    assert_eq!(holder.pid, std::process::id());
    // Other names are independent; the holder may re-take its own lock.
    assert_eq!(
        store
            .try_lock("bob", "b", "create", ttl)
            .await
            .expect("lock"),
        None
    );
    assert_eq!(
        store
            .try_lock("alice", "a", "create", ttl)
            .await
            .expect("lock"),
        None
    );
    assert!(store.renew_lock("alice", "a", ttl).await.expect("renew"));
    assert!(!store.renew_lock("alice", "b", ttl).await.expect("renew"));
    store
        .release_lock("alice", "b")
        .await
        .expect("not ours: no-op");
    assert!(
        store
            .try_lock("alice", "b", "x", ttl)
            .await
            .expect("lock")
            .is_some()
    );
    store.release_lock("alice", "a").await.expect("release");
    assert_eq!(
        store
            .try_lock("alice", "b", "delete", ttl)
            .await
            .expect("lock"),
        None
    );
    // A stale lease (crashed holder) is taken over.
    assert_eq!(
        store
            .try_lock("carol", "dead", "create", Duration::ZERO)
            .await
            .expect("lock"),
        None
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if store
            .try_lock("carol", "c", "create", ttl)
            .await
            .expect("lock")
            .is_none()
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stale lock never expired"
        );
        tokio::task::yield_now().await;
    }
    assert!(!store.renew_lock("carol", "dead", ttl).await.expect("renew"));
}

#[tokio::test]
async fn the_lock_of_a_crashed_local_process_is_taken_over_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = std::sync::Arc::new(
        SqliteStore::open(dir.path().join("swarm.db"), "local")
            .await
            .expect("open"),
    );
    // A process that has exited: its pid is free.
    let mut child = std::process::Command::new("true").spawn().expect("spawn");
    let dead_pid = child.id();
    child.wait().expect("wait");
    let owner = format!("{}:{dead_pid}:x", crate::lock::host_name());
    let far = unix_ms(now()) + 3_600_000;
    sqlx::query(
        "INSERT INTO locks (name, owner, pid, operation, acquired_at, expires_at_ms) VALUES ('alice', ?1, ?2, 'create', ?3, ?4)",
    )
    .bind(&owner)
    .bind(i64::from(dead_pid))
    .bind(rfc3339(now()))
    .bind(far)
    .execute(&store.pool)
    .await
    .expect("insert");
    let started = std::time::Instant::now();
    let lock = crate::lock::WorkspaceLock::acquire(
        std::sync::Arc::clone(&store),
        "alice",
        "reconcile",
        Duration::from_secs(30),
        Duration::ZERO,
    )
    .await
    .expect("a dead holder's lock is taken over without waiting for its hour-long lease");
    assert!(started.elapsed() < Duration::from_secs(5));
    lock.release().await.expect("release");
    // A live holder (this process) is respected.
    assert!(
        store
            .try_lock("bob", "someone", "stop", Duration::from_secs(30))
            .await
            .expect("lock")
            .is_none()
    );
    let busy = crate::lock::WorkspaceLock::acquire(
        store,
        "bob",
        "start",
        Duration::from_secs(30),
        Duration::ZERO,
    )
    .await;
    assert!(busy.is_err());
}
