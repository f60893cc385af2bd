//! Machine metadata (`config.metadata`), read and changed key by key.

use serde_json::{Map, Value, json};

use crate::clock::Clock;
use crate::world::{ApiError, World};

impl World {
    pub fn metadata(&self, app: &str, id: &str) -> Result<Map<String, Value>, ApiError> {
        let m = self.machine_ref(app, id)?;
        Ok(m.config
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default())
    }

    /// Sets (Some) or removes (None) metadata keys; `machine_version` guards against staleness.
    pub fn set_metadata(
        &mut self,
        clock: &Clock,
        app: &str,
        id: &str,
        changes: Vec<(String, Option<String>)>,
        machine_version: Option<&str>,
    ) -> Result<(), ApiError> {
        let now = clock.now_ms();
        let m = self.machine_mut(app, id)?;
        if let Some(v) = machine_version
            && v != m.version
        {
            return Err(ApiError::new(
                412,
                format!(
                    "machine_version {v} is stale: current version is {}",
                    m.version
                ),
            ));
        }
        let Some(config) = m.config.as_object_mut() else {
            return Err(ApiError::machine_not_found(id));
        };
        let meta = config.entry("metadata").or_insert_with(|| json!({}));
        if !meta.is_object() {
            *meta = json!({});
        }
        if let Some(meta) = meta.as_object_mut() {
            for (k, v) in changes {
                match v {
                    Some(v) => meta.insert(k, json!(v)),
                    None => meta.remove(&k),
                };
            }
        }
        m.updated_at = now;
        Ok(())
    }
}
