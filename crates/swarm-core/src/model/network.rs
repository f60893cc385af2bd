//! How a workspace is reached: its IP mode, its addresses and its URL.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::*;

/// How the workspace is reachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpMode {
    /// Shared IPv4 + dedicated IPv6 (free): `https://<app>.fly.dev`.
    #[default]
    Shared,
    /// Dedicated IPv4 (billed) + IPv6.
    Dedicated,
    /// Private IPv6 only, over Fly's WireGuard network: `http://<app>.internal:8080`.
    Private,
}

impl IpMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::Dedicated => "dedicated",
            Self::Private => "private",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Shared, Self::Dedicated, Self::Private]
            .into_iter()
            .find(|mode| mode.as_str() == text)
    }

    /// The IP kinds a workspace in this mode holds.
    pub fn ip_kinds(self) -> &'static [IpKind] {
        match self {
            Self::Shared => &[IpKind::SharedV4, IpKind::V6],
            Self::Dedicated => &[IpKind::V4, IpKind::V6],
            Self::Private => &[IpKind::PrivateV6],
        }
    }
}

impl fmt::Display for IpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Fly's IP address types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IpKind {
    V4,
    V6,
    SharedV4,
    PrivateV6,
}

impl IpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V4 => "v4",
            Self::V6 => "v6",
            Self::SharedV4 => "shared_v4",
            Self::PrivateV6 => "private_v6",
        }
    }
}

/// One IP address held by the workspace's app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpRecord {
    pub kind: IpKind,
    pub address: String,
    /// Fly's id of a dedicated address (`None` for the shared IPv4).
    pub id: Option<String>,
}

/// The URL at which a workspace is reached.
pub fn workspace_url(name: &WorkspaceName, ip_mode: IpMode) -> String {
    app_url(name.as_str(), ip_mode)
}

/// The URL at which the workspace held by Fly app `app` is reached.
pub fn app_url(app: &str, ip_mode: IpMode) -> String {
    match ip_mode {
        IpMode::Private => format!("http://{app}.internal:8080"),
        IpMode::Shared | IpMode::Dedicated => format!("https://{app}.fly.dev"),
    }
}
