//! Errors as JSON, with the HTTP status a client can act on. Messages are the CLI's.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use swarm::error::Error;

/// The body of every error answer: `{"error": …, "code": …, "fields": […]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong and what to do, as the CLI says it.
    pub error: String,
    /// A stable word for programs: `invalid`, `not_found`, `conflict`, …
    pub code: &'static str,
    /// For `invalid`: each field at fault and the rule it broke.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field's name as sent (`cpus`, `env.FOO`).
    pub field: String,
    pub rule: String,
}

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, error: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: error.into(),
                code,
                fields: Vec::new(),
            },
        }
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a valid API token is needed: send `Authorization: Bearer <token>` (an admin makes one with `swarm token create --user NAME`)",
        )
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let (status, code) = classify(&error);
        let fields = match &error {
            Error::Invalid(errors) => errors
                .iter()
                .map(|e| FieldError {
                    field: e.field.to_owned(),
                    rule: e.rule.clone(),
                })
                .collect(),
            _ => Vec::new(),
        };
        Self {
            status,
            body: ErrorBody {
                error: error.to_string(),
                code,
                fields,
            },
        }
    }
}

/// The HTTP status and code of a domain error.
fn classify(error: &Error) -> (StatusCode, &'static str) {
    match error {
        Error::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        Error::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
        Error::AlreadyExists { .. } | Error::NameTaken { .. } => {
            (StatusCode::CONFLICT, "name_taken")
        }
        Error::InvalidState { .. } | Error::NotRunning { .. } => {
            (StatusCode::CONFLICT, "invalid_state")
        }
        Error::SecretNotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
        Error::ExecTimedOut { .. } => (StatusCode::GATEWAY_TIMEOUT, "exec_timeout"),
        Error::QuotaExceeded(_) => (StatusCode::FORBIDDEN, "quota_exceeded"),
        Error::Busy { .. } => (StatusCode::CONFLICT, "busy"),
        Error::CreateFailed { source, .. } | Error::PoolFailed { source, .. } => classify(source),
        Error::Capacity { .. } => (StatusCode::SERVICE_UNAVAILABLE, "capacity"),
        Error::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
        Error::NoToken | Error::Unauthorized { .. } | Error::Provider(_) => {
            (StatusCode::BAD_GATEWAY, "fly")
        }
        Error::Store(_) | Error::Password(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
