//! VS Code Remote Swarm's state store: workspace records, the operation journal,
//! per-workspace locks ([`lock`]), pool slots, API tokens and events. [`Store`] is the
//! interface; [`SqliteStore`] (one file, the embedded default) and [`PgStore`] (a
//! PostgreSQL server shared by several controllers) implement it, and [`AnyStore`] is
//! whichever of them a `--db` URL names ([`open_store`]).

mod any;
mod common;
pub mod lock;
mod postgres;
mod pretty;
mod sqlite;

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use swarm_core::model::{WorkspaceRecord, WorkspaceSummary};
use swarm_core::pool_model::{PoolSlot, PoolSlotState, PoolWant};
use swarm_core::quota::{QuotaExceeded, QuotaGuard};

pub use any::{AnyStore, open_store};
pub use postgres::{PG_SCHEMA_VERSION, PgStore, mask_url};
pub use sqlite::{SCHEMA_VERSION, SqliteStore};

/// Store failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error(
        "this store was written by a newer swarm (schema {found}); upgrade swarm (this one knows schema {supported} at most)"
    )]
    NewerSchema { found: i64, supported: i64 },
    #[error(
        "this store was written by swarm {found}, a newer major version than this swarm {ours}; it was left unchanged: use a swarm {found} binary (docs/VERSIONING.md)"
    )]
    NewerVersion { found: String, ours: String },
    #[error(
        "this store belongs to the Fly at {store}, not {requested}; use a separate store file for each Fly (records of the local Fly are never mixed with real ones)"
    )]
    WrongFly { store: String, requested: String },
    #[error("a live workspace named {0} already exists in the store")]
    NameTaken(String),
    /// Checked in the write's own transaction; nothing was written.
    #[error(transparent)]
    QuotaExceeded(#[from] QuotaExceeded),
    #[error("store file {path}: {message}")]
    File { path: String, message: String },
    #[error("store record is unreadable: {0}")]
    Corrupt(String),
    #[error("store database error: {0}")]
    Database(#[from] sqlx::Error),
    /// `--db` names no store this program can open; nothing was opened or written.
    #[error("--db {url}: {message}")]
    BadUrl { url: String, message: String },
    /// The database server did not answer; nothing was written.
    #[error(
        "the store's PostgreSQL server at {server} cannot be reached ({message}); check that it runs and that --db names the right host and port"
    )]
    Unreachable { server: String, message: String },
    /// The server answered and refused (wrong password, no such database); nothing
    /// was written.
    #[error("--db {url}: {message}")]
    Refused { url: String, message: String },
    /// The file itself failed (damaged, full disk, not writable): named, with what to do.
    #[error("store {path}: {message}; {hint}")]
    Unusable {
        path: String,
        message: String,
        hint: String,
    },
}

impl StoreError {
    /// True when the store was refused as it is, before anything was written: a
    /// store of a newer schema or a newer major version, a `--db` URL that names no
    /// store, a server that refuses our user or has no such database (bad input, exit 2).
    pub fn is_refused_unchanged(&self) -> bool {
        matches!(
            self,
            Self::NewerSchema { .. }
                | Self::NewerVersion { .. }
                | Self::BadUrl { .. }
                | Self::Refused { .. }
        )
    }
}

/// What an operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    Create,
    Start,
    Stop,
    Delete,
    RotatePassword,
    Resize,
    Update,
    Rollback,
    Move,
    Restore,
    Snapshot,
    /// `rollback --machine`: back to the machine config before the last machine change.
    MachineRollback,
    Suspend,
}

impl OperationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Delete => "delete",
            Self::RotatePassword => "password",
            Self::Resize => "resize",
            Self::Update => "update",
            Self::Rollback => "rollback",
            Self::Move => "move",
            Self::Restore => "restore",
            Self::Snapshot => "snapshot",
            Self::MachineRollback => "machine_rollback",
            Self::Suspend => "suspend",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "create" => Self::Create,
            "start" => Self::Start,
            "stop" => Self::Stop,
            "delete" => Self::Delete,
            "password" => Self::RotatePassword,
            "resize" => Self::Resize,
            "update" => Self::Update,
            "rollback" => Self::Rollback,
            "move" => Self::Move,
            "restore" => Self::Restore,
            "snapshot" => Self::Snapshot,
            "machine_rollback" => Self::MachineRollback,
            "suspend" => Self::Suspend,
            _ => return None,
        })
    }
}

/// A journal entry: an operation's intent and its outcome once finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Operation {
    pub id: i64,
    pub workspace_id: Uuid,
    pub workspace_name: String,
    pub kind: OperationKind,
    pub owner: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    pub outcome: Option<String>,
}

/// One completed (or about-to-be-sent) step of an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepEntry {
    pub seq: i64,
    pub step: String,
    pub detail: serde_json::Value,
    /// When it was committed.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Who holds a workspace lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockHolder {
    pub owner: String,
    pub pid: u32,
    pub operation: String,
    #[serde(with = "time::serde::rfc3339")]
    pub acquired_at: OffsetDateTime,
}

/// A controller API token as stored: only its hash, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenRecord {
    /// Public id (`tok_…`), safe to show and log.
    pub id: String,
    pub user: String,
    pub admin: bool,
    /// SHA-256 of the token, lowercase hex.
    pub hash: String,
    pub created_at: OffsetDateTime,
}

/// One entry of a workspace's event history: who did what, when, how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EventRecord {
    pub id: i64,
    pub workspace: String,
    /// The workspace's owner (controller user), if any.
    #[serde(skip)]
    pub owner: Option<String>,
    /// When the action began.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    /// A user name, or `reconciler` / `idle-policy` for automatic actions.
    pub actor: String,
    /// `create`, `stop`, `reconcile`, …
    pub action: String,
    /// `succeeded` or `failed`.
    pub outcome: String,
    /// Operation id, error code and message, what an automatic action found; never a secret.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// Several journal changes of one operation, committed as one transaction: one fsync
/// on a create's critical path instead of one per change.
#[derive(Debug, Default)]
pub struct JournalWrite<'a> {
    /// Steps appended in this order.
    pub steps: Vec<(&'a str, serde_json::Value)>,
    /// Saved with the steps.
    pub record: Option<&'a WorkspaceRecord>,
    /// Closes the operation with this outcome.
    pub finish: Option<&'a str>,
    /// Frees the lock `(name, owner)` if `owner` still holds it.
    pub release_lock: Option<(&'a str, &'a str)>,
}

/// The state store. Each write is committed when the future resolves, so a record
/// written before a Fly call survives a crash during that call.
pub trait Store: Send + Sync + 'static {
    /// Adds a new record; fails with [`StoreError::NameTaken`] if a live record has the name.
    fn insert_workspace(
        &self,
        record: &WorkspaceRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn update_workspace(
        &self,
        record: &WorkspaceRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The live (not deleted) record with this name.
    fn workspace_by_name(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<WorkspaceRecord>, StoreError>> + Send;
    fn workspace(
        &self,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<WorkspaceRecord>, StoreError>> + Send;
    /// All records, oldest first; deleted ones only when asked.
    fn list_workspaces(
        &self,
        include_deleted: bool,
    ) -> impl Future<Output = Result<Vec<WorkspaceRecord>, StoreError>> + Send;
    /// [`Store::list_workspaces`] as one JSON document: byte for byte what
    /// `serde_json::to_writer_pretty` prints for those records, plus a newline. Records
    /// stored in the current encoding are copied, not decoded (`swarm list --json`).
    fn list_workspaces_json(
        &self,
        include_deleted: bool,
    ) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;
    /// What the list shows of every record, in [`Store::list_workspaces`]'s order,
    /// without decoding whole records (cheap with thousands of them).
    fn list_summaries(
        &self,
        include_deleted: bool,
    ) -> impl Future<Output = Result<Vec<WorkspaceSummary>, StoreError>> + Send;

    /// Records an operation's intent; returns its journal id.
    fn begin_operation(
        &self,
        record: &WorkspaceRecord,
        kind: OperationKind,
        owner: &str,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
    /// Appends a step, and in the same transaction saves `record` if given.
    fn record_step(
        &self,
        operation: i64,
        step: &str,
        detail: &serde_json::Value,
        record: Option<&WorkspaceRecord>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn finish_operation(
        &self,
        operation: i64,
        outcome: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Everything in `write`, in one transaction: all of it is committed or none.
    fn write_journal(
        &self,
        operation: i64,
        write: JournalWrite<'_>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Inserts the new `record` (as [`Store::insert_workspace`]) and begins its
    /// operation with `steps` (the first is the intent), in one transaction, so there
    /// is never a record without its journal entry. Returns the operation's id.
    ///
    /// With a `quota`, the same transaction first sums the guarded user's live
    /// workspaces (each as the larger of its record and the `size_reserved` steps of
    /// its unfinished operations) plus `record`, and refuses with
    /// [`StoreError::QuotaExceeded`] past a limit, writing nothing. Writers of one
    /// user are serialised by the backend (SQLite's write lock, a PostgreSQL advisory
    /// lock), so parallel creates in any number of processes cannot all pass.
    fn insert_workspace_and_begin(
        &self,
        record: &WorkspaceRecord,
        kind: OperationKind,
        owner: &str,
        steps: &[(&str, serde_json::Value)],
        quota: Option<&QuotaGuard>,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
    /// Begins an operation on the existing `record` with `steps` (the first is the
    /// intent) and saves `record`, in one transaction. With a `quota`, checked as in
    /// [`Store::insert_workspace_and_begin`], counting a `size_reserved` step among
    /// `steps` against `record`'s workspace.
    fn begin_operation_with(
        &self,
        record: &WorkspaceRecord,
        kind: OperationKind,
        owner: &str,
        steps: &[(&str, serde_json::Value)],
        quota: Option<&QuotaGuard>,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
    /// Operations begun and never finished (interrupted by a crash), oldest first.
    fn unfinished_operations(
        &self,
    ) -> impl Future<Output = Result<Vec<Operation>, StoreError>> + Send;
    fn operation_steps(
        &self,
        operation: i64,
    ) -> impl Future<Output = Result<Vec<StepEntry>, StoreError>> + Send;
    /// Every operation of a workspace, oldest first.
    fn operations_of(
        &self,
        workspace_id: Uuid,
    ) -> impl Future<Output = Result<Vec<Operation>, StoreError>> + Send;

    /// Takes the lock on `name` for `ttl` if it is free, stale, or already ours.
    /// `Ok(None)`: taken. `Ok(Some(holder))`: busy, held by `holder`.
    fn try_lock(
        &self,
        name: &str,
        owner: &str,
        operation: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<Option<LockHolder>, StoreError>> + Send;
    /// Extends our lock; `false` when it is no longer ours (it expired and was taken).
    fn renew_lock(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn release_lock(
        &self,
        name: &str,
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Adds a pool slot (its intent, before any Fly call).
    fn insert_pool_slot(
        &self,
        slot: &PoolSlot,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Saves `slot` if its row is still in state `from`; `false` when it is not (taken
    /// by a create, or removed).
    fn update_pool_slot(
        &self,
        slot: &PoolSlot,
        from: PoolSlotState,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn delete_pool_slot(&self, id: Uuid) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Every pool slot, oldest first.
    fn pool_slots(&self) -> impl Future<Output = Result<Vec<PoolSlot>, StoreError>> + Send;
    /// Takes a ready slot matching `want` for the create `operation`, atomically: in one
    /// transaction the slot's row is removed, the step `pool_slot_taken` is journaled
    /// and the record `adopt` returns for the slot is saved. Two creates never take the
    /// same slot; a crash leaves either the slot in the pool or the record holding it.
    /// `Ok(None)` when no slot matches (nothing changed).
    fn take_pool_slot(
        &self,
        want: &PoolWant,
        operation: i64,
        adopt: impl FnOnce(&PoolSlot) -> WorkspaceRecord + Send,
    ) -> impl Future<Output = Result<Option<(PoolSlot, WorkspaceRecord)>, StoreError>> + Send;

    /// Adds a controller API token (its hash).
    fn insert_api_token(
        &self,
        token: &ApiTokenRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The token whose hash is `hash`, if any.
    fn api_token_by_hash(
        &self,
        hash: &str,
    ) -> impl Future<Output = Result<Option<ApiTokenRecord>, StoreError>> + Send;
    /// Appends an event (its `id` is ignored); returns the id given.
    fn insert_event(
        &self,
        event: &EventRecord,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
    /// The newest `limit` events of the workspace `name` of `owner`, oldest first.
    fn events_of(
        &self,
        name: &str,
        owner: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<EventRecord>, StoreError>> + Send;
    /// Removes a lock whose holder is known to be dead (same host, process gone),
    /// only if `owner` still holds it.
    fn break_lock(
        &self,
        name: &str,
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.release_lock(name, owner)
    }
}
