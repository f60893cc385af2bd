//! Health verdicts, the code-server probe, log lines.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::*;

/// Overall health verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Machine started and code-server answers `/healthz`.
    Healthy,
    /// Machine on its way up (starting, or started but not answering yet).
    Recovering,
    /// Machine stopped, failed, missing, or code-server not answering.
    Unhealthy,
}

/// code-server's `/healthz` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// The URL probed.
    pub url: String,
    /// HTTP status, or `None` when the request failed.
    pub http_status: Option<u16>,
    /// `alive` or `expired` (up but idle).
    pub status: Option<String>,
    /// Epoch milliseconds of the last activity; 0 = none since boot.
    pub last_heartbeat_ms: Option<i64>,
    /// Why the probe failed, when it did.
    pub error: Option<String>,
}

/// `health`'s answer: machine state and HTTP probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub name: String,
    pub status: HealthStatus,
    pub machine_state: Option<MachineState>,
    /// Seconds since the machine last started, when started.
    pub uptime_secs: Option<u64>,
    /// When code-server last saw activity, if it is idle (`expired`).
    #[serde(with = "time::serde::rfc3339::option")]
    pub idle_since: Option<OffsetDateTime>,
    pub probe: Option<ProbeResult>,
    /// Human summary, e.g. "machine started for 300 s; code-server up, idle".
    pub summary: String,
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub timestamp: String,
    pub level: String,
    pub instance: String,
    pub region: String,
    pub message: String,
}
