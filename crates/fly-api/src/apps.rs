//! `client.apps()`.

use http::Method;

use crate::Result;
use crate::client::{Call, FlyClient, require};
use crate::models::{App, CreateAppRequest, CreateAppResponse, ListAppsResponse};
use crate::retry::Idempotency;
use crate::throttle::Quota;

/// App operations (REST `/v1/apps`).
#[derive(Debug, Clone)]
pub struct Apps {
    client: FlyClient,
}

impl FlyClient {
    /// App operations.
    pub fn apps(&self) -> Apps {
        Apps {
            client: self.clone(),
        }
    }
}

impl Apps {
    /// Creates an app (201). Not retried unless certainly not applied: after an
    /// ambiguous failure, `get` the name and adopt it.
    /// With an `idempotency_key` the create is repeated after an ambiguous failure
    /// (timeout, 5xx) like a read: Fly answers a repeat with the app the first made.
    pub async fn create(&self, request: &CreateAppRequest) -> Result<CreateAppResponse> {
        require("name", &request.name)?;
        require("org_slug", &request.org_slug)?;
        let idempotency = if request.idempotency_key.is_some() {
            Idempotency::Safe
        } else {
            Idempotency::Create
        };
        let call = Call::v1(Method::POST, "create_app", ["apps"])
            .json_body(request)?
            .idempotency(idempotency)
            .throttled(&request.org_slug, Quota::ACTION);
        self.client.json(call).await
    }

    /// One app by name. 404 when it does not exist, 403 when another org owns the name.
    pub async fn get(&self, name: &str) -> Result<App> {
        require("app name", name)?;
        let call = Call::v1(Method::GET, "get_app", ["apps", name]).throttled(name, Quota::ACTION);
        self.client.json(call).await
    }

    /// Every app of an organization.
    pub async fn list(&self, org_slug: &str) -> Result<Vec<App>> {
        require("org_slug", org_slug)?;
        let call = Call::v1(Method::GET, "list_apps", ["apps"])
            .query("org_slug", org_slug)
            .throttled(org_slug, Quota::ACTION);
        let list: ListAppsResponse = self.client.json(call).await?;
        Ok(list.apps)
    }

    /// Deletes an app and everything in it (202; the work continues on Fly's side).
    /// `force` stops running machines first.
    pub async fn delete(&self, name: &str, force: bool) -> Result<()> {
        require("app name", name)?;
        let mut call =
            Call::v1(Method::DELETE, "delete_app", ["apps", name]).throttled("", Quota::DELETE_APP);
        if force {
            call = call.query("force", "true");
        }
        self.client.unit(call).await
    }
}
