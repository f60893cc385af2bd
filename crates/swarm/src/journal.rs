//! An operation's journal: each step is committed to the store (with the record it
//! changed) before the next Fly call, then the step's crash point is checked.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::Mutex;
use tracing::Instrument as _;

use crate::failpoint::crash_point;
use swarm_core::model::WorkspaceRecord;
use swarm_core::pool_model::{PoolSlot, PoolWant};
use swarm_core::quota::{QuotaGuard, SIZE_RESERVED_STEP, Usage};
use swarm_store::{JournalWrite, OperationKind, Store, StoreError};

/// The running journal of one operation on one workspace.
#[derive(Debug)]
pub(crate) struct Journal<S: Store> {
    store: Arc<S>,
    operation: i64,
    kind: OperationKind,
    /// Held across the store write so concurrent steps (volume and IPs) never save
    /// an older copy over a newer one.
    record: Mutex<WorkspaceRecord>,
}

impl<S: Store> Journal<S> {
    /// Records the operation's intent (and saves `record`), then checks `after_intent`.
    pub(crate) async fn begin(
        store: Arc<S>,
        record: WorkspaceRecord,
        kind: OperationKind,
        owner: &str,
    ) -> Result<Self, StoreError> {
        let operation = store.begin_operation(&record, kind, owner).await?;
        let journal = Self {
            store,
            operation,
            kind,
            record: Mutex::new(record),
        };
        journal
            .step(
                "intent",
                serde_json::json!({}),
                Some("after_intent"),
                |_| {},
            )
            .await?;
        Ok(journal)
    }

    /// Inserts the new `record` and begins its operation with the step `intent` and
    /// then `notes`, in one transaction (no record ever lacks its journal entry); then
    /// checks `after_intent`.
    pub(crate) async fn insert_and_begin(
        store: Arc<S>,
        record: WorkspaceRecord,
        kind: OperationKind,
        owner: &str,
        notes: Vec<(&str, Value)>,
        quota: Option<&QuotaGuard>,
    ) -> Result<Self, StoreError> {
        let mut steps = vec![("intent", serde_json::json!({}))];
        steps.extend(notes);
        let operation = store
            .insert_workspace_and_begin(&record, kind, owner, &steps, quota)
            .instrument(store_span("intent"))
            .await?;
        tracing::debug!(workspace = %record.name, operation = kind.as_str(), "intent committed");
        crash_point(kind.as_str(), "after_intent");
        Ok(Self {
            store,
            operation,
            kind,
            record: Mutex::new(record),
        })
    }

    /// [`Journal::begin`] for an operation that may grow the workspace to `size`: the
    /// intent and the reservation (step `size_reserved`) are one transaction, checked
    /// against `quota` in it, so operations running at once are counted together.
    pub(crate) async fn begin_reserving(
        store: Arc<S>,
        mut record: WorkspaceRecord,
        kind: OperationKind,
        owner: &str,
        size: Usage,
        quota: Option<&QuotaGuard>,
    ) -> Result<Self, StoreError> {
        record.updated_at = time::OffsetDateTime::now_utc();
        let steps = [
            ("intent", serde_json::json!({})),
            (SIZE_RESERVED_STEP, size.reservation_detail()),
        ];
        let operation = store
            .begin_operation_with(&record, kind, owner, &steps, quota)
            .await?;
        tracing::debug!(workspace = %record.name, operation = kind.as_str(), "intent committed");
        crash_point(kind.as_str(), "after_intent");
        Ok(Self {
            store,
            operation,
            kind,
            record: Mutex::new(record),
        })
    }

    /// Continues an unfinished operation (reconcile).
    pub(crate) fn resume(
        store: Arc<S>,
        operation: i64,
        kind: OperationKind,
        record: WorkspaceRecord,
    ) -> Self {
        Self {
            store,
            operation,
            kind,
            record: Mutex::new(record),
        }
    }

    /// Commits a step, applying `update` to the record in the same transaction; then
    /// aborts the process if `crash_at` is the configured crash point.
    pub(crate) async fn step(
        &self,
        step: &str,
        detail: Value,
        crash_at: Option<&str>,
        update: impl FnOnce(&mut WorkspaceRecord),
    ) -> Result<WorkspaceRecord, StoreError> {
        let mut record = self.record.lock().await;
        update(&mut record);
        record.updated_at = time::OffsetDateTime::now_utc();
        self.store
            .record_step(self.operation, step, &detail, Some(&record))
            .instrument(store_span(step))
            .await?;
        tracing::debug!(workspace = %record.name, operation = self.kind.as_str(), step, "journal step committed");
        if let Some(point) = crash_at {
            crash_point(self.kind.as_str(), point);
        }
        Ok(record.clone())
    }

    /// Takes a matching warm-pool slot for this (create) operation: the slot leaves the
    /// pool and `adopt` applies it to the record, in one store transaction (step
    /// `pool_slot_taken`); then checks the crash point `after_pool_take`.
    pub(crate) async fn take_pool_slot(
        &self,
        want: &PoolWant,
        adopt: impl FnOnce(&mut WorkspaceRecord, &PoolSlot) + Send,
    ) -> Result<Option<PoolSlot>, StoreError> {
        let mut record = self.record.lock().await;
        let current = record.clone();
        let taken = self
            .store
            .take_pool_slot(want, self.operation, move |slot| {
                let mut updated = current;
                adopt(&mut updated, slot);
                updated.updated_at = time::OffsetDateTime::now_utc();
                updated
            })
            .instrument(store_span("pool slot take"))
            .await?;
        let Some((slot, updated)) = taken else {
            return Ok(None);
        };
        *record = updated;
        tracing::debug!(workspace = %record.name, app = %slot.app, "pool slot taken");
        drop(record);
        crash_point(self.kind.as_str(), "after_pool_take");
        Ok(Some(slot))
    }

    /// Commits several steps that change no record field, in one transaction.
    pub(crate) async fn notes(&self, steps: Vec<(&str, Value)>) -> Result<(), StoreError> {
        let write = JournalWrite {
            steps,
            ..JournalWrite::default()
        };
        self.store
            .write_journal(self.operation, write)
            .instrument(store_span("notes"))
            .await
    }

    /// Commits a step that changes no record field ("about to call …").
    pub(crate) async fn note(&self, step: &str, detail: Value) -> Result<(), StoreError> {
        self.store
            .record_step(self.operation, step, &detail, None)
            .instrument(store_span(step))
            .await
    }

    /// The operation's id in the store (names what it makes, so it can be found again).
    pub(crate) fn operation(&self) -> i64 {
        self.operation
    }

    pub(crate) async fn record(&self) -> WorkspaceRecord {
        self.record.lock().await.clone()
    }

    pub(crate) async fn finish(&self, outcome: &str) -> Result<(), StoreError> {
        self.store.finish_operation(self.operation, outcome).await
    }

    /// Commits the operation's last step, finishes the operation with `outcome` and
    /// frees its workspace lock `(name, owner)`, in one transaction; then checks
    /// `crash_at`. The caller then forgets the lock
    /// ([`swarm_store::lock::WorkspaceLock::released`]).
    pub(crate) async fn last_step(
        &self,
        step: &str,
        detail: Value,
        crash_at: Option<&str>,
        outcome: &str,
        lock: (&str, &str),
        update: impl FnOnce(&mut WorkspaceRecord),
    ) -> Result<WorkspaceRecord, StoreError> {
        let mut record = self.record.lock().await;
        update(&mut record);
        record.updated_at = time::OffsetDateTime::now_utc();
        let write = JournalWrite {
            steps: vec![(step, detail)],
            record: Some(&record),
            finish: Some(outcome),
            release_lock: Some(lock),
        };
        self.store
            .write_journal(self.operation, write)
            .instrument(store_span(step))
            .await?;
        tracing::debug!(workspace = %record.name, operation = self.kind.as_str(), step, "last journal step committed");
        if let Some(point) = crash_at {
            crash_point(self.kind.as_str(), point);
        }
        Ok(record.clone())
    }
}

/// The span of one store write, for timing where an operation's time goes
/// (swarm-bench's span recorder sums `swarm_step` spans by their `step`).
fn store_span(step: &str) -> tracing::Span {
    tracing::debug_span!("swarm_step", step = %format_args!("store: {step}"))
}
