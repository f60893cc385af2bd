//! `client.ips()`: IP addresses through Fly's GraphQL API.

use serde::{Deserialize, Serialize};

use crate::client::{FlyClient, require};
use crate::models::{AppIps, IpAddress, IpAddressType, IpRelease};
use crate::retry::Idempotency;
use crate::{Error, Result};

/// GraphQL operations, public so tests can check them against Fly's schema.
pub mod queries {
    /// Allocates an address; `ipAddress` is null for `shared_v4`.
    pub const ALLOCATE_IP_ADDRESS: &str =
        "mutation AllocateIpAddress($input: AllocateIPAddressInput!) {
  allocateIpAddress(input: $input) {
    ipAddress { id address type region createdAt serviceName }
    app { sharedIpAddress }
  }
}";

    /// Releases an address by id or by address.
    pub const RELEASE_IP_ADDRESS: &str =
        "mutation ReleaseIpAddress($input: ReleaseIPAddressInput!) {
  releaseIpAddress(input: $input) { clientMutationId }
}";

    /// The addresses of an app.
    pub const APP_IP_ADDRESSES: &str = "query AppIpAddresses($appName: String!) {
  app(name: $appName) {
    ipAddresses { nodes { id address type region createdAt serviceName } }
    sharedIpAddress
  }
}";
}

/// IP address operations (GraphQL at `{api_base}/graphql`).
#[derive(Debug, Clone)]
pub struct Ips {
    client: FlyClient,
}

impl FlyClient {
    /// IP address operations.
    pub fn ips(&self) -> Ips {
        Ips {
            client: self.clone(),
        }
    }
}

#[derive(Serialize)]
struct Input<T> {
    input: T,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AllocateInput<'a> {
    app_id: &'a str,
    #[serde(rename = "type")]
    kind: &'a IpAddressType,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReleaseInput<'a> {
    app_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_address_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AllocateData {
    allocate_ip_address: AllocatePayload,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AllocatePayload {
    #[serde(default)]
    ip_address: Option<IpAddress>,
}

#[derive(Deserialize)]
struct ReleaseData {
    #[serde(rename = "releaseIpAddress")]
    _release: serde_json::Value,
}

#[derive(Deserialize)]
struct AppData {
    app: Option<AppIpsWire>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppIpsWire {
    #[serde(default)]
    ip_addresses: Option<Nodes>,
    #[serde(default)]
    shared_ip_address: Option<String>,
}

#[derive(Deserialize)]
struct Nodes {
    #[serde(default)]
    nodes: Vec<IpAddress>,
}

impl Ips {
    /// Allocates an address. `None` for `SharedV4`, which has no address object (read
    /// it with [`Ips::list`]). Not retried unless certainly not applied.
    pub async fn allocate(
        &self,
        app: &str,
        kind: IpAddressType,
        region: Option<&str>,
    ) -> Result<Option<IpAddress>> {
        require("app name", app)?;
        let vars = Input {
            input: AllocateInput {
                app_id: app,
                kind: &kind,
                region,
            },
        };
        let data: AllocateData = self
            .client
            .graphql_with(queries::ALLOCATE_IP_ADDRESS, vars, Idempotency::Create)
            .await?;
        Ok(data.allocate_ip_address.ip_address)
    }

    /// Releases an address.
    pub async fn release(&self, app: &str, which: &IpRelease) -> Result<()> {
        require("app name", app)?;
        let (ip_address_id, ip) = match which {
            IpRelease::Id(id) => {
                require("ip address id", id)?;
                (Some(id.as_str()), None)
            }
            IpRelease::Address(address) => {
                require("ip address", address)?;
                (None, Some(address.as_str()))
            }
        };
        let vars = Input {
            input: ReleaseInput {
                app_id: app,
                ip_address_id,
                ip,
            },
        };
        let _: ReleaseData = self
            .client
            .graphql_with(queries::RELEASE_IP_ADDRESS, vars, Idempotency::Safe)
            .await?;
        Ok(())
    }

    /// The app's addresses and its shared IPv4.
    pub async fn list(&self, app: &str) -> Result<AppIps> {
        require("app name", app)?;
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Vars<'a> {
            app_name: &'a str,
        }
        let data: AppData = self
            .client
            .graphql_with(
                queries::APP_IP_ADDRESSES,
                Vars { app_name: app },
                Idempotency::Safe,
            )
            .await?;
        let app_ips = data.app.ok_or_else(|| {
            Error::GraphQl(vec![crate::GraphQlError {
                message: format!("Could not find App \"{app}\""),
                path: None,
                extensions: Some(serde_json::json!({"code": "NOT_FOUND"})),
            }])
        })?;
        Ok(AppIps {
            ip_addresses: app_ips.ip_addresses.map(|n| n.nodes).unwrap_or_default(),
            shared_ip_address: app_ips.shared_ip_address,
        })
    }
}
