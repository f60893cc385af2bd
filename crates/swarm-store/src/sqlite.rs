//! SQLite backend: one file, mode 0600, WAL, busy timeout, migrations embedded from
//! `crates/swarm-store/migrations/`, schema number in `PRAGMA user_version`.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{
    AssertSqlSafe, ConnectOptions as _, Connection as _, Row, SqliteConnection, SqlitePool,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::common::{RECORD_FORMAT, decode_slot, encode_slot, reservations, slot_taken_detail};
use super::{
    ApiTokenRecord, EventRecord, JournalWrite, LockHolder, Operation, OperationKind, StepEntry,
    Store, StoreError,
};
use swarm_core::model::{
    CpuKind, GuestSize, IpMode, WorkspaceName, WorkspaceRecord, WorkspaceStatus, WorkspaceSummary,
};
use swarm_core::pool_model::{PoolSlot, PoolSlotState, PoolWant};
use swarm_core::quota::{QuotaGuard, SIZE_RESERVED_STEP, Usage};
use swarm_core::version::{self, Version};

/// Migrations in order; entry `i` brings the schema to version `i + 1`.
const MIGRATIONS: [&str; 9] = [
    include_str!("../migrations/0001_initial.sql"),
    include_str!("../migrations/0002_list_columns.sql"),
    include_str!("../migrations/0003_pool_slots.sql"),
    include_str!("../migrations/0004_api_tokens.sql"),
    include_str!("../migrations/0005_events.sql"),
    include_str!("../migrations/0006_record_format.sql"),
    include_str!("../migrations/0007_workspace_owner.sql"),
    include_str!("../migrations/0008_workspace_ip_mode.sql"),
    include_str!("../migrations/0009_suspended_status.sql"),
];

/// The newest schema this program knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The SQLite store. Cheap to clone (a connection pool).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
}

fn file_error(path: &Path, error: impl std::fmt::Display) -> StoreError {
    StoreError::File {
        path: path.display().to_string(),
        message: error.to_string(),
    }
}

fn locate<T>(path: &Path, result: Result<T, StoreError>) -> Result<T, StoreError> {
    result.map_err(|error| match file_failure(&error) {
        Some((message, hint)) => unusable(path, message, hint),
        None => error,
    })
}

fn unusable(path: &Path, message: String, hint: &str) -> StoreError {
    let path = path.display().to_string();
    StoreError::Unusable {
        hint: hint.replace("FILE", &path),
        path,
        message,
    }
}

/// An I/O failure on the file itself, before SQLite has it.
fn io_failure(path: &Path, error: &std::io::Error) -> StoreError {
    let hint = match error.kind() {
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => READ_ONLY,
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::FileTooLarge => FULL,
        _ => return file_error(path, error),
    };
    unusable(path, error.to_string(), hint)
}

/// The first 16 bytes of every SQLite database.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// The database size its header gives (page size × page count), when the header
/// vouches for it: SQLite trusts that count only while the change counter (offset 24)
/// matches the version-valid-for number (offset 92).
fn size_in_header(header: &[u8]) -> Option<u64> {
    let be32 = |at: usize| {
        header
            .get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let page_size = match header.get(16..18)? {
        [0, 1] => 65_536,
        [hi, lo] => u64::from(u16::from_be_bytes([*hi, *lo])),
        _ => return None,
    };
    let pages = u64::from(be32(28)?);
    (pages > 0 && be32(24)? == be32(92)?).then_some(page_size * pages)
}

/// A WAL with frames in it may hold pages the file itself does not have yet.
fn has_wal(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).is_ok_and(|meta| meta.len() > 0)
}

/// Opens (creating it mode 0600 if missing) the file, and refuses what is not a store:
/// a folder, a FIFO or device (whose open would block, or take our chmod), or a file
/// that is not SQLite. Only then is the mode tightened, so a wrong `--db` changes nothing.
/// Whether `path` starts like an SQLite database (read only; absent is no).
fn looks_like_sqlite(path: &Path) -> bool {
    let mut header = [0_u8; 16];
    std::fs::File::open(path)
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut header))
        .is_ok_and(|()| header.starts_with(SQLITE_HEADER))
}

/// Looks at an existing store without writing to it (no journal mode change, no
/// migration): a newer schema or a newer major version is refused here.
async fn probe_openable(path: &Path) -> Result<(), StoreError> {
    // Absent, empty or not SQLite: `prepare_file` creates it or names the problem.
    // A WAL beside it: another process may be writing, which an immutable read must
    // not race; the same checks run again under the write lock at open.
    if !looks_like_sqlite(path) || has_wal(path) {
        return Ok(());
    }
    // Immutable: no lock, no -wal or -shm file made.
    let connection = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .immutable(true)
        .connect()
        .await;
    // Only a refusal counts here: a probe that cannot read leaves it to the open.
    let Ok(mut connection) = connection else {
        return Ok(());
    };
    let result = async {
        let found: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut connection)
            .await?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found > 0 {
            refuse_newer_major(stored_version(&mut connection).await?.as_ref())?;
        }
        Ok(())
    }
    .await;
    let _ = connection.close().await;
    match result {
        Err(refused) if refused.is_refused_unchanged() => Err(refused),
        _ => Ok(()),
    }
}

/// The `swarm_version` the store's meta table holds, if any.
async fn stored_version(connection: &mut SqliteConnection) -> Result<Option<Version>, StoreError> {
    let text: Option<String> =
        sqlx::query_scalar("SELECT value FROM meta WHERE key = 'swarm_version'")
            .fetch_optional(&mut *connection)
            .await?;
    text.map(|text| {
        Version::parse(&text)
            .map_err(|error| StoreError::Corrupt(format!("swarm_version {text:?}: {error}")))
    })
    .transpose()
}

fn refuse_newer_major(written_by: Option<&Version>) -> Result<(), StoreError> {
    let ours = version::current();
    match written_by {
        Some(stored) if !version::store_opens(&ours, stored) => Err(StoreError::NewerVersion {
            found: stored.to_string(),
            ours: ours.to_string(),
        }),
        _ => Ok(()),
    }
}

fn prepare_file(path: &Path) -> Result<(), StoreError> {
    if let Ok(meta) = std::fs::metadata(path)
        && !meta.is_file()
    {
        return Err(file_error(
            path,
            "not a regular file; give the path of a file (it is created if missing)",
        ));
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(0o600)
        .open(path)
        .map_err(|error| io_failure(path, &error))?;
    // The database header is the first 100 bytes.
    let mut header = Vec::with_capacity(100);
    std::io::Read::read_to_end(&mut std::io::Read::take(&mut file, 100), &mut header)
        .map_err(|error| io_failure(path, &error))?;
    if !header.is_empty() && !header.starts_with(SQLITE_HEADER) {
        return Err(unusable(
            path,
            "not an SQLite database (its first bytes are not SQLite's header)".to_owned(),
            "give the path of a swarm store, or of a file that does not exist yet; \
             if this was a store, it is damaged: put back a backup of it",
        ));
    }
    if let Some(expected) = size_in_header(&header)
        && !has_wal(path)
    {
        let actual = file
            .metadata()
            .map_err(|error| io_failure(path, &error))?
            .len();
        // SQLite opens a cut file without a word and fails only on the pages that
        // are gone, so a write could go on around the hole; refuse it at once.
        if actual < expected {
            return Err(unusable(
                path,
                format!("the file is cut short: {actual} bytes, its header says {expected}"),
                DAMAGED,
            ));
        }
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|error| io_failure(path, &error))
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

fn parse_time(text: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|error| StoreError::Corrupt(format!("time {text:?}: {error}")))
}

fn unix_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn ttl_ms(ttl: Duration) -> i64 {
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

// Every column of a `workspaces` row comes from the record, written in one statement,
// so the list columns never disagree with `data`. Parameters as in `bind_record`.
const INSERT_WORKSPACE: &str = "INSERT INTO workspaces \
     (id, name, status, data, created_at, updated_at, \
      region, cpu_kind, cpus, memory_mb, storage_gb, url, data_format, owner, ip_mode) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
const UPDATE_WORKSPACE: &str = "UPDATE workspaces SET \
     name = ?2, status = ?3, data = ?4, created_at = ?5, updated_at = ?6, \
     region = ?7, cpu_kind = ?8, cpus = ?9, memory_mb = ?10, storage_gb = ?11, url = ?12, \
     data_format = ?13, owner = ?14, ip_mode = ?15 \
     WHERE id = ?1";

/// One journal step, numbered after the operation's last. Parameters: operation id,
/// step, detail (JSON text), time.
const INSERT_STEP: &str = "INSERT INTO operation_steps (operation_id, seq, step, detail, at) \
     VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM operation_steps WHERE operation_id = ?1), ?2, ?3, ?4)";

/// Parameters: workspace id, workspace name, kind, owner, time.
const INSERT_OPERATION: &str = "INSERT INTO operations \
     (workspace_id, workspace_name, kind, owner, started_at) VALUES (?1, ?2, ?3, ?4, ?5)";
/// Parameters: operation id, time, outcome.
const FINISH_OPERATION: &str = "UPDATE operations SET finished_at = ?2, outcome = ?3 WHERE id = ?1";
/// Parameters: lock name, owner (only the holder's lock goes).
const RELEASE_LOCK: &str = "DELETE FROM locks WHERE name = ?1 AND owner = ?2";

fn bind_record<'q>(
    query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    record: &WorkspaceRecord,
) -> Result<sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>, StoreError> {
    let spec = &record.spec;
    Ok(query
        .bind(record.id.to_string())
        .bind(record.name.as_str())
        .bind(record.status.as_str())
        .bind(SqliteStore::encode_record(record)?)
        .bind(rfc3339(record.created_at))
        .bind(rfc3339(record.updated_at))
        .bind(spec.region.as_str())
        .bind(spec.guest.cpu_kind.as_str())
        .bind(spec.guest.cpus)
        .bind(spec.guest.memory_mb)
        .bind(spec.storage_gb)
        .bind(record.url.as_str())
        .bind(RECORD_FORMAT)
        .bind(spec.owner.as_deref())
        .bind(spec.ip_mode.as_str()))
}

/// One workspace's list columns, as `list_summaries` selects them.
#[derive(serde::Deserialize)]
struct SummaryRow<'a>(
    Uuid,
    WorkspaceName,
    &'a str,
    String,
    &'a str,
    u32,
    u32,
    u32,
    String,
    &'a str,
    &'a str,
);

impl SummaryRow<'_> {
    /// The summary and its id (the tie-break of the list order).
    fn into_summary(self) -> Result<(Uuid, WorkspaceSummary), StoreError> {
        let Self(
            id,
            name,
            status,
            region,
            cpu_kind,
            cpus,
            memory_mb,
            storage_gb,
            url,
            created_at,
            ip_mode,
        ) = self;
        let corrupt = |what: &str, value: &str| {
            StoreError::Corrupt(format!("workspace {name}: {what} {value:?}"))
        };
        let status = WorkspaceStatus::parse(status).ok_or_else(|| corrupt("status", status))?;
        let cpu_kind = CpuKind::parse(cpu_kind).ok_or_else(|| corrupt("cpu kind", cpu_kind))?;
        let ip_mode = IpMode::parse(ip_mode).ok_or_else(|| corrupt("ip mode", ip_mode))?;
        Ok((
            id,
            WorkspaceSummary {
                status,
                region,
                guest: GuestSize {
                    cpu_kind,
                    cpus,
                    memory_mb,
                },
                storage_gb,
                ip_mode,
                url,
                created_at: parse_time(created_at)?,
                name,
            },
        ))
    }
}

/// A connection inside `BEGIN IMMEDIATE`. If it is dropped before `COMMIT` went
/// through (a statement failed, or the future was cancelled: the create runs the
/// volume and IP steps with `try_join`, which drops one when the other fails), the
/// connection is closed, which rolls the transaction back. Back in the pool instead it
/// would keep SQLite's write lock, and every later write (the compensation's journal
/// steps, the lock release) waited out the 15 s busy timeout and failed. sqlx's own
/// `Transaction` has the same hole: it rolls back only when the connection is next used.
struct WriteTransaction {
    connection: sqlx::pool::PoolConnection<sqlx::Sqlite>,
    open: bool,
}

impl Drop for WriteTransaction {
    fn drop(&mut self) {
        if self.open {
            self.connection.close_on_drop();
        }
    }
}

/// Appends journal steps to `operation` inside an open write transaction.
async fn insert_steps(
    connection: &mut sqlx::pool::PoolConnection<sqlx::Sqlite>,
    operation: i64,
    steps: &[(&str, serde_json::Value)],
    at: &str,
) -> Result<(), StoreError> {
    for (step, detail) in steps {
        sqlx::query(INSERT_STEP)
            .bind(operation)
            .bind(*step)
            .bind(detail.to_string())
            .bind(at)
            .execute(&mut **connection)
            .await?;
    }
    Ok(())
}

/// Inside an open write transaction (SQLite's write lock held, so no other writer can
/// change the user's total meanwhile): refuses a change that takes the guarded user
/// past a quota. `adding`: a workspace about to be inserted; `reserving`: reservations
/// about to be journaled.
async fn check_quota(
    connection: &mut sqlx::pool::PoolConnection<sqlx::Sqlite>,
    guard: &QuotaGuard,
    adding: Option<(Uuid, Usage)>,
    reserving: &[(Uuid, Usage)],
) -> Result<(), StoreError> {
    if guard.quotas.is_unlimited() {
        return Ok(());
    }
    let id_of = |row: &sqlx::sqlite::SqliteRow, column: &str| -> Result<Uuid, StoreError> {
        let text: String = row.try_get(column)?;
        Uuid::parse_str(&text)
            .map_err(|error| StoreError::Corrupt(format!("workspace id {text:?}: {error}")))
    };
    let rows = sqlx::query(
        "SELECT id, cpu_kind, cpus, memory_mb, storage_gb, ip_mode FROM workspaces \
         WHERE owner = ?1 AND status <> 'deleted'",
    )
    .bind(&guard.user)
    .fetch_all(&mut **connection)
    .await?;
    let mut workspaces = rows
        .iter()
        .map(|row| {
            let size = |column: &str| -> Result<u64, StoreError> {
                let value: Option<i64> = row.try_get(column)?;
                value.and_then(|v| u64::try_from(v).ok()).ok_or_else(|| {
                    StoreError::Corrupt(format!("workspace row without a valid {column}"))
                })
            };
            let text = |column: &str| -> Result<String, StoreError> {
                let value: Option<String> = row.try_get(column)?;
                value.ok_or_else(|| StoreError::Corrupt(format!("workspace row without {column}")))
            };
            let small = |column: &str| -> Result<u32, StoreError> {
                u32::try_from(size(column)?)
                    .map_err(|_| StoreError::Corrupt(format!("workspace row's {column}")))
            };
            let cpu_kind = text("cpu_kind")?;
            let ip_mode = text("ip_mode")?;
            let guest = GuestSize {
                cpu_kind: CpuKind::parse(&cpu_kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("cpu kind {cpu_kind:?}")))?,
                cpus: small("cpus")?,
                memory_mb: small("memory_mb")?,
            };
            let ip_mode = IpMode::parse(&ip_mode)
                .ok_or_else(|| StoreError::Corrupt(format!("ip mode {ip_mode:?}")))?;
            Ok((
                id_of(row, "id")?,
                Usage::workspace(guest, small("storage_gb")?, ip_mode),
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    workspaces.extend(adding);
    let rows = sqlx::query(
        "SELECT o.workspace_id, s.detail FROM operations o \
         JOIN operation_steps s ON s.operation_id = o.id \
         WHERE o.finished_at IS NULL AND s.step = ?2 AND o.workspace_id IN \
             (SELECT id FROM workspaces WHERE owner = ?1 AND status <> 'deleted')",
    )
    .bind(&guard.user)
    .bind(SIZE_RESERVED_STEP)
    .fetch_all(&mut **connection)
    .await?;
    let mut reservations = rows
        .iter()
        .map(|row| {
            let detail: String = row.try_get("detail")?;
            let size = serde_json::from_str(&detail)
                .ok()
                .as_ref()
                .and_then(Usage::from_reservation)
                .ok_or_else(|| StoreError::Corrupt(format!("size reservation {detail:?}")))?;
            Ok((id_of(row, "workspace_id")?, size))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    reservations.extend_from_slice(reserving);
    guard
        .quotas
        .check(&guard.user, Usage::total(&workspaces, &reservations))?;
    Ok(())
}

fn map_unique(error: sqlx::Error, name: &str) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::NameTaken(name.to_owned())
        }
        _ => StoreError::Database(error),
    }
}

/// The queries; [`Store`] below names the file and what to do when one fails.
impl SqliteStore {
    async fn raw_insert_pool_slot(&self, slot: &PoolSlot) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO pool_slots (id, app, state, region, org, ip_mode, volume_size_gb, data, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .bind(slot.id.to_string())
        .bind(slot.app.as_str())
        .bind(slot.state.as_str())
        .bind(slot.region.as_str())
        .bind(slot.org.as_str())
        .bind(slot.ip_mode.as_str())
        .bind(slot.volume_size_gb)
        .bind(encode_slot(slot)?)
        .bind(rfc3339(slot.created_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn raw_update_pool_slot(
        &self,
        slot: &PoolSlot,
        from: PoolSlotState,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE pool_slots SET state = ?2, volume_size_gb = ?3, data = ?4 WHERE id = ?1 AND state = ?5",
        )
        .bind(slot.id.to_string())
        .bind(slot.state.as_str())
        .bind(slot.volume_size_gb)
        .bind(encode_slot(slot)?)
        .bind(from.as_str())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(updated == 1)
    }

    async fn raw_delete_pool_slot(&self, id: Uuid) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM pool_slots WHERE id = ?1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn raw_pool_slots(&self) -> Result<Vec<PoolSlot>, StoreError> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT data FROM pool_slots ORDER BY created_at, id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|data| decode_slot(data)).collect()
    }

    async fn raw_take_pool_slot(
        &self,
        want: &PoolWant,
        operation: i64,
        adopt: impl FnOnce(&PoolSlot) -> WorkspaceRecord + Send,
    ) -> Result<Option<(PoolSlot, WorkspaceRecord)>, StoreError> {
        // Most creates find no pool at all: a read answers them without taking the
        // write lock (the take below checks again, atomically).
        let any: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM pool_slots \
             WHERE state = 'ready' AND region = ?1 AND org = ?2 AND ip_mode = ?3 AND volume_size_gb <= ?4 \
             LIMIT 1",
        )
        .bind(want.region.as_str())
        .bind(want.org.as_str())
        .bind(want.ip_mode.as_str())
        .bind(want.max_volume_gb)
        .fetch_optional(&self.pool)
        .await?;
        if any.is_none() {
            return Ok(None);
        }
        // BEGIN IMMEDIATE takes SQLite's write lock first: a second take waits (busy
        // timeout) and then sees the row gone. Dropped on an error, the connection is
        // closed, which rolls back (see `WriteTransaction`).
        // The closest size first: the least volume grown, the bigger slots kept.
        let mut transaction = WriteTransaction {
            connection: self.pool.acquire().await?,
            open: true,
        };
        let connection = &mut transaction.connection;
        sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut **connection)
            .await?;
        let data: Option<String> = sqlx::query_scalar(
            "DELETE FROM pool_slots WHERE id = (\
                 SELECT id FROM pool_slots \
                 WHERE state = 'ready' AND region = ?1 AND org = ?2 AND ip_mode = ?3 AND volume_size_gb <= ?4 \
                 ORDER BY volume_size_gb DESC, created_at, id LIMIT 1) \
             RETURNING data",
        )
        .bind(want.region.as_str())
        .bind(want.org.as_str())
        .bind(want.ip_mode.as_str())
        .bind(want.max_volume_gb)
        .fetch_optional(&mut **connection)
        .await?;
        let Some(data) = data else {
            sqlx::raw_sql("ROLLBACK").execute(&mut **connection).await?;
            transaction.open = false;
            return Ok(None);
        };
        let slot = decode_slot(&data)?;
        let record = adopt(&slot);
        let detail = slot_taken_detail(&slot);
        sqlx::query(INSERT_STEP)
            .bind(operation)
            .bind("pool_slot_taken")
            .bind(detail.to_string())
            .bind(rfc3339(now()))
            .execute(&mut **connection)
            .await?;
        bind_record(sqlx::query(UPDATE_WORKSPACE), &record)?
            .execute(&mut **connection)
            .await
            .map_err(|error| map_unique(error, record.name.as_str()))?;
        sqlx::raw_sql("COMMIT").execute(&mut **connection).await?;
        transaction.open = false;
        Ok(Some((slot, record)))
    }

    async fn raw_insert_workspace(&self, record: &WorkspaceRecord) -> Result<(), StoreError> {
        bind_record(sqlx::query(INSERT_WORKSPACE), record)?
            .execute(&self.pool)
            .await
            .map_err(|error| map_unique(error, record.name.as_str()))?;
        Ok(())
    }

    async fn raw_update_workspace(&self, record: &WorkspaceRecord) -> Result<(), StoreError> {
        bind_record(sqlx::query(UPDATE_WORKSPACE), record)?
            .execute(&self.pool)
            .await
            .map_err(|error| map_unique(error, record.name.as_str()))?;
        Ok(())
    }

    async fn raw_workspace_by_name(
        &self,
        name: &str,
    ) -> Result<Option<WorkspaceRecord>, StoreError> {
        let data: Option<String> = sqlx::query_scalar(
            "SELECT data FROM workspaces WHERE name = ?1 AND status <> 'deleted'",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        data.as_deref().map(Self::decode_record).transpose()
    }

    async fn raw_workspace(&self, id: Uuid) -> Result<Option<WorkspaceRecord>, StoreError> {
        let data: Option<String> = sqlx::query_scalar("SELECT data FROM workspaces WHERE id = ?1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        data.as_deref().map(Self::decode_record).transpose()
    }

    async fn raw_list_workspaces(
        &self,
        include_deleted: bool,
    ) -> Result<Vec<WorkspaceRecord>, StoreError> {
        // One row holding every record, sorted here: sqlx hands rows over one by one
        // between threads, and SQLite's sorter spills 10,000 records to a temp file;
        // both dominated `swarm list`. Newline-separated rather than a JSON array:
        // wrapping the joined text in brackets made SQLite copy it once more. The
        // count catches a `data` holding more (or less) than one record.
        let row = sqlx::query(
            "SELECT count(*), group_concat(data, char(10)) FROM workspaces \
             WHERE ?1 OR status <> 'deleted'",
        )
        .bind(include_deleted)
        .fetch_one(&self.pool)
        .await?;
        let count: i64 = row.try_get(0)?;
        // Borrowed from the row: megabytes with 10,000 records, not worth a copy.
        let joined: Option<&str> = row.try_get(1)?;
        let mut records = Self::decode_records(joined.unwrap_or_default(), count)?;
        records.sort_by_key(|a| (a.created_at, a.id));
        Ok(records)
    }

    async fn raw_list_workspaces_json(&self, include_deleted: bool) -> Result<Vec<u8>, StoreError> {
        // One row, as in list_workspaces; each record behind a header of its format,
        // sort key and byte length, so no separator has to be absent from `data`.
        let row = sqlx::query(
            "SELECT count(*), group_concat(\
                 ifnull(data_format, 0) || ' ' || created_at || ' ' || id || ' ' \
                 || octet_length(data) || ' ' || data, '') \
             FROM workspaces WHERE ?1 OR status <> 'deleted'",
        )
        .bind(include_deleted)
        .fetch_one(&self.pool)
        .await?;
        let count: i64 = row.try_get(0)?;
        let joined: Option<&str> = row.try_get(1)?;
        let mut rest = joined.unwrap_or_default();
        let corrupt = |what: String| StoreError::Corrupt(format!("workspace records: {what}"));
        let current = RECORD_FORMAT.to_string();
        let mut records = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        while !rest.is_empty() {
            let mut fields = rest.splitn(5, ' ');
            let mut field = || fields.next().unwrap_or_default();
            let (format, created_at, id, len) = (field(), field(), field(), field());
            let tail = field();
            let data = len
                .parse()
                .ok()
                .and_then(|len| tail.get(..len))
                .ok_or_else(|| corrupt(format!("bad row header {format} {created_at} {id}")))?;
            rest = &tail[data.len()..];
            let record = if format == current {
                // Written by this encoding: the stored text is what encoding it prints.
                let created_at = parse_time(created_at)?;
                let id = Uuid::parse_str(id)
                    .map_err(|error| corrupt(format!("workspace id {id:?}: {error}")))?;
                (created_at, id, std::borrow::Cow::Borrowed(data))
            } else {
                let record = Self::decode_record(data)?;
                let text = Self::encode_record(&record)?;
                (record.created_at, record.id, std::borrow::Cow::Owned(text))
            };
            records.push(record);
        }
        if i64::try_from(records.len()).ok() != Some(count) {
            return Err(corrupt(format!(
                "{count} rows hold {} records",
                records.len()
            )));
        }
        records.sort_by_key(|(created_at, id, _)| (*created_at, *id));
        // Pretty JSON is about 1.5 times the compact text.
        let mut out = Vec::with_capacity(joined.map_or(0, |j| j.len() / 2 * 3));
        out.push(b'[');
        for (i, (_, id, text)) in records.iter().enumerate() {
            out.extend_from_slice(if i == 0 { b"\n  " } else { b",\n  " });
            super::pretty::push_pretty(&mut out, text.as_bytes(), 1)
                .map_err(|error| corrupt(format!("record {id}: {error}")))?;
        }
        out.extend_from_slice(if records.is_empty() { b"]\n" } else { b"\n]\n" });
        Ok(out)
    }

    async fn raw_list_summaries(
        &self,
        include_deleted: bool,
    ) -> Result<Vec<WorkspaceSummary>, StoreError> {
        // One row again (see list_workspaces), from the list columns only (a covering
        // index). JSON rather than tab-separated text: a region is only checked against
        // the configured list, so no separator is sure to be absent; and a NULL column
        // (a field the backfill did not find) fails to decode instead of vanishing.
        let row = sqlx::query(
            "SELECT json_group_array(json_array(\
                 id, name, status, region, cpu_kind, cpus, memory_mb, storage_gb, url, created_at, \
                 ip_mode)) \
             FROM workspaces WHERE ?1 OR status <> 'deleted'",
        )
        .bind(include_deleted)
        .fetch_one(&self.pool)
        .await?;
        // Borrowed from the row: the array is decoded once, not copied first.
        let array: &str = row.try_get(0)?;
        let rows: Vec<SummaryRow<'_>> = serde_json::from_str(array)
            .map_err(|error| StoreError::Corrupt(format!("workspace list columns: {error}")))?;
        let mut summaries = rows
            .into_iter()
            .map(SummaryRow::into_summary)
            .collect::<Result<Vec<_>, _>>()?;
        summaries.sort_by_key(|a| (a.1.created_at, a.0));
        Ok(summaries.into_iter().map(|(_, summary)| summary).collect())
    }

    async fn raw_begin_operation(
        &self,
        record: &WorkspaceRecord,
        kind: OperationKind,
        owner: &str,
    ) -> Result<i64, StoreError> {
        // `execute`, not `INSERT … RETURNING` with `fetch_one`: that hands back the id
        // from the first row and drops the statement, so a failed commit (disk full)
        // went unseen and the journal entry the caller relies on was never written.
        let id = sqlx::query(INSERT_OPERATION)
            .bind(record.id.to_string())
            .bind(record.name.as_str())
            .bind(kind.as_str())
            .bind(owner)
            .bind(rfc3339(now()))
            .execute(&self.pool)
            .await?
            .last_insert_rowid();
        Ok(id)
    }

    /// Opens a write transaction: `BEGIN IMMEDIATE` holds SQLite's write lock from
    /// the start. Open from before BEGIN is sent: cancelled while waiting for it, the
    /// statement still runs to its end on sqlx's worker thread.
    async fn begin_write(&self) -> Result<WriteTransaction, StoreError> {
        let mut transaction = WriteTransaction {
            connection: self.pool.acquire().await?,
            open: true,
        };
        sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut *transaction.connection)
            .await?;
        Ok(transaction)
    }

    async fn commit(mut transaction: WriteTransaction) -> Result<(), StoreError> {
        sqlx::raw_sql("COMMIT")
            .execute(&mut *transaction.connection)
            .await?;
        transaction.open = false;
        Ok(())
    }

    async fn raw_write_journal(
        &self,
        operation: i64,
        write: JournalWrite<'_>,
    ) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        let connection = &mut transaction.connection;
        let at = rfc3339(now());
        insert_steps(connection, operation, &write.steps, &at).await?;
        if let Some(record) = write.record {
            bind_record(sqlx::query(UPDATE_WORKSPACE), record)?
                .execute(&mut **connection)
                .await
                .map_err(|error| map_unique(error, record.name.as_str()))?;
        }
        if let Some(outcome) = write.finish {
            sqlx::query(FINISH_OPERATION)
                .bind(operation)
                .bind(&at)
                .bind(outcome)
                .execute(&mut **connection)
                .await?;
        }
        if let Some((name, owner)) = write.release_lock {
            sqlx::query(RELEASE_LOCK)
                .bind(name)
                .bind(owner)
                .execute(&mut **connection)
                .await?;
        }
        Self::commit(transaction).await
    }

    async fn raw_begin_operation_with(
        &self,
        record: &WorkspaceRecord,
        kind: OperationKind,
        owner: &str,
        steps: &[(&str, serde_json::Value)],
        quota: Option<&QuotaGuard>,
    ) -> Result<i64, StoreError> {
        let mut transaction = self.begin_write().await?;
        let connection = &mut transaction.connection;
        let at = rfc3339(now());
        if let Some(guard) = quota {
            check_quota(connection, guard, None, &reservations(record, steps)).await?;
        }
        let operation = sqlx::query(INSERT_OPERATION)
            .bind(record.id.to_string())
            .bind(record.name.as_str())
            .bind(kind.as_str())
            .bind(owner)
            .bind(&at)
            .execute(&mut **connection)
            .await?
            .last_insert_rowid();
        insert_steps(connection, operation, steps, &at).await?;
        bind_record(sqlx::query(UPDATE_WORKSPACE), record)?
            .execute(&mut **connection)
            .await
            .map_err(|error| map_unique(error, record.name.as_str()))?;
        Self::commit(transaction).await?;
        Ok(operation)
    }

    async fn raw_insert_workspace_and_begin(
        &self,
        record: &WorkspaceRecord,
        kind: OperationKind,
        owner: &str,
        steps: &[(&str, serde_json::Value)],
        quota: Option<&QuotaGuard>,
    ) -> Result<i64, StoreError> {
        let mut transaction = self.begin_write().await?;
        let connection = &mut transaction.connection;
        let at = rfc3339(now());
        if let Some(guard) = quota {
            let adding = (record.id, Usage::of(record));
            check_quota(
                connection,
                guard,
                Some(adding),
                &reservations(record, steps),
            )
            .await?;
        }
        bind_record(sqlx::query(INSERT_WORKSPACE), record)?
            .execute(&mut **connection)
            .await
            .map_err(|error| map_unique(error, record.name.as_str()))?;
        let operation = sqlx::query(INSERT_OPERATION)
            .bind(record.id.to_string())
            .bind(record.name.as_str())
            .bind(kind.as_str())
            .bind(owner)
            .bind(&at)
            .execute(&mut **connection)
            .await?
            .last_insert_rowid();
        insert_steps(connection, operation, steps, &at).await?;
        Self::commit(transaction).await?;
        Ok(operation)
    }

    async fn raw_finish_operation(&self, operation: i64, outcome: &str) -> Result<(), StoreError> {
        sqlx::query(FINISH_OPERATION)
            .bind(operation)
            .bind(rfc3339(now()))
            .bind(outcome)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn raw_unfinished_operations(&self) -> Result<Vec<Operation>, StoreError> {
        let rows = sqlx::query("SELECT * FROM operations WHERE finished_at IS NULL ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::decode_operation).collect()
    }

    async fn raw_operation_steps(&self, operation: i64) -> Result<Vec<StepEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, step, detail, at FROM operation_steps WHERE operation_id = ?1 ORDER BY seq",
        )
        .bind(operation)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let detail: String = row.try_get("detail")?;
                let at: String = row.try_get("at")?;
                Ok(StepEntry {
                    at: parse_time(&at)?,
                    seq: row.try_get("seq")?,
                    step: row.try_get("step")?,
                    detail: serde_json::from_str(&detail)
                        .map_err(|error| StoreError::Corrupt(format!("step detail: {error}")))?,
                })
            })
            .collect()
    }

    async fn raw_operations_of(&self, workspace_id: Uuid) -> Result<Vec<Operation>, StoreError> {
        let rows = sqlx::query("SELECT * FROM operations WHERE workspace_id = ?1 ORDER BY id")
            .bind(workspace_id.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::decode_operation).collect()
    }

    async fn raw_try_lock(
        &self,
        name: &str,
        owner: &str,
        operation: &str,
        ttl: Duration,
    ) -> Result<Option<LockHolder>, StoreError> {
        let now = now();
        let now_ms = unix_ms(now);
        let taken = sqlx::query(
            "INSERT INTO locks (name, owner, pid, operation, acquired_at, expires_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, pid = excluded.pid,
                 operation = excluded.operation, acquired_at = excluded.acquired_at,
                 expires_at_ms = excluded.expires_at_ms
             WHERE locks.expires_at_ms < ?7 OR locks.owner = excluded.owner",
        )
        .bind(name)
        .bind(owner)
        .bind(i64::from(std::process::id()))
        .bind(operation)
        .bind(rfc3339(now))
        .bind(now_ms.saturating_add(ttl_ms(ttl)))
        .bind(now_ms)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if taken == 1 {
            return Ok(None);
        }
        let row =
            sqlx::query("SELECT owner, pid, operation, acquired_at FROM locks WHERE name = ?1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else {
            // Released between our two statements: report busy once; the caller retries.
            return Ok(Some(LockHolder {
                owner: String::new(),
                pid: 0,
                operation: "unknown".to_owned(),
                acquired_at: now,
            }));
        };
        let pid: i64 = row.try_get("pid")?;
        let acquired_at: String = row.try_get("acquired_at")?;
        Ok(Some(LockHolder {
            owner: row.try_get("owner")?,
            pid: u32::try_from(pid).unwrap_or(0),
            operation: row.try_get("operation")?,
            acquired_at: parse_time(&acquired_at)?,
        }))
    }

    async fn raw_renew_lock(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let expires = unix_ms(now()).saturating_add(ttl_ms(ttl));
        let renewed =
            sqlx::query("UPDATE locks SET expires_at_ms = ?3 WHERE name = ?1 AND owner = ?2")
                .bind(name)
                .bind(owner)
                .bind(expires)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(renewed == 1)
    }

    async fn raw_insert_api_token(&self, token: &ApiTokenRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (id, user, admin, hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(&token.id)
        .bind(&token.user)
        .bind(token.admin)
        .bind(&token.hash)
        .bind(rfc3339(token.created_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn raw_api_token_by_hash(
        &self,
        hash: &str,
    ) -> Result<Option<ApiTokenRecord>, StoreError> {
        let row =
            sqlx::query("SELECT id, user, admin, hash, created_at FROM api_tokens WHERE hash = ?1")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| {
            Ok(ApiTokenRecord {
                id: row.try_get("id")?,
                user: row.try_get("user")?,
                admin: row.try_get("admin")?,
                hash: row.try_get("hash")?,
                created_at: parse_time(row.try_get("created_at")?)?,
            })
        })
        .transpose()
    }

    async fn raw_insert_event(&self, event: &EventRecord) -> Result<i64, StoreError> {
        let id = sqlx::query(
            "INSERT INTO events (workspace, owner, at, actor, action, outcome, detail) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(&event.workspace)
        .bind(&event.owner)
        .bind(rfc3339(event.at))
        .bind(&event.actor)
        .bind(&event.action)
        .bind(&event.outcome)
        .bind(event.detail.to_string())
        .execute(&self.pool)
        .await?
        .last_insert_rowid();
        Ok(id)
    }

    async fn raw_events_of(
        &self,
        name: &str,
        owner: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, workspace, owner, at, actor, action, outcome, detail FROM events \
             WHERE workspace = ?1 AND owner IS ?2 ORDER BY id DESC LIMIT ?3",
        )
        .bind(name)
        .bind(owner)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let mut events = rows
            .into_iter()
            .map(|row| {
                let detail: String = row.try_get("detail")?;
                Ok(EventRecord {
                    id: row.try_get("id")?,
                    workspace: row.try_get("workspace")?,
                    owner: row.try_get("owner")?,
                    at: parse_time(row.try_get("at")?)?,
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    outcome: row.try_get("outcome")?,
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        events.reverse();
        Ok(events)
    }

    async fn raw_release_lock(&self, name: &str, owner: &str) -> Result<(), StoreError> {
        sqlx::query(RELEASE_LOCK)
            .bind(name)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

impl Store for SqliteStore {
    async fn insert_pool_slot(&self, slot: &PoolSlot) -> Result<(), StoreError> {
        self.located(self.raw_insert_pool_slot(slot).await)
    }

    async fn update_pool_slot(
        &self,
        slot: &PoolSlot,
        from: PoolSlotState,
    ) -> Result<bool, StoreError> {
        self.located(self.raw_update_pool_slot(slot, from).await)
    }

    async fn delete_pool_slot(&self, id: Uuid) -> Result<(), StoreError> {
        self.located(self.raw_delete_pool_slot(id).await)
    }

    async fn pool_slots(&self) -> Result<Vec<PoolSlot>, StoreError> {
        self.located(self.raw_pool_slots().await)
    }

    async fn take_pool_slot(
        &self,
        want: &PoolWant,
        operation: i64,
        adopt: impl FnOnce(&PoolSlot) -> WorkspaceRecord + Send,
    ) -> Result<Option<(PoolSlot, WorkspaceRecord)>, StoreError> {
        self.located(self.raw_take_pool_slot(want, operation, adopt).await)
    }

    async fn insert_workspace(&self, record: &WorkspaceRecord) -> Result<(), StoreError> {
        self.located(self.raw_insert_workspace(record).await)
    }

    async fn update_workspace(&self, record: &WorkspaceRecord) -> Result<(), StoreError> {
        self.located(self.raw_update_workspace(record).await)
    }

    async fn workspace_by_name(&self, name: &str) -> Result<Option<WorkspaceRecord>, StoreError> {
        self.located(self.raw_workspace_by_name(name).await)
    }

    async fn workspace(&self, id: Uuid) -> Result<Option<WorkspaceRecord>, StoreError> {
        self.located(self.raw_workspace(id).await)
    }

    async fn list_workspaces(
        &self,
        include_deleted: bool,
    ) -> Result<Vec<WorkspaceRecord>, StoreError> {
        self.located(self.raw_list_workspaces(include_deleted).await)
    }

    async fn list_workspaces_json(&self, include_deleted: bool) -> Result<Vec<u8>, StoreError> {
        self.located(self.raw_list_workspaces_json(include_deleted).await)
    }

    async fn list_summaries(
        &self,
        include_deleted: bool,
    ) -> Result<Vec<WorkspaceSummary>, StoreError> {
        self.located(self.raw_list_summaries(include_deleted).await)
    }

    async fn begin_operation(
        &self,
        record: &WorkspaceRecord,
        kind: OperationKind,
        owner: &str,
    ) -> Result<i64, StoreError> {
        self.located(self.raw_begin_operation(record, kind, owner).await)
    }

    async fn record_step(
        &self,
        operation: i64,
        step: &str,
        detail: &serde_json::Value,
        record: Option<&WorkspaceRecord>,
    ) -> Result<(), StoreError> {
        let write = JournalWrite {
            steps: vec![(step, detail.clone())],
            record,
            ..JournalWrite::default()
        };
        self.located(self.raw_write_journal(operation, write).await)
    }

    async fn write_journal(
        &self,
        operation: i64,
        write: JournalWrite<'_>,
    ) -> Result<(), StoreError> {
        self.located(self.raw_write_journal(operation, write).await)
    }

    async fn insert_workspace_and_begin(
        &self,
        record: &WorkspaceRecord,
        kind: OperationKind,
        owner: &str,
        steps: &[(&str, serde_json::Value)],
        quota: Option<&QuotaGuard>,
    ) -> Result<i64, StoreError> {
        self.located(
            self.raw_insert_workspace_and_begin(record, kind, owner, steps, quota)
                .await,
        )
    }

    async fn begin_operation_with(
        &self,
        record: &WorkspaceRecord,
        kind: OperationKind,
        owner: &str,
        steps: &[(&str, serde_json::Value)],
        quota: Option<&QuotaGuard>,
    ) -> Result<i64, StoreError> {
        self.located(
            self.raw_begin_operation_with(record, kind, owner, steps, quota)
                .await,
        )
    }

    async fn finish_operation(&self, operation: i64, outcome: &str) -> Result<(), StoreError> {
        self.located(self.raw_finish_operation(operation, outcome).await)
    }

    async fn unfinished_operations(&self) -> Result<Vec<Operation>, StoreError> {
        self.located(self.raw_unfinished_operations().await)
    }

    async fn operation_steps(&self, operation: i64) -> Result<Vec<StepEntry>, StoreError> {
        self.located(self.raw_operation_steps(operation).await)
    }

    async fn operations_of(&self, workspace_id: Uuid) -> Result<Vec<Operation>, StoreError> {
        self.located(self.raw_operations_of(workspace_id).await)
    }

    async fn try_lock(
        &self,
        name: &str,
        owner: &str,
        operation: &str,
        ttl: Duration,
    ) -> Result<Option<LockHolder>, StoreError> {
        self.located(self.raw_try_lock(name, owner, operation, ttl).await)
    }

    async fn renew_lock(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.located(self.raw_renew_lock(name, owner, ttl).await)
    }

    async fn release_lock(&self, name: &str, owner: &str) -> Result<(), StoreError> {
        self.located(self.raw_release_lock(name, owner).await)
    }

    async fn insert_api_token(&self, token: &ApiTokenRecord) -> Result<(), StoreError> {
        self.located(self.raw_insert_api_token(token).await)
    }

    async fn api_token_by_hash(&self, hash: &str) -> Result<Option<ApiTokenRecord>, StoreError> {
        self.located(self.raw_api_token_by_hash(hash).await)
    }

    async fn insert_event(&self, event: &EventRecord) -> Result<i64, StoreError> {
        self.located(self.raw_insert_event(event).await)
    }

    async fn events_of(
        &self,
        name: &str,
        owner: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        self.located(self.raw_events_of(name, owner, limit).await)
    }
}

const DAMAGED: &str = "the file is damaged: keep a copy of it, then put back a backup of it \
    (`sqlite3 FILE .recover` may save what is left) and run `swarm reconcile`";
const FULL: &str = "the disk is full (or a file size limit was reached): free some space \
    and run the command again; what was committed before is kept";
const IO: &str = "reading or writing the file failed: check the disk (is it full or failing?) \
    and run the command again; what was committed before is kept";
const READ_ONLY: &str = "swarm cannot write the file or its folder: make both writable \
    for you (SQLite also writes FILE-wal and FILE-shm beside it)";
const BUSY: &str = "another swarm process holds the store: run the command again when it is done";

/// What to do about a failure of the store file itself, or `None` when the failure is
/// not the file's (a unique name, a newer schema, another Fly...).
fn file_failure(error: &StoreError) -> Option<(String, &'static str)> {
    match error {
        StoreError::Corrupt(message) => {
            Some((format!("a record is unreadable ({message})"), DAMAGED))
        }
        StoreError::Database(sqlx::Error::Database(db)) => {
            let code = db.code().and_then(|c| c.parse::<i64>().ok()).unwrap_or(0);
            let hint = match code & 0xff {
                11 | 26 => DAMAGED,
                13 => FULL,
                10 => IO,
                8 | 14 | 3 | 23 => READ_ONLY,
                5 | 6 => BUSY,
                _ => return None,
            };
            Some((db.message().to_owned(), hint))
        }
        StoreError::Database(sqlx::Error::Io(io)) => {
            let hint = match io.kind() {
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::FileTooLarge => FULL,
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                    READ_ONLY
                }
                _ => IO,
            };
            Some((io.to_string(), hint))
        }
        // Text that is not the UTF-8 we wrote: bytes changed under SQLite's feet.
        StoreError::Database(
            error @ (sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_)),
        ) => Some((error.to_string(), DAMAGED)),
        StoreError::Database(sqlx::Error::PoolTimedOut) => {
            Some(("timed out waiting for the database".to_owned(), BUSY))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use swarm_core::model::{IpMode, WorkspaceSpec};

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
        let at =
            OffsetDateTime::parse("2026-12-02T10:00:00.123456789+05:30", &Rfc3339).expect("time");
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

    /// The document serde_json prints for `list_workspaces`, as `list --json` did.
    async fn decoded_then_encoded(store: &SqliteStore, include_deleted: bool) -> String {
        let records = store.list_workspaces(include_deleted).await.expect("list");
        let mut json = serde_json::to_string_pretty(&records).expect("json");
        json.push('\n');
        json
    }

    async fn listed_json(store: &SqliteStore, include_deleted: bool) -> String {
        let json = store
            .list_workspaces_json(include_deleted)
            .await
            .expect("list json");
        String::from_utf8(json).expect("utf-8")
    }

    #[tokio::test]
    async fn list_json_is_what_serde_json_prints_for_the_decoded_records() {
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
    async fn list_json_refuses_a_row_whose_data_is_not_one_record() {
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

    async fn summaries_of(store: &SqliteStore, include_deleted: bool) -> Vec<WorkspaceSummary> {
        store
            .list_summaries(include_deleted)
            .await
            .expect("summaries")
    }

    async fn summaries_from_records(
        store: &SqliteStore,
        include_deleted: bool,
    ) -> Vec<WorkspaceSummary> {
        let records = store.list_workspaces(include_deleted).await.expect("list");
        records.iter().map(WorkspaceRecord::summary).collect()
    }

    #[tokio::test]
    async fn list_columns_follow_the_record_through_insert_update_and_steps() {
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
}
