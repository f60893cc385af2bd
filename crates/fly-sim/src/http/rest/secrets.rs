//! App secrets (REST).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};

use super::{AppPath, MachinePath};
use crate::Inner;
use crate::clock::rfc3339;
use crate::http::{
    HandlerResult, Shared, json_response, limit, parse_body, query_bool, query_pairs,
};
use crate::ratelimit::DEFAULT;
use crate::world::ApiError;

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
