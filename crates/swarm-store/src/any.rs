//! [`AnyStore`]: the backend a `--db` URL names, behind one type.

use std::time::Duration;

use uuid::Uuid;

use super::postgres::{ACCEPTED, PgStore, mask_url};
use super::{
    ApiTokenRecord, EventRecord, JournalWrite, LockHolder, Operation, OperationKind, SqliteStore,
    StepEntry, Store, StoreError,
};
use swarm_core::model::{WorkspaceRecord, WorkspaceSummary};
use swarm_core::pool_model::{PoolSlot, PoolSlotState, PoolWant};
use swarm_core::quota::QuotaGuard;

/// Either backend; every [`Store`] method goes to the one inside.
#[derive(Debug, Clone)]
pub enum AnyStore {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// Opens the store `url` names for the Fly at `fly_endpoint`: a plain path or
/// `sqlite://PATH` is an SQLite file, `postgres://` or `postgresql://` a PostgreSQL
/// database. Another scheme is refused, naming `--db` and the accepted forms,
/// before anything is touched.
pub async fn open_store(url: &str, fly_endpoint: &str) -> Result<AnyStore, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(AnyStore::Postgres(PgStore::open(url, fly_endpoint).await?));
    }
    if url.starts_with("sqlite:") {
        return Ok(AnyStore::Sqlite(
            SqliteStore::open_url(url, fly_endpoint).await?,
        ));
    }
    if let Some((scheme, _)) = url.split_once("://")
        && !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return Err(StoreError::BadUrl {
            url: mask_url(url),
            message: format!("unknown scheme {scheme}://; --db takes {ACCEPTED}"),
        });
    }
    Ok(AnyStore::Sqlite(
        SqliteStore::open(url, fly_endpoint).await?,
    ))
}

impl AnyStore {
    /// Closes the backend's connections (an SQLite file is checkpointed).
    pub async fn close(&self) {
        match self {
            Self::Sqlite(store) => store.close().await,
            Self::Postgres(store) => store.close().await,
        }
    }
}

/// Calls the same method on whichever backend `self` is.
macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Sqlite($store) => $call.await,
            AnyStore::Postgres($store) => $call.await,
        }
    };
}

impl Store for AnyStore {
    async fn insert_workspace(&self, record: &WorkspaceRecord) -> Result<(), StoreError> {
        delegate!(self, s => s.insert_workspace(record))
    }

    async fn update_workspace(&self, record: &WorkspaceRecord) -> Result<(), StoreError> {
        delegate!(self, s => s.update_workspace(record))
    }

    async fn workspace_by_name(&self, name: &str) -> Result<Option<WorkspaceRecord>, StoreError> {
        delegate!(self, s => s.workspace_by_name(name))
    }

    async fn workspace(&self, id: Uuid) -> Result<Option<WorkspaceRecord>, StoreError> {
        delegate!(self, s => s.workspace(id))
    }

    async fn list_workspaces(
        &self,
        include_deleted: bool,
    ) -> Result<Vec<WorkspaceRecord>, StoreError> {
        delegate!(self, s => s.list_workspaces(include_deleted))
    }

    async fn list_workspaces_json(&self, include_deleted: bool) -> Result<Vec<u8>, StoreError> {
        delegate!(self, s => s.list_workspaces_json(include_deleted))
    }

    async fn list_summaries(
        &self,
        include_deleted: bool,
    ) -> Result<Vec<WorkspaceSummary>, StoreError> {
        delegate!(self, s => s.list_summaries(include_deleted))
    }

    async fn begin_operation(
        &self,
        record: &WorkspaceRecord,
        kind: OperationKind,
        owner: &str,
    ) -> Result<i64, StoreError> {
        delegate!(self, s => s.begin_operation(record, kind, owner))
    }

    async fn record_step(
        &self,
        operation: i64,
        step: &str,
        detail: &serde_json::Value,
        record: Option<&WorkspaceRecord>,
    ) -> Result<(), StoreError> {
        delegate!(self, s => s.record_step(operation, step, detail, record))
    }

    async fn finish_operation(&self, operation: i64, outcome: &str) -> Result<(), StoreError> {
        delegate!(self, s => s.finish_operation(operation, outcome))
    }

    async fn write_journal(
        &self,
        operation: i64,
        write: JournalWrite<'_>,
    ) -> Result<(), StoreError> {
        delegate!(self, s => s.write_journal(operation, write))
    }

    async fn insert_workspace_and_begin(
        &self,
        record: &WorkspaceRecord,
        kind: OperationKind,
        owner: &str,
        steps: &[(&str, serde_json::Value)],
        quota: Option<&QuotaGuard>,
    ) -> Result<i64, StoreError> {
        delegate!(self, s => s.insert_workspace_and_begin(record, kind, owner, steps, quota))
    }

    async fn begin_operation_with(
        &self,
        record: &WorkspaceRecord,
        kind: OperationKind,
        owner: &str,
        steps: &[(&str, serde_json::Value)],
        quota: Option<&QuotaGuard>,
    ) -> Result<i64, StoreError> {
        delegate!(self, s => s.begin_operation_with(record, kind, owner, steps, quota))
    }

    async fn unfinished_operations(&self) -> Result<Vec<Operation>, StoreError> {
        delegate!(self, s => s.unfinished_operations())
    }

    async fn operation_steps(&self, operation: i64) -> Result<Vec<StepEntry>, StoreError> {
        delegate!(self, s => s.operation_steps(operation))
    }

    async fn operations_of(&self, workspace_id: Uuid) -> Result<Vec<Operation>, StoreError> {
        delegate!(self, s => s.operations_of(workspace_id))
    }

    async fn try_lock(
        &self,
        name: &str,
        owner: &str,
        operation: &str,
        ttl: Duration,
    ) -> Result<Option<LockHolder>, StoreError> {
        delegate!(self, s => s.try_lock(name, owner, operation, ttl))
    }

    async fn renew_lock(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool, StoreError> {
        delegate!(self, s => s.renew_lock(name, owner, ttl))
    }

    async fn release_lock(&self, name: &str, owner: &str) -> Result<(), StoreError> {
        delegate!(self, s => s.release_lock(name, owner))
    }

    async fn break_lock(&self, name: &str, owner: &str) -> Result<(), StoreError> {
        delegate!(self, s => s.break_lock(name, owner))
    }

    async fn insert_pool_slot(&self, slot: &PoolSlot) -> Result<(), StoreError> {
        delegate!(self, s => s.insert_pool_slot(slot))
    }

    async fn update_pool_slot(
        &self,
        slot: &PoolSlot,
        from: PoolSlotState,
    ) -> Result<bool, StoreError> {
        delegate!(self, s => s.update_pool_slot(slot, from))
    }

    async fn delete_pool_slot(&self, id: Uuid) -> Result<(), StoreError> {
        delegate!(self, s => s.delete_pool_slot(id))
    }

    async fn pool_slots(&self) -> Result<Vec<PoolSlot>, StoreError> {
        delegate!(self, s => s.pool_slots())
    }

    async fn take_pool_slot(
        &self,
        want: &PoolWant,
        operation: i64,
        adopt: impl FnOnce(&PoolSlot) -> WorkspaceRecord + Send,
    ) -> Result<Option<(PoolSlot, WorkspaceRecord)>, StoreError> {
        match self {
            Self::Sqlite(store) => store.take_pool_slot(want, operation, adopt).await,
            Self::Postgres(store) => store.take_pool_slot(want, operation, adopt).await,
        }
    }

    async fn insert_api_token(&self, token: &ApiTokenRecord) -> Result<(), StoreError> {
        delegate!(self, s => s.insert_api_token(token))
    }

    async fn api_token_by_hash(&self, hash: &str) -> Result<Option<ApiTokenRecord>, StoreError> {
        delegate!(self, s => s.api_token_by_hash(hash))
    }

    async fn insert_event(&self, event: &EventRecord) -> Result<i64, StoreError> {
        delegate!(self, s => s.insert_event(event))
    }

    async fn events_of(
        &self,
        name: &str,
        owner: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        delegate!(self, s => s.events_of(name, owner, limit))
    }
}
