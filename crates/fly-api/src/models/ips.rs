//! IP addresses (GraphQL).

use serde::{Deserialize, Serialize};

use super::string_enum;

string_enum! {
    /// Kind of IP address.
    IpAddressType {
        /// Dedicated IPv4 (billed).
        V4 = "v4",
        V6 = "v6",
        /// Shared IPv4 (free); allocation returns no address object.
        SharedV4 = "shared_v4",
        /// Private 6PN address (Flycast).
        PrivateV6 = "private_v6",
    }
}

/// An allocated IP address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpAddress {
    pub id: String,
    pub address: String,
    #[serde(rename = "type")]
    pub kind: IpAddressType,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub service_name: Option<String>,
}

/// Which address to release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpRelease {
    /// The GraphQL id of the address.
    Id(String),
    /// The address itself.
    Address(String),
}

/// The IPs of an app.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppIps {
    pub ip_addresses: Vec<IpAddress>,
    /// The shared IPv4, when one was allocated.
    pub shared_ip_address: Option<String>,
}
