//! HTTP front: routing, auth, request ids, faults, latency, recording.

mod exec;
mod graphql;
mod logs;
mod proxy;
mod rest;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Value, json};

use crate::clock::Knob;
use crate::faults::{Fault, Loss};
use crate::world::ApiError;
use crate::{Exchange, Inner, lock};

pub type Shared = State<Arc<Inner>>;
pub type HandlerResult = Result<Response, ApiError>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.body)).into_response()
    }
}

pub fn json_response(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    (status, axum::Json(body)).into_response()
}

/// Parses a request body as JSON; empty means `{}`. Errors are Fly-style 400s.
pub fn parse_body(bytes: &Bytes) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// Query pairs, percent-decoded, repeated keys kept.
pub fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
    .unwrap_or_default()
}

pub fn query_get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

pub fn query_bool(pairs: &[(String, String)], key: &str) -> bool {
    pairs
        .iter()
        .any(|(k, v)| k == key && (v.is_empty() || v == "true" || v == "1"))
}

pub fn nonce(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("fly-machine-lease-nonce")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

/// Takes a rate-limit token or answers 429.
pub fn limit(
    inner: &Inner,
    action: &'static str,
    key: &str,
    quota: crate::ratelimit::Quota,
) -> Result<(), ApiError> {
    if !inner.config.rate_limits {
        return Ok(());
    }
    if lock(&inner.limiter).allow(action, key, quota) {
        Ok(())
    } else {
        Err(ApiError::new(429, "rate limit exceeded"))
    }
}

/// Sleeps an operation's modelled response time.
pub async fn delay(inner: &Inner, knob: Knob, label: &str) {
    let ms = inner.clock.draw_for(knob, label);
    inner.clock.sleep_model(ms).await;
}

pub fn router(inner: Arc<Inner>) -> Router {
    let api = Router::new()
        .route("/v1/apps", get(rest::list_apps).post(rest::create_app))
        .route(
            "/v1/apps/{app}",
            get(rest::get_app).delete(rest::delete_app),
        )
        .route(
            "/v1/apps/{app}/machines",
            get(rest::list_machines).post(rest::create_machine),
        )
        .route(
            "/v1/apps/{app}/machines/{id}",
            get(rest::get_machine)
                .post(rest::update_machine)
                .delete(rest::delete_machine),
        )
        .route(
            "/v1/apps/{app}/machines/{id}/start",
            post(rest::start_machine),
        )
        .route(
            "/v1/apps/{app}/machines/{id}/stop",
            post(rest::stop_machine),
        )
        .route(
            "/v1/apps/{app}/machines/{id}/restart",
            post(rest::restart_machine),
        )
        .route(
            "/v1/apps/{app}/machines/{id}/suspend",
            post(rest::suspend_machine),
        )
        .route(
            "/v1/apps/{app}/machines/{id}/cordon",
            post(rest::cordon_machine),
        )
        .route(
            "/v1/apps/{app}/machines/{id}/uncordon",
            post(rest::uncordon_machine),
        )
        .route(
            "/v1/apps/{app}/machines/{id}/signal",
            post(rest::signal_machine),
        )
        .route("/v1/apps/{app}/machines/{id}/wait", get(rest::wait_machine))
        .route(
            "/v1/apps/{app}/machines/{id}/exec",
            post(exec::exec_machine),
        )
        .route(
            "/v1/apps/{app}/machines/{id}/lease",
            get(rest::get_lease)
                .post(rest::acquire_lease)
                .delete(rest::release_lease),
        )
        .route(
            "/v1/apps/{app}/machines/{id}/events",
            get(rest::machine_events),
        )
        .route(
            "/v1/apps/{app}/machines/{id}/versions",
            get(rest::machine_versions),
        )
        .route(
            "/v1/apps/{app}/machines/{id}/metadata",
            get(rest::get_metadata)
                .patch(rest::patch_metadata)
                .put(rest::patch_metadata),
        )
        .route(
            "/v1/apps/{app}/machines/{id}/metadata/{key}",
            get(rest::get_metadata_key)
                .post(rest::set_metadata_key)
                .delete(rest::delete_metadata_key),
        )
        .route(
            "/v1/apps/{app}/volumes",
            get(rest::list_volumes).post(rest::create_volume),
        )
        .route(
            "/v1/apps/{app}/volumes/{id}",
            get(rest::get_volume)
                .put(rest::update_volume)
                .delete(rest::delete_volume),
        )
        .route(
            "/v1/apps/{app}/volumes/{id}/extend",
            axum::routing::put(rest::extend_volume),
        )
        .route(
            "/v1/apps/{app}/volumes/{id}/snapshots",
            get(rest::list_snapshots).post(rest::create_snapshot),
        )
        .route(
            "/v1/apps/{app}/secrets",
            get(rest::list_secrets).post(rest::update_secrets),
        )
        .route(
            "/v1/apps/{app}/secrets/{name}",
            get(rest::get_secret)
                .post(rest::set_secret)
                .delete(rest::delete_secret),
        )
        .route(
            "/v1/apps/{app}/ip_assignments",
            get(rest::list_ip_assignments).post(rest::assign_ip),
        )
        .route(
            "/v1/apps/{app}/ip_assignments/{ip}",
            axum::routing::delete(rest::remove_ip),
        )
        .route("/v1/platform/regions", get(rest::regions))
        .route("/graphql", post(graphql::handle))
        .route("/api/v1/apps/{app}/logs", get(logs::handle))
        .route("/__sim/stats", get(sim_stats))
        .route("/__sim/world", get(sim_world))
        .fallback(not_found);
    api.layer(axum::middleware::from_fn_with_state(
        Arc::clone(&inner),
        front,
    ))
    .with_state(inner)
}

async fn not_found() -> Response {
    ApiError::new(404, "Not Found").into_response()
}

async fn sim_stats(State(inner): Shared) -> Response {
    json_response(
        200,
        serde_json::to_value(inner.stats()).unwrap_or(Value::Null),
    )
}

async fn sim_world(State(inner): Shared) -> Response {
    json_response(200, inner.read(|w, _| w.dump()))
}

fn request_id() -> HeaderValue {
    let id = uuid::Uuid::new_v4().simple().to_string();
    HeaderValue::from_str(&format!("{}-sim", &id[..20])).unwrap_or(HeaderValue::from_static("sim"))
}

/// `<app>` when the request is addressed to `<app>.fly.dev` (any port).
fn proxied_app(req: &Request) -> Option<String> {
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().host().map(str::to_string))?;
    let host = host.rsplit_once(':').map_or(host.as_str(), |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host.as_str()
        }
    });
    let app = host
        .to_ascii_lowercase()
        .strip_suffix(".fly.dev")?
        .to_string();
    (!app.is_empty() && !app.contains('.')).then_some(app)
}

/// Checks `Authorization: Bearer|FlyV1 <token>` (REFERENCE §1).
fn authorized(inner: &Inner, headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, rest)) = value.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("bearer") && !scheme.eq_ignore_ascii_case("flyv1") {
        return false;
    }
    let tokens: Vec<&str> = rest
        .split(',')
        .map(|t| {
            let t = t.trim();
            t.strip_prefix("FlyV1 ")
                .or_else(|| t.strip_prefix("Bearer "))
                .unwrap_or(t)
                .trim()
        })
        .filter(|t| !t.is_empty())
        .collect();
    if tokens.is_empty() {
        return false;
    }
    match &inner.config.token {
        Some(expected) => tokens.iter().any(|t| t == expected),
        None => true,
    }
}

/// A response whose body fails at once: the client sees the connection drop.
fn reset_response() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by fly-sim fault injection",
        ))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = StatusCode::OK;
    resp
}

fn count(inner: &Inner, status: u16) {
    inner
        .counters
        .requests_total
        .fetch_add(1, Ordering::Relaxed);
    *lock(&inner.counters.by_status).entry(status).or_insert(0) += 1;
}

async fn front(State(inner): Shared, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with("/__sim/") && proxied_app(&req).is_none() {
        let mut resp = next.run(req).await;
        resp.headers_mut().insert("fly-request-id", request_id());
        return resp;
    }
    let mut resp = if let Some(app) = proxied_app(&req) {
        let resp = proxy::handle(Arc::clone(&inner), app, req).await;
        count(&inner, resp.status().as_u16());
        resp
    } else {
        fly_api(&inner, req, next).await
    };
    resp.headers_mut().insert("fly-request-id", request_id());
    resp
}

async fn fly_api(inner: &Arc<Inner>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let (fault, loss) = lock(&inner.faults).draw();
    if let Some(fault) = fault {
        inner.counters.faults.fetch_add(1, Ordering::Relaxed);
        return match fault {
            Fault::Status(429) => {
                count(inner, 429);
                with_retry_after(
                    inner,
                    ApiError::new(429, "rate limit exceeded").into_response(),
                )
            }
            Fault::Status(code) => {
                count(inner, code);
                ApiError::new(code, "internal error (fly-sim injected fault)").into_response()
            }
            Fault::Reset => {
                count(inner, 0);
                reset_response()
            }
        };
    }
    if !authorized(inner, req.headers()) {
        count(inner, 401);
        return ApiError::new(401, "Authenticate: token validation error").into_response();
    }
    let label = format!("{} {}", method, req.uri().path());
    delay(inner, Knob::ApiRtt, &label).await;
    let mutation = method != http::Method::GET && method != http::Method::HEAD;
    let (req, recorded) = if inner.config.record {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, 16 * 1024 * 1024)
            .await
            .unwrap_or_default();
        let request_body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let info = (
            parts.method.to_string(),
            parts.uri.path().to_string(),
            parts.uri.query().unwrap_or_default().to_string(),
            request_body,
        );
        (Request::from_parts(parts, Body::from(bytes)), Some(info))
    } else {
        (req, None)
    };
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let resp = if status == 429 {
        with_retry_after(inner, resp)
    } else {
        resp
    };
    // The change is applied; now lose the answer (mutations that succeeded only).
    if let (Some(loss), true, true) = (loss, mutation, resp.status().is_success()) {
        inner.counters.ambiguous.fetch_add(1, Ordering::Relaxed);
        return match loss {
            Loss::Status500 => {
                count(inner, 500);
                ApiError::new(500, "internal error (fly-sim lost the response)").into_response()
            }
            Loss::Reset => {
                count(inner, 0);
                reset_response()
            }
        };
    }
    count(inner, status);
    match recorded {
        Some((method, path, query, request_body)) => {
            let (parts, body) = resp.into_parts();
            let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024)
                .await
                .unwrap_or_default();
            let response_body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            lock(&inner.records).push(Exchange {
                method,
                path,
                query,
                request_body,
                status,
                response_body,
            });
            Response::from_parts(parts, Body::from(bytes))
        }
        None => resp,
    }
}

fn with_retry_after(inner: &Inner, mut resp: Response) -> Response {
    if inner.config.retry_after {
        resp.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}
