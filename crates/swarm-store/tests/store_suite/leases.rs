//! Leases: contention, renew by the holder only, release, expiry, break.

use std::time::{Duration, Instant};

use swarm_store::Store;

use crate::backend::Backend;
use crate::both_backends;

both_backends!(a_lease_excludes_others_until_released_expired_or_broken);

async fn a_lease_excludes_others_until_released_expired_or_broken(backend: Backend) {
    let (a, b) = (backend.open().await, backend.open().await);
    let long = Duration::from_secs(60);
    assert!(
        a.try_lock("ws", "host:1:a", "create", long)
            .await
            .expect("lock")
            .is_none()
    );
    let busy = b
        .try_lock("ws", "host:2:b", "stop", long)
        .await
        .expect("lock")
        .expect("busy");
    assert_eq!(
        (busy.owner.as_str(), busy.operation.as_str()),
        ("host:1:a", "create")
    );
    assert!(
        a.try_lock("ws", "host:1:a", "create", long)
            .await
            .expect("again")
            .is_none(),
        "ours again"
    );
    assert!(
        !b.renew_lock("ws", "host:2:b", long).await.expect("renew"),
        "not the holder"
    );
    assert!(a.renew_lock("ws", "host:1:a", long).await.expect("renew"));
    b.release_lock("ws", "host:2:b")
        .await
        .expect("release of another's");
    assert!(
        b.try_lock("ws", "host:2:b", "stop", long)
            .await
            .expect("lock")
            .is_some(),
        "still held"
    );
    a.release_lock("ws", "host:1:a").await.expect("release");
    assert!(
        b.try_lock("ws", "host:2:b", "stop", long)
            .await
            .expect("lock")
            .is_none()
    );
    b.break_lock("ws", "host:2:b").await.expect("break");
    assert!(
        a.try_lock("ws", "host:1:a", "create", long)
            .await
            .expect("lock")
            .is_none()
    );

    // Expiry: a short lease is taken over once it runs out, not before.
    assert!(
        a.try_lock("short", "host:1:a", "create", Duration::from_millis(300))
            .await
            .expect("lock")
            .is_none()
    );
    assert!(
        b.try_lock("short", "host:2:b", "stop", long)
            .await
            .expect("lock")
            .is_some()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if b.try_lock("short", "host:2:b", "stop", long)
            .await
            .expect("lock")
            .is_none()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the expired lease was never taken over"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !a.renew_lock("short", "host:1:a", long)
            .await
            .expect("renew"),
        "lost after expiry"
    );
}
