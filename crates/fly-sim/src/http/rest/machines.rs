//! Machine lifecycle, `/wait`, events and versions.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use http::HeaderMap;
use serde_json::{Value, json};

use super::{AppPath, MachinePath};
use crate::clock::Knob;
use crate::http::{
    HandlerResult, Shared, delay, json_response, limit, nonce, parse_body, query_bool, query_get,
    query_pairs,
};
use crate::ratelimit::{DEFAULT, GET_MACHINE};
use crate::world::{ApiError, MachineRequest, WaitOutcome, parse_go_duration_ms};

pub async fn list_machines(
    State(inner): Shared,
    Path(app): AppPath,
    RawQuery(q): RawQuery,
) -> HandlerResult {
    let q = query_pairs(q.as_deref());
    limit(&inner, "list_machines", &app, GET_MACHINE)?;
    let states: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "state")
        .flat_map(|(_, v)| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        })
        .collect();
    let metadata: Vec<(String, String)> = q
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("metadata.")
                .map(|k| (k.to_string(), v.clone()))
        })
        .collect();
    let region = query_get(&q, "region").filter(|r| !r.is_empty());
    let list = inner.read(|w, _| {
        w.list_machines(
            &app,
            query_bool(&q, "include_deleted"),
            region,
            &states,
            &metadata,
            query_bool(&q, "include_leases"),
        )
    })?;
    Ok(json_response(200, Value::Array(list)))
}

pub async fn create_machine(
    State(inner): Shared,
    Path(app): AppPath,
    body: Bytes,
) -> HandlerResult {
    let body = parse_body(&body)?;
    let req = MachineRequest::from_json(&body)?;
    limit(&inner, "create_machine", &app, DEFAULT)?;
    delay(&inner, Knob::MachineCreate, &app).await;
    let machine = inner.mutate(|w, clock| w.create_machine(clock, &app, req))?;
    Ok(json_response(200, machine))
}

pub async fn get_machine(
    State(inner): Shared,
    Path((app, id)): MachinePath,
    RawQuery(q): RawQuery,
) -> HandlerResult {
    let q = query_pairs(q.as_deref());
    limit(&inner, "get_machine", &id, GET_MACHINE)?;
    let machine = inner.read(|w, _| w.get_machine(&app, &id, query_bool(&q, "include_leases")))?;
    Ok(json_response(200, machine))
}

pub async fn update_machine(
    State(inner): Shared,
    Path((app, id)): MachinePath,
    headers: HeaderMap,
    body: Bytes,
) -> HandlerResult {
    let body = parse_body(&body)?;
    let req = MachineRequest::from_json(&body)?;
    limit(&inner, "update_machine", &id, DEFAULT)?;
    let machine =
        inner.mutate(|w, clock| w.update_machine(clock, &app, &id, nonce(&headers), req))?;
    Ok(json_response(200, machine))
}

pub async fn delete_machine(
    State(inner): Shared,
    Path((app, id)): MachinePath,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> HandlerResult {
    let q = query_pairs(q.as_deref());
    let force = query_bool(&q, "force") || query_bool(&q, "kill");
    limit(&inner, "delete_machine", &id, DEFAULT)?;
    inner.mutate(|w, clock| w.destroy_machine(clock, &app, &id, force, nonce(&headers), false))?;
    Ok(json_response(200, json!({"ok": true})))
}

pub async fn start_machine(
    State(inner): Shared,
    Path((app, id)): MachinePath,
    headers: HeaderMap,
) -> HandlerResult {
    limit(&inner, "start_machine", &id, DEFAULT)?;
    let previous = inner.mutate(|w, clock| w.start_machine(clock, &app, &id, nonce(&headers)))?;
    Ok(json_response(
        200,
        json!({"previous_state": previous, "migrated": false, "new_host": ""}),
    ))
}

pub async fn stop_machine(
    State(inner): Shared,
    Path((app, id)): MachinePath,
    headers: HeaderMap,
    body: Bytes,
) -> HandlerResult {
    let body = parse_body(&body)?;
    let timeout = match body.get("timeout") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(parse_go_duration_ms(s).ok_or_else(|| {
            ApiError::bad_request(format!("timeout: {s:?} is not a duration such as \"10s\""))
        })?),
        // fly-go's Duration also accepts nanoseconds as a number.
        Some(Value::Number(n)) => n.as_i64().map(|ns| ns / 1_000_000),
        Some(_) => return Err(ApiError::bad_request("timeout: must be a duration string")),
    };
    if let Some(signal) = body.get("signal").and_then(Value::as_str)
        && !signal.starts_with("SIG")
    {
        return Err(ApiError::bad_request(format!(
            "signal: unknown signal {signal:?}"
        )));
    }
    limit(&inner, "stop_machine", &id, DEFAULT)?;
    inner.mutate(|w, clock| w.stop_machine(clock, &app, &id, nonce(&headers), timeout))?;
    Ok(json_response(200, json!({"ok": true})))
}

pub async fn restart_machine(
    State(inner): Shared,
    Path((app, id)): MachinePath,
    headers: HeaderMap,
) -> HandlerResult {
    limit(&inner, "restart_machine", &id, DEFAULT)?;
    inner.mutate(|w, clock| w.restart_machine(clock, &app, &id, nonce(&headers)))?;
    Ok(json_response(200, json!({"ok": true})))
}

pub async fn suspend_machine(
    State(inner): Shared,
    Path((app, id)): MachinePath,
    headers: HeaderMap,
) -> HandlerResult {
    limit(&inner, "suspend_machine", &id, DEFAULT)?;
    inner.mutate(|w, clock| w.suspend_machine(clock, &app, &id, nonce(&headers)))?;
    Ok(json_response(200, json!({"ok": true})))
}

pub async fn cordon_machine(
    State(inner): Shared,
    Path((app, id)): MachinePath,
    headers: HeaderMap,
) -> HandlerResult {
    limit(&inner, "cordon_machine", &id, DEFAULT)?;
    inner.mutate(|w, clock| w.cordon(clock, &app, &id, nonce(&headers), true))?;
    Ok(json_response(200, json!({"ok": true})))
}

pub async fn uncordon_machine(
    State(inner): Shared,
    Path((app, id)): MachinePath,
    headers: HeaderMap,
) -> HandlerResult {
    limit(&inner, "uncordon_machine", &id, DEFAULT)?;
    inner.mutate(|w, clock| w.cordon(clock, &app, &id, nonce(&headers), false))?;
    Ok(json_response(200, json!({"ok": true})))
}

/// `POST .../signal`: SIGKILL/SIGTERM/SIGINT end the process (like a stop), others are no-ops.
pub async fn signal_machine(
    State(inner): Shared,
    Path((app, id)): MachinePath,
    headers: HeaderMap,
    body: Bytes,
) -> HandlerResult {
    let body = parse_body(&body)?;
    let signal = match body.get("signal") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => format!("{n}"),
        _ => return Err(ApiError::bad_request("signal: required, e.g. \"SIGKILL\"")),
    };
    limit(&inner, "signal_machine", &id, DEFAULT)?;
    let ends = matches!(
        signal.as_str(),
        "SIGKILL" | "9" | "SIGTERM" | "15" | "SIGINT" | "2"
    );
    inner.mutate(|w, clock| {
        if ends {
            w.stop_machine(clock, &app, &id, nonce(&headers), Some(0))
        } else {
            w.get_machine(&app, &id, false).map(|_| ())
        }
    })?;
    Ok(json_response(200, json!({"ok": true})))
}

/// `GET .../wait`: long-polls up to 60 s (model time), 408 on timeout.
pub async fn wait_machine(
    State(inner): Shared,
    Path((app, id)): MachinePath,
    RawQuery(q): RawQuery,
) -> HandlerResult {
    let q = query_pairs(q.as_deref());
    let mut states: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "state")
        .flat_map(|(_, v)| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        })
        .collect();
    if states.is_empty() {
        states.push("started".into());
    }
    const KNOWN: &[&str] = &[
        "started",
        "stopped",
        "suspended",
        "destroyed",
        "failed",
        "settled",
        "created",
    ];
    if let Some(bad) = states.iter().find(|s| !KNOWN.contains(&s.as_str())) {
        return Err(ApiError::bad_request(format!(
            "state: invalid value {bad:?}, expected one of {}",
            KNOWN.join(", ")
        )));
    }
    let timeout_secs = match query_get(&q, "timeout").filter(|t| !t.is_empty()) {
        None => 60,
        Some(t) => {
            let ms = parse_go_duration_ms(t)
                .filter(|ms| *ms >= 0)
                .ok_or_else(|| {
                    ApiError::bad_request(format!("timeout: {t:?} is not a number of seconds"))
                })?;
            (ms / 1000).clamp(1, 60)
        }
    };
    let version = query_get(&q, "version")
        .or_else(|| query_get(&q, "instance_id"))
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    limit(&inner, "wait_machine", &id, GET_MACHINE)?;
    let deadline = tokio::time::Instant::now() + inner.clock.wall(timeout_secs * 1000);
    let mut changed = inner.changed.subscribe();
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        changed.borrow_and_update();
        let outcome = inner.read(|w, _| w.wait_check(&app, &id, &states, version.as_deref()))?;
        if let WaitOutcome::Reached {
            state,
            version,
            event_id,
        } = outcome
        {
            return Ok(json_response(
                200,
                json!({"ok": true, "state": state, "version": version, "event_id": event_id}),
            ));
        }
        tokio::select! {
            r = tokio::time::timeout_at(deadline, changed.changed()) => {
                if r.is_err() {
                    return Err(ApiError::new(
                        408,
                        format!("deadline_exceeded: timeout waiting for machine to be {}", states.join(" or ")),
                    ));
                }
            }
            _ = shutdown.wait_for(|s| *s) => return Err(ApiError::new(503, "fly-sim is shutting down")),
        }
    }
}

pub async fn machine_events(
    State(inner): Shared,
    Path((app, id)): MachinePath,
    RawQuery(q): RawQuery,
) -> HandlerResult {
    let q = query_pairs(q.as_deref());
    let n = query_get(&q, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(20)
        .clamp(1, 50);
    limit(&inner, "get_machine", &id, GET_MACHINE)?;
    let events = inner.read(|w, _| w.machine_events(&app, &id, n))?;
    Ok(json_response(200, Value::Array(events)))
}

pub async fn machine_versions(State(inner): Shared, Path((app, id)): MachinePath) -> HandlerResult {
    limit(&inner, "get_machine", &id, GET_MACHINE)?;
    let versions = inner.read(|w, _| w.machine_versions(&app, &id))?;
    Ok(json_response(200, Value::Array(versions)))
}
