//! Machine metadata, whole and key by key.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::{MachinePath, str_field};
use crate::http::{HandlerResult, Shared, json_response, limit, parse_body};
use crate::ratelimit::DEFAULT;
use crate::world::ApiError;

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
