//! Volumes and their snapshots.

use axum::body::Bytes;
use axum::extract::{Path, State};
use serde_json::Value;

use super::{AppPath, MachinePath};
use crate::clock::Knob;
use crate::http::{HandlerResult, Shared, delay, json_response, limit, parse_body};
use crate::ratelimit::{DEFAULT, GET_MACHINE};
use crate::world::{ApiError, VolumeRequest};

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
