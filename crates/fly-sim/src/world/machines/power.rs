//! Start, stop, restart, cordon and destroy.

use serde_json::Value;

use super::config::parse_go_duration_ms;
use super::leases::check_lease;
use crate::clock::{Clock, Knob};
use crate::world::{ApiError, World};

impl World {
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
}
