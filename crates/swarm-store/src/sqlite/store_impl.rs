//! [`Store`] for [`SqliteStore`]: each method the raw one, with the file named on failure.

use std::time::Duration;

use uuid::Uuid;

use crate::{
    ApiTokenRecord, EventRecord, JournalWrite, LockHolder, Operation, OperationKind, StepEntry,
    Store, StoreError,
};
use swarm_core::model::{WorkspaceRecord, WorkspaceSummary};
use swarm_core::pool_model::{PoolSlot, PoolSlotState, PoolWant};
use swarm_core::quota::QuotaGuard;

use super::*;

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
