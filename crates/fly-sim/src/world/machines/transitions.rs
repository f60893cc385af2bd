//! State transitions: entering a state, its side effects, and the timers that fire
//! the next step (boot, stop, code-server's idle exit).

use std::collections::{BTreeMap, VecDeque};

use serde_json::{Value, json};

use super::config::{env_of, image_of};
use crate::clock::{Clock, Knob};
use crate::world::{App, Event, Machine, Pending, Timer, TimerKind, Timing, World};

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

/// code-server's idle timer for a started machine, if configured.
pub(in crate::world) fn idle_timer(app: &App, m: &Machine) -> Option<Timer> {
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
    /// The secrets the app would inject now, merged over the config's env.
    pub(super) fn runtime_env(&self, app: &str, config: &Value) -> BTreeMap<String, String> {
        let mut env = env_of(config);
        if let Some(app) = self.apps.get(app) {
            for (k, s) in &app.secrets {
                env.insert(k.clone(), s.value.clone());
            }
        }
        env
    }

    pub(super) fn prepare_ms(&mut self, clock: &Clock, region: &str, image: &str, id: &str) -> i64 {
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
    pub(in crate::world) fn enter(
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
        let timers = [
            idle_timer(a, m),
            crate::world::suspend::autostop_timer(a, m),
        ];
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
}
