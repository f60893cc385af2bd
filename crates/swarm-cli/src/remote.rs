//! `swarm --server URL`: the same commands through a Swarm Controller (`swarm serve`)
//! instead of Fly.io directly. An HTTP client of the controller's `/v1` routes that
//! returns the domain types the local path returns, so output is the same.
//!
//! The API token comes from env `SWARM_TOKEN` or `--token-file PATH`, never from a
//! flag: a token on the command line ends up in shell history and `ps`.

mod access;

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt as _;
use futures::stream::BoxStream;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use swarm::{
    CreateOptions, Created, Deleted, Health, ImageChanged, ImageVersion, LogLine,
    MachineRolledBack, PasswordRotated, ReconcileReport, Replaced, ResizeOptions, Resized,
    SnapshotInfo, StateChange, WorkspaceRecord,
};

use crate::Failure;
use crate::settings::Env;
use swarm::cost_report::CostReport;

/// Seconds a request asks the server to wait for an operation: the server's limit, and
/// the default. `SWARM_SERVER_WAIT` lowers it behind a proxy that cuts idle requests
/// sooner.
const WAIT_SECS: u64 = 60;
/// Connecting must not hang: the server is either there or not.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longer than the server's own wait, so a waiting request is never cut short.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(WAIT_SECS + 60);
/// A log follow has no end, only silence: the server sends a keep-alive every 15 s,
/// so this much silence means the connection is gone.
const FOLLOW_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Where `--server` came from, to name it in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerSource {
    Flag,
    Env,
}

impl ServerSource {
    fn name(self) -> &'static str {
        match self {
            Self::Flag => "--server",
            Self::Env => "SWARM_SERVER",
        }
    }
}

/// Where the token came from, to name it in errors (never its text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Env,
    File(PathBuf),
}

impl std::fmt::Display for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env => f.write_str("env SWARM_TOKEN"),
            Self::File(path) => write!(f, "--token-file {}", path.display()),
        }
    }
}

/// An API token for the controller. `Debug` never prints it; only the request's
/// `Authorization` header (marked sensitive) ever holds its text.
#[derive(Clone)]
pub struct ServerToken(SecretString);

impl std::fmt::Debug for ServerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerToken(<redacted>)")
    }
}

/// The controller to talk to: from `--server` or `SWARM_SERVER`, plus its token.
#[derive(Debug, Clone)]
pub struct ServerTarget {
    pub url: reqwest::Url,
    pub source: ServerSource,
    pub token: ServerToken,
    pub token_source: TokenSource,
    /// Seconds one request waits for an operation before asking again.
    pub wait_secs: u64,
}

impl ServerTarget {
    /// `None` when neither `--server` nor `SWARM_SERVER` is set: the CLI talks to Fly.
    pub fn resolve(
        flag: Option<&str>,
        token_file: Option<&Path>,
        env: &Env,
    ) -> Result<Option<Self>, Failure> {
        let (text, source) = match (flag, env.get("SWARM_SERVER")) {
            (Some(url), _) => (url, ServerSource::Flag),
            (None, Some(url)) if !url.is_empty() => (url.as_str(), ServerSource::Env),
            (None, _) => {
                if token_file.is_some() {
                    return Err(Failure::usage(
                        "--token-file is the token for --server: give --server URL (or SWARM_SERVER) too".into(),
                    ));
                }
                return Ok(None);
            }
        };
        let url = parse_server_url(text, source)?;
        let (token, token_source) = read_token(token_file, env)?;
        let wait_secs = match env.get("SWARM_SERVER_WAIT").filter(|v| !v.is_empty()) {
            None => WAIT_SECS,
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|secs| (1..=WAIT_SECS).contains(secs))
                .ok_or_else(|| {
                    Failure::usage(format!(
                        "invalid SWARM_SERVER_WAIT {text:?}: seconds from 1 to {WAIT_SECS}, how long one request waits for an operation"
                    ))
                })?,
        };
        Ok(Some(Self {
            url,
            source,
            token,
            token_source,
            wait_secs,
        }))
    }

    /// The URL as the user gave it, for messages (never holds a secret: refused).
    pub fn shown_url(&self) -> &str {
        self.url.as_str().trim_end_matches('/')
    }

    pub fn source_name(&self) -> &'static str {
        self.source.name()
    }

    /// Plain http to anything but this machine: the token would cross a network unencrypted.
    pub fn sends_token_in_the_clear(&self) -> bool {
        let loopback = match self.url.host() {
            Some(url::Host::Domain(name)) => name == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        self.url.scheme() == "http" && !loopback
    }
}

fn parse_server_url(text: &str, source: ServerSource) -> Result<reqwest::Url, Failure> {
    let name = source.name();
    let bad = |why: &str| {
        Failure::usage(format!(
            "invalid {name} {text:?}: {why}; e.g. https://swarm.example.com or http://127.0.0.1:8080"
        ))
    };
    let url = reqwest::Url::parse(text.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must start with http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Not echoed: the part before @ may be a secret.
        return Err(Failure::usage(format!(
            "invalid {name}: it holds a user name or password; give the URL alone and the token in SWARM_TOKEN or --token-file"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    Ok(url)
}

fn read_token(file: Option<&Path>, env: &Env) -> Result<(ServerToken, TokenSource), Failure> {
    let (text, source) = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|error| {
                Failure::usage(format!(
                    "cannot read --token-file {}: {error}",
                    path.display()
                ))
            })?;
            (text, TokenSource::File(path.to_owned()))
        }
        None => match env.get("SWARM_TOKEN") {
            Some(text) if !text.trim().is_empty() => (text.clone(), TokenSource::Env),
            _ => {
                return Err(Failure::usage(
                    "--server needs an API token: set SWARM_TOKEN, or give --token-file PATH (an admin makes one with `swarm token create --user NAME`)".into(),
                ));
            }
        },
    };
    let token = text.trim();
    // Checked here so the header cannot fail later; the text is never echoed.
    if token.is_empty()
        || reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).is_err()
    {
        return Err(Failure::usage(format!(
            "the API token in {source} is empty or holds characters a token never has (control characters, non-ASCII); copy it again from `swarm token create`"
        )));
    }
    Ok((ServerToken(SecretString::from(token.to_owned())), source))
}

/// The controller's error body: `{"error", "code", "fields"}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    code: String,
}

/// An operation resource, as far as the client needs it.
#[derive(Debug, Deserialize)]
struct Operation {
    id: String,
    status: String,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<ErrorBody>,
}

/// A connected client of one controller.
#[derive(Debug)]
pub struct Remote {
    target: ServerTarget,
    http: reqwest::Client,
    /// For responses that stream without end (`logs -f`): no total timeout.
    streaming: reqwest::Client,
}

impl Remote {
    pub fn new(target: ServerTarget) -> Result<Self, Failure> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("swarm-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(client_setup)?;
        let streaming = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(FOLLOW_READ_TIMEOUT)
            .user_agent(concat!("swarm-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(client_setup)?;
        Ok(Self {
            target,
            http,
            streaming,
        })
    }

    /// The `Authorization` header, marked sensitive so no log of reqwest's shows it.
    fn authorization(&self) -> Result<reqwest::header::HeaderValue, Failure> {
        let mut authorization = reqwest::header::HeaderValue::from_str(&format!(
            "Bearer {}",
            self.target.token.0.expose_secret()
        ))
        .map_err(|_| {
            Failure::usage(format!(
                "the API token in {} is not a valid header value",
                self.target.token_source
            ))
        })?;
        authorization.set_sensitive(true);
        Ok(authorization)
    }

    fn url(&self, path: &str) -> String {
        // Keeps a path prefix (a server behind a proxy at https://host/swarm/).
        format!("{}{path}", self.target.url.as_str().trim_end_matches('/'))
    }

    /// One request; the decoded answer, or the server's error as the CLI's failure.
    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, Failure> {
        let mut request = self
            .http
            .request(method, self.url(path))
            .header(reqwest::header::AUTHORIZATION, self.authorization()?);
        if let Some(body) = body {
            request = request.json(body);
        }
        let (status, text) = self.send(request).await?;
        if status.is_success() {
            return serde_json::from_str(&text).map_err(|error| Failure {
                code: 1,
                message: format!(
                    "the answer of {} to {path} could not be read ({error}); is it a `swarm serve` of this version?",
                    self.target.shown_url()
                ),
            });
        }
        Err(self.refusal(status, path, &text))
    }

    fn transport(&self, error: &reqwest::Error) -> Failure {
        let url = self.target.shown_url();
        let source = self.target.source_name();
        let why = if error.is_connect() {
            "cannot connect (is `swarm serve` running there?)"
        } else if error.is_timeout() {
            "no answer in time"
        } else {
            "the connection failed"
        };
        // The innermost cause says what the OS said (e.g. connection refused).
        let mut cause: &dyn std::error::Error = error;
        while let Some(next) = cause.source() {
            cause = next;
        }
        Failure {
            code: 1,
            message: format!("cannot reach the swarm server at {url} ({source}): {why}: {cause}"),
        }
    }

    /// Sends `request`; its status and body, or the transport failure.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, String), Failure> {
        let response = request
            .send()
            .await
            .map_err(|error| self.transport(&error))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|error| self.transport(&error))?;
        Ok((status, text))
    }

    /// Refuses a server this CLI may not use (docs/VERSIONING.md), by the version it
    /// reports at `GET /v1/version` (no token sent there).
    pub async fn check_version(&self) -> Result<(), Failure> {
        const PATH: &str = "/v1/version";
        let url = self.target.shown_url();
        let client = swarm::version::current();
        let (status, text) = self.send(self.http.get(self.url(PATH))).await?;
        if status == reqwest::StatusCode::NOT_FOUND
            && serde_json::from_str::<ErrorBody>(&text)
                .is_ok_and(|body| body.error.starts_with("no such route"))
        {
            // Servers before 0.2.0 had no version route (and were 0.1.x).
            return Err(Failure::usage(format!(
                "this swarm is {client} and the server at {url} runs a swarm older than 0.2.0 (it has no {PATH}): the server is an older minor version than the CLI; upgrade the server, or use a CLI no newer than the server"
            )));
        }
        if !status.is_success() {
            return Err(self.refusal(status, PATH, &text));
        }
        let server = serde_json::from_str::<swarm::version::ServerVersion>(&text)
            .ok()
            .and_then(|answer| swarm::version::Version::parse(&answer.version).ok())
            .ok_or_else(|| Failure {
                code: 1,
                message: format!(
                    "the server at {url} answered {PATH} with no version this swarm can read; is {} a `swarm serve`?",
                    self.target.source_name()
                ),
            })?;
        swarm::version::check_server(&client, &server)
            .map_err(|refused| Failure::usage(format!("{url}: {refused}")))
    }

    /// A non-2xx answer as the local CLI would have failed.
    fn refusal(&self, status: reqwest::StatusCode, path: &str, text: &str) -> Failure {
        let url = self.target.shown_url();
        let Ok(body) = serde_json::from_str::<ErrorBody>(text) else {
            return Failure {
                code: 1,
                message: format!(
                    "the server at {url} answered {status} to {path}, not a swarm answer; is {} a `swarm serve`?",
                    self.target.source_name()
                ),
            };
        };
        match status.as_u16() {
            401 => Failure {
                code: 1,
                message: format!(
                    "the server at {url} refused the API token (from {}): it is unknown or was revoked; an admin makes a new one with `swarm token create --user NAME`",
                    self.target.token_source
                ),
            },
            404 if body.error.starts_with("no such route") => Failure {
                code: 1,
                message: format!(
                    "the server at {url} does not offer {path}; it may be an older `swarm serve`"
                ),
            },
            _ => failure_of(&body, Some(status)),
        }
    }

    /// Starts a long operation and waits for its end, however long it takes: the
    /// server answers each wait after at most 60 s.
    async fn operate<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, Failure> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let wait = self.target.wait_secs;
        let mut operation: Operation = self
            .call(method, &format!("{path}{separator}wait={wait}"), body)
            .await?;
        while operation.status == "running" {
            tracing::debug!(operation = %operation.id, "still running; waiting again");
            operation = self
                .call(
                    reqwest::Method::GET,
                    &format!("/v1/operations/{}?wait={wait}", operation.id),
                    None,
                )
                .await
                // Never exit 2 here: the operation started, so something may have changed.
                .map_err(|failure| Failure {
                    code: 1,
                    message: format!(
                        "{} (while waiting for operation {}; the server carries on with it: `swarm show` tells how it ended)",
                        failure.message, operation.id
                    ),
                })?;
        }
        match (operation.status.as_str(), operation.result, operation.error) {
            // A snapshot requested but not yet listed by Fly is a `null` result.
            ("succeeded", result, _) => {
                let result = result.unwrap_or(Value::Null);
                if result.get("password").is_some_and(Value::is_null) {
                    return Err(Failure {
                        code: 1,
                        message: format!(
                            "operation {} succeeded, but its one-time password was already handed to an earlier read; `swarm password NAME --rotate` makes a new one",
                            operation.id
                        ),
                    });
                }
                serde_json::from_value(result).map_err(|error| Failure {
                    code: 1,
                    message: format!(
                        "the result of operation {} could not be read ({error}); is the server a `swarm serve` of this version?",
                        operation.id
                    ),
                })
            }
            (_, _, Some(error)) => Err(failure_of(&error, None)),
            (status, _, None) => Err(Failure {
                code: 1,
                message: format!(
                    "operation {} ended {status:?} without a result",
                    operation.id
                ),
            }),
        }
    }

    pub async fn list(&self) -> Result<Vec<WorkspaceRecord>, Failure> {
        self.call(reqwest::Method::GET, "/v1/workspaces", None)
            .await
    }

    pub async fn show(&self, name: &str) -> Result<WorkspaceRecord, Failure> {
        self.call(reqwest::Method::GET, &workspace(name, ""), None)
            .await
    }

    pub async fn create(&self, options: &CreateOptions) -> Result<Created, Failure> {
        let body = serde_json::to_value(options).map_err(internal)?;
        self.operate(reqwest::Method::POST, "/v1/workspaces", Some(&body))
            .await
    }

    pub async fn start(&self, name: &str) -> Result<StateChange, Failure> {
        self.operate(reqwest::Method::POST, &workspace(name, "/start"), None)
            .await
    }

    pub async fn suspend(&self, name: &str) -> Result<StateChange, Failure> {
        self.operate(reqwest::Method::POST, &workspace(name, "/suspend"), None)
            .await
    }

    pub async fn stop(&self, name: &str, force: bool) -> Result<StateChange, Failure> {
        let path = workspace(name, &format!("/stop?force={force}"));
        self.operate(reqwest::Method::POST, &path, None).await
    }

    pub async fn delete(&self, name: &str) -> Result<Deleted, Failure> {
        self.operate(reqwest::Method::DELETE, &workspace(name, ""), None)
            .await
    }

    pub async fn health(&self, name: &str) -> Result<Health, Failure> {
        self.call(reqwest::Method::GET, &workspace(name, "/health"), None)
            .await
    }

    pub async fn logs(&self, name: &str, lines: usize) -> Result<Vec<LogLine>, Failure> {
        let path = workspace(name, &format!("/logs?lines={lines}"));
        self.call(reqwest::Method::GET, &path, None).await
    }

    /// New log lines as the server streams them (server-sent events), until the
    /// connection ends.
    pub async fn follow_logs(
        &self,
        name: &str,
    ) -> Result<BoxStream<'static, Result<LogLine, Failure>>, Failure> {
        let path = workspace(name, "/logs/stream");
        let response = self
            .streaming
            .get(self.url(&path))
            .header(reqwest::header::AUTHORIZATION, self.authorization()?)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|error| self.transport(&error))?;
        let status = response.status();
        if !status.is_success() {
            let text = response
                .text()
                .await
                .map_err(|error| self.transport(&error))?;
            return Err(self.refusal(status, &path, &text));
        }
        let url = self.target.shown_url().to_string();
        let events = ServerSentEvents::new(response.bytes_stream().boxed());
        let lines = futures::stream::unfold(events, |mut events| async move {
            events.next_event().await.map(|event| (event, events))
        })
        .filter_map(move |event| {
            let item = match event {
                Err(error) => Some(Err(Failure {
                    code: 1,
                    message: format!("the log follow from {url} ended: {error}"),
                })),
                Ok(event) => log_line_of(&event, &url),
            };
            std::future::ready(item)
        });
        Ok(lines.boxed())
    }

    pub async fn rotate_password(&self, name: &str) -> Result<PasswordRotated, Failure> {
        self.operate(reqwest::Method::POST, &workspace(name, "/password"), None)
            .await
    }

    pub async fn resize(&self, name: &str, options: &ResizeOptions) -> Result<Resized, Failure> {
        let body = serde_json::to_value(options).map_err(internal)?;
        self.operate(
            reqwest::Method::POST,
            &workspace(name, "/resize"),
            Some(&body),
        )
        .await
    }

    pub async fn update_image(&self, name: &str, image: &str) -> Result<ImageChanged, Failure> {
        let body = serde_json::json!({ "image": image });
        self.operate(
            reqwest::Method::POST,
            &workspace(name, "/update"),
            Some(&body),
        )
        .await
    }

    pub async fn versions(&self, name: &str) -> Result<Vec<ImageVersion>, Failure> {
        self.call(reqwest::Method::GET, &workspace(name, "/versions"), None)
            .await
    }

    pub async fn rollback(&self, name: &str, to: Option<u32>) -> Result<ImageChanged, Failure> {
        let body = serde_json::json!({ "to": to });
        self.operate(
            reqwest::Method::POST,
            &workspace(name, "/rollback"),
            Some(&body),
        )
        .await
    }

    pub async fn rollback_machine(&self, name: &str) -> Result<MachineRolledBack, Failure> {
        self.operate(
            reqwest::Method::POST,
            &workspace(name, "/machine-rollback"),
            None,
        )
        .await
    }

    pub async fn move_region(&self, name: &str, region: &str) -> Result<Replaced, Failure> {
        let body = serde_json::json!({ "region": region });
        self.operate(
            reqwest::Method::POST,
            &workspace(name, "/move"),
            Some(&body),
        )
        .await
    }

    pub async fn restore(&self, name: &str, snapshot: &str) -> Result<Replaced, Failure> {
        let body = serde_json::json!({ "snapshot": snapshot });
        self.operate(
            reqwest::Method::POST,
            &workspace(name, "/restore"),
            Some(&body),
        )
        .await
    }

    pub async fn create_snapshot(&self, name: &str) -> Result<Option<SnapshotInfo>, Failure> {
        self.operate(reqwest::Method::POST, &workspace(name, "/snapshots"), None)
            .await
    }

    pub async fn snapshots(&self, name: &str) -> Result<Vec<SnapshotInfo>, Failure> {
        self.call(reqwest::Method::GET, &workspace(name, "/snapshots"), None)
            .await
    }

    pub async fn cost(&self, name: Option<&str>) -> Result<CostReport, Failure> {
        let path = match name {
            Some(name) => workspace(name, "/cost"),
            None => "/v1/cost".to_owned(),
        };
        self.call(reqwest::Method::GET, &path, None).await
    }

    pub async fn reconcile(&self) -> Result<ReconcileReport, Failure> {
        self.call(reqwest::Method::POST, "/v1/reconcile", None)
            .await
    }
}

/// `/v1/workspaces/NAME…`. Names are validated before any call (Fly's app-name rules:
/// no character that needs escaping in a path).
fn workspace(name: &str, rest: &str) -> String {
    format!("/v1/workspaces/{name}{rest}")
}

/// The server's error as the CLI's failure, with the exit code the local CLI gives
/// for the same error (2: bad input or a state that makes the request wrong, nothing
/// changed; 1: a failure).
fn failure_of(body: &ErrorBody, status: Option<reqwest::StatusCode>) -> Failure {
    let by_code = matches!(
        body.code.as_str(),
        "invalid"
            | "bad_request"
            | "not_found"
            | "name_taken"
            | "invalid_state"
            | "quota_exceeded"
            | "too_large"
    );
    let by_status = status.is_some_and(|s| matches!(s.as_u16(), 400 | 403 | 413 | 415 | 422));
    Failure {
        code: if by_code || by_status { 2 } else { 1 },
        message: body.error.clone(),
    }
}

fn internal(error: serde_json::Error) -> Failure {
    Failure {
        code: 1,
        message: format!("cannot encode the request: {error}"),
    }
}

fn client_setup(error: reqwest::Error) -> Failure {
    Failure {
        code: 1,
        message: format!("cannot set up the HTTP client: {error}"),
    }
}

/// One server-sent event: its type (`message` when unnamed) and its data lines.
#[derive(Debug, PartialEq, Eq)]
struct ServerSentEvent {
    kind: String,
    data: String,
}

/// A `log` event as a log line, an `error` event as the failure it reports; other
/// events (none yet) are skipped, so a newer server's additions do not break us.
fn log_line_of(event: &ServerSentEvent, url: &str) -> Option<Result<LogLine, Failure>> {
    match event.kind.as_str() {
        "log" => Some(serde_json::from_str(&event.data).map_err(|error| Failure {
            code: 1,
            message: format!(
                "a log line from {url} could not be read ({error}); is it a `swarm serve` of this version?"
            ),
        })),
        "error" => Some(Err(Failure {
            code: 1,
            message: format!("the server at {url} could not follow the logs: {}", event.data),
        })),
        _ => None,
    }
}

/// Reads `text/event-stream` (the WHATWG format) from a byte stream: events end at a
/// blank line; `:` lines are comments (keep-alives).
struct ServerSentEvents {
    bytes: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: Vec<u8>,
}

impl ServerSentEvents {
    fn new(bytes: BoxStream<'static, reqwest::Result<bytes::Bytes>>) -> Self {
        Self {
            bytes,
            buffer: Vec::new(),
        }
    }

    /// The next event with data; `None` when the stream ends.
    async fn next_event(&mut self) -> Option<Result<ServerSentEvent, reqwest::Error>> {
        loop {
            while let Some(block) = self.take_block() {
                if let Some(event) = parse_event(&block) {
                    return Some(Ok(event));
                }
            }
            match self.bytes.next().await? {
                Ok(chunk) => self.buffer.extend_from_slice(&chunk),
                Err(error) => return Some(Err(error)),
            }
        }
    }

    /// The text up to the next blank line, taken off the buffer.
    fn take_block(&mut self) -> Option<String> {
        self.normalize_line_ends();
        let end = self.buffer.windows(2).position(|pair| pair == b"\n\n")?;
        let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
        Some(String::from_utf8_lossy(&block[..end]).into_owned())
    }
}

impl ServerSentEvents {
    /// Turns `\r\n` and `\r` line ends into `\n`, in bytes (a chunk may end inside a
    /// UTF-8 character). A `\r` at the very end waits for the next chunk: it may be
    /// the first half of a `\r\n`.
    fn normalize_line_ends(&mut self) {
        let settled = if self.buffer.last() == Some(&b'\r') {
            self.buffer.len() - 1
        } else {
            self.buffer.len()
        };
        if !self.buffer[..settled].contains(&b'\r') {
            return;
        }
        let mut normalized = Vec::with_capacity(self.buffer.len());
        let mut at = 0;
        while at < settled {
            if self.buffer[at] == b'\r' {
                normalized.push(b'\n');
                if self.buffer.get(at + 1) == Some(&b'\n') {
                    at += 1;
                }
            } else {
                normalized.push(self.buffer[at]);
            }
            at += 1;
        }
        normalized.extend_from_slice(&self.buffer[settled..]);
        self.buffer = normalized;
    }
}

fn parse_event(block: &str) -> Option<ServerSentEvent> {
    let mut kind = None;
    let mut data: Option<String> = None;
    for line in block.split('\n') {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => kind = Some(value.to_owned()),
            "data" => match &mut data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            _ => {}
        }
    }
    Some(ServerSentEvent {
        kind: kind.unwrap_or_else(|| "message".to_owned()),
        data: data?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events come out whole however the bytes are cut, with keep-alive comments and
    /// data-less blocks skipped and any line ending accepted.
    #[tokio::test]
    async fn server_sent_events_are_read_across_chunk_boundaries() {
        let text = ": keep-alive\n\nevent: log\ndata: {\"a\":1}\n\nevent: error\r\ndata: one\r\ndata:two\r\n\r\nevent: nothing\r\rdata: plain é\n\n";
        for cut in 1..text.len() {
            let chunks: Vec<reqwest::Result<bytes::Bytes>> = text
                .as_bytes()
                .chunks(cut)
                .map(|chunk| Ok(bytes::Bytes::copy_from_slice(chunk)))
                .collect();
            let mut events = ServerSentEvents::new(futures::stream::iter(chunks).boxed());
            let mut seen = Vec::new();
            while let Some(event) = events.next_event().await {
                let event = event.expect("no transport error");
                seen.push((event.kind, event.data));
            }
            assert_eq!(
                seen,
                [
                    ("log".to_owned(), "{\"a\":1}".to_owned()),
                    ("error".to_owned(), "one\ntwo".to_owned()),
                    ("message".to_owned(), "plain é".to_owned()),
                ],
                "chunks of {cut}"
            );
        }
    }

    #[test]
    fn log_events_become_lines_error_events_failures_and_others_are_skipped() {
        let event = |kind: &str, data: &str| ServerSentEvent {
            kind: kind.to_owned(),
            data: data.to_owned(),
        };
        let line = r#"{"timestamp":"2026-12-02T13:00:00Z","message":"hi","level":"info","instance":"m1","region":"ams"}"#;
        let parsed = log_line_of(&event("log", line), "http://s").expect("a line");
        assert_eq!(parsed.expect("valid").message, "hi");
        let failed = log_line_of(&event("error", "gone"), "http://s")
            .expect("a failure")
            .expect_err("an error event fails");
        assert!(failed.message.contains("gone") && failed.message.contains("http://s"));
        assert!(
            log_line_of(&event("log", "{"), "http://s")
                .unwrap()
                .is_err()
        );
        assert!(log_line_of(&event("message", "x"), "http://s").is_none());
    }

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn no_server_means_fly_and_a_server_needs_a_token() {
        assert!(
            ServerTarget::resolve(None, None, &env(&[]))
                .unwrap()
                .is_none()
        );
        let missing =
            ServerTarget::resolve(Some("http://127.0.0.1:1"), None, &env(&[])).unwrap_err();
        assert_eq!(missing.code, 2);
        assert!(
            missing.message.contains("SWARM_TOKEN"),
            "{}",
            missing.message
        );
        let target = ServerTarget::resolve(
            None,
            None,
            &env(&[
                ("SWARM_SERVER", "http://127.0.0.1:1/"),
                ("SWARM_TOKEN", "swt_x\n"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(target.source, ServerSource::Env);
        assert_eq!(target.shown_url(), "http://127.0.0.1:1");
        assert_eq!(target.wait_secs, 60);
    }

    #[test]
    fn the_wait_per_request_is_1_to_60_seconds() {
        let with_wait = |wait: &str| {
            ServerTarget::resolve(
                Some("http://127.0.0.1:1"),
                None,
                &env(&[("SWARM_TOKEN", "swt_x"), ("SWARM_SERVER_WAIT", wait)]),
            )
        };
        assert_eq!(with_wait("5").unwrap().unwrap().wait_secs, 5);
        for bad in ["0", "61", "-1", "soon", "99999999999999999999"] {
            let failure = with_wait(bad).unwrap_err();
            assert_eq!(failure.code, 2, "{bad}");
            assert!(failure.message.contains("SWARM_SERVER_WAIT"), "{bad}");
        }
    }

    #[test]
    fn bad_urls_are_usage_errors_naming_where_they_came_from() {
        let token = env(&[("SWARM_TOKEN", "swt_x")]);
        for bad in [
            "not a url",
            "ftp://host",
            "localhost:8080",
            "http://",
            "http://h/?a=1",
        ] {
            let failure = ServerTarget::resolve(Some(bad), None, &token).unwrap_err();
            assert_eq!(failure.code, 2, "{bad}");
            assert!(
                failure.message.contains("--server"),
                "{bad}: {}",
                failure.message
            );
        }
        let failure = ServerTarget::resolve(
            None,
            None,
            &env(&[("SWARM_SERVER", "nope"), ("SWARM_TOKEN", "swt_x")]),
        )
        .unwrap_err();
        assert!(
            failure.message.contains("SWARM_SERVER"),
            "{}",
            failure.message
        );
        let failure =
            ServerTarget::resolve(Some("https://u:hunter2@host"), None, &token).unwrap_err();
        assert!(!failure.message.contains("hunter2"), "{}", failure.message);
    }

    #[test]
    fn the_token_never_shows() {
        let secret = "swt_0123456789abcdef";
        let target = ServerTarget::resolve(
            Some("http://127.0.0.1:1"),
            None,
            &env(&[("SWARM_TOKEN", secret)]),
        )
        .unwrap()
        .unwrap();
        assert!(!format!("{target:?}").contains(secret));
        let bad = ServerTarget::resolve(
            Some("http://127.0.0.1:1"),
            None,
            &env(&[("SWARM_TOKEN", "swt_a\u{7}secret")]),
        )
        .unwrap_err();
        assert!(!bad.message.contains("secret"), "{}", bad.message);
    }

    #[test]
    fn server_errors_keep_the_local_exit_codes() {
        let body = |code: &str| ErrorBody {
            error: "x".into(),
            code: code.into(),
        };
        assert_eq!(failure_of(&body("invalid"), None).code, 2);
        assert_eq!(failure_of(&body("not_found"), None).code, 2);
        assert_eq!(failure_of(&body("busy"), None).code, 1);
        assert_eq!(failure_of(&body("fly"), None).code, 1);
        assert_eq!(
            failure_of(
                &body("whatever"),
                Some(reqwest::StatusCode::UNPROCESSABLE_ENTITY)
            )
            .code,
            2
        );
    }
}
