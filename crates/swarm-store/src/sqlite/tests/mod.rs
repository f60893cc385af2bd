use std::collections::BTreeMap;

use super::*;
use crate::common::RECORD_FORMAT;
use crate::{Store, StoreError};
use swarm_core::model::{CpuKind, GuestSize, WorkspaceName, WorkspaceStatus, WorkspaceSummary};
use swarm_core::model::{IpMode, WorkspaceSpec};
use swarm_core::pool_model::{PoolSlot, PoolSlotState, PoolWant};

pub(crate) fn record(name: &str) -> WorkspaceRecord {
    let at = OffsetDateTime::now_utc();
    let spec = WorkspaceSpec {
        name: WorkspaceName::parse(name).unwrap(),
        region: "ams".to_owned(),
        guest: GuestSize {
            cpu_kind: CpuKind::Shared,
            cpus: 1,
            memory_mb: 2048,
        },
        storage_gb: 10,
        image: "codercom/code-server:4.106.3".to_owned(),
        env: BTreeMap::new(),
        metadata: BTreeMap::new(),
        ip_mode: IpMode::Shared,
        idle_timeout_secs: 1800,
        dotfiles: None,
        init_script: None,
        idle_policy: Default::default(),
        org: "personal".to_owned(),
        owner: None,
    };
    WorkspaceRecord {
        id: Uuid::now_v7(),
        name: spec.name.clone(),
        status: WorkspaceStatus::Creating,
        url: format!("https://{name}.fly.dev"),
        spec,
        app: None,
        volume_id: None,
        former_volumes: Vec::new(),
        machine_id: None,
        ips: Vec::new(),
        image_versions: Vec::new(),
        previous_machine: None,
        last_error: None,
        created_at: at,
        updated_at: at,
    }
}

/// Two stores on one file (as two processes would have) race twenty takes for ten
/// slots: each slot goes to exactly one record, with its journal step, and a slot
/// that does not match (region, size, state) is never taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_takes_from_two_stores_never_share_a_slot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("swarm.db");
    let first = SqliteStore::open(&path, "local").await.expect("open");
    let second = SqliteStore::open(&path, "local").await.expect("open again");
    for index in 0..12 {
        let mut slot = PoolSlot::new("ams", "personal", IpMode::Shared, 10);
        slot.state = PoolSlotState::Ready;
        match index {
            10 => slot.region = "fra".to_owned(),
            11 => slot.volume_size_gb = 20,
            _ => {}
        }
        first.insert_pool_slot(&slot).await.expect("insert slot");
    }
    let mut filling = PoolSlot::new("ams", "personal", IpMode::Shared, 10);
    filling.app_sent = true;
    first
        .insert_pool_slot(&filling)
        .await
        .expect("insert filling");
    let want = PoolWant {
        region: "ams".to_owned(),
        org: "personal".to_owned(),
        ip_mode: IpMode::Shared,
        max_volume_gb: 10,
    };
    let mut tasks = Vec::new();
    for index in 0..20 {
        let store = if index % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let want = want.clone();
        tasks.push(tokio::spawn(async move {
            let record = record(&format!("racer-{index}"));
            store.insert_workspace(&record).await.expect("insert");
            let operation = store
                .begin_operation(&record, OperationKind::Create, "me")
                .await
                .expect("begin");
            let taken = store
                .take_pool_slot(&want, operation, move |slot| {
                    let mut record = record;
                    record.app = Some(slot.app.clone());
                    record
                })
                .await
                .expect("take");
            (operation, taken)
        }));
    }
    let mut apps = std::collections::BTreeSet::new();
    let mut empty = 0;
    for task in tasks {
        let (operation, taken) = task.await.expect("join");
        let steps = first.operation_steps(operation).await.expect("steps");
        match taken {
            Some((slot, record)) => {
                assert!(apps.insert(slot.app.clone()), "{} taken twice", slot.app);
                assert_eq!(record.app.as_deref(), Some(slot.app.as_str()));
                let stored = first
                    .workspace(record.id)
                    .await
                    .expect("get")
                    .expect("record");
                assert_eq!(stored.app, record.app, "saved in the same transaction");
                assert_eq!(steps.len(), 1);
                assert_eq!(steps[0].step, "pool_slot_taken");
                assert_eq!(steps[0].detail["app"], slot.app.as_str());
            }
            None => {
                empty += 1;
                assert!(steps.is_empty(), "{steps:?}");
            }
        }
    }
    assert_eq!((apps.len(), empty), (10, 10));
    let left: Vec<(String, u32, PoolSlotState)> = first
        .pool_slots()
        .await
        .expect("slots")
        .into_iter()
        .map(|slot| (slot.region, slot.volume_size_gb, slot.state))
        .collect();
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left.contains(&("fra".to_owned(), 10, PoolSlotState::Ready)));
    assert!(left.contains(&("ams".to_owned(), 20, PoolSlotState::Ready)));
    assert!(left.contains(&("ams".to_owned(), 10, PoolSlotState::Filling)));
    // A conditional update sees the state it expects, or changes nothing.
    let mut stale = filling.clone();
    stale.state = PoolSlotState::Draining;
    assert!(
        !first
            .update_pool_slot(&stale, PoolSlotState::Ready)
            .await
            .expect("update")
    );
    assert!(
        first
            .update_pool_slot(&stale, PoolSlotState::Filling)
            .await
            .expect("update")
    );
}

#[tokio::test]
async fn file_is_private_and_records_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/swarm.db");
    let store = SqliteStore::open(&path, "local").await.expect("open");
    let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        store.schema_version().await.expect("version"),
        SCHEMA_VERSION
    );

    let mut alice = record("alice");
    store.insert_workspace(&alice).await.expect("insert");
    let duplicate = store
        .insert_workspace(&record("alice"))
        .await
        .expect_err("duplicate");
    assert!(
        matches!(duplicate, StoreError::NameTaken(ref name) if name == "alice"),
        "{duplicate}"
    );
    assert_eq!(
        store.workspace_by_name("alice").await.expect("get"),
        Some(alice.clone())
    );

    alice.status = WorkspaceStatus::Deleted;
    store.update_workspace(&alice).await.expect("update");
    assert_eq!(store.workspace_by_name("alice").await.expect("get"), None);
    // A deleted record frees the name.
    store
        .insert_workspace(&record("alice"))
        .await
        .expect("reuse name");
    assert_eq!(store.list_workspaces(false).await.expect("list").len(), 1);
    assert_eq!(store.list_workspaces(true).await.expect("list").len(), 2);
    assert_eq!(
        store
            .workspace(alice.id)
            .await
            .expect("by id")
            .map(|r| r.status),
        Some(WorkspaceStatus::Deleted)
    );
}

#[tokio::test]
async fn journal_keeps_unfinished_operations_and_steps_across_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("swarm.db");
    let mut alice = record("alice");
    {
        let store = SqliteStore::open(&path, "local").await.expect("open");
        store.insert_workspace(&alice).await.expect("insert");
        let op = store
            .begin_operation(&alice, OperationKind::Create, "me")
            .await
            .expect("begin");
        alice.app = Some("alice".to_owned());
        store
            .record_step(
                op,
                "app_created",
                &serde_json::json!({"app": "alice"}),
                Some(&alice),
            )
            .await
            .expect("step");
        store
            .record_step(op, "volume_creating", &serde_json::json!({}), None)
            .await
            .expect("step");
        let done = store
            .begin_operation(&alice, OperationKind::Stop, "me")
            .await
            .expect("begin");
        store.finish_operation(done, "ok").await.expect("finish");
        store.close().await;
    }
    let store = SqliteStore::open(&path, "local").await.expect("reopen");
    let open = store.unfinished_operations().await.expect("unfinished");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].kind, OperationKind::Create);
    assert_eq!(open[0].workspace_id, alice.id);
    let steps = store.operation_steps(open[0].id).await.expect("steps");
    let names: Vec<&str> = steps.iter().map(|step| step.step.as_str()).collect();
    assert_eq!(names, ["app_created", "volume_creating"]);
    assert_eq!(steps[0].detail["app"], "alice");
    let saved = store
        .workspace(alice.id)
        .await
        .expect("get")
        .expect("record");
    assert_eq!(saved.app.as_deref(), Some("alice"));
    assert_eq!(store.operations_of(alice.id).await.expect("ops").len(), 2);
}

/// A record with every field set, strings needing escapes, and a non-UTC offset.
fn full_record(name: &str) -> WorkspaceRecord {
    use swarm_core::model::{ImageVersion, IpKind, IpRecord};
    let at = OffsetDateTime::parse("2026-12-02T10:00:00.123456789+05:30", &Rfc3339).expect("time");
    let guest = GuestSize {
        cpu_kind: CpuKind::Performance,
        cpus: 4,
        memory_mb: 8192,
    };
    let mut record = record(name);
    record.id = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
    record.status = WorkspaceStatus::Failed;
    record.spec.guest = guest;
    record.spec.ip_mode = IpMode::Private;
    record.spec.env = BTreeMap::from([
        ("A".to_owned(), "1".to_owned()),
        ("Z".to_owned(), "x \"y\" \\ z".to_owned()),
    ]);
    record.spec.metadata = BTreeMap::from([("team".to_owned(), "é😀".to_owned())]);
    record.spec.owner = Some("u1".to_owned());
    record.app = Some(format!("{name}-app"));
    record.volume_id = Some("vol_1".to_owned());
    record.former_volumes = vec!["vol_0".to_owned()];
    record.machine_id = Some("m1".to_owned());
    record.ips = vec![
        IpRecord {
            kind: IpKind::SharedV4,
            address: "1.2.3.4".to_owned(),
            id: None,
        },
        IpRecord {
            kind: IpKind::PrivateV6,
            address: "fdaa::1".to_owned(),
            id: Some("ip_1".to_owned()),
        },
    ];
    record.image_versions = vec![
        ImageVersion {
            version: 1,
            image: "img:1".to_owned(),
            digest: Some("sha256:ab".to_owned()),
            guest: Some(guest),
            machine_version: Some("01J".to_owned()),
            snapshot_before: Some("vs_1".to_owned()),
            rollback_of: None,
            at,
        },
        ImageVersion {
            version: 2,
            image: "img:1".to_owned(),
            digest: None,
            guest: None,
            machine_version: None,
            snapshot_before: None,
            rollback_of: Some(1),
            at,
        },
    ];
    record.previous_machine = Some(swarm_core::model::MachineConfig {
        image: "img:0".to_owned(),
        digest: Some("sha256:cd".to_owned()),
        guest,
        image_version: Some(1),
        replaced_by: "resize".to_owned(),
        replaced_at: at,
    });
    record.last_error = Some("line\nbreak, tab\t, ctrl \u{1}, </script> [{:,}]".to_owned());
    record.created_at = at;
    record.updated_at = at;
    record
}

/// `list --json` prints rows of RECORD_FORMAT as stored: this pins that format.
#[test]
fn record_format_is_pinned() {
    let json = SqliteStore::encode_record(&full_record("pin")).expect("encode");
    assert_eq!(
        json,
        r#"{"id":"01900000-0000-7000-8000-000000000001","name":"pin","status":"failed","spec":{"name":"pin","region":"ams","guest":{"cpu_kind":"performance","cpus":4,"memory_mb":8192},"storage_gb":10,"image":"codercom/code-server:4.106.3","env":{"A":"1","Z":"x \"y\" \\ z"},"metadata":{"team":"é😀"},"ip_mode":"private","idle_timeout_secs":1800,"org":"personal","owner":"u1"},"app":"pin-app","volume_id":"vol_1","former_volumes":["vol_0"],"machine_id":"m1","ips":[{"kind":"shared_v4","address":"1.2.3.4","id":null},{"kind":"private_v6","address":"fdaa::1","id":"ip_1"}],"url":"https://pin.fly.dev","image_versions":[{"version":1,"image":"img:1","digest":"sha256:ab","guest":{"cpu_kind":"performance","cpus":4,"memory_mb":8192},"machine_version":"01J","snapshot_before":"vs_1","at":"2026-12-02T10:00:00.123456789+05:30"},{"version":2,"image":"img:1","machine_version":null,"rollback_of":1,"at":"2026-12-02T10:00:00.123456789+05:30"}],"previous_machine":{"image":"img:0","digest":"sha256:cd","guest":{"cpu_kind":"performance","cpus":4,"memory_mb":8192},"image_version":1,"replaced_by":"resize","replaced_at":"2026-12-02T10:00:00.123456789+05:30"},"last_error":"line\nbreak, tab\t, ctrl \u0001, </script> [{:,}]","created_at":"2026-12-02T10:00:00.123456789+05:30","updated_at":"2026-12-02T10:00:00.123456789+05:30"}"#,
        "the record's JSON changed: bump RECORD_FORMAT, then update this text"
    );
}

mod listing;
mod locks;
mod migration;
