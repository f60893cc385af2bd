//! `client.volumes(app)`.

use http::Method;

use crate::client::{Call, FlyClient, require};
use crate::models::{
    CreateVolumeRequest, ExtendVolumeRequest, ExtendVolumeResponse, Volume, VolumeSnapshot,
};
use crate::retry::Idempotency;
use crate::throttle::Quota;
use crate::{Error, Result};

/// Volume operations within one app.
#[derive(Debug, Clone)]
pub struct Volumes {
    client: FlyClient,
    app: String,
}

impl FlyClient {
    /// Volumes of `app`.
    pub fn volumes(&self, app: &str) -> Volumes {
        Volumes {
            client: self.clone(),
            app: app.to_string(),
        }
    }
}

impl Volumes {
    fn call(&self, method: Method, action: &'static str, rest: &[&str]) -> Result<Call> {
        require("app name", &self.app)?;
        let mut segments = vec!["apps", self.app.as_str(), "volumes"];
        segments.extend_from_slice(rest);
        Ok(Call::v1(method, action, segments))
    }

    fn volume_call(
        &self,
        method: Method,
        action: &'static str,
        id: &str,
        rest: &[&str],
    ) -> Result<Call> {
        require("volume id", id)?;
        let mut segments = vec![id];
        segments.extend_from_slice(rest);
        Ok(self
            .call(method, action, &segments)?
            .throttled(id, Quota::ACTION))
    }

    /// Creates a volume (or restores a snapshot / forks a volume). Not retried unless
    /// certainly not applied: list by name to adopt it after an ambiguous failure.
    pub async fn create(&self, request: &CreateVolumeRequest) -> Result<Volume> {
        require("volume name", &request.name)?;
        let call = self
            .call(Method::POST, "create_volume", &[])?
            .json_body(request)?
            .throttled(&self.app, Quota::ACTION);
        self.client.json(call).await
    }

    /// One volume.
    pub async fn get(&self, id: &str) -> Result<Volume> {
        let call = self.volume_call(Method::GET, "get_volume", id, &[])?;
        self.client.json(call).await
    }

    /// Every volume of the app (recently deleted ones may still show).
    pub async fn list(&self) -> Result<Vec<Volume>> {
        let call = self
            .call(Method::GET, "list_volumes", &[])?
            .throttled(&self.app, Quota::ACTION);
        self.client.json(call).await
    }

    /// Deletes a volume; 412 while a machine still holds it.
    pub async fn delete(&self, id: &str) -> Result<Volume> {
        let call = self.volume_call(Method::DELETE, "delete_volume", id, &[])?;
        self.client.json(call).await
    }

    /// Grows a volume to `size_gb` (the new total; volumes never shrink).
    pub async fn extend(&self, id: &str, size_gb: u32) -> Result<ExtendVolumeResponse> {
        if size_gb == 0 {
            return Err(Error::InvalidInput("size_gb must be at least 1".into()));
        }
        let call = self
            .volume_call(Method::PUT, "extend_volume", id, &["extend"])?
            .json_body(&ExtendVolumeRequest { size_gb })?;
        self.client.json(call).await
    }

    /// Snapshots of a volume.
    pub async fn list_snapshots(&self, id: &str) -> Result<Vec<VolumeSnapshot>> {
        let call = self.volume_call(Method::GET, "list_snapshots", id, &["snapshots"])?;
        self.client.json(call).await
    }

    /// Starts a snapshot of a volume.
    pub async fn create_snapshot(&self, id: &str) -> Result<()> {
        let call = self
            .volume_call(Method::POST, "create_snapshot", id, &["snapshots"])?
            .idempotency(Idempotency::Create);
        self.client.unit(call).await
    }
}
