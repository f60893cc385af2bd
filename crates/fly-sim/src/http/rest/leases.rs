//! Machine leases.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use http::HeaderMap;
use serde_json::{Value, json};

use super::{MachinePath, str_field};
use crate::http::{
    HandlerResult, Shared, json_response, limit, nonce, parse_body, query_get, query_pairs,
};
use crate::ratelimit::{DEFAULT, GET_MACHINE};
use crate::world::ApiError;

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
