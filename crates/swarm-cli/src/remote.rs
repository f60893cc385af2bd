//! `swarm --server URL`: the same commands through a Swarm Controller (`swarm serve`)
//! instead of Fly.io directly. An HTTP client of the controller's `/v1` routes that
//! returns the domain types the local path returns, so output is the same.
//!
//! The API token comes from env `SWARM_TOKEN` or `--token-file PATH`, never from a
//! flag: a token on the command line ends up in shell history and `ps`.

mod access;
mod log_stream;
mod target;
mod workspaces;

use std::time::Duration;

use secrecy::ExposeSecret as _;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Failure;
pub use target::ServerTarget;

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

#[cfg(test)]
mod tests {
    use super::*;

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
