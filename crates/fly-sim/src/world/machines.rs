//! Machines: lifecycle, leases, metadata, waits and code-server's runtime state.

use std::collections::{BTreeMap, HashSet, VecDeque};

use serde_json::{Map, Value, json};

use super::{
    ApiError, App, Event, Lease, Machine, Pending, Timer, TimerKind, Timing, VersionRecord, World,
};
use crate::clock::{Clock, Knob};

/// A create or update request, already parsed from JSON.
#[derive(Debug, Clone, Default)]
pub struct MachineRequest {
    pub name: Option<String>,
    pub region: Option<String>,
    pub config: Value,
    pub skip_launch: bool,
    pub lease_ttl: Option<i64>,
    pub current_version: Option<String>,
}

impl MachineRequest {
    /// Parses `CreateMachineRequest` / `UpdateMachineRequest`.
    pub fn from_json(body: &Value) -> Result<MachineRequest, ApiError> {
        let obj = body
            .as_object()
            .ok_or_else(|| ApiError::bad_request("request body must be a JSON object"))?;
        let text = |key: &str| -> Result<Option<String>, ApiError> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ApiError::bad_request(format!("{key}: must be a string"))),
            }
        };
        let config = obj.get("config").cloned().unwrap_or(Value::Null);
        if !config.is_object() {
            return Err(ApiError::bad_request("config: required, must be an object"));
        }
        let lease_ttl = match obj.get("lease_ttl") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_i64().ok_or_else(|| {
                ApiError::bad_request("lease_ttl: must be an integer number of seconds")
            })?),
        };
        Ok(MachineRequest {
            name: text("name")?.filter(|n| !n.is_empty()),
            region: text("region")?.filter(|r| !r.is_empty()),
            config,
            skip_launch: obj
                .get("skip_launch")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            lease_ttl,
            current_version: text("current_version")?.filter(|v| !v.is_empty()),
        })
    }
}

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

const SHARED_CPUS: &[i64] = &[1, 2, 4, 6, 8];
const PERFORMANCE_CPUS: &[i64] = &[1, 2, 4, 6, 8, 10, 12, 14, 16];

/// Validates a guest per REFERENCE §4.7; `None` when valid.
pub fn guest_error(cpu_kind: &str, cpus: i64, memory_mb: i64) -> Option<String> {
    let (allowed, min_per, max_per) = match cpu_kind {
        "shared" => (SHARED_CPUS, 256, 2048),
        "performance" => (PERFORMANCE_CPUS, 2048, 8192),
        other => {
            return Some(format!(
                "invalid config.guest.cpu_kind {other:?}, must be shared or performance"
            ));
        }
    };
    if !allowed.contains(&cpus) {
        return Some(format!(
            "invalid config.guest.cpus, {cpus} is not a valid number of {cpu_kind} CPUs ({allowed:?})"
        ));
    }
    let min = min_per * cpus;
    let max = max_per * cpus;
    if memory_mb < min {
        return Some(format!(
            "invalid config.guest.memory_mb, minimum required {min} MiB"
        ));
    }
    if memory_mb > max {
        return Some(format!(
            "invalid config.guest.memory_mb, cannot exceed {max} MiB"
        ));
    }
    if memory_mb % 256 != 0 {
        return Some("invalid config.guest.memory_mb, must be a multiple of 256 MiB".into());
    }
    None
}

fn preset(size: &str) -> Option<(&'static str, i64, i64)> {
    let (kind, rest) = if let Some(rest) = size.strip_prefix("shared-cpu-") {
        ("shared", rest)
    } else if let Some(rest) = size.strip_prefix("performance-") {
        ("performance", rest)
    } else {
        return None;
    };
    let cpus: i64 = rest.strip_suffix('x')?.parse().ok()?;
    let mem = if kind == "shared" { 256 } else { 2048 } * cpus;
    Some((kind, cpus, mem))
}

/// Checks and fills a machine config the way Fly's API does.
fn normalize_config(config: &mut Value) -> Result<(), String> {
    let obj = config.as_object_mut().ok_or("config: must be an object")?;
    match obj.get("image") {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        _ => return Err("invalid config.image, image is required".into()),
    }
    // Guest: explicit, else from the deprecated `size` preset, else shared-cpu-1x.
    let (mut kind, mut cpus, mut mem) = ("shared".to_string(), 1, 256);
    if let Some(size) = obj.get("size").and_then(Value::as_str) {
        let (k, c, m) = preset(size).ok_or_else(|| format!("invalid config.size {size:?}"))?;
        (kind, cpus, mem) = (k.to_string(), c, m);
    }
    let guest = obj.entry("guest").or_insert_with(|| json!({}));
    let guest = guest
        .as_object_mut()
        .ok_or("invalid config.guest, must be an object")?;
    if let Some(v) = guest.get("cpu_kind") {
        kind = v
            .as_str()
            .ok_or("invalid config.guest.cpu_kind, must be a string")?
            .to_string();
    }
    if let Some(v) = guest.get("cpus") {
        cpus = v
            .as_i64()
            .ok_or("invalid config.guest.cpus, must be an integer")?;
    }
    if let Some(v) = guest.get("memory_mb") {
        mem = v
            .as_i64()
            .ok_or("invalid config.guest.memory_mb, must be an integer")?;
    }
    if let Some(err) = guest_error(&kind, cpus, mem) {
        return Err(err);
    }
    guest.insert("cpu_kind".into(), json!(kind));
    guest.insert("cpus".into(), json!(cpus));
    guest.insert("memory_mb".into(), json!(mem));
    if let Some(env) = obj.get("env") {
        let env = env
            .as_object()
            .ok_or("invalid config.env, must be an object")?;
        if let Some((k, _)) = env.iter().find(|(_, v)| !v.is_string()) {
            return Err(format!("invalid config.env.{k}, values must be strings"));
        }
    }
    if let Some(meta) = obj.get("metadata") {
        let meta = meta
            .as_object()
            .ok_or("invalid config.metadata, must be an object")?;
        if let Some((k, _)) = meta.iter().find(|(_, v)| !v.is_string()) {
            return Err(format!(
                "invalid config.metadata.{k}, values must be strings"
            ));
        }
    }
    if let Some(services) = obj.get_mut("services") {
        let services = services
            .as_array_mut()
            .ok_or("invalid config.services, must be an array")?;
        for (i, service) in services.iter_mut().enumerate() {
            let service = service
                .as_object_mut()
                .ok_or_else(|| format!("invalid config.services[{i}], must be an object"))?;
            // Fly answers off/stop as booleans for older clients (spec `autostop`).
            let normalized = match service.get("autostop") {
                Some(Value::String(s)) if s == "off" => Some(json!(false)),
                Some(Value::String(s)) if s == "stop" => Some(json!(true)),
                Some(Value::String(s)) if s == "suspend" => None,
                Some(Value::Bool(_)) | None | Some(Value::Null) => None,
                Some(other) => {
                    return Err(format!(
                        "invalid config.services[{i}].autostop {other}, must be off, stop or suspend"
                    ));
                }
            };
            if let Some(v) = normalized {
                service.insert("autostop".into(), v);
            }
        }
    }
    if let Some(mounts) = obj.get("mounts") {
        let mounts = mounts
            .as_array()
            .ok_or("invalid config.mounts, must be an array")?;
        for (i, mount) in mounts.iter().enumerate() {
            if mount.get("volume").and_then(Value::as_str).is_none() {
                return Err(format!(
                    "invalid config.mounts[{i}].volume, a volume id is required"
                ));
            }
            match mount.get("path").and_then(Value::as_str) {
                Some(p) if p.starts_with('/') => {}
                _ => {
                    return Err(format!(
                        "invalid config.mounts[{i}].path, must be an absolute path"
                    ));
                }
            }
        }
    }
    Ok(())
}

fn mount_ids(config: &Value) -> Vec<String> {
    config
        .get("mounts")
        .and_then(Value::as_array)
        .map(|ms| {
            ms.iter()
                .filter_map(|m| m.get("volume").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn image_of(config: &Value) -> String {
    config
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn env_of(config: &Value) -> BTreeMap<String, String> {
    config
        .get("env")
        .and_then(Value::as_object)
        .map(|env| {
            env.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn event_for(state: &str) -> (&'static str, &'static str) {
    match state {
        "created" => ("launch", "user"),
        "starting" => ("start", "user"),
        "started" => ("start", "flyd"),
        "stopping" => ("stop", "user"),
        "stopped" => ("exit", "flyd"),
        "suspending" => ("suspend", "user"),
        "suspended" => ("suspend", "flyd"),
        "restarting" => ("restart", "user"),
        "replacing" | "updating" => ("update", "user"),
        "destroying" => ("destroy", "user"),
        "destroyed" => ("destroy", "flyd"),
        _ => ("update", "flyd"),
    }
}

/// Whether a lease is held and unexpired at `now_secs`.
fn active_lease(m: &Machine, now_ms: i64) -> Option<&Lease> {
    m.lease
        .as_ref()
        .filter(|l| l.expires_at.saturating_mul(1000) > now_ms)
}

/// 409 unless the caller holds the machine's lease (or none is held).
pub(super) fn check_lease(m: &Machine, nonce: Option<&str>, now_ms: i64) -> Result<(), ApiError> {
    match active_lease(m, now_ms) {
        Some(lease) if Some(lease.nonce.as_str()) != nonce => {
            Err(ApiError::lease_held(&m.id, &lease.owner, lease.expires_at))
        }
        _ => Ok(()),
    }
}

/// code-server's idle timer for a started machine, if configured.
pub(super) fn idle_timer(app: &App, m: &Machine) -> Option<Timer> {
    let secs: i64 = m
        .runtime_env
        .get("CODE_SERVER_IDLE_TIMEOUT_SECONDS")?
        .trim()
        .parse()
        .ok()?;
    if secs <= 0 {
        return None;
    }
    // The timer restarts at boot and whenever the heart goes quiet after a request.
    let base = if m.last_heartbeat > 0 {
        m.last_heartbeat + 60_000
    } else {
        m.updated_at
    };
    Some(Timer {
        at_ms: base
            .max(m.last_heartbeat)
            .saturating_add(secs.saturating_mul(1000)),
        kind: TimerKind::Idle {
            app: app.name.clone(),
            id: m.id.clone(),
            activity: m.activity,
        },
    })
}

impl World {
    pub(super) fn machine_ref(&self, app: &str, id: &str) -> Result<&Machine, ApiError> {
        self.app(app)?
            .machines
            .get(id)
            .map(|m| &**m)
            .ok_or_else(|| ApiError::machine_not_found(id))
    }

    pub(super) fn machine_mut(&mut self, app: &str, id: &str) -> Result<&mut Machine, ApiError> {
        self.app_mut(app)?
            .machines
            .get_mut(id)
            .map(|m| &mut **m)
            .ok_or_else(|| ApiError::machine_not_found(id))
    }

    /// The secrets the app would inject now, merged over the config's env.
    fn runtime_env(&self, app: &str, config: &Value) -> BTreeMap<String, String> {
        let mut env = env_of(config);
        if let Some(app) = self.apps.get(app) {
            for (k, s) in &app.secrets {
                env.insert(k.clone(), s.value.clone());
            }
        }
        env
    }

    fn prepare_ms(&mut self, clock: &Clock, region: &str, image: &str, id: &str) -> i64 {
        let key = format!("{region}/{image}");
        if self.prepared_images.insert(key) {
            clock.draw_for(Knob::ImagePrepareFirst, id)
        } else {
            clock.draw_for(Knob::ImagePrepareCached, id)
        }
    }

    /// Moves a machine into `state` now and optionally queues further steps.
    #[allow(
        clippy::too_many_arguments,
        reason = "one flat call per transition reads better than a one-use struct"
    )]
    pub(super) fn enter(
        &mut self,
        clock: &Clock,
        app: &str,
        id: &str,
        state: &str,
        at_ms: i64,
        steps: Vec<(String, i64)>,
        request: Option<Value>,
    ) {
        let Some(m) = self.apps.get_mut(app).and_then(|a| a.machines.get_mut(id)) else {
            return;
        };
        let from = m.state.clone();
        m.state = state.to_string();
        m.updated_at = at_ms;
        m.seq += 1;
        let (kind, source) = event_for(state);
        let event_id = self.ulid(at_ms);
        let Some(m) = self.apps.get_mut(app).and_then(|a| a.machines.get_mut(id)) else {
            return;
        };
        App::push_event(
            m,
            Event {
                id: event_id,
                kind: kind.into(),
                status: state.into(),
                source: source.into(),
                timestamp: at_ms,
                request,
            },
        );
        let _ = from;
        m.pending = None;
        let mut steps = VecDeque::from(steps);
        if let Some((to, dur)) = steps.pop_front() {
            m.timings.push(Timing {
                from: state.to_string(),
                to: to.clone(),
                model_ms: dur,
            });
            if m.timings.len() > 20 {
                m.timings.remove(0);
            }
            let pending = Pending {
                at_ms: at_ms + dur,
                to,
                then: steps.into_iter().collect(),
            };
            let seq = m.seq;
            let at = pending.at_ms;
            m.pending = Some(pending);
            self.schedule(
                at,
                TimerKind::Machine {
                    app: app.to_string(),
                    id: id.to_string(),
                    seq,
                },
            );
        }
        self.track_snapshot(app, id, state, at_ms);
        self.on_entered(clock, app, id, state, at_ms);
    }

    /// Side effects of reaching a state: logs, volume release, code-server boot.
    fn on_entered(&mut self, clock: &Clock, app: &str, id: &str, state: &str, at_ms: i64) {
        let Some(m) = self.apps.get(app).and_then(|a| a.machines.get(id)) else {
            return;
        };
        let region = m.region.clone();
        let image = image_of(&m.config);
        let message = match state {
            "created" => Some(format!("Machine {id} created (image {image})")),
            "starting" => Some(format!("Starting machine {id}")),
            "started" => Some(format!("Machine {id} started")),
            "stopping" => Some(format!("Sending signal SIGTERM to machine {id}")),
            "stopped" => Some(format!("Machine {id} stopped")),
            "suspended" => Some(format!("Machine {id} suspended")),
            "replacing" => Some(format!("Updating machine {id}")),
            "destroying" => Some(format!("Destroying machine {id}")),
            "destroyed" => Some(format!("Machine {id} destroyed")),
            _ => None,
        };
        if let Some(message) = message {
            self.log(clock, app, id, &region, "runner", message, at_ms);
        }
        match state {
            "started" if self.machine_ref(app, id).is_ok_and(|m| m.resumed) => {
                // Resumed from the snapshot: code-server never stopped running.
                self.log(
                    clock,
                    app,
                    id,
                    &region,
                    "runner",
                    format!("Machine {id} resumed from snapshot"),
                    at_ms,
                );
                if let Some(m) = self.apps.get_mut(app).and_then(|a| a.machines.get_mut(id)) {
                    m.app_ready_at = at_ms;
                }
                self.arm_started_timers(app, id);
            }
            "started" => {
                let lines = [
                    "[code-server] info  code-server 4.133.0",
                    "[code-server] info  Using config file /home/coder/.config/code-server/config.yaml",
                    "[code-server] info  HTTP server listening on http://0.0.0.0:8080/",
                    "[code-server] info    - Authentication is enabled",
                    "[code-server] info  Session server listening on /home/coder/.local/share/code-server/code-server-ipc.sock",
                ];
                for line in lines {
                    self.log(clock, app, id, &region, "app", line.to_string(), at_ms);
                }
                // A cold boot: code-server starts its process before it listens.
                let app_boot = clock.draw_for(Knob::AppBoot, id);
                if let Some(a) = self.apps.get_mut(app)
                    && let Some(m) = a.machines.get_mut(id)
                {
                    m.last_heartbeat = 0;
                    m.activity += 1;
                    m.app_ready_at = at_ms + app_boot;
                }
                self.arm_started_timers(app, id);
            }
            "destroyed" => {
                let hold = if self.latency_fly {
                    clock.draw_for(Knob::ClaimHold, id)
                } else {
                    0
                };
                if let Some(a) = self.apps.get_mut(app) {
                    let vols = a
                        .machines
                        .get(id)
                        .map(|m| m.mounted_volumes.clone())
                        .unwrap_or_default();
                    if let Some(m) = a.machines.get_mut(id) {
                        m.destroyed_at = Some(at_ms);
                        m.lease = None;
                        m.sessions.clear();
                    }
                    for vid in vols {
                        if let Some(v) = a.volumes.get_mut(&vid)
                            && v.attached_machine_id.as_deref() == Some(id)
                        {
                            v.attached_machine_id = None;
                            v.claim_until = at_ms + hold;
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// code-server's idle timer and the proxy's autostop check of a started machine.
    fn arm_started_timers(&mut self, app: &str, id: &str) {
        let Some(a) = self.apps.get(app) else { return };
        let Some(m) = a.machines.get(id) else { return };
        let timers = [idle_timer(a, m), super::suspend::autostop_timer(a, m)];
        self.outbox.extend(timers.into_iter().flatten());
    }

    /// Applies a due machine step (from a timer).
    pub fn fire_machine(&mut self, clock: &Clock, app: &str, id: &str, seq: u64) {
        let Some(m) = self.apps.get(app).and_then(|a| a.machines.get(id)) else {
            return;
        };
        if m.seq != seq {
            return;
        }
        let Some(p) = m.pending.clone() else {
            return;
        };
        if p.to == "starting" && m.state == "created" {
            // The image is now on the host.
            let key = format!("{}/{}", m.region, image_of(&m.config));
            self.prepared_images.insert(key);
        }
        if p.to == "starting" || p.to == "started" {
            let env = self.runtime_env(app, &m.config.clone());
            if let Some(m) = self.apps.get_mut(app).and_then(|a| a.machines.get_mut(id)) {
                m.runtime_env = env;
            }
        }
        let request = (p.to == "stopped").then(|| {
            json!({"exit_event": {"exit_code": 0, "oom_killed": false, "requested_stop": true,
                    "restarting": false, "guest_exit_code": 0, "signal": -1,
                    "exited_at": crate::clock::rfc3339(p.at_ms)}})
        });
        self.enter(clock, app, id, &p.to, p.at_ms, p.then, request);
    }

    /// code-server's idle timeout fired: the process exits 0, and restart policy
    /// `on-failure` (or `no`) leaves the machine stopped.
    pub fn fire_idle(&mut self, clock: &Clock, app: &str, id: &str, activity: u64) {
        let Some(a) = self.apps.get(app) else { return };
        let Some(m) = a.machines.get(id) else { return };
        if m.state != "started" || m.activity != activity {
            return;
        }
        let Some(timer) = idle_timer(a, m) else {
            return;
        };
        let now = clock.now_ms();
        if timer.at_ms > now + 5 {
            // Activity moved the deadline; wait for the new one.
            self.outbox.push(timer);
            return;
        }
        let policy = m
            .config
            .pointer("/restart/policy")
            .and_then(Value::as_str)
            .unwrap_or("on-failure")
            .to_string();
        let auto_destroy = m
            .config
            .get("auto_destroy")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let at = timer.at_ms;
        let exit = json!({"exit_event": {"exit_code": 0, "oom_killed": false, "requested_stop": false,
                "restarting": policy == "always", "guest_exit_code": 0, "signal": -1,
                "exited_at": crate::clock::rfc3339(at)}});
        self.log(
            clock,
            app,
            id,
            &m.region.clone(),
            "app",
            "[code-server] info  Idle timeout reached, shutting down".into(),
            at,
        );
        if auto_destroy {
            let destroy = clock.draw_for(Knob::Destroy, id);
            self.enter(clock, app, id, "stopped", at, vec![], Some(exit));
            self.enter(
                clock,
                app,
                id,
                "destroying",
                at,
                vec![("destroyed".into(), destroy)],
                None,
            );
        } else if policy == "always" {
            let boot = clock.draw_for(Knob::Boot, id);
            self.enter(clock, app, id, "stopped", at, vec![], Some(exit));
            self.enter(
                clock,
                app,
                id,
                "starting",
                at,
                vec![("started".into(), boot)],
                None,
            );
        } else {
            self.enter(clock, app, id, "stopped", at, vec![], Some(exit));
        }
    }

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
            .unwrap_or_else(|| super::DEFAULT_REGION.to_string());
        if !super::region_known(&region) {
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
        let mut body = super::render::machine(m, false);
        if let (Some(nonce), Some(obj)) = (nonce, body.as_object_mut()) {
            obj.insert("nonce".into(), json!(nonce));
        }
        Ok(body)
    }

    pub fn get_machine(&self, app: &str, id: &str, include_lease: bool) -> Result<Value, ApiError> {
        Ok(super::render::machine(
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
            .map(|m| super::render::machine(m, include_lease))
            .collect())
    }

    fn start_refusal(state: &str) -> ApiError {
        ApiError::precondition(format!(
            "unable to start machine from current state: '{state}'"
        ))
    }

    /// `POST .../start` → `(previous_state)`.
    pub fn start_machine(
        &mut self,
        clock: &Clock,
        app: &str,
        id: &str,
        nonce: Option<&str>,
    ) -> Result<String, ApiError> {
        let now = clock.now_ms();
        let fly = self.latency_fly;
        let m = self.machine_ref(app, id)?;
        check_lease(m, nonce, now)?;
        let previous = m.state.clone();
        let pending_to = m.pending.as_ref().map(|p| p.to.clone());
        match previous.as_str() {
            "started" | "starting" | "restarting" => return Ok(previous),
            "created" if pending_to.as_deref() == Some("starting") => {
                return if fly {
                    Err(Self::start_refusal("created"))
                } else {
                    Ok(previous)
                };
            }
            "replacing" | "updating" => {
                return if fly {
                    Err(Self::start_refusal(&previous))
                } else {
                    Ok(previous)
                };
            }
            "stopping" if fly => return Err(Self::start_refusal("stopping")),
            "created" if fly && pending_to.is_some() => return Err(Self::start_refusal("created")),
            "created" | "stopped" | "suspended" | "failed" | "stopping" => {}
            "suspending" => {
                // Interruptible suspend: the VM is still in memory, so it resumes.
                self.machine_mut(app, id)?.memory_snapshot = true;
            }
            other => return Err(Self::start_refusal(other)),
        }
        let resume = self.machine_ref(app, id)?.memory_snapshot;
        let knob = if resume { Knob::Resume } else { Knob::Boot };
        let boot = clock.draw_for(knob, id);
        let env = self.runtime_env(app, &self.machine_ref(app, id)?.config.clone());
        self.machine_mut(app, id)?.runtime_env = env;
        self.enter(
            clock,
            app,
            id,
            "starting",
            now,
            vec![("started".into(), boot)],
            None,
        );
        Ok(previous)
    }

    /// `POST .../stop` with an optional stop timeout (model ms).
    pub fn stop_machine(
        &mut self,
        clock: &Clock,
        app: &str,
        id: &str,
        nonce: Option<&str>,
        timeout_ms: Option<i64>,
    ) -> Result<(), ApiError> {
        let now = clock.now_ms();
        let m = self.machine_ref(app, id)?;
        check_lease(m, nonce, now)?;
        let state = m.state.clone();
        let config_timeout = m
            .config
            .pointer("/stop_config/timeout")
            .and_then(Value::as_str)
            .and_then(parse_go_duration_ms);
        match state.as_str() {
            "started" | "starting" | "restarting" => {
                let cap = timeout_ms.or(config_timeout).unwrap_or(5_000).max(0);
                let dur = clock.draw_for(Knob::Stop, id).min(cap);
                self.enter(
                    clock,
                    app,
                    id,
                    "stopping",
                    now,
                    vec![("stopped".into(), dur)],
                    None,
                );
                Ok(())
            }
            "stopping" | "stopped" | "created" | "failed" => Ok(()),
            "suspended" => {
                // Stopping a suspended machine discards its snapshot.
                self.enter(clock, app, id, "stopped", now, vec![], None);
                Ok(())
            }
            other => Err(ApiError::precondition(format!(
                "unable to stop machine from current state: '{other}'"
            ))),
        }
    }

    pub fn restart_machine(
        &mut self,
        clock: &Clock,
        app: &str,
        id: &str,
        nonce: Option<&str>,
    ) -> Result<(), ApiError> {
        let now = clock.now_ms();
        let m = self.machine_ref(app, id)?;
        check_lease(m, nonce, now)?;
        if m.state != "started" {
            return Err(ApiError::precondition(format!(
                "unable to restart machine from current state: '{}'",
                m.state
            )));
        }
        let dur = clock.draw_for(Knob::Stop, id).min(5_000) + clock.draw_for(Knob::Boot, id);
        self.enter(
            clock,
            app,
            id,
            "restarting",
            now,
            vec![("started".into(), dur)],
            None,
        );
        Ok(())
    }

    pub fn cordon(
        &mut self,
        clock: &Clock,
        app: &str,
        id: &str,
        nonce: Option<&str>,
        cordoned: bool,
    ) -> Result<(), ApiError> {
        let now = clock.now_ms();
        check_lease(self.machine_ref(app, id)?, nonce, now)?;
        self.machine_mut(app, id)?.cordoned = cordoned;
        Ok(())
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

    /// `DELETE .../{id}` (`force`/`kill`); `cascade` is an app deletion.
    pub fn destroy_machine(
        &mut self,
        clock: &Clock,
        app: &str,
        id: &str,
        force: bool,
        nonce: Option<&str>,
        cascade: bool,
    ) -> Result<(), ApiError> {
        let now = clock.now_ms();
        let m = self.machine_ref(app, id)?;
        if !cascade {
            check_lease(m, nonce, now)?;
        }
        match m.state.as_str() {
            "destroying" | "destroyed" => return Ok(()),
            "stopped" | "created" | "suspended" | "failed" => {}
            _ if force => {}
            _ => {
                return Err(ApiError::precondition(
                    "unable to destroy machine, not currently stopped",
                ));
            }
        }
        let dur = clock.draw_for(Knob::Destroy, id);
        self.enter(
            clock,
            app,
            id,
            "destroying",
            now,
            vec![("destroyed".into(), dur)],
            None,
        );
        Ok(())
    }

    // ---- leases ----

    /// Acquire or refresh. Returns `(created, lease)`.
    pub fn acquire_lease(
        &mut self,
        clock: &Clock,
        app: &str,
        id: &str,
        ttl: Option<i64>,
        description: Option<String>,
        nonce: Option<&str>,
    ) -> Result<(bool, Lease), ApiError> {
        let ttl = ttl.unwrap_or(30);
        if ttl <= 0 {
            return Err(ApiError::bad_request(
                "ttl: must be a positive number of seconds",
            ));
        }
        let now = clock.now_ms();
        let fresh_nonce = self.hex(12);
        let org = self.org.clone();
        let m = self.machine_mut(app, id)?;
        if m.state == "destroyed" {
            return Err(ApiError::machine_not_found(id));
        }
        let held = active_lease(m, now).cloned();
        match held {
            Some(lease) if Some(lease.nonce.as_str()) == nonce => {
                let refreshed = Lease {
                    expires_at: (now / 1000).saturating_add(ttl),
                    description: description.unwrap_or(lease.description.clone()),
                    version: m.version.clone(),
                    ..lease
                };
                m.lease = Some(refreshed.clone());
                Ok((false, refreshed))
            }
            Some(lease) => Err(ApiError::lease_held(id, &lease.owner, lease.expires_at)),
            None => {
                let lease = Lease {
                    nonce: fresh_nonce,
                    owner: lease_owner(&org),
                    description: description.unwrap_or_default(),
                    expires_at: (now / 1000).saturating_add(ttl),
                    version: m.version.clone(),
                };
                m.lease = Some(lease.clone());
                Ok((true, lease))
            }
        }
    }

    pub fn get_lease(&self, clock: &Clock, app: &str, id: &str) -> Result<Lease, ApiError> {
        let m = self.machine_ref(app, id)?;
        active_lease(m, clock.now_ms())
            .cloned()
            .ok_or_else(|| ApiError::new(404, format!("no active lease for machine {id}")))
    }

    pub fn release_lease(
        &mut self,
        clock: &Clock,
        app: &str,
        id: &str,
        nonce: Option<&str>,
    ) -> Result<(), ApiError> {
        let now = clock.now_ms();
        let m = self.machine_mut(app, id)?;
        let Some(nonce) = nonce else {
            return Err(ApiError::bad_request(
                "fly-machine-lease-nonce: header required to release a lease",
            ));
        };
        match active_lease(m, now) {
            Some(lease) if lease.nonce != nonce => {
                Err(ApiError::lease_held(id, &lease.owner, lease.expires_at))
            }
            _ => {
                m.lease = None;
                Ok(())
            }
        }
    }

    // ---- events, versions, metadata ----

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
            .map(super::render::event)
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

    // ---- wait ----

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

    // ---- proxy (code-server) ----

    /// The machine that serves `<app>.fly.dev`: a started one, else one that can autostart.
    /// A cordoned machine has its services off: the proxy neither routes to it nor
    /// starts it (`fly machine cordon`: "deactivate all services on a machine").
    pub fn proxy_target(&self, app: &str) -> Option<(String, String, bool)> {
        let a = self.apps.get(app).filter(|a| !a.deleting)?;
        let mut machines: Vec<&Machine> = a
            .machines
            .values()
            .map(|m| &**m)
            .filter(|m| !m.cordoned && !matches!(m.state.as_str(), "destroying" | "destroyed"))
            .collect();
        machines.sort_by_key(|m| (m.state != "started", m.created_at));
        let m = machines.first()?;
        let autostart = m
            .config
            .get("services")
            .and_then(Value::as_array)
            .is_some_and(|svcs| {
                svcs.iter()
                    .any(|s| s.get("autostart").and_then(Value::as_bool).unwrap_or(false))
            });
        Some((m.id.clone(), m.state.clone(), autostart))
    }

    /// Records a non-healthz request on a machine (code-server's heartbeat).
    pub fn heartbeat(&mut self, clock: &Clock, app: &str, id: &str) {
        self.heartbeat_at(app, id, clock.now_ms());
    }

    /// Records code-server's last heartbeat as `at_ms` (model ms), as if the last
    /// non-healthz request had come then; its idle timer restarts from there, as
    /// code-server's does. False when there is no such machine.
    pub fn heartbeat_at(&mut self, app: &str, id: &str, at_ms: i64) -> bool {
        let Some(a) = self.apps.get_mut(app) else {
            return false;
        };
        let Some(m) = a.machines.get_mut(id) else {
            return false;
        };
        m.last_heartbeat = at_ms;
        m.activity += 1;
        let timer = self
            .apps
            .get(app)
            .and_then(|a| a.machines.get(id).and_then(|m| idle_timer(a, m)));
        if let Some(t) = timer {
            self.outbox.push(t);
        }
        true
    }

    pub fn machine_runtime(&self, app: &str, id: &str) -> Option<&Machine> {
        self.apps
            .get(app)
            .and_then(|a| a.machines.get(id))
            .map(|m| &**m)
    }

    pub fn add_session(&mut self, app: &str, id: &str, token: String) {
        if let Some(m) = self.apps.get_mut(app).and_then(|a| a.machines.get_mut(id)) {
            m.sessions.insert(token);
        }
    }

    pub fn new_token(&mut self) -> String {
        self.hex(32)
    }
}

fn lease_owner(org: &str) -> String {
    format!("sim-user@{org}.fly.sim")
}

/// Parses a Go duration (`"10s"`, `"1m30s"`, `"500ms"`) or plain seconds into ms.
pub fn parse_go_duration_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return Some((secs * 1000.0) as i64);
    }
    let mut total = 0.0;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() || n == 'µ' {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let value: f64 = number.parse().ok()?;
        number.clear();
        let factor = match unit.as_str() {
            "ns" => 1e-6,
            "us" | "µs" => 1e-3,
            "ms" => 1.0,
            "s" => 1000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            _ => return None,
        };
        total += value * factor;
        any = true;
    }
    if !number.is_empty() || !any {
        return None;
    }
    Some(total as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_bounds_follow_fly() {
        assert_eq!(guest_error("shared", 1, 1024), None);
        assert_eq!(
            guest_error("shared", 4, 512).as_deref(),
            Some("invalid config.guest.memory_mb, minimum required 1024 MiB")
        );
        assert_eq!(
            guest_error("shared", 1, 4096).as_deref(),
            Some("invalid config.guest.memory_mb, cannot exceed 2048 MiB")
        );
        assert_eq!(
            guest_error("performance", 8, 8192).as_deref(),
            Some("invalid config.guest.memory_mb, minimum required 16384 MiB")
        );
        assert!(guest_error("shared", 3, 768).is_some());
        assert!(guest_error("shared", 1, 300).is_some());
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_go_duration_ms("10s"), Some(10_000));
        assert_eq!(parse_go_duration_ms("1m30s"), Some(90_000));
        assert_eq!(parse_go_duration_ms("250ms"), Some(250));
        assert_eq!(parse_go_duration_ms("7"), Some(7_000));
        assert_eq!(parse_go_duration_ms("bogus"), None);
    }
}
