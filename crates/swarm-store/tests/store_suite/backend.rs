//! The backend factory and the macro that instantiates a test for both backends.

use std::collections::BTreeMap;

use swarm_core::model::{
    CpuKind, GuestSize, IpMode, WorkspaceName, WorkspaceRecord, WorkspaceSpec, WorkspaceStatus,
};
use swarm_store::{AnyStore, open_store};
use time::OffsetDateTime;
use uuid::Uuid;

/// Where a test's store lives; [`Backend::open`] opens another handle on it (as
/// another process would).
#[derive(Debug)]
pub struct Backend {
    pub url: String,
    pub database: Option<postgres_server::TestDatabase>,
    _dir: Option<tempfile::TempDir>,
}

impl Backend {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self {
            url: format!("sqlite://{}", dir.path().join("swarm.db").display()),
            database: None,
            _dir: Some(dir),
        }
    }

    /// `None`: no server and none required (the notice was printed).
    pub async fn postgres() -> Option<Self> {
        let database = postgres_server::database().await?;
        Some(Self {
            url: database.url.clone(),
            database: Some(database),
            _dir: None,
        })
    }

    pub async fn open(&self) -> AnyStore {
        open_store(&self.url, "local").await.expect("open store")
    }
}

/// Instantiates `async fn $name(backend: Backend)` for both backends.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::backend::Backend::sqlite()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(backend) = $crate::backend::Backend::postgres().await {
                    super::$name(backend).await;
                }
            }
        }
    )*};
}

/// A new record; times to the microsecond (PostgreSQL's resolution) so a record
/// compares equal after a round trip through either backend.
pub fn record(name: &str, owner: Option<&str>) -> WorkspaceRecord {
    let now = OffsetDateTime::now_utc();
    let at = now
        .replace_nanosecond(now.nanosecond() / 1000 * 1000)
        .expect("valid nanosecond");
    let spec = WorkspaceSpec {
        name: WorkspaceName::try_from(name.to_owned()).expect("valid name"),
        region: "ams".to_owned(),
        guest: GuestSize {
            cpu_kind: CpuKind::Shared,
            cpus: 1,
            memory_mb: 2048,
        },
        storage_gb: 10,
        image: "codercom/code-server:4.106.3".to_owned(),
        env: BTreeMap::new(),
        metadata: BTreeMap::new(),
        ip_mode: IpMode::Shared,
        idle_timeout_secs: 1800,
        dotfiles: None,
        init_script: None,
        idle_policy: Default::default(),
        org: "personal".to_owned(),
        owner: owner.map(str::to_owned),
    };
    WorkspaceRecord {
        id: Uuid::now_v7(),
        name: spec.name.clone(),
        status: WorkspaceStatus::Creating,
        url: format!("https://{name}.fly.dev"),
        spec,
        app: None,
        volume_id: None,
        former_volumes: Vec::new(),
        machine_id: None,
        ips: Vec::new(),
        image_versions: Vec::new(),
        previous_machine: None,
        last_error: None,
        created_at: at,
        updated_at: at,
    }
}
