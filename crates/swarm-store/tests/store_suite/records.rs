//! Records: round trip, lists, live-name uniqueness (also under a race), and the
//! count quota under 50 parallel creates.

use std::sync::Arc;

use swarm_core::model::WorkspaceStatus;
use swarm_core::quota::{QuotaGuard, Quotas};
use swarm_store::OperationKind;
use swarm_store::{Store, StoreError};

use crate::backend::{Backend, record};
use crate::both_backends;

both_backends!(
    records_round_trip_and_list,
    a_live_name_is_taken_once_even_when_two_race,
    parallel_creates_never_pass_a_count_quota,
);

async fn records_round_trip_and_list(backend: Backend) {
    let store = backend.open().await;
    let first = record("alpha", Some("ann"));
    let mut second = record("beta", None);
    store.insert_workspace(&first).await.expect("insert");
    store.insert_workspace(&second).await.expect("insert");
    assert_eq!(
        store.workspace(first.id).await.expect("by id"),
        Some(first.clone())
    );
    assert_eq!(
        store.workspace_by_name("beta").await.expect("by name"),
        Some(second.clone())
    );
    second.status = WorkspaceStatus::Deleted;
    store.update_workspace(&second).await.expect("update");
    assert_eq!(
        store.workspace_by_name("beta").await.expect("by name"),
        None
    );
    assert_eq!(
        store.list_workspaces(false).await.expect("list"),
        vec![first.clone()]
    );
    let all = store.list_workspaces(true).await.expect("list all");
    assert_eq!(all, vec![first.clone(), second.clone()]);
    let mut expected = serde_json::to_vec_pretty(&all).expect("json");
    expected.push(b'\n');
    assert_eq!(
        String::from_utf8(store.list_workspaces_json(true).await.expect("json")).expect("utf8"),
        String::from_utf8(expected).expect("utf8")
    );
    let summaries = store.list_summaries(true).await.expect("summaries");
    let names: Vec<_> = summaries
        .iter()
        .map(|s| (s.name.as_str().to_owned(), s.status))
        .collect();
    assert_eq!(
        names,
        vec![
            ("alpha".to_owned(), WorkspaceStatus::Creating),
            ("beta".to_owned(), WorkspaceStatus::Deleted)
        ]
    );
    assert_eq!(summaries[0].created_at, first.created_at);
    assert_eq!(summaries[0].guest, first.spec.guest);
    // A new live workspace may take the deleted one's name.
    store
        .insert_workspace(&record("beta", None))
        .await
        .expect("name free again");
}

async fn a_live_name_is_taken_once_even_when_two_race(backend: Backend) {
    let store = backend.open().await;
    store
        .insert_workspace(&record("gamma", None))
        .await
        .expect("insert");
    let again = store.insert_workspace(&record("gamma", None)).await;
    assert!(
        matches!(again, Err(StoreError::NameTaken(ref name)) if name == "gamma"),
        "{again:?}"
    );
    for round in 0..10 {
        let name = format!("race-{round}");
        let (a, b) = (backend.open().await, backend.open().await);
        let (ra, rb) = (record(&name, None), record(&name, None));
        let intent = [("intent", serde_json::json!({}))];
        let (one, two) = tokio::join!(
            a.insert_workspace_and_begin(&ra, OperationKind::Create, "me", &intent, None),
            b.insert_workspace_and_begin(&rb, OperationKind::Create, "me", &intent, None),
        );
        let won = [one.is_ok(), two.is_ok()].iter().filter(|ok| **ok).count();
        assert_eq!(won, 1, "round {round}: {one:?} {two:?}");
        let lost = if one.is_ok() { two } else { one };
        assert!(matches!(lost, Err(StoreError::NameTaken(_))), "{lost:?}");
        // The loser left no journal entry behind.
        let loser = if store.workspace(ra.id).await.expect("read").is_some() {
            rb.id
        } else {
            ra.id
        };
        assert!(store.operations_of(loser).await.expect("ops").is_empty());
    }
}

async fn parallel_creates_never_pass_a_count_quota(backend: Backend) {
    let guard = Arc::new(QuotaGuard {
        user: "quota-user".to_owned(),
        quotas: Quotas {
            workspaces: Some(5),
            ..Quotas::default()
        },
    });
    let stores = [backend.open().await, backend.open().await];
    let mut tasks = Vec::new();
    for index in 0..50 {
        let store = stores[index % 2].clone();
        let guard = Arc::clone(&guard);
        tasks.push(tokio::spawn(async move {
            let record = record(&format!("q-{index}"), Some("quota-user"));
            store
                .insert_workspace_and_begin(
                    &record,
                    OperationKind::Create,
                    "me",
                    &[("intent", serde_json::json!({}))],
                    Some(&guard),
                )
                .await
        }));
    }
    let mut passed = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => passed += 1,
            Err(StoreError::QuotaExceeded(_)) => {}
            Err(other) => panic!("unexpected: {other}"),
        }
    }
    assert_eq!(passed, 5);
    let live = stores[0].list_workspaces(false).await.expect("list");
    assert_eq!(live.len(), 5);
}
