//! Apps: list, create, get, delete.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::{AppPath, str_field};
use crate::clock::Knob;
use crate::http::{
    HandlerResult, Shared, delay, json_response, limit, parse_body, query_get, query_pairs,
};
use crate::ratelimit::{DEFAULT, DELETE_APP, GET_MACHINE};
use crate::world::ApiError;

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
