//! One error type for every call, with predicates callers branch on.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// Result of every client call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a call to Fly can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Fly answered with a non-2xx status.
    #[error(transparent)]
    Api(ApiError),
    /// The GraphQL endpoint answered 200 with an `errors` array.
    #[error("Fly GraphQL error: {}", join_graphql(.0))]
    GraphQl(Vec<GraphQlError>),
    /// The request failed on the way. `sent == false` means it never left this machine
    /// (e.g. connection refused), so it was certainly not applied.
    #[error("transport error ({}): {message}", if *.sent { "request may have been sent" } else { "request not sent" })]
    Transport { message: String, sent: bool },
    /// A client-side timeout, or the deadline of a wait passed.
    #[error("timed out waiting for Fly")]
    Timeout,
    /// Fly's answer did not have the expected shape; `path` is the JSON path, e.g.
    /// `config.guest.cpus`.
    #[error("could not decode Fly's response at `{path}`: {message}")]
    Decode { path: String, message: String },
    /// The client is misconfigured (no token, bad base URL, ...).
    #[error("configuration error: {0}")]
    Config(String),
    /// An argument given to the client breaks a rule; the message names the field.
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

/// A non-2xx answer from Fly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// The body's `status` field, e.g. `name_taken`, `insufficient_capacity`.
    pub code: Option<String>,
    /// The body's `message`, else its `error`, else the raw body text.
    pub message: String,
    /// Fly's `fly-request-id` response header, for support requests.
    pub request_id: Option<String>,
    /// `Retry-After` (seconds) when Fly sent one.
    pub retry_after: Option<Duration>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fly API error {}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(id) = &self.request_id {
            write!(f, " [fly-request-id {id}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// Builds the error from a response's parts (body as received).
    pub fn from_response(
        status: u16,
        body: &[u8],
        request_id: Option<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        #[derive(Deserialize)]
        struct ErrorBody {
            #[serde(default)]
            error: Option<String>,
            #[serde(default)]
            message: Option<String>,
            #[serde(default)]
            status: Option<serde_json::Value>,
            #[serde(default)]
            code: Option<String>,
        }
        let text = String::from_utf8_lossy(body).trim().to_string();
        let (code, message) = match serde_json::from_slice::<ErrorBody>(body) {
            Ok(parsed) => {
                // Lease bodies use `status: "error"` plus `code`; error bodies use `status: <code>`.
                let code = match parsed.status {
                    Some(serde_json::Value::String(s)) if s != "error" => Some(s),
                    _ => parsed.code,
                };
                let message = parsed
                    .message
                    .filter(|m| !m.is_empty())
                    .or(parsed.error.filter(|m| !m.is_empty()))
                    .unwrap_or_else(|| text.clone());
                (code, message)
            }
            Err(_) => (None, text),
        };
        let message = if message.is_empty() {
            http::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("no message")
                .to_string()
        } else {
            message
        };
        ApiError {
            status,
            code,
            message,
            request_id,
            retry_after,
        }
    }
}

/// One entry of a GraphQL `errors` array.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct GraphQlError {
    pub message: String,
    #[serde(default)]
    pub path: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub extensions: Option<serde_json::Value>,
}

impl GraphQlError {
    /// `extensions.code`, when the server sent one.
    pub fn code(&self) -> Option<&str> {
        self.extensions.as_ref()?.get("code")?.as_str()
    }
}

fn join_graphql(errors: &[GraphQlError]) -> String {
    errors
        .iter()
        .map(|e| e.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// The API error, when Fly answered with a non-2xx status.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }

    /// The HTTP status Fly answered with, if any.
    pub fn status(&self) -> Option<u16> {
        self.api().map(|e| e.status)
    }

    /// Fly's request id, when the failure came from a response.
    pub fn request_id(&self) -> Option<&str> {
        self.api()?.request_id.as_deref()
    }

    /// 404, or a GraphQL "not found".
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::Api(e) => e.status == 404,
            Error::GraphQl(errs) => errs.iter().any(|e| {
                e.code() == Some("NOT_FOUND") || e.message.to_lowercase().contains("not found")
            }),
            _ => false,
        }
    }

    /// 409: a lease is held, a stale `current_version`, or no capacity for a scale-up.
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }

    /// 409 whose message says another lease holds the machine.
    pub fn is_lease_held(&self) -> bool {
        self.api()
            .is_some_and(|e| e.status == 409 && e.message.contains("lease currently held"))
    }

    /// 412: the machine or volume is not in a state that allows the call.
    pub fn is_precondition_failed(&self) -> bool {
        self.status() == Some(412)
    }

    /// Fly has no room: `insufficient_capacity` or `volume_placement_capacity`.
    pub fn is_capacity(&self) -> bool {
        self.api().is_some_and(|e| {
            matches!(
                e.code.as_deref(),
                Some("insufficient_capacity" | "volume_placement_capacity")
            ) || e.message.contains("insufficient resources")
                || e.message.contains("insufficient capacity")
        })
    }

    /// 429.
    pub fn is_rate_limited(&self) -> bool {
        self.status() == Some(429)
    }

    /// An app name already taken (by anyone on Fly.io).
    pub fn is_name_taken(&self) -> bool {
        match self {
            Error::Api(e) => {
                e.code.as_deref() == Some("name_taken")
                    || e.message.contains("Name has already been taken")
            }
            Error::GraphQl(errs) => errs
                .iter()
                .any(|e| e.message.contains("Name has already been taken")),
            _ => false,
        }
    }

    /// Transient: worth repeating *if the request is safe to repeat* (408, 429, 5xx,
    /// transport failures, client timeouts).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api(e) => e.status == 408 || e.status == 429 || e.status >= 500,
            Error::Transport { .. } | Error::Timeout => true,
            _ => false,
        }
    }

    /// The call may have been applied although it failed: look the resource up before
    /// repeating a create (client timeout, 5xx, 408, or a transport failure after sending).
    pub fn is_ambiguous(&self) -> bool {
        match self {
            Error::Timeout => true,
            Error::Api(e) => e.status == 408 || e.status >= 500,
            Error::Transport { sent, .. } => *sent,
            _ => false,
        }
    }

    /// How long Fly asked us to wait (`Retry-After`), if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        self.api()?.retry_after
    }

    pub(crate) fn decode(err: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = err.path().to_string();
        Error::Decode {
            path,
            message: err.into_inner().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_prefers_message_then_error_then_raw_text() {
        let e = ApiError::from_response(400, br#"{"error":"e","message":"m"}"#, None, None);
        assert_eq!(e.message, "m");
        let e = ApiError::from_response(400, br#"{"error":"e"}"#, None, None);
        assert_eq!(e.message, "e");
        let e = ApiError::from_response(502, b"<html>bad gateway</html>", None, None);
        assert_eq!(e.message, "<html>bad gateway</html>");
        let e = ApiError::from_response(503, b"", None, None);
        assert_eq!(e.message, "Service Unavailable");
    }

    #[test]
    fn api_error_reads_status_code_and_lease_code() {
        let e = ApiError::from_response(
            422,
            br#"{"error":"Name has already been taken","status":"name_taken"}"#,
            Some("req-1".into()),
            None,
        );
        assert_eq!(e.code.as_deref(), Some("name_taken"));
        let err = Error::Api(e);
        assert!(err.is_name_taken());
        assert_eq!(err.request_id(), Some("req-1"));
        assert!(err.to_string().contains("req-1"));

        let lease = ApiError::from_response(
            409,
            br#"{"status":"error","message":"machine ID 1 lease currently held by a@b, expires at 2026-05-14T10:41:08Z","code":"invalid"}"#,
            None,
            None,
        );
        assert_eq!(lease.code.as_deref(), Some("invalid"));
        let err = Error::Api(lease);
        assert!(err.is_conflict() && err.is_lease_held());
        assert!(!err.is_retryable());
    }

    #[test]
    fn predicates_classify_statuses() {
        let api = |status| Error::Api(ApiError::from_response(status, b"{}", None, None));
        assert!(api(404).is_not_found());
        assert!(api(412).is_precondition_failed());
        assert!(api(429).is_rate_limited() && api(429).is_retryable() && !api(429).is_ambiguous());
        assert!(api(503).is_retryable() && api(503).is_ambiguous());
        assert!(api(408).is_retryable() && api(408).is_ambiguous());
        assert!(!api(400).is_retryable() && !api(400).is_ambiguous());
        let not_sent = Error::Transport {
            message: "refused".into(),
            sent: false,
        };
        assert!(not_sent.is_retryable() && !not_sent.is_ambiguous());
        let sent = Error::Transport {
            message: "reset".into(),
            sent: true,
        };
        assert!(sent.is_ambiguous());
        assert!(Error::Timeout.is_ambiguous());
        let capacity = Error::Api(ApiError::from_response(
            412,
            br#"{"error":"no room","status":"insufficient_capacity"}"#,
            None,
            None,
        ));
        assert!(capacity.is_capacity());
    }
}
