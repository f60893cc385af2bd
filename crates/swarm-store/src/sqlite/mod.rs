//! SQLite backend: one file, mode 0600, WAL, busy timeout, migrations embedded from
//! `crates/swarm-store/migrations/`, schema number in `PRAGMA user_version`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Row, SqlitePool};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::{Operation, OperationKind, StoreError};
use swarm_core::model::WorkspaceRecord;
use swarm_core::version::{self, Version};

mod file;
mod journal;
mod records;
mod sql;
mod store_impl;
#[cfg(test)]
mod tests;

use file::*;
use sql::*;

/// Migrations in order; entry `i` brings the schema to version `i + 1`.
const MIGRATIONS: [&str; 9] = [
    include_str!("../../migrations/0001_initial.sql"),
    include_str!("../../migrations/0002_list_columns.sql"),
    include_str!("../../migrations/0003_pool_slots.sql"),
    include_str!("../../migrations/0004_api_tokens.sql"),
    include_str!("../../migrations/0005_events.sql"),
    include_str!("../../migrations/0006_record_format.sql"),
    include_str!("../../migrations/0007_workspace_owner.sql"),
    include_str!("../../migrations/0008_workspace_ip_mode.sql"),
    include_str!("../../migrations/0009_suspended_status.sql"),
];

/// The newest schema this program knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The SQLite store. Cheap to clone (a connection pool).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
}

pub(super) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

pub(super) fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

pub(super) fn parse_time(text: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|error| StoreError::Corrupt(format!("time {text:?}: {error}")))
}

pub(super) fn unix_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(super) fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

impl SqliteStore {
    /// Opens (creating if needed, mode 0600) the store at `path` for the Fly at
    /// `fly_endpoint`, and migrates it. Refuses a store of a newer schema or of
    /// another Fly.
    pub async fn open(path: impl AsRef<Path>, fly_endpoint: &str) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|error| file_error(parent, error))?;
        }
        // Before anything touches the file (not even its mode): a store this program
        // must not open is refused unchanged.
        Self::check_openable(&path).await?;
        prepare_file(&path)?;
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(false)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(15))
            .foreign_keys(true);
        let pool = locate(
            &path,
            SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await
                .map_err(StoreError::from),
        )?;
        let store = Self { pool, path };
        store.located(store.migrate().await)?;
        store.located(store.check_fly(fly_endpoint).await)?;
        Ok(store)
    }

    /// Refuses, writing nothing, a store at `path` this program must not open (a
    /// newer schema, a newer major version); a missing file is fine.
    pub async fn check_openable(path: &Path) -> Result<(), StoreError> {
        locate(path, probe_openable(path).await)
    }

    /// Opens a store from a `sqlite://PATH` URL (or a plain path).
    pub async fn open_url(url: &str, fly_endpoint: &str) -> Result<Self, StoreError> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        Self::open(path, fly_endpoint).await
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A failure of the file itself names the file and says what to do.
    fn located<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        locate(&self.path, result)
    }

    /// The schema version recorded in the file.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&self.pool)
            .await?)
    }

    /// The newest swarm version that opened this store (absent before 0.2.0).
    pub async fn swarm_version(&self) -> Result<Option<Version>, StoreError> {
        let mut connection = self.pool.acquire().await?;
        stored_version(&mut connection).await
    }

    /// Closes the pool (checkpointing the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Where the copy taken before migrating a store of schema `from` goes.
    pub fn backup_path(&self, from: i64) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".schema-{from}.bak"));
        self.path.with_file_name(name)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut connection = self.pool.acquire().await?;
        // An existing store about to be migrated is copied first (once per schema),
        // so going back to the older swarm is restoring one file (docs/RUNBOOK.md).
        let found: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *connection)
            .await?;
        let backup = self.backup_path(found);
        if found > 0 && found < SCHEMA_VERSION && !backup.exists() {
            sqlx::query("VACUUM INTO ?1")
                .bind(backup.to_string_lossy().into_owned())
                .execute(&mut *connection)
                .await?;
            std::fs::set_permissions(&backup, std::fs::Permissions::from_mode(0o600))
                .map_err(|error| file_error(&backup, error))?;
            tracing::info!(backup = %backup.display(), "store copied before its migration");
        }
        // IMMEDIATE takes the write lock first, so two processes opening a new store
        // at once apply each migration once.
        sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut *connection)
            .await?;
        let result: Result<(), StoreError> = async {
            let found: i64 = sqlx::query_scalar("PRAGMA user_version")
                .fetch_one(&mut *connection)
                .await?;
            if found > SCHEMA_VERSION {
                return Err(StoreError::NewerSchema {
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            // Checked again under the write lock: another process may have just opened it.
            let written_by = if found > 0 {
                stored_version(&mut connection).await?
            } else {
                None
            };
            refuse_newer_major(written_by.as_ref())?;
            for (index, sql) in MIGRATIONS
                .iter()
                .enumerate()
                .skip(usize::try_from(found).unwrap_or(0))
            {
                sqlx::raw_sql(*sql).execute(&mut *connection).await?;
                let version = index + 1;
                sqlx::raw_sql(AssertSqlSafe(format!("PRAGMA user_version = {version}")))
                    .execute(&mut *connection)
                    .await?;
                tracing::info!(version, "store schema migrated");
            }
            // The newest swarm that opened the store: what an older one is refused by.
            let ours = version::current();
            if written_by.as_ref().is_none_or(|stored| *stored < ours) {
                sqlx::query(
                    "INSERT INTO meta (key, value) VALUES ('swarm_version', ?1) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(ours.to_string())
                .execute(&mut *connection)
                .await?;
            }
            Ok(())
        }
        .await;
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        sqlx::raw_sql(end).execute(&mut *connection).await?;
        result
    }

    async fn check_fly(&self, fly_endpoint: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT OR IGNORE INTO meta (key, value) VALUES ('fly_endpoint', ?1)")
            .bind(fly_endpoint)
            .execute(&self.pool)
            .await?;
        let stored: String =
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'fly_endpoint'")
                .fetch_one(&self.pool)
                .await?;
        if stored == fly_endpoint {
            Ok(())
        } else {
            Err(StoreError::WrongFly {
                store: stored,
                requested: fly_endpoint.to_owned(),
            })
        }
    }

    /// Decodes one stored record (the `data` column); damage is `StoreError::Corrupt`.
    pub fn decode_record(data: &str) -> Result<WorkspaceRecord, StoreError> {
        super::common::decode_record(data)
    }

    /// Decodes `count` records written one after another.
    pub fn decode_records(joined: &str, count: i64) -> Result<Vec<WorkspaceRecord>, StoreError> {
        let corrupt = |error| StoreError::Corrupt(format!("workspace records: {error}"));
        // Sized up front: growing a Vec of 10,000 records copies megabytes.
        let mut records = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        for record in serde_json::Deserializer::from_str(joined).into_iter() {
            records.push(record.map_err(|error| corrupt(error.to_string()))?);
        }
        if i64::try_from(records.len()).ok() != Some(count) {
            return Err(corrupt(format!(
                "{count} rows hold {} records",
                records.len()
            )));
        }
        Ok(records)
    }

    /// Encodes a record as it is stored.
    pub fn encode_record(record: &WorkspaceRecord) -> Result<String, StoreError> {
        super::common::encode_record(record)
    }

    fn decode_operation(row: &sqlx::sqlite::SqliteRow) -> Result<Operation, StoreError> {
        let workspace_id: String = row.try_get("workspace_id")?;
        let kind: String = row.try_get("kind")?;
        let started_at: String = row.try_get("started_at")?;
        Ok(Operation {
            id: row.try_get("id")?,
            workspace_id: Uuid::parse_str(&workspace_id)
                .map_err(|error| StoreError::Corrupt(format!("operation workspace id: {error}")))?,
            workspace_name: row.try_get("workspace_name")?,
            kind: OperationKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("operation kind {kind:?}")))?,
            owner: row.try_get("owner")?,
            started_at: parse_time(&started_at)?,
            outcome: row.try_get("outcome")?,
        })
    }
}
