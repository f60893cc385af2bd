//! `list --json` and the list columns.

use super::*;

/// The document serde_json prints for `list_workspaces`, as `list --json` did.
pub(super) async fn decoded_then_encoded(store: &SqliteStore, include_deleted: bool) -> String {
    let records = store.list_workspaces(include_deleted).await.expect("list");
    let mut json = serde_json::to_string_pretty(&records).expect("json");
    json.push('\n');
    json
}

pub(super) async fn listed_json(store: &SqliteStore, include_deleted: bool) -> String {
    let json = store
        .list_workspaces_json(include_deleted)
        .await
        .expect("list json");
    String::from_utf8(json).expect("utf-8")
}

#[tokio::test]
pub(super) async fn list_json_is_what_serde_json_prints_for_the_decoded_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("swarm.db"), "local")
        .await
        .expect("open");
    assert_eq!(listed_json(&store, false).await, "[]\n");
    assert_eq!(decoded_then_encoded(&store, false).await, "[]\n");

    let full = full_record("full");
    let mut plain = record("plain");
    plain.status = WorkspaceStatus::Running;
    // Same creation time as `plain`: the id decides, as in list_workspaces.
    let mut twin = record("twin");
    twin.created_at = plain.created_at;
    let mut gone = record("gone");
    gone.status = WorkspaceStatus::Deleted;
    let mut legacy = record("legacy");
    legacy.created_at = full.created_at - time::Duration::days(1);
    // Inserted newest first, so the order comes from the sort.
    for r in [&twin, &plain, &gone, &full, &legacy] {
        store.insert_workspace(r).await.expect("insert");
    }
    // A row from before schema 6, in another encoding (keys missing, one unknown):
    // decoded and re-encoded, so it prints as today's encoding would.
    sqlx::query(
        "UPDATE workspaces SET data_format = NULL, \
         data = json_remove(json_set(data, '$.aaa_unknown', 1), '$.last_error', '$.app') \
         WHERE name = 'legacy'",
    )
    .execute(&store.pool)
    .await
    .expect("legacy row");
    let formats: Vec<Option<i64>> =
        sqlx::query_scalar("SELECT data_format FROM workspaces ORDER BY data_format")
            .fetch_all(&store.pool)
            .await
            .expect("formats");
    assert_eq!(
        formats,
        [
            None,
            Some(RECORD_FORMAT),
            Some(RECORD_FORMAT),
            Some(RECORD_FORMAT),
            Some(RECORD_FORMAT)
        ]
    );

    for include_deleted in [false, true] {
        let listed = listed_json(&store, include_deleted).await;
        assert_eq!(listed, decoded_then_encoded(&store, include_deleted).await);
        assert_eq!(listed.contains("\"gone\""), include_deleted, "{listed}");
    }
    let names: Vec<String> =
        serde_json::from_str::<Vec<WorkspaceRecord>>(&listed_json(&store, false).await)
            .expect("decode")
            .into_iter()
            .map(|r| r.name.as_str().to_owned())
            .collect();
    let mut tied = [&plain, &twin];
    tied.sort_by_key(|r| r.id);
    assert_eq!(
        names,
        [
            "legacy",
            "full",
            tied[0].name.as_str(),
            tied[1].name.as_str()
        ]
    );
}

#[tokio::test]
pub(super) async fn list_json_refuses_a_row_whose_data_is_not_one_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("swarm.db"), "local")
        .await
        .expect("open");
    store
        .insert_workspace(&record("alice"))
        .await
        .expect("insert");
    for (damage, says) in [
        ("data || char(10) || data", "text after the object"),
        ("substr(data, 1, 40)", "unterminated string"),
        ("substr(data, 1, length(data) - 1)", "truncated object"),
    ] {
        let original: String = sqlx::query_scalar("SELECT data FROM workspaces")
            .fetch_one(&store.pool)
            .await
            .expect("data");
        sqlx::raw_sql(AssertSqlSafe(format!(
            "UPDATE workspaces SET data = {damage}"
        )))
        .execute(&store.pool)
        .await
        .expect("damage");
        let error = store.list_workspaces_json(false).await.expect_err(damage);
        assert!(
            matches!(&error, StoreError::Unusable { message, .. } if message.contains(says)),
            "{damage}: {error}"
        );
        sqlx::query("UPDATE workspaces SET data = ?1")
            .bind(original)
            .execute(&store.pool)
            .await
            .expect("repair");
    }
    assert!(listed_json(&store, false).await.contains("\"alice\""));
}

pub(super) async fn summaries_of(
    store: &SqliteStore,
    include_deleted: bool,
) -> Vec<WorkspaceSummary> {
    store
        .list_summaries(include_deleted)
        .await
        .expect("summaries")
}

pub(super) async fn summaries_from_records(
    store: &SqliteStore,
    include_deleted: bool,
) -> Vec<WorkspaceSummary> {
    let records = store.list_workspaces(include_deleted).await.expect("list");
    records.iter().map(WorkspaceRecord::summary).collect()
}

#[tokio::test]
pub(super) async fn list_columns_follow_the_record_through_insert_update_and_steps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("swarm.db"), "local")
        .await
        .expect("open");
    let mut alice = record("alice");
    let mut bob = record("bob");
    // Same creation time: the id breaks the tie, as in list_workspaces.
    bob.created_at = alice.created_at;
    let mut carol = record("carol");
    carol.created_at = alice.created_at - time::Duration::hours(1);
    for workspace in [&alice, &bob, &carol] {
        store.insert_workspace(workspace).await.expect("insert");
    }
    let listed = summaries_of(&store, false).await;
    assert_eq!(listed, summaries_from_records(&store, false).await);
    assert_eq!(listed[0].name.as_str(), "carol", "oldest first");
    assert_eq!(listed[0], carol.summary());

    alice.status = WorkspaceStatus::Running;
    alice.spec.region = "fra".to_owned();
    alice.spec.guest = GuestSize {
        cpu_kind: CpuKind::Performance,
        cpus: 2,
        memory_mb: 4096,
    };
    alice.spec.storage_gb = 20;
    alice.url = "http://alice.internal:8080".to_owned();
    store.update_workspace(&alice).await.expect("update");
    let op = store
        .begin_operation(&bob, OperationKind::Stop, "me")
        .await
        .expect("begin");
    bob.status = WorkspaceStatus::Stopped;
    bob.spec.storage_gb = 40;
    store
        .record_step(op, "stopped", &serde_json::json!({}), Some(&bob))
        .await
        .expect("step");
    carol.status = WorkspaceStatus::Deleted;
    store.update_workspace(&carol).await.expect("delete");

    let live = summaries_of(&store, false).await;
    assert_eq!(live, summaries_from_records(&store, false).await);
    let by_name = |name: &str| live.iter().find(|s| s.name.as_str() == name).cloned();
    assert_eq!(by_name("alice"), Some(alice.summary()));
    assert_eq!(by_name("bob"), Some(bob.summary()));
    assert_eq!(by_name("carol"), None, "deleted ones only when asked");
    let all = summaries_of(&store, true).await;
    assert_eq!(all.len(), 3);
    assert_eq!(all, summaries_from_records(&store, true).await);
    assert_eq!(all[0], carol.summary());
}
