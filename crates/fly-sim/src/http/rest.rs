//! Machines REST under `/v1` (REFERENCE §3–§5, §7).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use serde_json::{Value, json};

use super::{
    HandlerResult, Shared, delay, json_response, limit, nonce, parse_body, query_bool, query_get,
    query_pairs,
};
use crate::Inner;
use crate::clock::{Knob, rfc3339};
use crate::ratelimit::{DEFAULT, DELETE_APP, GET_MACHINE};
use crate::world::{ApiError, MachineRequest, VolumeRequest, WaitOutcome, parse_go_duration_ms};

type AppPath = Path<String>;
type MachinePath = Path<(String, String)>;

fn str_field<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

// ---- apps ----

pub async fn list_apps(State(inner): Shared, RawQuery(q): RawQuery) -> HandlerResult {
    let q = query_pairs(q.as_deref());
    let org = query_get(&q, "org_slug")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("org_slug: required query parameter"))?;
    limit(&inner, "list_apps", org, DEFAULT)?;
    let limit_n = match query_get(&q, "limit") {
        Some(l) => Some(
            l.parse::<usize>()
                .ok()
                .filter(|n| (1..=5000).contains(n))
                .ok_or_else(|| ApiError::bad_request("limit: must be an integer from 1 to 5000"))?,
        ),
        None => None,
    };
    let cursor = query_get(&q, "cursor").unwrap_or_default().to_string();
    inner.read(|w, _| {
        if !w.org_matches(org) {
            return Err(ApiError::new(
                404,
                format!("Could not find Organization \"{org}\""),
            ));
        }
        let mut apps: Vec<_> = w.apps.values().filter(|a| a.org == w.org).collect();
        apps.sort_by(|a, b| a.name.cmp(&b.name));
        let total = apps.len();
        let start = if cursor.is_empty() {
            0
        } else {
            apps.iter()
                .position(|a| a.name.as_str() > cursor.as_str())
                .unwrap_or(total)
        };
        let end = limit_n.map_or(total, |n| (start + n).min(total));
        let page: Vec<Value> = apps[start..end]
            .iter()
            .map(|a| crate::world::render_app(a, &w.org))
            .collect();
        let mut body = json!({"apps": page, "total_apps": total});
        if limit_n.is_some()
            && end < total
            && let (Some(last), Some(obj)) = (apps.get(end.saturating_sub(1)), body.as_object_mut())
        {
            obj.insert("next_cursor".into(), json!(last.name));
        }
        Ok(json_response(200, body))
    })
}

pub async fn create_app(State(inner): Shared, body: Bytes) -> HandlerResult {
    let body = parse_body(&body)?;
    let name = str_field(&body, "name")
        .or_else(|| str_field(&body, "app_name"))
        .map(str::to_string);
    let key = str_field(&body, "idempotency_key").map(str::to_string);
    if name.is_none() && key.is_none() {
        return Err(ApiError::bad_request(
            "name: required (app_name is accepted too)",
        ));
    }
    let org = str_field(&body, "org_slug")
        .unwrap_or("personal")
        .to_string();
    limit(&inner, "create_app", &org, DEFAULT)?;
    let label = name.clone().or_else(|| key.clone()).unwrap_or_default();
    delay(&inner, Knob::AppCreate, &label).await;
    let network = str_field(&body, "network").map(str::to_string);
    inner.mutate(|w, clock| {
        let name = w.create_app(
            clock,
            name.as_deref(),
            &org,
            network.as_deref(),
            key.as_deref(),
        )?;
        let app = w.app(&name)?;
        Ok(json_response(
            201,
            json!({"id": app.id, "created_at": app.created_at}),
        ))
    })
}

pub async fn get_app(State(inner): Shared, Path(app): AppPath) -> HandlerResult {
    limit(&inner, "get_app", &app, GET_MACHINE)?;
    inner.read(|w, _| {
        let a = w.app(&app)?;
        Ok(json_response(200, crate::world::render_app(a, &w.org)))
    })
}

pub async fn delete_app(State(inner): Shared, Path(app): AppPath) -> HandlerResult {
    limit(&inner, "delete_app", "org", DELETE_APP)?;
    inner.mutate(|w, clock| w.delete_app(clock, &app))?;
    Ok(http::StatusCode::ACCEPTED.into_response())
}

// ---- machines ----

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

fn lease_body(lease: &crate::world::Lease) -> Value {
    json!({"status": "success", "data": {
        "nonce": lease.nonce, "expires_at": lease.expires_at, "owner": lease.owner,
        "description": lease.description, "version": lease.version,
    }})
}

pub async fn acquire_lease(
    State(inner): Shared,
    Path((app, id)): MachinePath,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> HandlerResult {
    let q = query_pairs(q.as_deref());
    let body = parse_body(&body)?;
    let ttl = match (body.get("ttl"), query_get(&q, "ttl")) {
        (Some(v), _) if !v.is_null() => {
            Some(v.as_i64().ok_or_else(|| {
                ApiError::bad_request("ttl: must be an integer number of seconds")
            })?)
        }
        (_, Some(t)) => Some(
            t.parse::<i64>()
                .map_err(|_| ApiError::bad_request("ttl: must be an integer number of seconds"))?,
        ),
        _ => None,
    };
    let description = str_field(&body, "description").map(str::to_string);
    limit(&inner, "lease", &id, DEFAULT)?;
    // The spec documents 201 for acquire and refresh alike.
    let (_created, lease) = inner
        .mutate(|w, clock| w.acquire_lease(clock, &app, &id, ttl, description, nonce(&headers)))?;
    Ok(json_response(201, lease_body(&lease)))
}

pub async fn get_lease(State(inner): Shared, Path((app, id)): MachinePath) -> HandlerResult {
    limit(&inner, "get_lease", &id, GET_MACHINE)?;
    let lease = inner.read(|w, clock| w.get_lease(clock, &app, &id))?;
    Ok(json_response(200, lease_body(&lease)))
}

pub async fn release_lease(
    State(inner): Shared,
    Path((app, id)): MachinePath,
    headers: HeaderMap,
) -> HandlerResult {
    limit(&inner, "lease", &id, DEFAULT)?;
    inner.mutate(|w, clock| w.release_lease(clock, &app, &id, nonce(&headers)))?;
    Ok(json_response(
        200,
        json!({"status": "success", "data": {"ok": true}}),
    ))
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

pub async fn get_metadata(State(inner): Shared, Path((app, id)): MachinePath) -> HandlerResult {
    let meta = inner.read(|w, _| w.metadata(&app, &id))?;
    Ok(json_response(200, Value::Object(meta)))
}

pub async fn patch_metadata(
    State(inner): Shared,
    Path((app, id)): MachinePath,
    body: Bytes,
) -> HandlerResult {
    let body = parse_body(&body)?;
    let meta = body
        .get("metadata")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            ApiError::bad_request("metadata: required object of key → value (null removes)")
        })?;
    let mut changes = Vec::new();
    for (k, v) in meta {
        match v {
            Value::Null => changes.push((k.clone(), None)),
            Value::String(s) => changes.push((k.clone(), Some(s.clone()))),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "metadata.{k}: must be a string or null"
                )));
            }
        }
    }
    let version = str_field(&body, "machine_version").map(str::to_string);
    limit(&inner, "update_metadata", &id, DEFAULT)?;
    inner.mutate(|w, clock| w.set_metadata(clock, &app, &id, changes, version.as_deref()))?;
    Ok(http::StatusCode::NO_CONTENT.into_response())
}

pub async fn get_metadata_key(
    State(inner): Shared,
    Path((app, id, key)): Path<(String, String, String)>,
) -> HandlerResult {
    let meta = inner.read(|w, _| w.metadata(&app, &id))?;
    match meta.get(&key) {
        Some(v) => Ok(json_response(200, json!({"value": v}))),
        None => Err(ApiError::new(
            404,
            format!("metadata key {key:?} not found"),
        )),
    }
}

pub async fn set_metadata_key(
    State(inner): Shared,
    Path((app, id, key)): Path<(String, String, String)>,
    body: Bytes,
) -> HandlerResult {
    let body = parse_body(&body)?;
    let value = body
        .get("value")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("value: required string"))?
        .to_string();
    limit(&inner, "update_metadata", &id, DEFAULT)?;
    inner.mutate(|w, clock| w.set_metadata(clock, &app, &id, vec![(key, Some(value))], None))?;
    Ok(http::StatusCode::NO_CONTENT.into_response())
}

pub async fn delete_metadata_key(
    State(inner): Shared,
    Path((app, id, key)): Path<(String, String, String)>,
) -> HandlerResult {
    limit(&inner, "update_metadata", &id, DEFAULT)?;
    inner.mutate(|w, clock| w.set_metadata(clock, &app, &id, vec![(key, None)], None))?;
    Ok(http::StatusCode::NO_CONTENT.into_response())
}

// ---- volumes ----

pub async fn list_volumes(State(inner): Shared, Path(app): AppPath) -> HandlerResult {
    limit(&inner, "list_volumes", &app, GET_MACHINE)?;
    let list = inner.read(|w, _| w.list_volumes(&app))?;
    Ok(json_response(200, Value::Array(list)))
}

pub async fn create_volume(State(inner): Shared, Path(app): AppPath, body: Bytes) -> HandlerResult {
    let body = parse_body(&body)?;
    let req = VolumeRequest::from_json(&body)?;
    limit(&inner, "create_volume", &app, DEFAULT)?;
    delay(&inner, Knob::VolumeCreate, &app).await;
    let volume = inner.mutate(|w, clock| w.create_volume(clock, &app, req))?;
    Ok(json_response(200, volume))
}

pub async fn get_volume(State(inner): Shared, Path((app, id)): MachinePath) -> HandlerResult {
    limit(&inner, "get_volume", &id, GET_MACHINE)?;
    Ok(json_response(
        200,
        inner.read(|w, _| w.get_volume(&app, &id))?,
    ))
}

pub async fn update_volume(
    State(inner): Shared,
    Path((app, id)): MachinePath,
    body: Bytes,
) -> HandlerResult {
    let body = parse_body(&body)?;
    let backup = body.get("auto_backup_enabled").and_then(Value::as_bool);
    let retention = body.get("snapshot_retention").and_then(Value::as_i64);
    limit(&inner, "update_volume", &id, DEFAULT)?;
    Ok(json_response(
        200,
        inner.mutate(|w, _| w.update_volume(&app, &id, backup, retention))?,
    ))
}

pub async fn delete_volume(State(inner): Shared, Path((app, id)): MachinePath) -> HandlerResult {
    limit(&inner, "delete_volume", &id, DEFAULT)?;
    delay(&inner, Knob::VolumeDelete, &id).await;
    Ok(json_response(
        200,
        inner.mutate(|w, clock| w.delete_volume(clock, &app, &id))?,
    ))
}

pub async fn extend_volume(
    State(inner): Shared,
    Path((app, id)): MachinePath,
    body: Bytes,
) -> HandlerResult {
    let body = parse_body(&body)?;
    let size = body
        .get("size_gb")
        .and_then(Value::as_i64)
        .ok_or_else(|| ApiError::bad_request("size_gb: required integer (the new total size)"))?;
    limit(&inner, "extend_volume", &id, DEFAULT)?;
    Ok(json_response(
        200,
        inner.mutate(|w, _| w.extend_volume(&app, &id, size))?,
    ))
}

pub async fn list_snapshots(State(inner): Shared, Path((app, id)): MachinePath) -> HandlerResult {
    limit(&inner, "list_snapshots", &id, GET_MACHINE)?;
    Ok(json_response(
        200,
        Value::Array(inner.read(|w, _| w.list_snapshots(&app, &id))?),
    ))
}

pub async fn create_snapshot(State(inner): Shared, Path((app, id)): MachinePath) -> HandlerResult {
    limit(&inner, "create_snapshot", &id, DEFAULT)?;
    Ok(json_response(
        200,
        inner.mutate(|w, clock| w.create_snapshot(clock, &app, &id))?,
    ))
}

// ---- secrets ----

fn secret_json(name: &str, s: &crate::world::Secret, show: bool) -> Value {
    let mut v = json!({"name": name, "digest": s.digest, "created_at": rfc3339(s.created_at), "updated_at": rfc3339(s.updated_at)});
    if let (true, Some(obj)) = (show, v.as_object_mut()) {
        obj.insert("value".into(), json!(s.value));
    }
    v
}

fn all_secrets(inner: &Inner, app: &str, show: bool) -> Result<Vec<Value>, ApiError> {
    inner.read(|w, _| {
        let a = w.app(app)?;
        Ok(a.secrets
            .iter()
            .map(|(k, s)| secret_json(k, s, show))
            .collect())
    })
}

pub async fn list_secrets(
    State(inner): Shared,
    Path(app): AppPath,
    RawQuery(q): RawQuery,
) -> HandlerResult {
    let q = query_pairs(q.as_deref());
    let secrets = all_secrets(&inner, &app, query_bool(&q, "show_secrets"))?;
    Ok(json_response(200, json!({"secrets": secrets})))
}

pub async fn update_secrets(
    State(inner): Shared,
    Path(app): AppPath,
    body: Bytes,
) -> HandlerResult {
    let body = parse_body(&body)?;
    let values = body
        .get("values")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            ApiError::bad_request("values: required object of NAME → value (null unsets)")
        })?;
    let mut changes = Vec::new();
    for (k, v) in values {
        match v {
            Value::Null => changes.push((k.clone(), None)),
            Value::String(s) => changes.push((k.clone(), Some(s.clone()))),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "values.{k}: must be a string or null"
                )));
            }
        }
    }
    limit(&inner, "update_secrets", &app, DEFAULT)?;
    let version = inner.mutate(|w, clock| w.update_secrets(clock, &app, changes, false))?;
    let secrets = all_secrets(&inner, &app, false)?;
    Ok(json_response(
        200,
        json!({"secrets": secrets, "version": version, "Version": version}),
    ))
}

pub async fn get_secret(
    State(inner): Shared,
    Path((app, name)): MachinePath,
    RawQuery(q): RawQuery,
) -> HandlerResult {
    let show = query_bool(&query_pairs(q.as_deref()), "show_secrets");
    inner.read(|w, _| {
        let a = w.app(&app)?;
        let s = a
            .secrets
            .get(&name)
            .ok_or_else(|| ApiError::new(404, format!("secret {name:?} not found")))?;
        Ok(json_response(200, secret_json(&name, s, show)))
    })
}

pub async fn set_secret(
    State(inner): Shared,
    Path((app, name)): MachinePath,
    body: Bytes,
) -> HandlerResult {
    let body = parse_body(&body)?;
    let value = body
        .get("value")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("value: required string"))?
        .to_string();
    limit(&inner, "update_secrets", &app, DEFAULT)?;
    let version = inner.mutate(|w, clock| {
        w.update_secrets(clock, &app, vec![(name.clone(), Some(value))], false)
    })?;
    let mut body = inner.read(|w, _| {
        let a = w.app(&app)?;
        let s = a
            .secrets
            .get(&name)
            .ok_or_else(|| ApiError::new(404, "secret not found"))?;
        Ok::<_, ApiError>(secret_json(&name, s, false))
    })?;
    if let Some(obj) = body.as_object_mut() {
        obj.insert("version".into(), json!(version));
        obj.insert("Version".into(), json!(version));
    }
    Ok(json_response(201, body))
}

pub async fn delete_secret(State(inner): Shared, Path((app, name)): MachinePath) -> HandlerResult {
    limit(&inner, "update_secrets", &app, DEFAULT)?;
    let exists = inner.read(|w, _| w.app(&app).map(|a| a.secrets.contains_key(&name)))?;
    if !exists {
        return Err(ApiError::new(404, format!("secret {name:?} not found")));
    }
    let version =
        inner.mutate(|w, clock| w.update_secrets(clock, &app, vec![(name, None)], false))?;
    Ok(json_response(
        200,
        json!({"version": version, "Version": version}),
    ))
}

// ---- IP assignments (REST) ----

fn assignment(ip: &crate::world::Ip) -> Value {
    json!({"ip": ip.address, "region": ip.region, "service_name": ip.service_name.clone().unwrap_or_default(),
           "shared": false, "created_at": rfc3339(ip.created_at)})
}

pub async fn list_ip_assignments(State(inner): Shared, Path(app): AppPath) -> HandlerResult {
    inner.read(|w, _| {
        let a = w.app(&app)?;
        let mut ips: Vec<Value> = a.ips.iter().map(assignment).collect();
        if let Some(shared) = &a.shared_ip {
            ips.push(json!({"ip": shared, "region": "global", "shared": true, "service_name": ""}));
        }
        Ok(json_response(200, json!({"ips": ips})))
    })
}

pub async fn assign_ip(State(inner): Shared, Path(app): AppPath, body: Bytes) -> HandlerResult {
    let body = parse_body(&body)?;
    let kind = str_field(&body, "type")
        .ok_or_else(|| ApiError::bad_request("type: required (v4, v6, shared_v4, private_v6)"))?
        .to_string();
    let region = str_field(&body, "region").map(str::to_string);
    let service = str_field(&body, "service_name").map(str::to_string);
    limit(&inner, "assign_ip", &app, DEFAULT)?;
    delay(&inner, Knob::IpAllocate, &app).await;
    let ip = inner.mutate(|w, clock| {
        w.allocate_ip(clock, &app, &kind, region.as_deref(), service.as_deref())
    })?;
    match ip {
        Some(ip) => Ok(json_response(200, assignment(&ip))),
        None => {
            let shared = inner.read(|w, _| w.app(&app).map(|a| a.shared_ip.clone()))?;
            Ok(json_response(
                200,
                json!({"ip": shared, "region": "global", "shared": true, "service_name": ""}),
            ))
        }
    }
}

pub async fn remove_ip(State(inner): Shared, Path((app, ip)): MachinePath) -> HandlerResult {
    limit(&inner, "remove_ip", &app, DEFAULT)?;
    inner.mutate(|w, _| w.release_ip(Some(&app), None, Some(&ip)))?;
    Ok(http::StatusCode::NO_CONTENT.into_response())
}

pub async fn regions(State(_inner): Shared) -> Response {
    let regions: Vec<Value> = crate::world::REGIONS
        .iter()
        .map(|(code, name)| {
            json!({"code": code, "name": name, "gateway_available": true,
            "requires_paid_plan": false, "deprecated": false})
        })
        .collect();
    json_response(
        200,
        json!({"nearest": crate::world::DEFAULT_REGION, "regions": regions}),
    )
}
