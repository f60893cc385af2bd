//! IP assignments (REST).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::{AppPath, MachinePath, str_field};
use crate::clock::{Knob, rfc3339};
use crate::http::{HandlerResult, Shared, delay, json_response, limit, parse_body};
use crate::ratelimit::DEFAULT;
use crate::world::ApiError;

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
