//! The workspace commands through a controller, one method a route.

use swarm::{
    CreateOptions, Created, Deleted, Health, ImageChanged, ImageVersion, LogLine,
    MachineRolledBack, PasswordRotated, ReconcileReport, Replaced, ResizeOptions, Resized,
    SnapshotInfo, StateChange, WorkspaceRecord,
};

use crate::Failure;
use swarm::cost_report::CostReport;

use super::{Remote, internal, workspace};

impl Remote {
    pub async fn list(&self) -> Result<Vec<WorkspaceRecord>, Failure> {
        self.call(reqwest::Method::GET, "/v1/workspaces", None)
            .await
    }

    pub async fn show(&self, name: &str) -> Result<WorkspaceRecord, Failure> {
        self.call(reqwest::Method::GET, &workspace(name, ""), None)
            .await
    }

    pub async fn create(&self, options: &CreateOptions) -> Result<Created, Failure> {
        let body = serde_json::to_value(options).map_err(internal)?;
        self.operate(reqwest::Method::POST, "/v1/workspaces", Some(&body))
            .await
    }

    pub async fn start(&self, name: &str) -> Result<StateChange, Failure> {
        self.operate(reqwest::Method::POST, &workspace(name, "/start"), None)
            .await
    }

    pub async fn suspend(&self, name: &str) -> Result<StateChange, Failure> {
        self.operate(reqwest::Method::POST, &workspace(name, "/suspend"), None)
            .await
    }

    pub async fn stop(&self, name: &str, force: bool) -> Result<StateChange, Failure> {
        let path = workspace(name, &format!("/stop?force={force}"));
        self.operate(reqwest::Method::POST, &path, None).await
    }

    pub async fn delete(&self, name: &str) -> Result<Deleted, Failure> {
        self.operate(reqwest::Method::DELETE, &workspace(name, ""), None)
            .await
    }

    pub async fn health(&self, name: &str) -> Result<Health, Failure> {
        self.call(reqwest::Method::GET, &workspace(name, "/health"), None)
            .await
    }

    pub async fn logs(&self, name: &str, lines: usize) -> Result<Vec<LogLine>, Failure> {
        let path = workspace(name, &format!("/logs?lines={lines}"));
        self.call(reqwest::Method::GET, &path, None).await
    }

    pub async fn rotate_password(&self, name: &str) -> Result<PasswordRotated, Failure> {
        self.operate(reqwest::Method::POST, &workspace(name, "/password"), None)
            .await
    }

    pub async fn resize(&self, name: &str, options: &ResizeOptions) -> Result<Resized, Failure> {
        let body = serde_json::to_value(options).map_err(internal)?;
        self.operate(
            reqwest::Method::POST,
            &workspace(name, "/resize"),
            Some(&body),
        )
        .await
    }

    pub async fn update_image(&self, name: &str, image: &str) -> Result<ImageChanged, Failure> {
        let body = serde_json::json!({ "image": image });
        self.operate(
            reqwest::Method::POST,
            &workspace(name, "/update"),
            Some(&body),
        )
        .await
    }

    pub async fn versions(&self, name: &str) -> Result<Vec<ImageVersion>, Failure> {
        self.call(reqwest::Method::GET, &workspace(name, "/versions"), None)
            .await
    }

    pub async fn rollback(&self, name: &str, to: Option<u32>) -> Result<ImageChanged, Failure> {
        let body = serde_json::json!({ "to": to });
        self.operate(
            reqwest::Method::POST,
            &workspace(name, "/rollback"),
            Some(&body),
        )
        .await
    }

    pub async fn rollback_machine(&self, name: &str) -> Result<MachineRolledBack, Failure> {
        self.operate(
            reqwest::Method::POST,
            &workspace(name, "/machine-rollback"),
            None,
        )
        .await
    }

    pub async fn move_region(&self, name: &str, region: &str) -> Result<Replaced, Failure> {
        let body = serde_json::json!({ "region": region });
        self.operate(
            reqwest::Method::POST,
            &workspace(name, "/move"),
            Some(&body),
        )
        .await
    }

    pub async fn restore(&self, name: &str, snapshot: &str) -> Result<Replaced, Failure> {
        let body = serde_json::json!({ "snapshot": snapshot });
        self.operate(
            reqwest::Method::POST,
            &workspace(name, "/restore"),
            Some(&body),
        )
        .await
    }

    pub async fn create_snapshot(&self, name: &str) -> Result<Option<SnapshotInfo>, Failure> {
        self.operate(reqwest::Method::POST, &workspace(name, "/snapshots"), None)
            .await
    }

    pub async fn snapshots(&self, name: &str) -> Result<Vec<SnapshotInfo>, Failure> {
        self.call(reqwest::Method::GET, &workspace(name, "/snapshots"), None)
            .await
    }

    pub async fn cost(&self, name: Option<&str>) -> Result<CostReport, Failure> {
        let path = match name {
            Some(name) => workspace(name, "/cost"),
            None => "/v1/cost".to_owned(),
        };
        self.call(reqwest::Method::GET, &path, None).await
    }

    pub async fn reconcile(&self) -> Result<ReconcileReport, Failure> {
        self.call(reqwest::Method::POST, "/v1/reconcile", None)
            .await
    }
}
