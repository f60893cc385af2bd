//! The dashboard at `/` in a real headless Chromium (driven over WebDriver by its
//! chromedriver), in front of a real controller, store and fly-sim on loopback: a
//! person signs in, creates, watches, stops and deletes a workspace; another user
//! neither sees nor acts on it; bad input shows the server's message beside its
//! field; a cross-site form post is refused. The screenshots in `docs/` come from here.

mod common;

use std::path::PathBuf;

use browser_driver::{Browser, Driver};
use common::server::Server;
use common::{start_sim, swarm_at};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Digest;

const WORKSPACE: &str = "web-ws";

/// Where a screenshot goes: `docs/` when `SWARM_UPDATE_SCREENSHOTS=1` (the README shows
/// them), else the test's scratch folder, so a test run leaves the checkout unchanged
/// (the pages show times, so each shot differs by a few pixels).
fn screenshot_path(file: &str) -> PathBuf {
    let folder = if std::env::var_os("SWARM_UPDATE_SCREENSHOTS").is_some_and(|v| v == "1") {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs")
    } else {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
    };
    folder.join(file)
}

/// Signs in through the form, with the keyboard (Enter submits it).
async fn sign_in(page: &Browser, base: &str, token: &str) {
    page.goto(&format!("{base}/")).await;
    page.wait_for(
        "the sign-in page",
        "return document.body.dataset.page === 'login'",
    )
    .await;
    page.type_into("#token", &format!("{token}\u{E007}")).await;
    page.wait_for(
        "the list after sign-in",
        "return document.body.dataset.page === 'list'",
    )
    .await;
    page.wait_for(
        "the live connection",
        "return document.getElementById('live').dataset.live === 'true'",
    )
    .await;
}

/// The text of the element, as a person reads it.
async fn shown(page: &Browser, css: &str) -> String {
    page.text(css).await.trim().to_owned()
}

/// Waits for the progress section to end and returns its outcome; by then the page
/// has read the operation's end from the API.
async fn outcome(page: &Browser) -> String {
    page.wait_for(
        "the operation's end",
        "const s = document.getElementById('progress'); \
         return s && !s.hidden && s.dataset.status && s.dataset.status !== 'running' && s.dataset.status",
    )
    .await;
    shown(page, "#outcome").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_manages_a_workspace_in_the_browser_and_another_user_cannot_touch_it() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await).await;
    let base = server.base.clone();
    let alice = server.token("alice", false).await;
    let bob = server.token("bob", false).await;

    let page = driver.session("alice").await;
    sign_in(&page, &base, &alice).await;
    assert!(
        shown(&page, "header").await.contains("Signed in as alice"),
        "the header names the user"
    );
    // Marks this document: still there later means the page was never reloaded.
    page.js("window.notReloaded = true", json!([])).await;

    // Bad input: the server's own rule appears beside the field.
    page.click("#new summary").await;
    page.type_into("#f-name", "Not_A_Name").await;
    page.click("#create button[type=submit]").await;
    let message = page
        .wait_for(
            "the name's message",
            "return document.getElementById('err-name').textContent",
        )
        .await;
    let (status, refused) = server
        .call(
            Method::POST,
            "/v1/workspaces",
            Some(&alice),
            Some(r#"{"name": "Not_A_Name"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(message, refused["fields"][0]["rule"], "{refused}");
    assert_eq!(
        page.js(
            "return document.getElementById('f-name').getAttribute('aria-invalid')",
            json!([])
        )
        .await,
        "true"
    );

    // Create, and watch it reach running in the list without a reload.
    page.type_into("#f-name", WORKSPACE).await;
    page.click("#create button[type=submit]").await;
    let done = outcome(&page).await;
    assert!(done.ends_with("done."), "{done}");
    let steps = page
        .js(
            "return document.querySelectorAll('#steps li').length",
            json!([]),
        )
        .await;
    assert!(
        steps.as_u64().unwrap_or(0) > 0,
        "the create's steps were shown"
    );
    let (_, record) = server
        .call(
            Method::GET,
            &format!("/v1/workspaces/{WORKSPACE}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(record["status"], "running", "the API agrees it is done");
    page.wait_for(
        "the row to say running",
        &format!("const r = document.getElementById('ws-{WORKSPACE}'); return r && r.dataset.status === 'running'"),
    )
    .await;
    let password = shown(&page, "#secret-value").await;
    assert_eq!(
        password.len(),
        swarm::password::PASSWORD_LENGTH,
        "shown once"
    );
    assert_eq!(
        page.js("return window.notReloaded === true", json!([]))
            .await,
        true
    );
    let row = shown(&page, &format!("#ws-{WORKSPACE}")).await;
    let region = record["spec"]["region"].as_str().expect("region");
    for column in ["running", region, "CPU", "MB", "GB", "v1", "$"] {
        assert!(row.contains(column), "{column:?} in the row {row:?}");
    }
    let link = page
        .js(
            &format!("return document.querySelector('#ws-{WORKSPACE} td[data-label=URL] a').getAttribute('href')"),
            json!([]),
        )
        .await;
    assert_eq!(link, record["url"], "the URL is a link");
    page.js(
        "document.activeElement.blur(); document.getElementById('new').open = false",
        json!([]),
    )
    .await;
    page.screenshot(&screenshot_path("dashboard-list.png"))
        .await;

    // Every control is labelled, and the list fits a 360 px wide screen.
    let unlabelled = page
        .js(
            "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]\
             .filter(e => e.tagName === 'BUTTON' ? !e.textContent.trim() : e.labels.length === 0)\
             .map(e => e.outerHTML)",
            json!([]),
        )
        .await;
    assert_eq!(unlabelled, json!([]));
    page.resize(360, 800).await;
    let fits = page
        .js(
            "return [window.innerWidth, document.documentElement.scrollWidth]",
            json!([]),
        )
        .await;
    assert!(
        fits[1].as_u64() <= fits[0].as_u64(),
        "no sideways scroll at 360 px: {fits}"
    );
    page.resize(1280, 1000).await;

    // Open it; its logs are there and follow.
    page.click(&format!("#ws-{WORKSPACE} a[href='/w/{WORKSPACE}']"))
        .await;
    page.wait_for(
        "the workspace page",
        "return document.body.dataset.page === 'workspace'",
    )
    .await;
    let lines =
        "return document.getElementById('logs').textContent.split('\\n').filter(Boolean).length";
    let first = page.wait_for("log lines", lines).await;
    assert_eq!(shown(&page, "#ws-status").await, "running");
    page.wait_for(
        "the logs to be followed",
        "return document.getElementById('logs-state').textContent === 'Following.'",
    )
    .await;
    page.screenshot(&screenshot_path("dashboard-workspace.png"))
        .await;

    // Stop: the state follows, and so do the logs.
    page.click("form[data-kind=stop] button").await;
    let done = outcome(&page).await;
    assert!(done.ends_with("done."), "{done}");
    page.wait_for(
        "the state to say stopped",
        "return document.getElementById('ws-status').textContent === 'stopped'",
    )
    .await;
    page.wait_for(
        "a new log line",
        &format!("return ({}) > {first}", lines.trim_start_matches("return ")),
    )
    .await;
    let (_, record) = server
        .call(
            Method::GET,
            &format!("/v1/workspaces/{WORKSPACE}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(record["status"], "stopped");

    // Bob neither sees it nor acts on it: the same 404 as the API's.
    let other = driver.session("bob").await;
    sign_in(&other, &base, &bob).await;
    assert_eq!(
        other
            .js(
                &format!("return document.getElementById('ws-{WORKSPACE}')"),
                json!([])
            )
            .await,
        Value::Null
    );
    other.goto(&format!("{base}/w/{WORKSPACE}")).await;
    let body = shown(&other, "main").await;
    assert!(body.starts_with("Not found"), "{body}");
    assert!(!body.contains("alice"), "nothing of it shows: {body}");
    let answer = other
        .js(
            &format!(
                "const csrf = document.querySelector('meta[name=csrf-token]').content; \
                 return fetch('/ui/api/v1/workspaces/{WORKSPACE}/start', \
                 {{method: 'POST', headers: {{'x-csrf-token': csrf}}}}).then(r => r.status)"
            ),
            json!([]),
        )
        .await;
    assert_eq!(answer, 404);

    // A page elsewhere posts a form at the dashboard: refused, nothing changes.
    let evil = evil_site(&base).await;
    page.goto(&evil).await;
    page.wait_for(
        "the cross-site post's answer",
        "return location.pathname.startsWith('/ui/api') && document.body.innerText",
    )
    .await;
    let refusal = shown(&page, "body").await;
    assert!(refusal.contains("forbidden"), "{refusal}");
    let (_, record) = server
        .call(
            Method::GET,
            &format!("/v1/workspaces/{WORKSPACE}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(
        record["status"], "stopped",
        "the cross-site start did nothing"
    );

    // Delete: a wrong name is refused in the page, the right one deletes.
    page.goto(&format!("{base}/w/{WORKSPACE}")).await;
    page.wait_for(
        "the workspace page",
        "return document.body.dataset.page === 'workspace'",
    )
    .await;
    page.type_into("#f-confirm", "web").await;
    page.click("form[data-kind=delete] button").await;
    let refused = page
        .wait_for(
            "the confirmation's message",
            "return document.getElementById('err-confirm').textContent",
        )
        .await;
    assert!(
        refused.as_str().unwrap_or("").contains("name exactly"),
        "{refused}"
    );
    let (status, _) = server
        .call(
            Method::GET,
            &format!("/v1/workspaces/{WORKSPACE}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "still there");
    page.type_into("#f-confirm", WORKSPACE).await;
    page.click("form[data-kind=delete] button").await;
    let done = outcome(&page).await;
    assert!(done.contains("done."), "{done}");
    let (status, _) = server
        .call(
            Method::GET,
            &format!("/v1/workspaces/{WORKSPACE}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    page.goto(&format!("{base}/")).await;
    page.wait_for(
        "the empty list",
        "return document.getElementById('empty') !== null",
    )
    .await;

    // Sign out ends the session: the page goes back to sign-in, the API refuses it.
    page.click("header button[type=submit]").await;
    page.wait_for(
        "the sign-in page",
        "return document.body.dataset.page === 'login'",
    )
    .await;
    page.goto(&format!("{base}/")).await;
    page.wait_for(
        "sign-in again",
        "return document.body.dataset.page === 'login'",
    )
    .await;
    let answer = page
        .js(
            "return fetch('/ui/api/v1/workspaces').then(r => r.status)",
            json!([]),
        )
        .await;
    assert_eq!(answer, 401);

    page.close().await;
    other.close().await;
    server.shutdown().await;
    sim.shutdown().await;
}

/// A site on another port (another origin) whose page posts a form at the dashboard
/// as soon as it loads; its address.
async fn evil_site(target: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let page = format!(
        "<!doctype html><html><body><form id=\"f\" method=\"post\" \
         action=\"{target}/ui/api/v1/workspaces/{WORKSPACE}/start\">\
         <input name=\"x\" value=\"1\"></form><script>document.getElementById('f').submit()</script></body></html>"
    );
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    format!("http://{address}/")
}

/// A browser's worth of HTTP for the tests that need no browser: it keeps the
/// session cookie and never follows redirects, so each answer can be read.
struct Visitor {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

fn cookie_value(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
        .map(|header| {
            let value = header[name.len() + 1..].split(';').next().unwrap_or("");
            (value.to_owned(), header.to_owned())
        })
}

impl Visitor {
    /// Signs in with `token` through the form, as a browser would (`https`: behind a
    /// proxy that says so); the session cookie's whole `Set-Cookie` line.
    async fn sign_in(base: &str, token: &str, https: bool) -> (Self, String) {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let proto = if https { "https" } else { "http" };
        let login = http
            .get(format!("{base}/login"))
            .header("x-forwarded-proto", proto)
            .send()
            .await
            .expect("login page");
        let (login_cookie, _) = cookie_value(&login, "swarm_login").expect("the form's cookie");
        let html = login.text().await.expect("body");
        let csrf = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the form's CSRF field")
            .to_owned();
        let answer = http
            .post(format!("{base}/login"))
            .header("cookie", format!("swarm_login={login_cookie}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-forwarded-proto", proto)
            .body(format!("token={token}&csrf={csrf}"))
            .send()
            .await
            .expect("sign in");
        assert_eq!(answer.status(), StatusCode::SEE_OTHER);
        let (session, line) = cookie_value(&answer, "swarm_session").expect("a session cookie");
        let visitor = Self {
            http,
            base: base.to_owned(),
            cookie: format!("swarm_session={session}"),
        };
        (visitor, line)
    }

    async fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
    }

    /// The answer to a GET: status, headers and body.
    async fn get(&self, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let response = self
            .request(Method::GET, path)
            .await
            .send()
            .await
            .expect("GET");
        let status = response.status();
        let headers = response.headers().clone();
        (status, headers, response.text().await.expect("body"))
    }
}

fn hashed_password(value: &Value) -> Option<String> {
    match value {
        Value::Object(map) => map
            .get("HASHED_PASSWORD")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| map.values().find_map(hashed_password)),
        Value::Array(items) => items.iter().find_map(hashed_password),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_page_or_asset_holds_a_secret_and_forms_from_elsewhere_are_refused() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await).await;
    let alice = server.token("alice", false).await;
    let admin = server.token("ops", true).await;
    let created = server
        .created(&alice, &format!(r#"{{"name": "{WORKSPACE}"}}"#))
        .await;
    let password = created["result"]["password"]
        .as_str()
        .expect("the one-time password")
        .to_owned();
    let hash = hashed_password(&sim.world()).expect("the machine's HASHED_PASSWORD");
    let secrets = [
        alice.clone(),
        admin.clone(),
        hex(&sha2::Sha256::digest(alice.as_bytes())),
        hex(&sha2::Sha256::digest(admin.as_bytes())),
        password,
        hash,
    ];

    let (visitor, cookie) = Visitor::sign_in(&server.base, &alice, false).await;
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let (admin_visitor, cookie) = Visitor::sign_in(&server.base, &admin, true).await;
    assert!(cookie.contains("; Secure"), "behind HTTPS: {cookie}");

    let pages = [
        (&visitor, "/"),
        (&visitor, "/w/web-ws"),
        (&visitor, "/assets/app.js"),
        (&visitor, "/assets/app.css"),
        (&visitor, "/login"),
        (&admin_visitor, "/"),
        (&admin_visitor, "/w/web-ws"),
    ];
    for (who, path) in pages {
        let (status, headers, body) = who.get(path).await;
        assert!(
            status.is_success() || status.is_redirection(),
            "{path}: {status}"
        );
        for secret in &secrets {
            assert!(!body.contains(secret.as_str()), "{path} shows a secret");
        }
        assert!(!body.contains("$argon2"), "{path} shows a password hash");
        let policy = headers
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            policy.contains("frame-ancestors 'none'") && policy.contains("script-src 'self'"),
            "{path}: {policy}"
        );
        assert_eq!(
            headers.get("x-content-type-options").map(|v| v.as_bytes()),
            Some(&b"nosniff"[..])
        );
    }
    let (_, _, list) = admin_visitor.get("/").await;
    assert!(list.contains("id=\"quotas\""), "an admin sees the quotas");
    assert!(list.contains(">alice<"), "and every user's workspaces");

    // A state change needs the session's CSRF token and this origin.
    let (_, _, html) = visitor.get("/").await;
    let csrf = html
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page's CSRF token")
        .to_owned();
    let stop = "/ui/api/v1/workspaces/web-ws/stop";
    let refused = visitor
        .request(Method::POST, stop)
        .await
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN, "no CSRF token");
    let refused = visitor
        .request(Method::POST, stop)
        .await
        .header("x-csrf-token", &csrf)
        .header("origin", "http://evil.example")
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN, "another origin");
    let refused = visitor
        .request(Method::POST, "/logout")
        .await
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=wrong")
        .send()
        .await
        .expect("POST");
    assert_eq!(
        refused.status(),
        StatusCode::FORBIDDEN,
        "sign-out without the token"
    );
    let (_, record) = server
        .call(Method::GET, "/v1/workspaces/web-ws", Some(&alice), None)
        .await;
    assert_eq!(
        record["status"], "running",
        "nothing refused changed anything"
    );
    let accepted = visitor
        .request(Method::POST, &format!("{stop}?wait=60"))
        .await
        .header("x-csrf-token", &csrf)
        .header("origin", &server.base)
        .send()
        .await
        .expect("POST");
    let status = accepted.status();
    let answer = accepted.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "the page's own request: {answer}");

    server.shutdown().await;
    sim.shutdown().await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
