//! Apps (REST `/v1/apps`).

use serde::{Deserialize, Serialize};

use super::Extra;

/// Body of `POST /v1/apps`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateAppRequest {
    /// App name: globally unique on Fly.io.
    pub name: String,
    /// Organization slug, e.g. `personal`.
    pub org_slug: String,
    /// A named 6PN network isolating the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_subdomains: Option<bool>,
    /// Makes the create safe to repeat: the same key and name get the first app back
    /// instead of `name_taken`; the same key with another name is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// Answer to `POST /v1/apps` (201).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateAppResponse {
    #[serde(default)]
    pub id: String,
    /// Milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
}

/// An app.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct App {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// e.g. `pending`, `deployed`, `suspended`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<AppOrganization>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_cidr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_numeric_id: Option<i64>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The organization an app belongs to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppOrganization {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_numeric_id: Option<i64>,
}

/// Answer to `GET /v1/apps?org_slug=`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListAppsResponse {
    #[serde(default)]
    pub apps: Vec<App>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_apps: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}
