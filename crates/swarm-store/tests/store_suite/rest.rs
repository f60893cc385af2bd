//! Pool slots, API tokens, events, and the store's identity (its Fly).

use swarm_core::model::IpMode;
use swarm_core::pool_model::{PoolSlot, PoolSlotState, PoolWant};
use swarm_store::{ApiTokenRecord, EventRecord, OperationKind};
use swarm_store::{Store, StoreError, open_store};
use time::OffsetDateTime;

use crate::backend::{Backend, record};
use crate::both_backends;

both_backends!(
    pool_slots_are_taken_once_with_their_journal_step,
    tokens_and_events_round_trip,
    a_store_belongs_to_one_fly,
);

fn micros(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(at.nanosecond() / 1000 * 1000)
        .expect("valid")
}

async fn pool_slots_are_taken_once_with_their_journal_step(backend: Backend) {
    let store = backend.open().await;
    let mut ready = PoolSlot::new("ams", "personal", IpMode::Shared, 10);
    ready.created_at = micros(ready.created_at);
    let filling = PoolSlot::new("ams", "personal", IpMode::Shared, 10);
    store.insert_pool_slot(&ready).await.expect("insert");
    store.insert_pool_slot(&filling).await.expect("insert");
    let mut ready_now = ready.clone();
    ready_now.state = PoolSlotState::Ready;
    assert!(
        store
            .update_pool_slot(&ready_now, PoolSlotState::Filling)
            .await
            .expect("update")
    );
    assert!(
        !store
            .update_pool_slot(&ready_now, PoolSlotState::Filling)
            .await
            .expect("update"),
        "not in that state any more"
    );
    assert_eq!(store.pool_slots().await.expect("slots").len(), 2);
    let ws = record("pooled", None);
    let op = store
        .insert_workspace_and_begin(
            &ws,
            OperationKind::Create,
            "me",
            &[("intent", serde_json::json!({}))],
            None,
        )
        .await
        .expect("begin");
    let want = PoolWant {
        region: "ams".to_owned(),
        org: "personal".to_owned(),
        ip_mode: IpMode::Shared,
        max_volume_gb: 10,
    };
    let adopt = |slot: &PoolSlot| {
        let mut adopted = ws.clone();
        adopted.app = Some(slot.app.clone());
        adopted
    };
    let (slot, adopted) = store
        .take_pool_slot(&want, op, adopt)
        .await
        .expect("take")
        .expect("a slot");
    assert_eq!(slot.id, ready.id);
    assert_eq!(store.workspace(ws.id).await.expect("read"), Some(adopted));
    assert_eq!(
        store
            .operation_steps(op)
            .await
            .expect("steps")
            .last()
            .map(|s| s.step.clone()),
        Some("pool_slot_taken".to_owned())
    );
    assert!(
        store
            .take_pool_slot(&want, op, |_| ws.clone())
            .await
            .expect("take")
            .is_none(),
        "the filling one is not ready"
    );
    store.delete_pool_slot(filling.id).await.expect("delete");
    assert!(store.pool_slots().await.expect("slots").is_empty());
}

async fn tokens_and_events_round_trip(backend: Backend) {
    let store = backend.open().await;
    let token = ApiTokenRecord {
        id: "tok_1".to_owned(),
        user: "ann".to_owned(),
        admin: true,
        hash: "ab".repeat(32),
        created_at: micros(OffsetDateTime::now_utc()),
    };
    store.insert_api_token(&token).await.expect("insert");
    assert_eq!(
        store.api_token_by_hash(&token.hash).await.expect("read"),
        Some(token)
    );
    assert_eq!(store.api_token_by_hash("00").await.expect("read"), None);
    for (index, owner) in [Some("ann"), None, Some("ann"), Some("bob")]
        .into_iter()
        .enumerate()
    {
        let event = EventRecord {
            id: 0,
            workspace: "ws".to_owned(),
            owner: owner.map(str::to_owned),
            at: micros(OffsetDateTime::now_utc()),
            actor: "ann".to_owned(),
            action: format!("action-{index}"),
            outcome: "succeeded".to_owned(),
            detail: serde_json::json!({"index": index}),
        };
        assert!(store.insert_event(&event).await.expect("insert") > 0);
    }
    let anns = store
        .events_of("ws", Some("ann"), 10)
        .await
        .expect("events");
    assert_eq!(
        anns.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["action-0", "action-2"]
    );
    assert_eq!(anns[1].detail, serde_json::json!({"index": 2}));
    let newest = store.events_of("ws", Some("ann"), 1).await.expect("events");
    assert_eq!(newest[0].action, "action-2");
    let ownerless = store.events_of("ws", None, 10).await.expect("events");
    assert_eq!(ownerless.len(), 1);
}

async fn a_store_belongs_to_one_fly(backend: Backend) {
    drop(backend.open().await);
    let other = open_store(&backend.url, "https://api.machines.dev").await;
    assert!(
        matches!(other, Err(StoreError::WrongFly { .. })),
        "{other:?}"
    );
}
