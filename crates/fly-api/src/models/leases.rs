//! Machine leases (REST `/machines/{id}/lease`).

use serde::{Deserialize, Serialize};

/// A lease on a machine. `nonce` must accompany every mutation while it is held.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    #[serde(default)]
    pub nonce: String,
    /// Unix seconds.
    #[serde(default)]
    pub expires_at: i64,
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub description: String,
    /// The machine version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Body of `POST /lease`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct CreateLeaseRequest<'a> {
    pub ttl: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
}
