//! Older schemas migrated, newer ones and non-stores refused, damage named.

use super::listing::summaries_of;
use super::*;

/// A store file as schema 1 made it, holding `records`.
async fn schema_1_store(path: &Path, records: &[WorkspaceRecord]) {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("connect");
    sqlx::raw_sql(MIGRATIONS[0])
        .execute(&pool)
        .await
        .expect("schema 1");
    sqlx::raw_sql("PRAGMA user_version = 1")
        .execute(&pool)
        .await
        .expect("version");
    for record in records {
        sqlx::query(
            "INSERT INTO workspaces (id, name, status, data, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(record.id.to_string())
        .bind(record.name.as_str())
        .bind(record.status.as_str())
        .bind(serde_json::to_string(record).expect("json"))
        .bind(rfc3339(record.created_at))
        .bind(rfc3339(record.updated_at))
        .execute(&pool)
        .await
        .expect("insert");
    }
    pool.close().await;
}

#[tokio::test]
async fn a_schema_1_store_is_migrated_and_its_list_columns_backfilled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("swarm.db");
    let mut alice = record("alice");
    alice.status = WorkspaceStatus::Running;
    let mut bob = record("bob");
    bob.spec.region = "sea".to_owned();
    bob.spec.guest = GuestSize {
        cpu_kind: CpuKind::Performance,
        cpus: 4,
        memory_mb: 8192,
    };
    bob.spec.storage_gb = 100;
    bob.created_at = alice.created_at + time::Duration::seconds(1);
    schema_1_store(&path, &[alice.clone(), bob.clone()]).await;

    let store = SqliteStore::open(&path, "local").await.expect("migrate");
    assert_eq!(
        store.schema_version().await.expect("version"),
        SCHEMA_VERSION
    );
    assert_eq!(
        summaries_of(&store, false).await,
        [alice.summary(), bob.summary()]
    );
    // The copy taken before is the schema 1 store, records and all, mode 0600.
    let backup = store.backup_path(1);
    let mode = std::fs::metadata(&backup)
        .expect("backup")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let old = SqlitePoolOptions::new()
        .connect_with(
            SqliteConnectOptions::new()
                .filename(&backup)
                .read_only(true),
        )
        .await
        .expect("open backup");
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&old)
        .await
        .expect("version");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM workspaces")
        .fetch_one(&old)
        .await
        .expect("count");
    assert_eq!((version, rows), (1, 2));
    old.close().await;
    assert_eq!(
        store.list_workspaces(false).await.expect("list"),
        [alice.clone(), bob]
    );
    // Written after the migration, the columns follow too.
    alice.spec.storage_gb = 30;
    store.update_workspace(&alice).await.expect("update");
    assert_eq!(summaries_of(&store, false).await[0], alice.summary());
}

#[tokio::test]
async fn a_row_the_backfill_could_not_read_is_reported_corrupt_not_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("swarm.db");
    schema_1_store(&path, &[record("alice")]).await;
    {
        let pool = SqlitePool::connect_with(SqliteConnectOptions::new().filename(&path))
            .await
            .expect("connect");
        sqlx::query(
            "INSERT INTO workspaces (id, name, status, data, created_at, updated_at) VALUES (?1, 'bad', 'running', '{not json', ?2, ?2)",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(rfc3339(now()))
        .execute(&pool)
        .await
        .expect("insert");
        pool.close().await;
    }
    // The migration still succeeds: every other command keeps working.
    let store = SqliteStore::open(&path, "local").await.expect("migrate");
    assert!(
        store
            .workspace_by_name("alice")
            .await
            .expect("get")
            .is_some()
    );
    // Reported as a damaged file, naming it and what to do.
    for error in [
        store.list_summaries(false).await.expect_err("corrupt"),
        store.list_workspaces(false).await.expect_err("corrupt"),
    ] {
        assert!(
            matches!(&error, StoreError::Unusable { message, .. } if message.contains("unreadable")),
            "{error}"
        );
    }
}

#[tokio::test]
async fn a_row_whose_data_holds_two_records_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("swarm.db"), "local")
        .await
        .expect("open");
    store
        .insert_workspace(&record("alice"))
        .await
        .expect("insert");
    sqlx::raw_sql("UPDATE workspaces SET data = data || char(10) || data")
        .execute(&store.pool)
        .await
        .expect("double");
    let error = store.list_workspaces(false).await.expect_err("corrupt");
    assert!(
        error.to_string().contains("1 rows hold 2 records"),
        "{error}"
    );
}

#[tokio::test]
async fn newer_schema_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("swarm.db");
    let store = SqliteStore::open(&path, "local").await.expect("open");
    sqlx::raw_sql("PRAGMA user_version = 99")
        .execute(&store.pool)
        .await
        .expect("bump");
    store.close().await;
    let error = SqliteStore::open(&path, "local").await.expect_err("newer");
    assert!(matches!(error, StoreError::NewerSchema { found: 99, .. }));
    assert!(
        error
            .to_string()
            .contains("written by a newer swarm (schema 99)"),
        "{error}"
    );
    assert!(error.to_string().contains("upgrade swarm"), "{error}");
}

#[tokio::test]
async fn what_is_not_a_store_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a database\n").expect("write");
    std::fs::set_permissions(&text, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let error = SqliteStore::open(&text, "local").await.expect_err("text");
    assert!(matches!(error, StoreError::Unusable { .. }), "{error}");
    assert!(
        error.to_string().contains(&text.display().to_string()),
        "{error}"
    );
    assert!(
        error.to_string().contains("not an SQLite database"),
        "{error}"
    );
    let mode = std::fs::metadata(&text).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "a file that is not ours keeps its mode");
    assert_eq!(std::fs::read(&text).expect("read"), b"not a database\n");
    let error = SqliteStore::open(dir.path(), "local")
        .await
        .expect_err("dir");
    assert!(error.to_string().contains("not a regular file"), "{error}");
}

#[tokio::test]
async fn a_damaged_record_names_the_file_and_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("swarm.db");
    let store = SqliteStore::open(&path, "local").await.expect("open");
    store
        .insert_workspace(&record("alice"))
        .await
        .expect("insert");
    sqlx::raw_sql("UPDATE workspaces SET data = '{broken'")
        .execute(&store.pool)
        .await
        .expect("damage");
    let error = store.list_workspaces(false).await.expect_err("damaged");
    let text = error.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(
        text.contains("damaged") && text.contains(".recover"),
        "{text}"
    );
    // A unique name is the caller's business, not the file's: left as it was.
    let taken = store
        .insert_workspace(&record("alice"))
        .await
        .expect_err("taken");
    assert!(matches!(taken, StoreError::NameTaken(_)), "{taken}");
}

#[tokio::test]
async fn a_store_belongs_to_one_fly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("swarm.db");
    SqliteStore::open(&path, "http://127.0.0.1:1234")
        .await
        .expect("open")
        .close()
        .await;
    let error = SqliteStore::open(&path, "https://api.machines.dev")
        .await
        .expect_err("other fly");
    assert!(matches!(error, StoreError::WrongFly { .. }), "{error}");
    SqliteStore::open_url(
        &format!("sqlite://{}", path.display()),
        "http://127.0.0.1:1234",
    )
    .await
    .expect("same fly");
}
