//! `GET /api/v1/apps/{app}/logs` (REFERENCE §8): pages of lines after `next_token`.

use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};

use super::{HandlerResult, Shared, json_response, limit, query_get, query_pairs};
use crate::ratelimit::GET_MACHINE;

/// Most lines in one page.
const PAGE: usize = 100;

fn timestamp(ms: i64) -> String {
    let base = crate::clock::rfc3339(ms);
    // Fly's log timestamps carry sub-second precision.
    match base.strip_suffix('Z') {
        Some(b) => format!("{b}.{:03}Z", ms.rem_euclid(1000)),
        None => base,
    }
}

pub async fn handle(
    State(inner): Shared,
    Path(app): Path<String>,
    RawQuery(q): RawQuery,
) -> HandlerResult {
    let q = query_pairs(q.as_deref());
    let after: u64 = query_get(&q, "next_token")
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse().map_err(|_| {
                crate::world::ApiError::bad_request("next_token: not a token from a previous page")
            })
        })
        .transpose()?
        .unwrap_or(0);
    let instance = query_get(&q, "instance").filter(|s| !s.is_empty());
    let region = query_get(&q, "region").filter(|s| !s.is_empty());
    limit(&inner, "logs", &app, GET_MACHINE)?;
    inner.read(|w, clock| {
        let a = w.app(&app)?;
        let now = clock.now_ms();
        let mut last = after;
        let data: Vec<Value> = a
            .logs
            .iter()
            .filter(|l| l.seq > after)
            // Stop at the first line still in flight (log lag) so paging never skips it.
            .take_while(|l| l.visible_at <= now)
            .filter(|l| instance.is_none_or(|i| l.instance == i))
            .filter(|l| region.is_none_or(|r| l.region == r))
            .take(PAGE)
            .map(|l| {
                last = l.seq;
                json!({"id": format!("{:020}", l.seq), "type": "logs", "attributes": {
                    "timestamp": timestamp(l.timestamp), "message": l.message, "level": l.level,
                    "instance": l.instance, "region": l.region,
                    "meta": {"instance": l.instance, "region": l.region, "event": {"provider": l.provider}},
                }})
            })
            .collect();
        let token = if last == 0 { String::new() } else { last.to_string() };
        Ok(json_response(200, json!({"data": data, "meta": {"next_token": token}})))
    })
}
