//! Creating, reading, listing and updating machines, with their volume claims.

use std::collections::{HashSet, VecDeque};

use serde_json::{Value, json};

use super::config::{MachineRequest, image_of, mount_ids, normalize_config};
use super::leases::{check_lease, lease_owner};
use crate::clock::{Clock, Knob};
use crate::world::{ApiError, Lease, Machine, VersionRecord, World};

impl World {
    /// Claims the volumes a config mounts for machine `id`.
    fn claim_volumes(
        &mut self,
        clock: &Clock,
        app: &str,
        id: &str,
        region: &str,
        config: &Value,
    ) -> Result<Vec<String>, ApiError> {
        let now = clock.now_ms();
        let ids = mount_ids(config);
        let a = self.app(app)?;
        for vid in &ids {
            let v = a
                .volumes
                .get(vid)
                .filter(|v| !matches!(v.state.as_str(), "pending_destroy" | "destroyed"))
                .ok_or_else(|| ApiError::volume_not_found(vid))?;
            if v.region != region {
                return Err(ApiError::unprocessable(format!(
                    "failed to launch VM: Mounts source volume \"{vid}\" is in the wrong region (\"{}\" != \"{region}\")",
                    v.region
                )));
            }
            match &v.attached_machine_id {
                Some(holder) if holder != id => {
                    return Err(ApiError::precondition(format!(
                        "volume already claimed by machine {holder}"
                    )));
                }
                None if v.claim_until > now => {
                    // Fly reports a just-released claim with a zeroed id (REFERENCE §5).
                    return Err(ApiError::precondition(format!(
                        "volume already claimed by machine {}",
                        "\u{0}".repeat(14)
                    )));
                }
                _ => {}
            }
        }
        let a = self.app_mut(app)?;
        for vid in &ids {
            if let Some(v) = a.volumes.get_mut(vid) {
                v.attached_machine_id = Some(id.to_string());
            }
        }
        Ok(ids)
    }

    /// `POST /v1/apps/{app}/machines`.
    pub fn create_machine(
        &mut self,
        clock: &Clock,
        app: &str,
        mut req: MachineRequest,
    ) -> Result<Value, ApiError> {
        if self.app(app)?.deleting {
            return Err(ApiError::app_not_found(app));
        }
        let region = req
            .region
            .clone()
            .unwrap_or_else(|| crate::world::DEFAULT_REGION.to_string());
        if !crate::world::region_known(&region) {
            return Err(ApiError::invalid_region(&region));
        }
        normalize_config(&mut req.config).map_err(ApiError::bad_request)?;
        if let Some(ttl) = req.lease_ttl
            && ttl <= 0
        {
            return Err(ApiError::bad_request(
                "lease_ttl: must be a positive number of seconds",
            ));
        }
        if let Some(name) = &req.name
            && self
                .app(app)?
                .machines
                .values()
                .any(|m| &m.name == name && m.state != "destroyed")
        {
            return Err(ApiError::unprocessable(format!(
                "a machine named {name:?} already exists in this app"
            )));
        }
        let now = clock.now_ms();
        let id = loop {
            let id = self.hex(14);
            if !self.app(app)?.machines.contains_key(&id) {
                break id;
            }
        };
        let mounted = self.claim_volumes(clock, app, &id, &region, &req.config)?;
        let name = req.name.clone().unwrap_or_else(|| self.machine_name());
        let version = self.ulid(now);
        let numeric = self.app(app)?.internal_numeric_id;
        let private_ip = format!(
            "fdaa:0:{:x}:a7b:{}:{}:{}::2",
            numeric & 0xffff,
            &id[0..4],
            &id[4..8],
            &id[8..12]
        );
        let env = self.runtime_env(app, &req.config);
        let nonce = req.lease_ttl.map(|_| self.hex(12));
        let lease = match (req.lease_ttl, &nonce) {
            (Some(ttl), Some(nonce)) => Some(Lease {
                nonce: nonce.clone(),
                owner: lease_owner(&self.org),
                description: String::new(),
                expires_at: (now / 1000).saturating_add(ttl),
                version: version.clone(),
            }),
            _ => None,
        };
        let machine = Machine {
            id: id.clone(),
            name,
            region: region.clone(),
            state: "created".into(),
            config: req.config.clone(),
            version: version.clone(),
            private_ip,
            created_at: now,
            updated_at: now,
            events: VecDeque::new(),
            versions: vec![VersionRecord {
                version,
                config: Value::Null,
                replaced: false,
            }],
            lease,
            cordoned: false,
            pending: None,
            seq: 0,
            runtime_env: env,
            timings: Vec::new(),
            last_heartbeat: 0,
            activity: 0,
            sessions: HashSet::new(),
            destroyed_at: None,
            mounted_volumes: mounted,
            memory_snapshot: false,
            resuming: false,
            resumed: false,
            last_proxied: 0,
            app_ready_at: 0,
        };
        self.app_mut(app)?
            .machines
            .insert(id.clone(), Box::new(machine));
        let prepare = self.prepare_ms(clock, &region, &image_of(&req.config), &id);
        let steps = if req.skip_launch {
            vec![("stopped".to_string(), prepare)]
        } else {
            let boot = clock.draw_for(Knob::Boot, &id);
            vec![
                ("starting".to_string(), prepare),
                ("started".to_string(), boot),
            ]
        };
        self.enter(clock, app, &id, "created", now, steps, None);
        let a = self.app(app)?;
        let m = a
            .machines
            .get(&id)
            .ok_or_else(|| ApiError::machine_not_found(&id))?;
        let mut body = crate::world::render::machine(m, false);
        if let (Some(nonce), Some(obj)) = (nonce, body.as_object_mut()) {
            obj.insert("nonce".into(), json!(nonce));
        }
        Ok(body)
    }

    pub fn get_machine(&self, app: &str, id: &str, include_lease: bool) -> Result<Value, ApiError> {
        Ok(crate::world::render::machine(
            self.machine_ref(app, id)?,
            include_lease,
        ))
    }

    /// `GET /v1/apps/{app}/machines` with Fly's filters.
    pub fn list_machines(
        &self,
        app: &str,
        include_deleted: bool,
        region: Option<&str>,
        states: &[String],
        metadata: &[(String, String)],
        include_lease: bool,
    ) -> Result<Vec<Value>, ApiError> {
        let a = self.app(app)?;
        let mut machines: Vec<&Machine> = a
            .machines
            .values()
            .map(|m| &**m)
            .filter(|m| include_deleted || m.state != "destroyed")
            .filter(|m| region.is_none_or(|r| m.region == r))
            .filter(|m| states.is_empty() || states.contains(&m.state))
            .filter(|m| {
                metadata.iter().all(|(k, v)| {
                    m.config
                        .get("metadata")
                        .and_then(|md| md.get(k))
                        .and_then(Value::as_str)
                        == Some(v.as_str())
                })
            })
            .collect();
        machines.sort_by(|x, y| x.created_at.cmp(&y.created_at).then(x.id.cmp(&y.id)));
        Ok(machines
            .into_iter()
            .map(|m| crate::world::render::machine(m, include_lease))
            .collect())
    }

    /// `POST /v1/apps/{app}/machines/{id}`: replaces the whole config.
    pub fn update_machine(
        &mut self,
        clock: &Clock,
        app: &str,
        id: &str,
        nonce: Option<&str>,
        mut req: MachineRequest,
    ) -> Result<Value, ApiError> {
        let now = clock.now_ms();
        let m = self.machine_ref(app, id)?;
        check_lease(m, nonce, now)?;
        if let Some(expected) = &req.current_version
            && *expected != m.version
        {
            return Err(ApiError::new(
                409,
                format!(
                    "machine {id} version mismatch: current_version {expected} does not match the current version {}",
                    m.version
                ),
            ));
        }
        if matches!(m.state.as_str(), "destroying" | "destroyed") {
            return Err(ApiError::precondition(format!(
                "unable to update machine from current state: '{}'",
                m.state
            )));
        }
        if let Some(region) = &req.region
            && *region != m.region
        {
            return Err(ApiError::bad_request(format!(
                "failed to update VM {id}: region cannot be changed ({} → {region})",
                m.region
            )));
        }
        let region = m.region.clone();
        let old_image = image_of(&m.config);
        let old_mounts = m.mounted_volumes.clone();
        let was_running = matches!(m.state.as_str(), "started" | "starting" | "restarting");
        normalize_config(&mut req.config)
            .map_err(|e| ApiError::bad_request(format!("failed to update VM {id}: {e}")))?;
        let mounted = self.claim_volumes(clock, app, id, &region, &req.config)?;
        {
            let a = self.app_mut(app)?;
            for vid in old_mounts.iter().filter(|v| !mounted.contains(v)) {
                if let Some(v) = a.volumes.get_mut(vid)
                    && v.attached_machine_id.as_deref() == Some(id)
                {
                    v.attached_machine_id = None;
                }
            }
        }
        let version = self.ulid(now);
        let image = image_of(&req.config);
        // A running machine is replaced: stopped, its rootfs rebuilt, booted again
        // (REFERENCE §13 "Update (replace)", ~3 s). A stopped or created one has no VM
        // to stop: Fly writes a new version (docs machines/machine-states "Update and
        // versioning behavior") and, with the image already on the host, the update
        // costs what a create does besides the image: the machine-create response time.
        // The warm-pool blueprint's advice ("a pool of *stopped* Machines that you
        // `start` on claim", docs blueprints/warm-pool-user-machines) rests on this.
        let mut replace = if was_running {
            clock.draw_for(Knob::Replace, id)
        } else {
            clock.draw_for(Knob::MachineCreate, id)
        };
        if image != old_image {
            replace += self.prepare_ms(clock, &region, &image, id);
        }
        let env = self.runtime_env(app, &req.config);
        let m = self.machine_mut(app, id)?;
        let old_config = std::mem::replace(&mut m.config, Value::Null);
        for record in &mut m.versions {
            if record.config.is_null() {
                record.config = old_config.clone();
            }
            record.replaced = true;
        }
        m.versions.push(VersionRecord {
            version: version.clone(),
            config: Value::Null,
            replaced: false,
        });
        if m.versions.len() > 20 {
            m.versions.remove(0);
        }
        m.version = version;
        m.config = req.config;
        m.mounted_volumes = mounted;
        m.runtime_env = env;
        if let Some(lease) = m.lease.as_mut() {
            lease.version = m.version.clone();
        }
        let steps = if req.skip_launch && !was_running {
            vec![("stopped".to_string(), replace)]
        } else {
            let boot = clock.draw_for(Knob::Boot, id);
            vec![
                ("starting".to_string(), replace),
                ("started".to_string(), boot),
            ]
        };
        self.enter(clock, app, id, "replacing", now, steps, None);
        self.get_machine(app, id, false)
    }
}
