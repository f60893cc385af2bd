//! A connection killed in the middle of a multi-statement write leaves nothing of
//! it; a newer schema is refused unchanged (PostgreSQL; the SQLite store's own tests
//! and crash.rs cover its side).

use std::time::{Duration, Instant};

use sqlx::Connection as _;
use swarm_store::{OperationKind, PG_SCHEMA_VERSION};
use swarm_store::{Store, StoreError, open_store};

use crate::backend::{Backend, record};

async fn connect(url: &str) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(url).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_write_killed_between_its_statements_leaves_nothing() {
    let Some(backend) = Backend::postgres().await else {
        return;
    };
    let store = backend.open().await;
    let mut blocker = connect(&backend.url).await;
    // Holds the journal table: the create's transaction inserts its record, then
    // waits at its operation insert, in the middle of its statements.
    sqlx::raw_sql("BEGIN; LOCK TABLE operations IN EXCLUSIVE MODE")
        .execute(&mut blocker)
        .await
        .expect("lock");
    let ws = record("crashed", None);
    let writer = {
        let store = store.clone();
        let ws = ws.clone();
        tokio::spawn(async move {
            store
                .insert_workspace_and_begin(
                    &ws,
                    OperationKind::Create,
                    "me",
                    &[("intent", serde_json::json!({}))],
                    None,
                )
                .await
        })
    };
    let mut killer = connect(&backend.url).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let victim: i32 = loop {
        let waiting: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO operations%'",
        )
        .fetch_optional(&mut killer)
        .await
        .expect("activity");
        if let Some(pid) = waiting {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "the write never reached its second statement"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(victim)
        .fetch_one(&mut killer)
        .await
        .expect("terminate");
    assert!(killed);
    let outcome = writer.await.expect("task");
    assert!(outcome.is_err(), "{outcome:?}");
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut blocker)
        .await
        .expect("unlock");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM workspaces")
        .fetch_one(&mut killer)
        .await
        .expect("count");
    assert_eq!(
        rows, 0,
        "the record written before the kill was rolled back"
    );
    assert_eq!(store.workspace(ws.id).await.expect("read"), None);
    // The store goes on working with its other connections.
    store
        .insert_workspace(&ws)
        .await
        .expect("insert after the kill");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_newer_schema_is_refused_and_left_unchanged() {
    let Some(backend) = Backend::postgres().await else {
        return;
    };
    drop(backend.open().await);
    let mut admin = connect(&backend.url).await;
    let newer = (PG_SCHEMA_VERSION + 1).to_string();
    sqlx::query("UPDATE meta SET value = $1 WHERE key = 'schema_version'")
        .bind(&newer)
        .execute(&mut admin)
        .await
        .expect("bump");
    let before: Vec<(String, String)> = sqlx::query_as("SELECT key, value FROM meta ORDER BY key")
        .fetch_all(&mut admin)
        .await
        .expect("meta");
    let refused = open_store(&backend.url, "local").await;
    assert!(
        matches!(refused, Err(StoreError::NewerSchema { .. })),
        "{refused:?}"
    );
    let error = refused.expect_err("refused");
    assert!(
        error.is_refused_unchanged(),
        "bad input (exit 2): {error:?}"
    );
    let after: Vec<(String, String)> = sqlx::query_as("SELECT key, value FROM meta ORDER BY key")
        .fetch_all(&mut admin)
        .await
        .expect("meta");
    assert_eq!(before, after);
}
