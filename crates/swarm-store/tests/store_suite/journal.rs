//! The journal: begin, steps, finish, unfinished operations, one-transaction writes.

use swarm_core::model::WorkspaceStatus;
use swarm_store::Store;
use swarm_store::{JournalWrite, OperationKind};

use crate::backend::{Backend, record};
use crate::both_backends;

both_backends!(journal_keeps_steps_in_order_and_knows_unfinished_operations);

async fn journal_keeps_steps_in_order_and_knows_unfinished_operations(backend: Backend) {
    let store = backend.open().await;
    let mut ws = record("journal", None);
    let op = store
        .insert_workspace_and_begin(
            &ws,
            OperationKind::Create,
            "me",
            &[("intent", serde_json::json!({"n": 1}))],
            None,
        )
        .await
        .expect("begin");
    ws.status = WorkspaceStatus::Running;
    store
        .record_step(op, "after_app", &serde_json::json!({"app": "a"}), Some(&ws))
        .await
        .expect("step");
    assert_eq!(
        store
            .workspace(ws.id)
            .await
            .expect("read")
            .expect("there")
            .status,
        WorkspaceStatus::Running
    );
    let steps = store.operation_steps(op).await.expect("steps");
    let names: Vec<_> = steps.iter().map(|s| (s.seq, s.step.as_str())).collect();
    assert_eq!(names, vec![(1, "intent"), (2, "after_app")]);
    assert_eq!(steps[1].detail, serde_json::json!({"app": "a"}));
    let unfinished = store.unfinished_operations().await.expect("unfinished");
    assert_eq!(
        unfinished.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![op]
    );
    assert_eq!(unfinished[0].kind, OperationKind::Create);
    assert_eq!(unfinished[0].workspace_id, ws.id);

    // Steps, record, finish and lock release in one write.
    assert!(
        store
            .try_lock(
                "journal",
                "holder",
                "create",
                std::time::Duration::from_secs(60)
            )
            .await
            .expect("lock")
            .is_none()
    );
    ws.status = WorkspaceStatus::Stopped;
    store
        .write_journal(
            op,
            JournalWrite {
                steps: vec![("after_started", serde_json::json!({}))],
                record: Some(&ws),
                finish: Some("succeeded"),
                release_lock: Some(("journal", "holder")),
            },
        )
        .await
        .expect("write");
    assert!(
        store
            .unfinished_operations()
            .await
            .expect("unfinished")
            .is_empty()
    );
    let ops = store.operations_of(ws.id).await.expect("ops");
    assert_eq!(ops[0].outcome.as_deref(), Some("succeeded"));
    assert_eq!(store.operation_steps(op).await.expect("steps").len(), 3);
    // The lock went with it: another owner takes it at once.
    assert!(
        store
            .try_lock(
                "journal",
                "other",
                "stop",
                std::time::Duration::from_secs(60)
            )
            .await
            .expect("lock")
            .is_none()
    );

    let second = store
        .begin_operation(&ws, OperationKind::Stop, "me")
        .await
        .expect("begin");
    store
        .begin_operation_with(
            &ws,
            OperationKind::Start,
            "me",
            &[("intent", serde_json::json!({}))],
            None,
        )
        .await
        .expect("begin with");
    store
        .finish_operation(second, "failed")
        .await
        .expect("finish");
    let ops = store.operations_of(ws.id).await.expect("ops");
    assert_eq!(ops.len(), 3);
    assert_eq!(ops[1].outcome.as_deref(), Some("failed"));
    assert_eq!(
        store
            .unfinished_operations()
            .await
            .expect("unfinished")
            .len(),
        1
    );
    // Reopened, the journal is all there.
    let reopened = backend.open().await;
    assert_eq!(reopened.operations_of(ws.id).await.expect("ops"), ops);
}
