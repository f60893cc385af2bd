//! The pages, rendered on the server from the same reads as the API's: the list
//! through `Swarm::list` and `Caller::may_use`, a workspace through `visible` (so
//! another user's answers 404 here as there). Their script (`assets/app.js`) makes
//! them live and sends the actions to the API.

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{Dash, LOGIN_COOKIE, Session};
use crate::{Controller, HealthCheck, Usage};
use swarm::provider::Provider;
use swarm_core::model::{WorkspaceRecord, WorkspaceStatus};
use swarm_store::Store;

/// Rows on one page of the list: keeps the page small with thousands of workspaces.
pub const PAGE_SIZE: usize = 100;

/// Text made safe to put in HTML, in an element or a quoted attribute.
pub(super) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: `body` inside the header every signed-in page has.
fn page(title: &str, kind: &str, session: &Session, body: &str) -> Response {
    let user = esc(&session.caller.user);
    let admin = if session.caller.admin {
        " <span class=\"badge\">admin</span>"
    } else {
        ""
    };
    let csrf = esc(&session.csrf);
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"csrf-token\" content=\"{csrf}\"><title>{title} · Swarm</title>\
<link rel=\"stylesheet\" href=\"/assets/app.css\"><script src=\"/assets/app.js\" defer></script></head>\
<body data-page=\"{kind}\"><header><a class=\"brand\" href=\"/\">Swarm</a><nav aria-label=\"Account\">\
<span>Signed in as <strong>{user}</strong>{admin}</span>\
<form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<button type=\"submit\">Sign out</button></form></nav></header><main>{body}</main></body></html>",
        title = esc(title),
    ))
    .into_response()
}

/// The request's session, if it has a live one.
fn signed_in<S: Store, P: Provider>(dash: &Dash<S, P>, headers: &HeaderMap) -> Option<Session> {
    dash.session(headers).map(|(_, session)| session)
}

fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

/// The sign-in page, with `error` beside the token field.
pub(super) fn login_page(headers: &HeaderMap, status: StatusCode, error: Option<&str>) -> Response {
    // A fresh double-submit token each time the form is shown.
    let Ok(csrf) = super::random() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let (invalid, message) = match error {
        Some(error) => (
            " aria-invalid=\"true\" aria-describedby=\"token-error\"",
            format!(
                "<p class=\"field-error\" id=\"token-error\" role=\"alert\">{}</p>",
                esc(error)
            ),
        ),
        None => ("", String::new()),
    };
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>Sign in · Swarm</title>\
<link rel=\"stylesheet\" href=\"/assets/app.css\"></head><body data-page=\"login\"><main class=\"narrow\">\
<h1>Sign in to Swarm</h1><form method=\"post\" action=\"/login\" class=\"card\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<label for=\"token\">API token</label><input id=\"token\" name=\"token\" type=\"password\" \
autocomplete=\"off\" required{invalid}>{message}\
<p class=\"hint\">An admin makes one with <code>swarm token create --user NAME</code>.</p>\
<button type=\"submit\">Sign in</button></form></main></body></html>"
    );
    let cookie =
        super::session_cookie_named(LOGIN_COOKIE, &csrf, 600, super::is_https(headers), "/login");
    (status, [(header::SET_COOKIE, cookie)], Html(body)).into_response()
}

pub(super) async fn login<S: Store, P: Provider>(
    State(dash): State<Dash<S, P>>,
    headers: HeaderMap,
) -> Response {
    if dash.session(&headers).is_some() {
        return Redirect::to("/").into_response();
    }
    login_page(&headers, StatusCode::OK, None)
}

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    #[serde(default)]
    page: usize,
}

/// The workspace list: the caller's (an admin's: everyone's), a page at a time.
pub(super) async fn list<S: Store, P: Provider>(
    State(dash): State<Dash<S, P>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    let Some(session) = signed_in(&dash, &headers) else {
        return to_login();
    };
    let caller = &session.caller;
    let c = &dash.controller;
    let records: Vec<WorkspaceRecord> = match c.swarm.list().await {
        Ok(records) => records
            .into_iter()
            .filter(|record| caller.may_use(record.spec.owner.as_deref()))
            .collect(),
        Err(error) => return error_page(&session, &error.to_string(), StatusCode::BAD_GATEWAY),
    };
    let health = c.last_health(|owner| caller.may_use(owner));
    let pages = records.len().div_ceil(PAGE_SIZE).max(1);
    let current = query.page.min(pages - 1);
    let mut body = String::with_capacity(64 * 1024);
    body.push_str(
        "<div class=\"title\"><h1>Workspaces</h1></div>\
<p id=\"live\" class=\"hint\" role=\"status\" aria-live=\"polite\">Live: connecting…</p>",
    );
    body.push_str(&create_form(c));
    body.push_str(progress_section());
    let owner_column = if caller.admin {
        "<th scope=\"col\">Owner</th>"
    } else {
        ""
    };
    let _ = write!(
        body,
        "<div class=\"scroll\"><table id=\"workspaces\" data-last-page=\"{last}\" data-admin=\"{admin}\">\
<caption>{count} workspace{s}</caption><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">State</th>\
<th scope=\"col\">Health</th><th scope=\"col\">Region</th><th scope=\"col\">Size</th>\
<th scope=\"col\">Image</th><th scope=\"col\">Idle since</th><th scope=\"col\">URL</th>\
<th scope=\"col\">Cost / month</th>{owner_column}</tr></thead><tbody>",
        last = current + 1 == pages,
        admin = caller.admin,
        count = records.len(),
        s = if records.len() == 1 { "" } else { "s" },
    );
    for record in records.iter().skip(current * PAGE_SIZE).take(PAGE_SIZE) {
        let check = health
            .binary_search_by(|(name, _)| name.as_str().cmp(record.name.as_str()))
            .ok()
            .map(|at| &health[at].1);
        body.push_str(&row(record, check, caller.admin));
    }
    body.push_str("</tbody></table></div>");
    if records.is_empty() {
        body.push_str("<p id=\"empty\">No workspaces yet: create one above.</p>");
    }
    if pages > 1 {
        body.push_str("<nav class=\"pages\" aria-label=\"Pages\">");
        for number in 0..pages {
            if number == current {
                let _ = write!(body, "<span aria-current=\"page\">{}</span>", number + 1);
            } else {
                let _ = write!(body, "<a href=\"/?page={number}\">{}</a>", number + 1);
            }
        }
        body.push_str("</nav>");
    }
    if caller.admin {
        body.push_str(&quotas(c, &records));
    }
    page("Workspaces", "list", &session, &body)
}

/// One row of the list (also sent live when the workspace changes).
pub(super) fn row(record: &WorkspaceRecord, check: Option<&HealthCheck>, admin: bool) -> String {
    let name = esc(record.name.as_str());
    let spec = &record.spec;
    let (health, idle) = health_cells(check);
    let image = record
        .image_versions
        .last()
        .map(|version| format!("v{} {}", version.version, esc(&version.image)))
        .unwrap_or_default();
    let url = esc(&record.url);
    let owner = if admin {
        format!(
            "<td data-label=\"Owner\">{}</td>",
            esc(spec.owner.as_deref().unwrap_or("(CLI)"))
        )
    } else {
        String::new()
    };
    format!(
        "<tr id=\"ws-{name}\" data-name=\"{name}\" data-status=\"{status}\">\
<td data-label=\"Name\"><a href=\"/w/{name}\">{name}</a></td>\
<td data-label=\"State\"><span class=\"state state-{status}\">{status}</span></td>\
<td data-label=\"Health\">{health}</td><td data-label=\"Region\">{region}</td>\
<td data-label=\"Size\">{size}</td><td data-label=\"Image\">{image}</td>\
<td data-label=\"Idle since\">{idle}</td>\
<td data-label=\"URL\"><a href=\"{url}\" rel=\"noopener noreferrer\" target=\"_blank\">{url}</a></td>\
<td data-label=\"Cost / month\">{cost}</td>{owner}</tr>",
        status = record.status,
        region = esc(&spec.region),
        size = size(record),
        cost = cost(record),
    )
}

pub(super) fn health_cells(check: Option<&HealthCheck>) -> (String, String) {
    let Some(check) = check else {
        return ("not checked yet".to_owned(), "—".to_owned());
    };
    match &check.health {
        Some(health) => {
            let status = serde_json::to_value(health.status)
                .ok()
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default();
            let idle = health.idle_since.map_or_else(|| "—".to_owned(), rfc3339);
            (esc(&status), idle)
        }
        None => (
            format!(
                "<span title=\"{}\">check failed</span>",
                esc(check.error.as_deref().unwrap_or(""))
            ),
            "—".to_owned(),
        ),
    }
}

pub(super) fn size(record: &WorkspaceRecord) -> String {
    let guest = &record.spec.guest;
    format!(
        "{} {} CPU · {} MB · {} GB",
        guest.cpus, guest.cpu_kind, guest.memory_mb, record.spec.storage_gb
    )
}

/// A month at the rate of the workspace's current state, with the other states in the
/// tooltip (`swarm_core::cost`: Fly's published prices, as `swarm cost` shows them).
pub(super) fn cost(record: &WorkspaceRecord) -> String {
    if record.status == WorkspaceStatus::Deleted {
        return "—".to_owned();
    }
    let monthly = swarm_core::cost::MonthlyCost::of_record(record);
    let now = monthly.at(swarm_core::cost::MonthlyCost::billed_as(record.status));
    format!(
        "<span title=\"running {} · stopped {} · suspended {} a month (Fly's published prices)\">{now}</span>",
        monthly.running, monthly.stopped, monthly.suspended
    )
}

pub(super) fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The admin's view of the quotas: each user's usage against the limits.
fn quotas<S: Store, P: Provider>(c: &Controller<S, P>, records: &[WorkspaceRecord]) -> String {
    let limits = *c.swarm.quotas();
    let limit = |value: Option<u64>| value.map_or_else(|| "no limit".to_owned(), |v| v.to_string());
    let mut users: Vec<&str> = records
        .iter()
        .filter_map(|r| r.spec.owner.as_deref())
        .collect();
    users.sort_unstable();
    users.dedup();
    let mut out = format!(
        "<section aria-labelledby=\"quotas-h\"><h2 id=\"quotas-h\">Quotas</h2>\
<p>Per user: {} workspaces, {} CPUs, {} MB memory, {} GB storage.</p>\
<div class=\"scroll\"><table id=\"quotas\"><thead><tr><th scope=\"col\">User</th><th scope=\"col\">Workspaces</th>\
<th scope=\"col\">CPUs</th><th scope=\"col\">Memory MB</th><th scope=\"col\">Storage GB</th></tr></thead><tbody>",
        limit(limits.workspaces.map(u64::from)),
        limit(limits.cpus.map(u64::from)),
        limit(limits.memory),
        limit(limits.storage),
    );
    for user in users {
        let usage = Usage::of_user(records, user);
        let _ = write!(
            out,
            "<tr><td data-label=\"User\">{}</td><td data-label=\"Workspaces\">{}</td><td data-label=\"CPUs\">{}</td>\
<td data-label=\"Memory MB\">{}</td><td data-label=\"Storage GB\">{}</td></tr>",
            esc(user),
            usage.workspaces,
            usage.cpus,
            usage.memory,
            usage.storage
        );
    }
    out.push_str("</tbody></table></div></section>");
    out
}

fn error_page(session: &Session, message: &str, status: StatusCode) -> Response {
    let body = format!(
        "<h1>{}</h1><p role=\"alert\">{}</p><p><a href=\"/\">Back to the workspaces</a></p>",
        if status == StatusCode::NOT_FOUND {
            "Not found"
        } else {
            "Something went wrong"
        },
        esc(message)
    );
    (status, page("Error", "error", session, &body)).into_response()
}

/// The create form; the server's validation messages appear beside each field.
fn create_form<S: Store, P: Provider>(c: &Controller<S, P>) -> String {
    let config = c.swarm.config();
    let mut body = String::from(
        "<details id=\"new\" class=\"card\"><summary>New workspace</summary>\
<form id=\"create\" class=\"action\" data-method=\"POST\" data-path=\"/v1/workspaces\" data-kind=\"create\" novalidate>",
    );
    body.push_str(&field(
        "name",
        "Name",
        "text",
        "",
        "lowercase letters, digits and '-'",
        true,
    ));
    body.push_str(&field(
        "region",
        "Region",
        "text",
        &config.default_region,
        "a Fly.io region code",
        false,
    ));
    body.push_str(&field(
        "cpus",
        "CPUs",
        "number",
        "",
        "empty: the default size",
        false,
    ));
    body.push_str(&select(
        "cpu_kind",
        "CPU kind",
        &["", "shared", "performance"],
    ));
    body.push_str(&field("memory", "Memory (MB)", "number", "", "", false));
    body.push_str(&field("storage", "Storage (GB)", "number", "", "", false));
    body.push_str(&field(
        "image",
        "Image",
        "text",
        "",
        "empty: the configured image",
        false,
    ));
    body.push_str(&select(
        "ip",
        "Address",
        &["", "shared", "dedicated", "private"],
    ));
    body.push_str(&field(
        "idle_timeout",
        "Idle timeout",
        "text",
        "",
        "such as 30m or 1h30m",
        false,
    ));
    body.push_str(&field(
        "dotfiles",
        "Dotfiles repository",
        "url",
        config.default_dotfiles.as_deref().unwrap_or_default(),
        "https://…, installed at boot",
        false,
    ));
    body.push_str(
        "<div class=\"field\" data-field=\"init\"><label for=\"f-init\">Init script (runs at boot, after the dotfiles)</label>\
<textarea id=\"f-init\" name=\"init\" rows=\"3\" aria-describedby=\"err-init\"></textarea>\
<p class=\"field-error\" id=\"err-init\"></p></div>",
    );
    body.push_str(
        "<div class=\"field\" data-field=\"env\"><label for=\"f-env\">Environment (KEY=VALUE, one a line)</label>\
<textarea id=\"f-env\" name=\"env\" rows=\"3\" aria-describedby=\"err-env\"></textarea>\
<p class=\"field-error\" id=\"err-env\"></p></div>\
<p class=\"form-error\" role=\"alert\"></p><button type=\"submit\">Create</button></form>\
<section id=\"secret\" hidden aria-labelledby=\"secret-h\"><h3 id=\"secret-h\">Password</h3>\
<p>Shown this once: copy it now.</p><p><code id=\"secret-value\"></code></p></section></details>",
    );
    body
}

pub(super) fn field(
    name: &str,
    label: &str,
    kind: &str,
    value: &str,
    hint: &str,
    required: bool,
) -> String {
    let hint = if hint.is_empty() {
        String::new()
    } else {
        format!(" <span class=\"hint\">({})</span>", esc(hint))
    };
    let extra = match (kind, required) {
        ("number", _) => " min=\"0\" inputmode=\"numeric\"",
        (_, true) => " required",
        _ => "",
    };
    format!(
        "<div class=\"field\" data-field=\"{name}\"><label for=\"f-{name}\">{label}{hint}</label>\
<input id=\"f-{name}\" name=\"{name}\" type=\"{kind}\" value=\"{value}\"{extra} aria-describedby=\"err-{name}\">\
<p class=\"field-error\" id=\"err-{name}\"></p></div>",
        label = esc(label),
        value = esc(value),
    )
}

pub(super) fn select(name: &str, label: &str, options: &[&str]) -> String {
    let mut out = format!(
        "<div class=\"field\" data-field=\"{name}\"><label for=\"f-{name}\">{}</label>\
<select id=\"f-{name}\" name=\"{name}\" aria-describedby=\"err-{name}\">",
        esc(label)
    );
    for option in options {
        let text = if option.is_empty() { "default" } else { option };
        let _ = write!(out, "<option value=\"{option}\">{text}</option>");
    }
    let _ = write!(
        out,
        "</select><p class=\"field-error\" id=\"err-{name}\"></p></div>"
    );
    out
}

/// Where a long action's steps appear as they happen.
fn progress_section() -> &'static str {
    "<section id=\"progress\" class=\"card\" aria-labelledby=\"progress-h\" hidden>\
<h2 id=\"progress-h\">Progress</h2><ol id=\"steps\" aria-live=\"polite\"></ol>\
<p id=\"outcome\" role=\"status\"></p></section>"
}

/// One workspace: details, actions, versions, snapshots, events and its logs.
pub(super) async fn workspace<S: Store, P: Provider>(
    State(dash): State<Dash<S, P>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let Some(session) = signed_in(&dash, &headers) else {
        return to_login();
    };
    let c = &dash.controller;
    let record = match c.visible(&session.caller, &name).await {
        Ok(record) => record,
        Err(error) => return error_page(&session, &error.body.error, error.status),
    };
    let check = c
        .last_health(|owner| session.caller.may_use(owner))
        .into_iter()
        .find(|(checked, _)| *checked == name)
        .map(|(_, check)| check);
    let versions = c.swarm.versions(&name).await.unwrap_or_default();
    let snapshots = c.swarm.snapshots(&name).await;
    let events = c
        .swarm
        .store()
        .events_of(&name, record.spec.owner.as_deref(), 20)
        .await
        .unwrap_or_default();
    let mut body =
        super::workspace_page::render(&record, check.as_ref(), &versions, &snapshots, &events);
    body.push_str(progress_section());
    page(record.name.as_str(), "workspace", &session, &body)
}
