//! Fly's error answers: `{"error": ..., "status"?: ...}` with Fly's texts.

use serde_json::{Value, json};

/// An HTTP error the way Fly words it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub body: Value,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: json!({ "error": message.into() }),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, message)
    }

    pub fn unprocessable(message: impl Into<String>) -> ApiError {
        ApiError::new(422, message)
    }

    /// 412 with Fly's `failed_precondition:` prefix.
    pub fn precondition(message: impl AsRef<str>) -> ApiError {
        ApiError::new(412, format!("failed_precondition: {}", message.as_ref()))
    }

    pub fn app_not_found(name: &str) -> ApiError {
        ApiError::new(404, format!("Could not find App \"{name}\""))
    }

    pub fn forbidden_app(name: &str) -> ApiError {
        ApiError::new(
            403,
            format!(
                "You are not authorized to access app \"{name}\": it belongs to another organization"
            ),
        )
    }

    pub fn machine_not_found(id: &str) -> ApiError {
        ApiError::new(404, format!("machine not found: {id}"))
    }

    pub fn volume_not_found(id: &str) -> ApiError {
        ApiError::new(404, format!("volume not found: {id}"))
    }

    pub fn name_taken() -> ApiError {
        ApiError {
            status: 422,
            body: json!({"error": "Name has already been taken", "status": "name_taken"}),
        }
    }

    pub fn invalid_region(code: &str) -> ApiError {
        ApiError::unprocessable(format!("invalid region \"{code}\""))
    }

    /// 409 while another lease is held (REFERENCE S1).
    pub fn lease_held(machine_id: &str, owner: &str, expires_at_secs: i64) -> ApiError {
        let when = crate::clock::rfc3339(expires_at_secs.saturating_mul(1000));
        ApiError {
            status: 409,
            body: json!({
                "status": "error",
                "message": format!("machine ID {machine_id} lease currently held by {owner}, expires at {when}"),
                "code": "invalid",
            }),
        }
    }

    pub fn message(&self) -> String {
        self.body
            .get("error")
            .or_else(|| self.body.get("message"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.message())
    }
}
