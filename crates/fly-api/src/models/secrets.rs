//! App secrets (REST `/v1/apps/{app}/secrets`).

use std::collections::BTreeMap;

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

/// A secret's metadata (values are not returned unless asked for, and we never ask).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppSecret {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

impl std::fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSecret")
            .field("name", &self.name)
            .field("digest", &self.digest)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// Answer to `GET /v1/apps/{app}/secrets`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppSecrets {
    #[serde(default)]
    pub secrets: Vec<AppSecret>,
}

/// Body of `POST /v1/apps/{app}/secrets`: values stay `SecretString`s until the bytes
/// of the request are written.
#[derive(Clone, Default, Serialize)]
pub(crate) struct SecretsUpdateRequest {
    #[serde(serialize_with = "expose_values")]
    pub values: BTreeMap<String, SecretString>,
}

fn expose_values<S: serde::Serializer>(
    values: &BTreeMap<String, SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(values.iter().map(|(k, v)| (k, v.expose_secret())))
}

impl std::fmt::Debug for SecretsUpdateRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsUpdateRequest")
            .field("names", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Answer to a secrets update or delete: the new secrets version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecretsVersion {
    #[serde(default)]
    pub version: Option<u64>,
    /// Deprecated spelling Fly still sends.
    #[serde(default, rename = "Version", skip_serializing_if = "Option::is_none")]
    pub version_deprecated: Option<u64>,
}

impl SecretsVersion {
    pub(crate) fn get(&self) -> Option<u64> {
        self.version.or(self.version_deprecated)
    }
}
