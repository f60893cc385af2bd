//! Volumes, their snapshots and their files.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{ApiError, Snapshot, TimerKind, Volume, World};
use crate::clock::{Clock, Knob};

/// A parsed `CreateVolumeRequest`.
#[derive(Debug, Clone, Default)]
pub struct VolumeRequest {
    pub name: String,
    pub region: Option<String>,
    pub size_gb: Option<i64>,
    pub encrypted: Option<bool>,
    pub snapshot_id: Option<String>,
    pub source_volume_id: Option<String>,
    pub snapshot_retention: Option<i64>,
    pub auto_backup_enabled: Option<bool>,
}

impl VolumeRequest {
    pub fn from_json(body: &Value) -> Result<VolumeRequest, ApiError> {
        let obj = body
            .as_object()
            .ok_or_else(|| ApiError::bad_request("request body must be a JSON object"))?;
        let text = |k: &str| {
            obj.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let int = |k: &str| -> Result<Option<i64>, ApiError> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| ApiError::bad_request(format!("{k}: must be an integer"))),
            }
        };
        Ok(VolumeRequest {
            name: text("name").unwrap_or_default(),
            region: text("region"),
            size_gb: int("size_gb")?,
            encrypted: obj.get("encrypted").and_then(Value::as_bool),
            snapshot_id: text("snapshot_id"),
            source_volume_id: text("source_volume_id"),
            snapshot_retention: int("snapshot_retention")?,
            auto_backup_enabled: obj.get("auto_backup_enabled").and_then(Value::as_bool),
        })
    }
}

pub fn validate_volume_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 30
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "invalid volume name {name:?}: use 1 to 30 lowercase letters, digits and underscores"
        )))
    }
}

fn files_size(files: &BTreeMap<String, Vec<u8>>) -> i64 {
    files.values().map(|f| f.len() as i64).sum()
}

impl World {
    fn volume_ref(&self, app: &str, id: &str) -> Result<&Volume, ApiError> {
        self.app(app)?
            .volumes
            .get(id)
            .filter(|v| v.state != "destroyed")
            .map(|v| &**v)
            .ok_or_else(|| ApiError::volume_not_found(id))
    }

    fn volume_mut(&mut self, app: &str, id: &str) -> Result<&mut Volume, ApiError> {
        self.app_mut(app)?
            .volumes
            .get_mut(id)
            .filter(|v| v.state != "destroyed")
            .map(|v| &mut **v)
            .ok_or_else(|| ApiError::volume_not_found(id))
    }

    /// `POST /v1/apps/{app}/volumes`, including forks and snapshot restores.
    pub fn create_volume(
        &mut self,
        clock: &Clock,
        app: &str,
        req: VolumeRequest,
    ) -> Result<Value, ApiError> {
        if self.app(app)?.deleting {
            return Err(ApiError::app_not_found(app));
        }
        validate_volume_name(&req.name)?;
        let region = req
            .region
            .clone()
            .unwrap_or_else(|| super::DEFAULT_REGION.to_string());
        if !super::region_known(&region) {
            return Err(ApiError::invalid_region(&region));
        }
        // Source files and minimum size from a fork or snapshot.
        let mut files = BTreeMap::new();
        let mut min_size = 1;
        let mut hydrating = false;
        if let Some(src) = &req.source_volume_id {
            let v = self.volume_ref(app, src)?;
            files = v.files.clone();
            min_size = v.size_gb;
            hydrating = true;
        }
        if let Some(snap_id) = &req.snapshot_id {
            let owner = self.app(app)?;
            let snap = owner
                .volumes
                .values()
                .flat_map(|v| v.snapshots.iter())
                .chain(owner.retired_snapshots.values().flatten())
                .find(|s| &s.id == snap_id)
                .ok_or_else(|| ApiError::new(404, format!("snapshot not found: {snap_id}")))?;
            files = snap.files.clone();
            min_size = snap.volume_size;
            hydrating = true;
        }
        let size = req.size_gb.unwrap_or(min_size.max(3));
        if !(1..=500).contains(&size) {
            return Err(ApiError::bad_request(format!(
                "invalid size_gb {size}: must be between 1 and 500"
            )));
        }
        if size < min_size {
            return Err(ApiError::bad_request(format!(
                "invalid size_gb {size}: must be at least the source's {min_size} GB"
            )));
        }
        let retention = req
            .snapshot_retention
            .unwrap_or(super::DEFAULT_SNAPSHOT_RETENTION);
        if !(1..=60).contains(&retention) {
            return Err(ApiError::bad_request(format!(
                "invalid snapshot_retention {retention}: must be between 1 and 60 days"
            )));
        }
        let now = clock.now_ms();
        let id = format!("vol_{}", self.alnum(16));
        let zone = format!("{:x}", 0x1000 + (self.next_numeric_id % 0xe000));
        let hydrate = if hydrating {
            clock.draw(Knob::Hydrate)
        } else {
            0
        };
        let volume = Volume {
            id: id.clone(),
            name: req.name,
            region,
            zone,
            size_gb: size,
            encrypted: req.encrypted.unwrap_or(true),
            state: if hydrating && hydrate > 0 {
                "hydrating"
            } else {
                "created"
            }
            .into(),
            attached_machine_id: None,
            claim_until: 0,
            created_at: now,
            snapshot_retention: retention,
            auto_backup_enabled: req.auto_backup_enabled.unwrap_or(true),
            seq: 0,
            pending: (hydrating && hydrate > 0).then(|| (now + hydrate, "created".to_string())),
            snapshots: Vec::new(),
            files,
        };
        let pending_at = volume.pending.as_ref().map(|(at, _)| *at);
        self.app_mut(app)?
            .volumes
            .insert(id.clone(), Box::new(volume));
        if let Some(at) = pending_at {
            self.schedule(
                at,
                TimerKind::Volume {
                    app: app.to_string(),
                    id: id.clone(),
                    seq: 0,
                },
            );
        }
        self.get_volume(app, &id)
    }

    pub fn get_volume(&self, app: &str, id: &str) -> Result<Value, ApiError> {
        Ok(super::render::volume(self.volume_ref(app, id)?))
    }

    pub fn list_volumes(&self, app: &str) -> Result<Vec<Value>, ApiError> {
        let a = self.app(app)?;
        let mut vols: Vec<&Volume> = a
            .volumes
            .values()
            .map(|v| &**v)
            .filter(|v| v.state != "destroyed")
            .collect();
        vols.sort_by(|x, y| x.created_at.cmp(&y.created_at).then(x.id.cmp(&y.id)));
        Ok(vols.into_iter().map(super::render::volume).collect())
    }

    /// `DELETE .../volumes/{id}`: refused while bound (REFERENCE S10).
    pub fn delete_volume(&mut self, clock: &Clock, app: &str, id: &str) -> Result<Value, ApiError> {
        let now = clock.now_ms();
        let v = self.volume_ref(app, id)?;
        if let Some(holder) = &v.attached_machine_id {
            return Err(ApiError::precondition(format!(
                "volume is currently bound to machine: {holder}"
            )));
        }
        let hide_after = if self.latency_fly { 1_000 } else { 0 };
        let v = self.volume_mut(app, id)?;
        v.state = "pending_destroy".into();
        v.seq += 1;
        v.pending = Some((now + hide_after, "destroyed".into()));
        let seq = v.seq;
        let body = super::render::volume(v);
        self.schedule(
            now + hide_after,
            TimerKind::Volume {
                app: app.to_string(),
                id: id.to_string(),
                seq,
            },
        );
        Ok(body)
    }

    pub fn fire_volume(&mut self, app: &str, id: &str, seq: u64) {
        let Some(v) = self.apps.get_mut(app).and_then(|a| a.volumes.get_mut(id)) else {
            return;
        };
        if v.seq != seq {
            return;
        }
        if let Some((_, to)) = v.pending.take() {
            if to == "destroyed" {
                if let Some(a) = self.apps.get_mut(app)
                    && let Some(gone) = a.volumes.remove(id)
                    && !gone.snapshots.is_empty()
                {
                    a.retired_snapshots.insert(id.to_string(), gone.snapshots);
                }
            } else {
                v.state = to;
            }
        }
    }

    /// `PUT .../extend`: grow only. Returns `(volume, needs_restart)`.
    pub fn extend_volume(&mut self, app: &str, id: &str, size_gb: i64) -> Result<Value, ApiError> {
        let v = self.volume_ref(app, id)?;
        if size_gb <= v.size_gb {
            return Err(ApiError::bad_request(format!(
                "size_gb {size_gb} must be greater than the current size {} GB: volumes can only grow",
                v.size_gb
            )));
        }
        if size_gb > 500 {
            return Err(ApiError::bad_request(format!(
                "invalid size_gb {size_gb}: must be at most 500"
            )));
        }
        let holder = v.attached_machine_id.clone();
        let needs_restart = holder
            .as_ref()
            .and_then(|h| self.app(app).ok()?.machines.get(h))
            .is_some_and(|m| m.state == "started");
        let v = self.volume_mut(app, id)?;
        v.size_gb = size_gb;
        Ok(json!({"volume": super::render::volume(v), "needs_restart": needs_restart}))
    }

    pub fn update_volume(
        &mut self,
        app: &str,
        id: &str,
        auto_backup_enabled: Option<bool>,
        snapshot_retention: Option<i64>,
    ) -> Result<Value, ApiError> {
        if let Some(r) = snapshot_retention
            && !(1..=60).contains(&r)
        {
            return Err(ApiError::bad_request(format!(
                "invalid snapshot_retention {r}: must be between 1 and 60 days"
            )));
        }
        let v = self.volume_mut(app, id)?;
        if let Some(b) = auto_backup_enabled {
            v.auto_backup_enabled = b;
        }
        if let Some(r) = snapshot_retention {
            v.snapshot_retention = r;
        }
        Ok(super::render::volume(v))
    }

    pub fn create_snapshot(
        &mut self,
        clock: &Clock,
        app: &str,
        id: &str,
    ) -> Result<Value, ApiError> {
        let now = clock.now_ms();
        let snap_id = format!("vs_{}", self.alnum(16));
        let digest = self.hex(32);
        let v = self.volume_mut(app, id)?;
        let snap = Snapshot {
            id: snap_id,
            created_at: now,
            size: files_size(&v.files),
            digest,
            volume_size: v.size_gb,
            files: v.files.clone(),
        };
        let body = super::render::snapshot(&snap, v.snapshot_retention);
        v.snapshots.push(snap);
        Ok(body)
    }

    pub fn list_snapshots(&self, app: &str, id: &str) -> Result<Vec<Value>, ApiError> {
        if let Some(retired) = self.app(app)?.retired_snapshots.get(id) {
            return Ok(retired
                .iter()
                .map(|s| super::render::snapshot(s, super::DEFAULT_SNAPSHOT_RETENTION))
                .collect());
        }
        let v = self.volume_ref(app, id)?;
        Ok(v.snapshots
            .iter()
            .map(|s| super::render::snapshot(s, v.snapshot_retention))
            .collect())
    }

    // ---- files, through the proxy ----

    fn mounted_volume(&mut self, app: &str, machine: &str) -> Option<&mut Volume> {
        let a = self.apps.get_mut(app)?;
        let vid = a.machines.get(machine)?.mounted_volumes.first()?.clone();
        a.volumes.get_mut(&vid).map(|v| &mut **v)
    }

    pub fn write_file(&mut self, app: &str, machine: &str, path: &str, content: Vec<u8>) -> bool {
        match self.mounted_volume(app, machine) {
            Some(v) => {
                v.files.insert(path.to_string(), content);
                true
            }
            None => false,
        }
    }

    pub fn read_file(&mut self, app: &str, machine: &str, path: &str) -> Option<Vec<u8>> {
        self.mounted_volume(app, machine)?.files.get(path).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_names_follow_fly_rules() {
        assert!(validate_volume_name("data_1").is_ok());
        assert!(validate_volume_name("my-data").is_err());
        assert!(validate_volume_name(&"a".repeat(31)).is_err());
        assert!(validate_volume_name("").is_err());
    }
}
