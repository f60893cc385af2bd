//! `POST /v1/apps/{app}/machines/{id}/exec` (REFERENCE §4; the commands: `world/exec.rs`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use serde_json::json;

use super::{HandlerResult, Shared, delay, json_response, limit, parse_body};
use crate::clock::Knob;
use crate::ratelimit::DEFAULT;
use crate::world::{ApiError, ExecRequest};

/// Answers 200 `{stdout, stderr, exit_code, exit_signal}` after the exec latency plus
/// the command's own run time; 408 when that passes the request's `timeout`.
pub async fn exec_machine(
    State(inner): Shared,
    Path((app, id)): Path<(String, String)>,
    body: Bytes,
) -> HandlerResult {
    let body = parse_body(&body)?;
    let request = ExecRequest::from_json(&body)?;
    limit(&inner, "exec", &id, DEFAULT)?;
    let outcome = inner.read(|w, _| w.exec(&app, &id, &request))?;
    delay(&inner, Knob::Exec, &id).await;
    let timeout_ms = i64::try_from(request.timeout_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    if outcome.runs_ms > timeout_ms {
        inner.clock.sleep_model(timeout_ms).await;
        return Err(ApiError::new(
            408,
            format!(
                "deadline_exceeded: the command ran past its timeout of {} s and was killed",
                request.timeout_secs
            ),
        ));
    }
    inner.clock.sleep_model(outcome.runs_ms).await;
    Ok(json_response(
        200,
        json!({
            "stdout": outcome.stdout,
            "stderr": outcome.stderr,
            "exit_code": outcome.exit_code,
            "exit_signal": 0,
        }),
    ))
}
