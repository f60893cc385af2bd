//! Per-user quotas (`[quotas]` in the controller's config file). The check runs inside
//! the store transaction that would take a user past a limit (the create's insert, the
//! resize's intent), so parallel requests cannot all pass it: see
//! the store's `insert_workspace_and_begin`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cost::{Cost, MonthlyCost};
use crate::model::{GuestSize, IpMode, WorkspaceRecord};

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
    /// USD a month over all workspaces, each priced as running all month (Fly's own
    /// advice: budget for the always-on cost; see [`crate::cost`]).
    pub budget: Option<Cost>,
}

/// What a user's workspaces take (or one workspace: `workspaces` is 1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub workspaces: u32,
    pub cpus: u32,
    pub memory: u64,
    pub storage: u64,
    /// The month's cost if every workspace ran all month.
    pub cost: Cost,
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
    "quota exceeded: {user} would have {}, the limit is {} (quotas.{key} in the server's config file); delete or shrink a workspace first",
    self.amount(self.used), self.amount(self.limit)
)]
pub struct QuotaExceeded {
    pub user: String,
    /// The config key: `workspaces`, `cpus`, `memory`, `storage`, `budget`.
    pub key: &'static str,
    /// In the key's unit (for `budget`, hundredths of a cent: [`Cost`]).
    pub used: u64,
    pub limit: u64,
}

impl QuotaExceeded {
    fn amount(&self, value: u64) -> String {
        match self.key {
            "workspaces" => format!("{value} workspaces"),
            "cpus" => format!("{value} CPUs"),
            "memory" => format!("{value} MB of memory"),
            "storage" => format!("{value} GB of storage"),
            "budget" => format!("{} a month", Cost(value)),
            _ => value.to_string(),
        }
    }
}

impl Usage {
    /// One workspace of this size.
    pub fn workspace(guest: GuestSize, storage_gb: u32, ip_mode: IpMode) -> Self {
        Self {
            workspaces: 1,
            cpus: guest.cpus,
            memory: u64::from(guest.memory_mb),
            storage: u64::from(storage_gb),
            cost: MonthlyCost::of(guest, storage_gb, ip_mode).running,
        }
    }

    pub fn of(record: &WorkspaceRecord) -> Self {
        Self::workspace(
            record.spec.guest,
            record.spec.storage_gb,
            record.spec.ip_mode,
        )
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
            cost: self.cost.plus(other.cost),
        }
    }

    /// This total with one workspace changed from `old` to `new` (the check before a
    /// resize is accepted; the store checks again with the intent).
    pub fn replacing(self, old: Self, new: Self) -> Self {
        let swap = |total: u64, old: u64, new: u64| total.saturating_sub(old).saturating_add(new);
        Self {
            workspaces: self.workspaces,
            cpus: u32::try_from(swap(self.cpus.into(), old.cpus.into(), new.cpus.into()))
                .unwrap_or(u32::MAX),
            memory: swap(self.memory, old.memory, new.memory),
            storage: swap(self.storage, old.storage, new.storage),
            cost: Cost(swap(self.cost.0, old.cost.0, new.cost.0)),
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
            cost: self.cost.max(other.cost),
        }
    }

    /// The detail of a [`SIZE_RESERVED_STEP`].
    pub fn reservation_detail(self) -> serde_json::Value {
        serde_json::json!({
            "cpus": self.cpus,
            "memory": self.memory,
            "storage": self.storage,
            "cost": self.cost.0,
        })
    }

    /// Reads a [`SIZE_RESERVED_STEP`]'s detail back (a workspace of that size). A
    /// reservation journaled before budgets has no `cost`: it reserves none.
    pub fn from_reservation(detail: &serde_json::Value) -> Option<Self> {
        let field = |key: &str| detail.get(key).and_then(serde_json::Value::as_u64);
        Some(Self {
            workspaces: 1,
            cpus: u32::try_from(field("cpus")?).ok()?,
            memory: field("memory")?,
            storage: field("storage")?,
            cost: Cost(field("cost").unwrap_or(0)),
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
            ),
            ("cpus", u64::from(after.cpus), self.cpus.map(u64::from)),
            ("memory", after.memory, self.memory),
            ("storage", after.storage, self.storage),
            ("budget", after.cost.0, self.budget.map(|budget| budget.0)),
        ];
        match limits.into_iter().find_map(|(key, used, limit)| {
            limit
                .filter(|limit| used > *limit)
                .map(|limit| (key, used, limit))
        }) {
            None => Ok(()),
            Some((key, used, limit)) => Err(QuotaExceeded {
                user: user.to_owned(),
                key,
                used,
                limit,
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
            budget: None,
        };
        let ok = Usage {
            workspaces: 2,
            cpus: 4,
            memory: 1 << 40,
            storage: 30,
            cost: Cost::from_usd(1000.0),
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
            cost: Cost(cpus.into()),
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
                storage: 20,
                cost: Cost(5),
            }
        );
        let detail = size(3, 512, 7).reservation_detail();
        assert_eq!(Usage::from_reservation(&detail), Some(size(3, 512, 7)));
        assert_eq!(Usage::from_reservation(&serde_json::json!({})), None);
    }

    #[test]
    fn a_budget_is_checked_in_usd_and_named_in_the_message() {
        let quotas = Quotas {
            budget: Some(Cost::from_usd(10.0)),
            ..Quotas::default()
        };
        let small = GuestSize {
            cpu_kind: crate::model::CpuKind::Shared,
            cpus: 1,
            memory_mb: 1024,
        };
        // $5.92 + 1 GB of volume ($0.15): one fits, two do not.
        let one = Usage::workspace(small, 1, IpMode::Shared);
        assert!(quotas.check("alice", one).is_ok());
        let error = quotas
            .check("alice", one.plus(one))
            .expect_err("over budget");
        assert_eq!(error.key, "budget");
        let message = error.to_string();
        assert!(message.contains("$12.14 a month"), "{message}");
        assert!(message.contains("the limit is $10.00"), "{message}");
        assert!(message.contains("quotas.budget"), "{message}");
        let detail = one.reservation_detail();
        assert_eq!(Usage::from_reservation(&detail), Some(one));
    }
}
