//! What both backends share: the record and pool-slot encodings and the quota
//! reservations read from journal steps.

use uuid::Uuid;

use super::StoreError;
use swarm_core::model::WorkspaceRecord;
use swarm_core::pool_model::PoolSlot;
use swarm_core::quota::{SIZE_RESERVED_STEP, Usage};

/// The encoding of [`WorkspaceRecord`] this program writes to `data` (column
/// `data_format`). Bump it with any change to the record's JSON (a field added, renamed,
/// moved or skipped differently): `list --json` prints rows of this format as stored,
/// so a stale number would print old JSON. `record_format_is_pinned` fails until then.
/// 2: `previous_machine` (absent when none, so a format-1 record reads the same).
pub(crate) const RECORD_FORMAT: i64 = 2;

pub(crate) fn decode_record(data: &str) -> Result<WorkspaceRecord, StoreError> {
    serde_json::from_str(data)
        .map_err(|error| StoreError::Corrupt(format!("workspace record: {error}")))
}

pub(crate) fn encode_record(record: &WorkspaceRecord) -> Result<String, StoreError> {
    serde_json::to_string(record).map_err(|error| StoreError::Corrupt(error.to_string()))
}

pub(crate) fn encode_slot(slot: &PoolSlot) -> Result<String, StoreError> {
    serde_json::to_string(slot).map_err(|error| StoreError::Corrupt(error.to_string()))
}

pub(crate) fn decode_slot(data: &str) -> Result<PoolSlot, StoreError> {
    serde_json::from_str(data).map_err(|error| StoreError::Corrupt(format!("pool slot: {error}")))
}

/// The `size_reserved` steps among `steps`, as reservations on `record`'s workspace.
pub(crate) fn reservations(
    record: &WorkspaceRecord,
    steps: &[(&str, serde_json::Value)],
) -> Vec<(Uuid, Usage)> {
    steps
        .iter()
        .filter(|(step, _)| *step == SIZE_RESERVED_STEP)
        .filter_map(|(_, detail)| Usage::from_reservation(detail))
        .map(|size| (record.id, size))
        .collect()
}

/// The detail of the `pool_slot_taken` step journaled when a create takes `slot`.
pub(crate) fn slot_taken_detail(slot: &PoolSlot) -> serde_json::Value {
    serde_json::json!({
        "slot": slot.id,
        "app": slot.app,
        "volume": slot.volume_id,
        "volume_size_gb": slot.volume_size_gb,
        "ips": slot.ips.iter().map(|ip| ip.address.as_str()).collect::<Vec<_>>(),
    })
}
