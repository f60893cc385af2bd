//! Machines: lifecycle, leases, metadata, waits and code-server's runtime state.

mod code_server;
mod config;
mod history;
mod leases;
mod metadata;
mod power;
mod provision;
mod transitions;

pub use config::{MachineRequest, guest_error, parse_go_duration_ms};
pub use history::WaitOutcome;
pub(super) use leases::check_lease;
pub(super) use transitions::idle_timer;

use super::{ApiError, Machine, World};

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
}
