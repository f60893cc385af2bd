//! Per-user quotas (`[quotas]` in the config file): a create or resize that would take
//! a user past one is refused (403) before anything runs.

use serde::{Deserialize, Serialize};

use super::api_error::ApiError;
use crate::model::{WorkspaceRecord, WorkspaceStatus};

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

/// What a user's workspaces take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub workspaces: u32,
    pub cpus: u32,
    pub memory: u64,
    pub storage: u64,
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
                r.status != WorkspaceStatus::Deleted && r.spec.owner.as_deref() == Some(user)
            })
            .map(Self::of)
            .fold(Self::default(), |sum, one| Self {
                workspaces: sum.workspaces.saturating_add(one.workspaces),
                cpus: sum.cpus.saturating_add(one.cpus),
                memory: sum.memory.saturating_add(one.memory),
                storage: sum.storage.saturating_add(one.storage),
            })
    }
}

impl Quotas {
    /// Refuses `after` (the user's usage once the change is made) past a limit.
    pub fn check(&self, user: &str, after: Usage) -> Result<(), ApiError> {
        let over = [
            (
                "workspaces",
                u64::from(after.workspaces),
                self.workspaces.map(u64::from),
                "",
            ),
            (
                "cpus",
                u64::from(after.cpus),
                self.cpus.map(u64::from),
                " CPUs",
            ),
            ("memory", after.memory, self.memory, " MB of memory"),
            ("storage", after.storage, self.storage, " GB of storage"),
        ]
        .into_iter()
        .find_map(|(key, used, limit, unit)| {
            limit
                .filter(|limit| used > *limit)
                .map(|limit| (key, used, limit, unit))
        });
        match over {
            None => Ok(()),
            Some((key, used, limit, unit)) => Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "quota_exceeded",
                format!(
                    "quota exceeded: {user} would have {used}{unit}{}, the limit is {limit} (quotas.{key} in the server's config file); delete or shrink a workspace first",
                    if key == "workspaces" {
                        " workspaces"
                    } else {
                        ""
                    }
                ),
            )),
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
        assert_eq!(error.status, axum::http::StatusCode::FORBIDDEN);
        assert!(
            error.body.error.contains("quotas.cpus"),
            "{}",
            error.body.error
        );
        assert!(error.body.error.contains("5 CPUs"), "{}", error.body.error);
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
}
