//! Per-user quotas (`[quotas]` in the controller's config file). The check runs inside
//! the store transaction that would take a user past a limit (the create's insert, the
//! resize's intent), so parallel requests cannot all pass it: see
//! [`crate::store::Store::insert_workspace_and_begin`].

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::WorkspaceRecord;

/// Limits per user; an absent limit is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    /// Live workspaces.
    pub workspaces: Option<u32>,
    /// CPUs over all workspaces.
    pub cpus: Option<u32>,
    /// Memory over all workspaces, MB.
    pub memory: Option<u64>,
    /// Volume storage over all workspaces, GB.
    pub storage: Option<u64>,
}

/// What a user's workspaces take (or one workspace: `workspaces` is 1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub workspaces: u32,
    pub cpus: u32,
    pub memory: u64,
    pub storage: u64,
}

/// The journal step in which an unfinished operation reserves the size it may bring its
/// workspace to (detail: [`Usage`]'s `cpus`, `memory`, `storage`). Until the operation
/// ends, the owner's usage counts the larger of the record and the reservation, so two
/// resizes running at once are checked against each other.
pub const SIZE_RESERVED_STEP: &str = "size_reserved";

/// A user held to quotas, for the store to check in the same transaction as the write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaGuard {
    pub user: String,
    pub quotas: Quotas,
}

/// A limit a change would pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "quota exceeded: {user} would have {used}{unit}, the limit is {limit} (quotas.{key} in the server's config file); delete or shrink a workspace first"
)]
pub struct QuotaExceeded {
    pub user: String,
    /// The config key: `workspaces`, `cpus`, `memory`, `storage`.
    pub key: &'static str,
    pub used: u64,
    pub limit: u64,
    unit: &'static str,
}

impl Usage {
    pub fn of(record: &WorkspaceRecord) -> Self {
        Self {
            workspaces: 1,
            cpus: record.spec.guest.cpus,
            memory: u64::from(record.spec.guest.memory_mb),
            storage: u64::from(record.spec.storage_gb),
        }
    }

    /// The live workspaces of `user` among `records`.
    pub fn of_user(records: &[WorkspaceRecord], user: &str) -> Self {
        records
            .iter()
            .filter(|r| {
                r.status != crate::model::WorkspaceStatus::Deleted
                    && r.spec.owner.as_deref() == Some(user)
            })
            .map(Self::of)
            .fold(Self::default(), Self::plus)
    }

    pub fn plus(self, other: Self) -> Self {
        Self {
            workspaces: self.workspaces.saturating_add(other.workspaces),
            cpus: self.cpus.saturating_add(other.cpus),
            memory: self.memory.saturating_add(other.memory),
            storage: self.storage.saturating_add(other.storage),
        }
    }

    /// The larger of each dimension: a workspace with an operation under way counts
    /// as its record or its reservation, whichever takes more.
    pub fn max(self, other: Self) -> Self {
        Self {
            workspaces: self.workspaces.max(other.workspaces),
            cpus: self.cpus.max(other.cpus),
            memory: self.memory.max(other.memory),
            storage: self.storage.max(other.storage),
        }
    }

    /// The detail of a [`SIZE_RESERVED_STEP`].
    pub fn reservation_detail(self) -> serde_json::Value {
        serde_json::json!({ "cpus": self.cpus, "memory": self.memory, "storage": self.storage })
    }

    /// Reads a [`SIZE_RESERVED_STEP`]'s detail back (a workspace of that size).
    pub fn from_reservation(detail: &serde_json::Value) -> Option<Self> {
        let field = |key: &str| detail.get(key).and_then(serde_json::Value::as_u64);
        Some(Self {
            workspaces: 1,
            cpus: u32::try_from(field("cpus")?).ok()?,
            memory: field("memory")?,
            storage: field("storage")?,
        })
    }

    /// A user's usage from their live workspaces and the reservations of unfinished
    /// operations on them: each workspace counts as the larger of its record and its
    /// reservations. A reservation of a workspace not in `workspaces` is ignored.
    pub fn total(workspaces: &[(Uuid, Self)], reservations: &[(Uuid, Self)]) -> Self {
        workspaces
            .iter()
            .map(|(id, size)| {
                reservations
                    .iter()
                    .filter(|(of, _)| of == id)
                    .fold(*size, |size, (_, reserved)| size.max(*reserved))
            })
            .fold(Self::default(), Self::plus)
    }
}

impl Quotas {
    /// Whether no limit is set (then nothing needs checking).
    pub fn is_unlimited(&self) -> bool {
        *self == Self::default()
    }

    /// Refuses `after` (the user's usage once the change is made) past a limit.
    pub fn check(&self, user: &str, after: Usage) -> Result<(), QuotaExceeded> {
        let limits = [
            (
                "workspaces",
                u64::from(after.workspaces),
                self.workspaces.map(u64::from),
                " workspaces",
            ),
            (
                "cpus",
                u64::from(after.cpus),
                self.cpus.map(u64::from),
                " CPUs",
            ),
            ("memory", after.memory, self.memory, " MB of memory"),
            ("storage", after.storage, self.storage, " GB of storage"),
        ];
        match limits.into_iter().find_map(|(key, used, limit, unit)| {
            limit
                .filter(|limit| used > *limit)
                .map(|limit| (key, used, limit, unit))
        }) {
            None => Ok(()),
            Some((key, used, limit, unit)) => Err(QuotaExceeded {
                user: user.to_owned(),
                key,
                used,
                limit,
                unit,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_limit_passed_is_named() {
        let quotas = Quotas {
            workspaces: Some(2),
            cpus: Some(4),
            memory: None,
            storage: Some(30),
        };
        let ok = Usage {
            workspaces: 2,
            cpus: 4,
            memory: 1 << 40,
            storage: 30,
        };
        assert!(quotas.check("alice", ok).is_ok());
        let error = quotas
            .check("alice", Usage { cpus: 5, ..ok })
            .expect_err("over");
        assert_eq!(error.key, "cpus");
        let message = error.to_string();
        assert!(message.contains("quotas.cpus"), "{message}");
        assert!(message.contains("5 CPUs"), "{message}");
        let message = quotas
            .check(
                "alice",
                Usage {
                    workspaces: 3,
                    ..ok
                },
            )
            .expect_err("over")
            .to_string();
        assert!(message.contains("3 workspaces"), "{message}");
        assert!(
            Quotas::default()
                .check(
                    "alice",
                    Usage {
                        workspaces: u32::MAX,
                        ..ok
                    }
                )
                .is_ok()
        );
    }

    #[test]
    fn a_workspace_counts_as_the_larger_of_its_record_and_its_reservations() {
        let (a, b, gone) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let size = |cpus, memory, storage| Usage {
            workspaces: 1,
            cpus,
            memory,
            storage,
        };
        let total = Usage::total(
            &[(a, size(2, 2048, 10)), (b, size(1, 1024, 10))],
            &[
                (a, size(4, 1024, 10)),
                (a, size(1, 4096, 10)),
                (gone, size(64, 1 << 20, 500)),
            ],
        );
        assert_eq!(
            total,
            Usage {
                workspaces: 2,
                cpus: 5,
                memory: 4096 + 1024,
                storage: 20
            }
        );
        let detail = size(3, 512, 7).reservation_detail();
        assert_eq!(Usage::from_reservation(&detail), Some(size(3, 512, 7)));
        assert_eq!(Usage::from_reservation(&serde_json::json!({})), None);
    }
}
