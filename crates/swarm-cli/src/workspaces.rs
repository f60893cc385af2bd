//! What the commands call: the workspace manager on this machine (`Swarm` over Fly or
//! the local Fly) or a Swarm Controller (`--server`). Both return the same types, so
//! a command prints the same whichever it is.

use futures::stream::BoxStream;
use swarm::{
    CreateOptions, CreateStep, Created, Deleted, Health, ImageChanged, ImageVersion, LogLine,
    MachineConfig, MachineRolledBack, PasswordRotated, ReconcileReport, Replaced, ResizeOptions,
    Resized, SnapshotInfo, StateChange, WorkspaceRecord, WorkspaceSummary,
};

use crate::Failure;
use crate::backend::Backend;
use crate::remote::Remote;
use swarm::cost_report::CostReport;

#[derive(Debug)]
pub enum Workspaces {
    // Boxed: the local manager is much larger than the HTTP client.
    Local(Box<Backend>),
    Remote(Remote),
}

impl Workspaces {
    pub async fn close(self) {
        if let Self::Local(backend) = self {
            backend.close().await;
        }
    }

    /// Whether the workspaces live on the embedded local Fly.
    pub fn on_local_fly(&self) -> bool {
        matches!(self, Self::Local(backend) if backend.sim.is_some())
    }

    /// What Ctrl-C leaves behind.
    pub fn interrupted_message(&self) -> &'static str {
        match self {
            Self::Local(_) => {
                "interrupted; what was under way is journaled: `swarm reconcile` finishes or undoes it"
            }
            Self::Remote(_) => {
                "interrupted; the server carries on with what it was asked to do: `swarm show NAME` tells how it ended"
            }
        }
    }

    /// Adjusted defaults and advice to print before a create. Through a server they
    /// come with the result instead (the server's defaults apply, not this machine's).
    pub fn create_notes(&self, options: &CreateOptions) -> Result<Vec<String>, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.validate(options)?.notes),
            Self::Remote(_) => Ok(Vec::new()),
        }
    }

    pub async fn create(
        &self,
        options: &CreateOptions,
        progress: &(dyn Fn(&CreateStep) + Send + Sync),
    ) -> Result<Created, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.create_with_progress(options, progress).await?),
            Self::Remote(r) => r.create(options).await,
        }
    }

    /// Every record as one pretty JSON document ending in a newline (`list --json`).
    pub async fn list_json(&self) -> Result<Vec<u8>, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.list_json().await?),
            Self::Remote(r) => {
                let mut document =
                    serde_json::to_vec_pretty(&r.list().await?).map_err(anyhow::Error::from)?;
                document.push(b'\n');
                Ok(document)
            }
        }
    }

    pub async fn list_summaries(&self) -> Result<Vec<WorkspaceSummary>, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.list_summaries().await?),
            Self::Remote(r) => Ok(r
                .list()
                .await?
                .iter()
                .map(WorkspaceRecord::summary)
                .collect()),
        }
    }

    pub async fn show(&self, name: &str) -> Result<WorkspaceRecord, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.show(name).await?),
            Self::Remote(r) => r.show(name).await,
        }
    }

    pub async fn start(&self, name: &str) -> Result<StateChange, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.start(name).await?),
            Self::Remote(r) => r.start(name).await,
        }
    }

    pub async fn suspend(&self, name: &str) -> Result<StateChange, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.suspend(name).await?),
            Self::Remote(r) => r.suspend(name).await,
        }
    }

    pub async fn stop(&self, name: &str, force: bool) -> Result<StateChange, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.stop(name, force).await?),
            Self::Remote(r) => r.stop(name, force).await,
        }
    }

    pub async fn delete(&self, name: &str) -> Result<Deleted, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.delete(name).await?),
            Self::Remote(r) => r.delete(name).await,
        }
    }

    pub async fn health(&self, name: &str) -> Result<Health, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.health(name).await?),
            Self::Remote(r) => r.health(name).await,
        }
    }

    pub async fn logs(&self, name: &str, lines: usize) -> Result<Vec<LogLine>, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.logs(name, lines).await?),
            Self::Remote(r) => r.logs(name, lines).await,
        }
    }

    /// New log lines until the stream ends: from Fly through the library, or from
    /// the server's log stream (server-sent events).
    pub async fn follow_logs(
        &self,
        name: &str,
    ) -> Result<BoxStream<'static, Result<LogLine, Failure>>, Failure> {
        use futures::StreamExt as _;
        match self {
            Self::Local(b) => Ok(b
                .app
                .follow_logs(name)
                .await?
                .map(|line| line.map_err(Failure::from))
                .boxed()),
            Self::Remote(r) => r.follow_logs(name).await,
        }
    }

    pub async fn exec(
        &self,
        name: &str,
        options: &swarm::ExecOptions,
    ) -> Result<swarm::Executed, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.exec(name, options).await?),
            Self::Remote(r) => r.exec(name, options).await,
        }
    }

    pub async fn list_secrets(&self, name: &str) -> Result<swarm::SecretList, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.list_secrets(name).await?),
            Self::Remote(r) => r.list_secrets(name).await,
        }
    }

    pub async fn set_secret(
        &self,
        name: &str,
        key: &str,
        value: &secrecy::SecretString,
    ) -> Result<swarm::SecretChanged, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.set_secret(name, key, value).await?),
            Self::Remote(r) => r.set_secret(name, key, value).await,
        }
    }

    pub async fn unset_secret(
        &self,
        name: &str,
        key: &str,
    ) -> Result<swarm::SecretChanged, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.unset_secret(name, key).await?),
            Self::Remote(r) => r.unset_secret(name, key).await,
        }
    }

    pub async fn rotate_password(&self, name: &str) -> Result<PasswordRotated, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.rotate_password(name).await?),
            Self::Remote(r) => r.rotate_password(name).await,
        }
    }

    /// Adjusted sizes and advice to print before a resize; through a server they come
    /// with the result (which is where the server checks the sizes).
    pub async fn resize_notes(
        &self,
        name: &str,
        options: &ResizeOptions,
    ) -> Result<Vec<String>, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.validate_resize(name, options).await?.notes),
            Self::Remote(_) => Ok(Vec::new()),
        }
    }

    pub async fn resize(&self, name: &str, options: &ResizeOptions) -> Result<Resized, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.resize(name, options).await?),
            Self::Remote(r) => r.resize(name, options).await,
        }
    }

    pub async fn update_image(&self, name: &str, image: &str) -> Result<ImageChanged, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.update_image(name, image).await?),
            Self::Remote(r) => r.update_image(name, image).await,
        }
    }

    pub async fn versions(&self, name: &str) -> Result<Vec<ImageVersion>, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.versions(name).await?),
            Self::Remote(r) => r.versions(name).await,
        }
    }

    /// The version a rollback would go to, checked before anything changes (the
    /// server checks again before it starts).
    pub async fn rollback_target(
        &self,
        name: &str,
        to: Option<u32>,
    ) -> Result<ImageVersion, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.validate_rollback(name, to).await?),
            Self::Remote(r) => swarm::validate::rollback_target(&r.versions(name).await?, to)
                .cloned()
                .map_err(|error| swarm::Error::Invalid(vec![error]).into()),
        }
    }

    pub async fn rollback(&self, name: &str, to: Option<u32>) -> Result<ImageChanged, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.rollback(name, to).await?),
            Self::Remote(r) => r.rollback(name, to).await,
        }
    }

    /// The config a machine rollback would return to, checked before anything changes
    /// (the server checks again before it starts).
    pub async fn machine_rollback_target(&self, name: &str) -> Result<MachineConfig, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.validate_machine_rollback(name).await?),
            Self::Remote(r) => swarm::validate::machine_rollback_target(&r.show(name).await?)
                .cloned()
                .map_err(|error| swarm::Error::Invalid(vec![error]).into()),
        }
    }

    pub async fn rollback_machine(&self, name: &str) -> Result<MachineRolledBack, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.rollback_machine(name).await?),
            Self::Remote(r) => r.rollback_machine(name).await,
        }
    }

    /// A bad or same region is refused before any Fly call; through a server, by the
    /// server before it starts.
    pub async fn validate_move(&self, name: &str, region: &str) -> Result<(), Failure> {
        match self {
            Self::Local(b) => Ok(b.app.validate_move(name, region).await?),
            Self::Remote(_) => Ok(()),
        }
    }

    pub async fn move_region(&self, name: &str, region: &str) -> Result<Replaced, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.move_region(name, region).await?),
            Self::Remote(r) => r.move_region(name, region).await,
        }
    }

    /// An unknown snapshot is refused before anything changes (and before the
    /// confirmation question).
    pub async fn validate_restore(&self, name: &str, snapshot: &str) -> Result<(), Failure> {
        match self {
            Self::Local(b) => {
                b.app.validate_restore(name, snapshot).await?;
                Ok(())
            }
            Self::Remote(r) => {
                if r.snapshots(name).await?.iter().any(|s| s.id == snapshot) {
                    return Ok(());
                }
                // The local message, word for word.
                Err(swarm::Error::Invalid(vec![swarm::validate::ValidationError {
                    field: "snapshot",
                    value: snapshot.to_owned(),
                    rule: format!(
                        "is not a snapshot of {name}'s volumes; `swarm snapshot list {name}` lists them"
                    ),
                }])
                .into())
            }
        }
    }

    pub async fn restore(&self, name: &str, snapshot: &str) -> Result<Replaced, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.restore(name, snapshot).await?),
            Self::Remote(r) => r.restore(name, snapshot).await,
        }
    }

    pub async fn create_snapshot(&self, name: &str) -> Result<Option<SnapshotInfo>, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.create_snapshot(name).await?),
            Self::Remote(r) => r.create_snapshot(name).await,
        }
    }

    pub async fn snapshots(&self, name: &str) -> Result<Vec<SnapshotInfo>, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.snapshots(name).await?),
            Self::Remote(r) => r.snapshots(name).await,
        }
    }

    /// One workspace's cost (with its snapshots), or every workspace's.
    pub async fn cost(&self, name: Option<&str>) -> Result<CostReport, Failure> {
        match (self, name) {
            (Self::Local(b), Some(name)) => Ok(b.app.cost(name).await?),
            (Self::Local(b), None) => Ok(b.app.costs().await?),
            (Self::Remote(r), name) => r.cost(name).await,
        }
    }

    pub async fn reconcile(&self) -> Result<ReconcileReport, Failure> {
        match self {
            Self::Local(b) => Ok(b.app.reconcile().await?),
            Self::Remote(r) => r.reconcile().await,
        }
    }

    /// The manager on this machine, for commands that exist only there (the pool).
    pub fn local(&self, command: &str) -> Result<&Backend, Failure> {
        match self {
            Self::Local(backend) => Ok(backend),
            Self::Remote(_) => Err(not_through_server(command)),
        }
    }
}

/// The refusal for a command that only runs on the machine that owns the store.
pub fn not_through_server(command: &str) -> Failure {
    Failure::usage(format!(
        "`swarm {command}` is not available through --server (SWARM_SERVER): it runs on the server's own machine; unset SWARM_SERVER and drop --server to run it here"
    ))
}
