//! `<app>.fly.dev`: Fly's proxy in front of a machine that answers like code-server.

use std::sync::Arc;

use argon2::{Argon2, PasswordVerifier};
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::json;

use crate::Inner;

const SESSION_COOKIE: &str = "code-server-session";
/// code-server's heart: `alive` within 60 s of the last non-healthz request.
const ALIVE_MS: i64 = 60_000;

fn text(status: StatusCode, body: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn login_page(error: Option<&str>) -> Response {
    let error = error
        .map(|e| format!("<div class=\"error\">{e}</div>"))
        .unwrap_or_default();
    html(
        StatusCode::OK,
        format!(
            "<!DOCTYPE html><html><head><title>code-server login</title></head><body>\
             <div class=\"login-form\"><h1>Welcome to code-server</h1>\
             <p>Please log in below. Check the config file for the password.</p>\
             <form method=\"post\"><input type=\"password\" name=\"password\" required autofocus>\
             <input type=\"submit\" value=\"Submit\"></form>{error}</div></body></html>"
        ),
    )
}

fn redirect(to: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to.to_string())]).into_response()
}

/// Waits (model time, ≤ 60 s) until the machine is `started`.
async fn wait_started(inner: &Arc<Inner>, app: &str, id: &str) -> bool {
    let deadline = tokio::time::Instant::now() + inner.clock.wall(60_000);
    let mut changed = inner.changed.subscribe();
    loop {
        changed.borrow_and_update();
        let state = inner.read(|w, _| w.machine_runtime(app, id).map(|m| m.state.clone()));
        match state.as_deref() {
            Some("started") => return true,
            None | Some("destroying" | "destroyed") => return false,
            _ => {}
        }
        if tokio::time::timeout_at(deadline, changed.changed())
            .await
            .is_err()
        {
            return false;
        }
    }
}

fn session_of(req: &Request) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
}

fn password_ok(password: &str, hashed: Option<&str>, plain: Option<&str>) -> bool {
    // code-server: HASHED_PASSWORD takes precedence over PASSWORD.
    if let Some(hash) = hashed {
        return Argon2::default()
            .verify_password(password.as_bytes(), hash)
            .is_ok();
    }
    match plain {
        Some(expected) => {
            // Length-independent comparison keeps timing flat.
            let (a, b) = (expected.as_bytes(), password.as_bytes());
            a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
        }
        None => false,
    }
}

pub async fn handle(inner: Arc<Inner>, app: String, req: Request) -> Response {
    let Some((id, state, autostart)) = inner.read(|w, _| w.proxy_target(&app)) else {
        let exists = inner.read(|w, _| w.apps.contains_key(&app));
        return if exists {
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "no known healthy instances found for route",
            )
        } else {
            text(StatusCode::NOT_FOUND, "404 page not found: unknown app")
        };
    };
    if state != "started" {
        if !autostart {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "no known healthy instances found for route",
            );
        }
        if matches!(
            state.as_str(),
            "stopped" | "suspended" | "created" | "failed"
        ) {
            // Fly's proxy starts the machine (bypassing leases, as flyd does for it).
            let started = inner.mutate(|w, clock| {
                let nonce = w
                    .machine_runtime(&app, &id)
                    .and_then(|m| m.lease.as_ref().map(|l| l.nonce.clone()));
                w.start_machine(clock, &app, &id, nonce.as_deref())
            });
            if started.is_err() && state != "created" {
                return text(StatusCode::SERVICE_UNAVAILABLE, "could not start machine");
            }
        }
        if !wait_started(&inner, &app, &id).await {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "machine did not start in time",
            );
        }
    }
    inner.mutate(|w, clock| w.proxied(clock, &app, &id));
    // After a cold boot code-server takes a moment to listen; Fly's proxy holds the
    // request meanwhile (a resumed machine's code-server is already up).
    let ready_at = inner.read(|w, _| w.machine_runtime(&app, &id).map_or(0, |m| m.app_ready_at));
    inner.clock.sleep_until_model(ready_at).await;
    serve(&inner, &app, &id, req).await
}

async fn serve(inner: &Arc<Inner>, app: &str, id: &str, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if path == "/healthz" || path == "/healthz/" {
        let (now, last) = inner.read(|w, clock| {
            (
                clock.now_ms(),
                w.machine_runtime(app, id).map_or(0, |m| m.last_heartbeat),
            )
        });
        let alive = last > 0 && now - last < ALIVE_MS;
        return (
            StatusCode::OK,
            axum::Json(
                json!({"status": if alive { "alive" } else { "expired" }, "lastHeartbeat": last}),
            ),
        )
            .into_response();
    }
    inner.mutate(|w, clock| w.heartbeat(clock, app, id));
    let method = req.method().clone();
    if let Some(file) = path.strip_prefix("/__sim/fs/") {
        let file = format!("/{}", file.trim_start_matches('/'));
        return match method {
            Method::PUT => {
                let bytes = match axum::body::to_bytes(req.into_body(), 64 * 1024 * 1024).await {
                    Ok(b) => b.to_vec(),
                    Err(_) => return text(StatusCode::BAD_REQUEST, "unreadable body"),
                };
                if inner.mutate(|w, _| w.write_file(app, id, &file, bytes)) {
                    StatusCode::NO_CONTENT.into_response()
                } else {
                    text(StatusCode::NOT_FOUND, "no volume mounted on this machine")
                }
            }
            Method::GET => match inner.mutate(|w, _| w.read_file(app, id, &file)) {
                Some(bytes) => (StatusCode::OK, Body::from(bytes)).into_response(),
                None => text(StatusCode::NOT_FOUND, "no such file"),
            },
            _ => text(StatusCode::METHOD_NOT_ALLOWED, "use GET or PUT"),
        };
    }
    if path == "/login" || path == "/login/" {
        if method == Method::POST {
            let bytes = axum::body::to_bytes(req.into_body(), 64 * 1024)
                .await
                .unwrap_or_default();
            let password = url::form_urlencoded::parse(&bytes)
                .find(|(k, _)| k == "password")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            let (hashed, plain) = inner.read(|w, _| {
                let env = w
                    .machine_runtime(app, id)
                    .map(|m| m.runtime_env.clone())
                    .unwrap_or_default();
                (
                    env.get("HASHED_PASSWORD").cloned(),
                    env.get("PASSWORD").cloned(),
                )
            });
            let ok = tokio::task::spawn_blocking(move || {
                password_ok(&password, hashed.as_deref(), plain.as_deref())
            })
            .await
            .unwrap_or(false);
            if !ok {
                return login_page(Some("Incorrect password"));
            }
            let token = inner.mutate(|w, _| {
                let token = w.new_token();
                w.add_session(app, id, token.clone());
                token
            });
            let mut resp = redirect("/");
            if let Ok(cookie) = HeaderValue::from_str(&format!(
                "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax"
            )) {
                resp.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            return resp;
        }
        return login_page(None);
    }
    let authed = session_of(&req).is_some_and(|s| {
        inner.read(|w, _| {
            w.machine_runtime(app, id)
                .is_some_and(|m| m.sessions.contains(&s))
        })
    });
    if !authed {
        return redirect("/login");
    }
    html(
        StatusCode::OK,
        format!(
            "<!DOCTYPE html><html><head><title>code-server</title></head>\
             <body data-machine=\"{id}\"><div id=\"workbench\">Visual Studio Code</div></body></html>"
        ),
    )
}
