//! The web dashboard at `/`: a person signs in with an API token and sees and acts on
//! their workspaces. It holds no rules of its own: pages read through the same
//! controller functions as the API (`visible`, `Caller::may_use`), and every action
//! the page takes is a request to the API routes themselves, sent through
//! [`api_proxy`] with the session's caller in place of a bearer token.
//!
//! Sessions live in this process only (a restart signs everyone out): the cookie
//! holds a random session id, never the token. State-changing requests need the
//! session's CSRF token and, when the browser sends one, a same-origin `Origin`.

mod live;
mod pages;
mod workspace_page;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Form, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get, post};
use serde::Deserialize;
use tower::ServiceExt;

use super::Controller;
use super::api_error::ApiError;
use super::auth::{self, Caller};
use swarm::provider::Provider;
use swarm_store::Store;

/// How long a session lasts from sign-in, used or not.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);
/// The session cookie; its value is a session id.
const SESSION_COOKIE: &str = "swarm_session";
/// The sign-in form's own CSRF cookie (a double submit: no session exists yet).
const LOGIN_COOKIE: &str = "swarm_login";
/// The header the page's script sends the session's CSRF token in.
const CSRF_HEADER: &str = "x-csrf-token";

/// The caller of a dashboard request, put on the request handed to the API routes.
/// Only this module makes one, so no client can claim it.
#[derive(Debug, Clone)]
pub(crate) struct SignedIn(Caller);

impl SignedIn {
    pub(crate) fn caller(&self) -> &Caller {
        &self.0
    }
}

/// One signed-in browser.
#[derive(Debug, Clone)]
struct Session {
    caller: Caller,
    csrf: String,
    expires: Instant,
}

/// The sessions of this process, by id.
#[derive(Debug, Default)]
struct Sessions(Mutex<HashMap<String, Session>>);

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn begin(&self, caller: Caller) -> Result<(String, Session), ApiError> {
        let id = random()?;
        let session = Session {
            caller,
            csrf: random()?,
            expires: Instant::now() + SESSION_LIFETIME,
        };
        let mut sessions = self.lock();
        let now = Instant::now();
        sessions.retain(|_, session| session.expires > now);
        sessions.insert(id.clone(), session.clone());
        Ok((id, session))
    }

    fn get(&self, id: &str) -> Option<Session> {
        let mut sessions = self.lock();
        match sessions.get(id) {
            Some(session) if session.expires > Instant::now() => Some(session.clone()),
            Some(_) => {
                sessions.remove(id);
                None
            }
            None => None,
        }
    }

    fn end(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// What the dashboard's handlers share.
struct Dash<S: Store, P: Provider> {
    controller: Arc<Controller<S, P>>,
    /// The API routes, which the page's requests are handed to.
    api: Router,
    sessions: Arc<Sessions>,
}

impl<S: Store, P: Provider> Clone for Dash<S, P> {
    fn clone(&self) -> Self {
        Self {
            controller: Arc::clone(&self.controller),
            api: self.api.clone(),
            sessions: Arc::clone(&self.sessions),
        }
    }
}

impl<S: Store, P: Provider> Dash<S, P> {
    /// The request's session, if its cookie names a live one.
    fn session(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let id = cookie(headers, SESSION_COOKIE)?;
        self.sessions.get(&id).map(|session| (id, session))
    }
}

/// `api` with the dashboard beside it, and the browser-safety headers on every answer.
pub(super) fn mount<S: Store, P: Provider>(
    api: Router,
    controller: Arc<Controller<S, P>>,
) -> Router {
    let dash = Dash {
        controller,
        api: api.clone(),
        sessions: Arc::default(),
    };
    Router::new()
        .route("/", get(pages::list::<S, P>))
        .route("/w/{name}", get(pages::workspace::<S, P>))
        .route("/login", get(pages::login::<S, P>).post(sign_in::<S, P>))
        .route("/logout", post(sign_out::<S, P>))
        .route("/ui/events", get(live::changes::<S, P>))
        .route("/ui/operations/{id}/steps", get(live::steps::<S, P>))
        .route("/ui/api/{*path}", any(api_proxy::<S, P>))
        .route("/assets/app.js", get(script))
        .route("/assets/app.css", get(style))
        .with_state(dash)
        .merge(api)
        .layer(axum::middleware::map_response(secure_headers))
}

pub(crate) const SCRIPT: &str = include_str!("assets/app.js");
pub(crate) const STYLE: &str = include_str!("assets/app.css");

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// No inline script or style, nothing from elsewhere, never in a frame.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        // `same-origin`, not `no-referrer`: with that, Chromium sends `Origin: null` on
        // the page's own form posts, which the origin check refuses.
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

#[derive(Deserialize)]
struct SignInForm {
    token: String,
    csrf: String,
}

// The token is a secret: no Debug that could print it.
impl std::fmt::Debug for SignInForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignInForm { .. }")
    }
}

async fn sign_in<S: Store, P: Provider>(
    State(dash): State<Dash<S, P>>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let login_csrf = cookie(&headers, LOGIN_COOKIE);
    if !same_origin(&headers)
        || !login_csrf.is_some_and(|expected| same_secret(&expected, &form.csrf))
    {
        return refused(
            "the sign-in form was not sent from this dashboard; open /login and try again",
        );
    }
    let caller = match auth::authenticate(dash.controller.swarm.store(), form.token.trim()).await {
        Ok(Some(caller)) => caller,
        Ok(None) => {
            return pages::login_page(
                &headers,
                StatusCode::UNAUTHORIZED,
                Some(
                    "not a valid API token (an admin makes one with `swarm token create --user NAME`)",
                ),
            );
        }
        Err(error) => return ApiError::from(swarm::error::Error::Store(error)).into_response(),
    };
    let (id, _) = match dash.sessions.begin(caller) {
        Ok(session) => session,
        Err(error) => return error.into_response(),
    };
    let secure = is_https(&headers);
    let mut response = Redirect::to("/").into_response();
    let cookies = response.headers_mut();
    append_cookie(
        cookies,
        &session_cookie(&id, SESSION_LIFETIME.as_secs(), secure),
    );
    append_cookie(
        cookies,
        &session_cookie_named(LOGIN_COOKIE, "", 0, secure, "/login"),
    );
    response
}

#[derive(Debug, Deserialize)]
struct SignOutForm {
    csrf: String,
}

async fn sign_out<S: Store, P: Provider>(
    State(dash): State<Dash<S, P>>,
    headers: HeaderMap,
    Form(form): Form<SignOutForm>,
) -> Response {
    let Some((id, session)) = dash.session(&headers) else {
        return Redirect::to("/login").into_response();
    };
    if !same_origin(&headers) || !same_secret(&session.csrf, &form.csrf) {
        return refused("the sign-out form was not sent from this dashboard");
    }
    dash.sessions.end(&id);
    let mut response = Redirect::to("/login").into_response();
    append_cookie(
        response.headers_mut(),
        &session_cookie("", 0, is_https(&headers)),
    );
    response
}

/// A page's request to the API: `/ui/api/v1/…` answered by `/v1/…` as the session's
/// caller. Anything but a read needs the session's CSRF token in `x-csrf-token`.
async fn api_proxy<S: Store, P: Provider>(
    State(dash): State<Dash<S, P>>,
    request: Request,
) -> Response {
    let Some((_, session)) = dash.session(request.headers()) else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "not signed in, or the session ended: sign in again at /login",
        )
        .into_response();
    };
    if !is_read(request.method()) {
        let token = request
            .headers()
            .get(CSRF_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        if !same_origin(request.headers()) || !same_secret(&session.csrf, token) {
            return refused(
                "this request did not come from the dashboard's own page (CSRF token missing or wrong)",
            );
        }
    }
    let Some(path) = request
        .uri()
        .path_and_query()
        .and_then(|path| path.as_str().strip_prefix("/ui/api"))
        .filter(|path| path.starts_with("/v1/"))
        .and_then(|path| path.parse::<axum::http::Uri>().ok())
    else {
        return ApiError::not_found("the dashboard forwards only /ui/api/v1/…").into_response();
    };
    // A new request, not this one with another URI: this route's own path
    // parameters ride in its extensions and would confuse the API's.
    let (parts, body) = request.into_parts();
    let mut forwarded = Request::new(body);
    *forwarded.method_mut() = parts.method;
    *forwarded.uri_mut() = path;
    *forwarded.version_mut() = parts.version;
    *forwarded.headers_mut() = parts.headers;
    let headers = forwarded.headers_mut();
    headers.remove(header::COOKIE);
    headers.remove(header::AUTHORIZATION);
    forwarded.extensions_mut().insert(SignedIn(session.caller));
    match dash.api.oneshot(forwarded).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD)
}

/// 403 for a request from elsewhere.
fn refused(why: &str) -> Response {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", why).into_response()
}

/// False when the browser says the request came from another origin. Browsers send
/// `Origin` with every POST; its absence (curl, say) leaves the CSRF token to decide.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or_default();
    let origin = origin.to_str().unwrap_or_default();
    !host.is_empty()
        && origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            == Some(host)
}

/// Whether the browser reached us over HTTPS (at a TLS-terminating proxy).
fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// The value of cookie `name`, if the request has it.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, value)| *key == name && !value.is_empty())
        .map(|(_, value)| value.to_owned())
}

fn session_cookie(id: &str, max_age: u64, secure: bool) -> String {
    session_cookie_named(SESSION_COOKIE, id, max_age, secure, "/")
}

fn session_cookie_named(name: &str, value: &str, max_age: u64, secure: bool, path: &str) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

fn append_cookie(headers: &mut HeaderMap, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        headers.append(header::SET_COOKIE, value);
    }
}

/// Compares two secrets in time that does not depend on where they differ.
fn same_secret(expected: &str, given: &str) -> bool {
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

fn random() -> Result<String, ApiError> {
    auth::random_hex(32).map_err(|error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            error.to_string(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; swarm_session=abc; b=2"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "c"), None);
    }

    #[test]
    fn another_origin_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&headers));
    }

    #[test]
    fn the_session_cookie_is_strict_and_http_only() {
        let cookie = session_cookie("id", 60, true);
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert!(cookie.ends_with("; Secure"));
        assert!(!session_cookie("id", 60, false).contains("Secure"));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
