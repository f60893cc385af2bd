//! A machine's events and versions, and the `/wait` check over them.

use serde_json::{Value, json};

use crate::world::{ApiError, World};

/// What a `/wait` check found.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitOutcome {
    Reached {
        state: String,
        version: String,
        event_id: String,
    },
    NotYet,
}

impl World {
    pub fn machine_events(
        &self,
        app: &str,
        id: &str,
        limit: usize,
    ) -> Result<Vec<Value>, ApiError> {
        let m = self.machine_ref(app, id)?;
        Ok(m.events
            .iter()
            .rev()
            .take(limit)
            .map(crate::world::render::event)
            .collect())
    }

    pub fn machine_versions(&self, app: &str, id: &str) -> Result<Vec<Value>, ApiError> {
        let m = self.machine_ref(app, id)?;
        Ok(m.versions
            .iter()
            .rev()
            .map(|v| {
                let config = if v.config.is_null() {
                    &m.config
                } else {
                    &v.config
                };
                json!({"version": v.version, "user_config": config})
            })
            .collect())
    }

    /// One check for `/wait`: has the machine reached one of `states`?
    pub fn wait_check(
        &self,
        app: &str,
        id: &str,
        states: &[String],
        version: Option<&str>,
    ) -> Result<WaitOutcome, ApiError> {
        let m = self.machine_ref(app, id)?;
        if let Some(version) = version
            && version != m.version
        {
            if m.versions.iter().any(|v| v.version == version) {
                // The asked-for version is gone: it counts as stopped/destroyed.
                if states.iter().any(|s| s == "stopped" || s == "destroyed") {
                    return Ok(WaitOutcome::Reached {
                        state: "replaced".into(),
                        version: version.into(),
                        event_id: String::new(),
                    });
                }
                return Err(ApiError::bad_request(format!(
                    "machine {id} version {version} is currently replaced"
                )));
            }
            return Err(ApiError::new(
                404,
                format!("machine {id} version {version} not found"),
            ));
        }
        let settled = !matches!(
            m.state.as_str(),
            "creating"
                | "starting"
                | "stopping"
                | "restarting"
                | "suspending"
                | "destroying"
                | "updating"
                | "replacing"
        ) && m.pending.is_none();
        let hit = states
            .iter()
            .any(|s| *s == m.state || (s == "settled" && settled));
        if hit {
            let event_id = m.events.back().map(|e| e.id.clone()).unwrap_or_default();
            return Ok(WaitOutcome::Reached {
                state: m.state.clone(),
                version: m.version.clone(),
                event_id,
            });
        }
        Ok(WaitOutcome::NotYet)
    }
}
