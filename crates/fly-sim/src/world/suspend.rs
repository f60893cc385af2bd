//! Suspend and resume (Fly docs reference/suspend-resume), and Fly Proxy's autostop.
//!
//! - `POST .../suspend` of a `started` machine: `suspending` → `suspended`, keeping a
//!   memory snapshot. A machine Fly cannot snapshot (more than 2 GB of memory, swap,
//!   a schedule, a GPU: the docs' "Requirements") is stopped instead, the fallback
//!   REFERENCE §5 describes; the events say so.
//! - A start of a `suspended` machine with its snapshot resumes (knob `resume`, and
//!   code-server is already up); without one it cold boots. Anything that enters
//!   another state discards the snapshot: a stop, an update (new code or config), and
//!   [`World::discard_snapshot`], which stands for a host migration, maintenance or a
//!   lost snapshot file.
//! - A start during `suspending` cancels the suspend and resumes (community.fly.io
//!   t/26623, "Machines can now start from the suspending state").
//! - Autostop: a started machine whose service says `autostop` `stop` or `suspend`
//!   is checked every [`AUTOSTOP_CHECK_MS`]; with no request through the proxy since
//!   the last check it is stopped or suspended, as Fly Proxy does for an app of one
//!   machine with `min_machines_running = 0` (docs reference/fly-proxy-autostop-autostart,
//!   blueprints/long-running-tasks: "evaluates machines every few minutes").

use serde_json::{Value, json};

use super::{ApiError, App, Machine, Timer, TimerKind, World};
use crate::clock::{Clock, Knob};

/// Fly's documented memory ceiling for suspend.
pub const SUSPEND_MAX_MEMORY_MB: i64 = 2048;

/// How often the proxy looks for idle machines. Fly says "every few minutes"; five is
/// our reading of it, not a published figure.
pub const AUTOSTOP_CHECK_MS: i64 = 5 * 60 * 1000;

/// Why Fly cannot snapshot this machine, if it cannot (the docs' requirements).
pub fn suspend_blocker(config: &Value) -> Option<String> {
    let memory = config
        .pointer("/guest/memory_mb")
        .and_then(Value::as_i64)
        .unwrap_or(256);
    if memory > SUSPEND_MAX_MEMORY_MB {
        return Some(format!(
            "memory {memory} MB is above the {SUSPEND_MAX_MEMORY_MB} MB suspend limit"
        ));
    }
    if config
        .pointer("/init/swap_size_mb")
        .and_then(Value::as_i64)
        .is_some_and(|mb| mb > 0)
    {
        return Some("swap is configured".into());
    }
    if config
        .get("schedule")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
    {
        return Some("a schedule is configured".into());
    }
    if config
        .pointer("/guest/gpu_kind")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
        || config
            .pointer("/guest/gpus")
            .and_then(Value::as_i64)
            .is_some_and(|n| n > 0)
    {
        return Some("a GPU is configured".into());
    }
    None
}

/// The autostop mode of the machine's services: `Some("stop")`, `Some("suspend")`.
fn autostop_mode(m: &Machine) -> Option<&'static str> {
    let services = m.config.get("services")?.as_array()?;
    services.iter().find_map(|s| match s.get("autostop") {
        Some(Value::String(mode)) if mode == "suspend" => Some("suspend"),
        Some(Value::String(mode)) if mode == "stop" => Some("stop"),
        Some(Value::Bool(true)) => Some("stop"),
        _ => None,
    })
}

/// The next autostop check of a started machine, if its services ask for autostop.
pub(super) fn autostop_timer(app: &App, m: &Machine) -> Option<Timer> {
    autostop_mode(m)?;
    let since = m.last_proxied.max(m.updated_at);
    Some(Timer {
        at_ms: since + AUTOSTOP_CHECK_MS,
        kind: TimerKind::Autostop {
            app: app.name.clone(),
            id: m.id.clone(),
        },
    })
}

impl World {
    /// `POST .../suspend`.
    pub fn suspend_machine(
        &mut self,
        clock: &Clock,
        app: &str,
        id: &str,
        nonce: Option<&str>,
    ) -> Result<(), ApiError> {
        let now = clock.now_ms();
        let m = self.machine_ref(app, id)?;
        super::machines::check_lease(m, nonce, now)?;
        match m.state.as_str() {
            "started" => {
                self.begin_suspend(clock, app, id, now, "user");
                Ok(())
            }
            "suspending" | "suspended" => Ok(()),
            other => Err(ApiError::precondition(format!(
                "unable to suspend machine from current state: '{other}'"
            ))),
        }
    }

    /// Suspends a started machine, or stops it when it cannot be snapshotted.
    fn begin_suspend(&mut self, clock: &Clock, app: &str, id: &str, now: i64, by: &str) {
        let Ok(m) = self.machine_ref(app, id) else {
            return;
        };
        let region = m.region.clone();
        if let Some(reason) = suspend_blocker(&m.config) {
            self.log(
                clock,
                app,
                id,
                &region,
                "runner",
                format!("Machine {id} cannot be suspended ({reason}); stopping it instead"),
                now,
            );
            let dur = clock.draw_for(Knob::Stop, id).min(5_000);
            self.enter(
                clock,
                app,
                id,
                "stopping",
                now,
                vec![("stopped".into(), dur)],
                Some(json!({"suspend_fallback": reason, "by": by})),
            );
            return;
        }
        // Fly: larger memory means a longer snapshot copy.
        let memory = m
            .config
            .pointer("/guest/memory_mb")
            .and_then(Value::as_i64)
            .unwrap_or(256)
            .max(256);
        let dur = clock.draw_for(Knob::Suspend, id) * ((memory + 1023) / 1024).max(1);
        self.enter(
            clock,
            app,
            id,
            "suspending",
            now,
            vec![("suspended".into(), dur)],
            Some(json!({"by": by})),
        );
    }

    /// The snapshot is gone (host migration, maintenance, a lost file): the next start
    /// cold boots. False when there is no such machine or it holds no snapshot.
    pub fn discard_snapshot(&mut self, app: &str, id: &str) -> bool {
        match self.machine_mut(app, id) {
            Ok(m) if m.memory_snapshot => {
                m.memory_snapshot = false;
                true
            }
            _ => false,
        }
    }

    /// Records a request through the proxy (what autostop counts as traffic).
    pub fn proxied(&mut self, clock: &Clock, app: &str, id: &str) {
        let now = clock.now_ms();
        if let Ok(m) = self.machine_mut(app, id) {
            m.last_proxied = now;
        }
    }

    /// An autostop check came due.
    pub fn fire_autostop(&mut self, clock: &Clock, app: &str, id: &str) {
        let Some(a) = self.apps.get(app) else { return };
        let Some(m) = a.machines.get(id) else { return };
        if m.state != "started" {
            return;
        }
        let (Some(mode), Some(timer)) = (autostop_mode(m), autostop_timer(a, m)) else {
            return;
        };
        let now = clock.now_ms();
        if timer.at_ms > now + 5 {
            // Traffic since the last check: look again one interval after it.
            self.outbox.push(timer);
            return;
        }
        let region = m.region.clone();
        self.log(
            clock,
            app,
            id,
            &region,
            "proxy",
            format!("App {app} has excess capacity, autostopping machine {id} ({mode})"),
            now,
        );
        if mode == "suspend" {
            self.begin_suspend(clock, app, id, now, "proxy");
        } else {
            let dur = clock.draw_for(Knob::Stop, id).min(5_000);
            self.enter(
                clock,
                app,
                id,
                "stopping",
                now,
                vec![("stopped".into(), dur)],
                Some(json!({"by": "proxy"})),
            );
        }
    }

    /// Bookkeeping of a state change: a snapshot exists only while `suspended`; a
    /// cold boot makes code-server start again, a resume keeps it running.
    pub(super) fn track_snapshot(&mut self, app: &str, id: &str, state: &str, at_ms: i64) {
        let Some(m) = self.apps.get_mut(app).and_then(|a| a.machines.get_mut(id)) else {
            return;
        };
        match state {
            "suspended" => m.memory_snapshot = true,
            "starting" => {
                // Consumed by this start (resume) or useless from now on.
                m.resuming = std::mem::take(&mut m.memory_snapshot);
            }
            "started" => {
                m.resumed = std::mem::take(&mut m.resuming);
                let _ = at_ms;
            }
            _ => {
                m.memory_snapshot = false;
                m.resuming = false;
            }
        }
    }
}
