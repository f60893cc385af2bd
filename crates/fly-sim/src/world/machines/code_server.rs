//! What the proxy needs: the machine serving an app, code-server's heartbeat and sessions.

use serde_json::Value;

use super::transitions::idle_timer;
use crate::clock::Clock;
use crate::world::{Machine, World};

impl World {
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
