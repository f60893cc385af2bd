//! `client.machines(app).exec(id, …)`: run a command on a started machine.

use std::time::Duration;

use http::Method;

use crate::Result;
use crate::machines::Machines;
use crate::models::{ExecRequest, ExecResponse};

/// Beyond the command's own timeout: Fly's latency (exec is ~1-2 s, REFERENCE §13).
const EXEC_MARGIN: Duration = Duration::from_secs(15);
/// What we allow when the request leaves the timeout to Fly.
const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(60);

impl Machines {
    /// Runs `request.command` on machine `id` and returns its output and exit status.
    /// Fly refuses a machine that is not started. Not retried once sent: a command
    /// may have effects.
    pub async fn exec(&self, id: &str, request: &ExecRequest) -> Result<ExecResponse> {
        let runs = request
            .timeout
            .map_or(DEFAULT_EXEC_TIMEOUT, Duration::from_secs);
        let call = self
            .machine_call(Method::POST, "exec_machine", id, &["exec"])?
            .json_body(request)?
            .extra_timeout(runs + EXEC_MARGIN);
        self.client().json(call).await
    }
}
