//! The Fly.io provider over `fly-api`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use fly_api::models::{
    CreateAppRequest, CreateMachineRequest, CreateVolumeRequest, IpRelease, ListMachines, LogQuery,
    MachineConfig, MachineGuest, MachineMount, MachineRestart, RestartPolicy, StopRequest,
    UpdateMachineRequest,
};
use fly_api::{Error as FlyError, FlyClient};
use futures::StreamExt;
use futures::stream::BoxStream;

use super::fly_convert::{
    fly_state, ip_kind, ip_type, log_line, machine_info, map_error, snapshot_info, volume_info,
};
use super::{
    AppInfo, CloneRequest, MachineChange, MachineInfo, MachineRequest, Provider, ProviderError,
    ProviderErrorKind, ProviderResult, SnapshotInfo, VolumeInfo, VolumeRequest, VolumeSource,
    WarmupRequest,
};
use swarm_core::config::SwarmConfig;
use swarm_core::model::{IpKind, IpRecord, LogLine, MachineState, ProbeResult};

/// code-server's port inside the machine.
pub const INTERNAL_PORT: u16 = 8080;
/// Pages read at most when collecting the last lines of the logs.
const MAX_LOG_PAGES: usize = 20;

/// [`Provider`] for Fly.io (or the local Fly, `fly-sim`).
#[derive(Debug, Clone)]
pub struct FlyProvider {
    client: FlyClient,
    /// The health probe's client, built on first use (it loads CA certificates, which
    /// commands that never probe should not pay for).
    http: Arc<OnceLock<reqwest::Client>>,
    probe_base_url: Option<String>,
}

impl FlyProvider {
    /// A provider over `client`; the health probe follows `config.probe_base_url`.
    pub fn new(client: FlyClient, config: &SwarmConfig) -> Self {
        Self {
            client,
            http: Arc::default(),
            probe_base_url: config.probe_base_url.clone(),
        }
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default()
        })
    }

    pub fn client(&self) -> &FlyClient {
        &self.client
    }
}

impl Provider for FlyProvider {
    fn endpoint(&self) -> String {
        self.client.machines_base_url().to_string()
    }

    async fn get_app(&self, name: &str) -> ProviderResult<Option<AppInfo>> {
        match self.client.apps().get(name).await {
            Ok(app) => Ok(Some(AppInfo {
                name: app.name,
                status: app.status,
            })),
            Err(error) if error.is_not_found() => Ok(None),
            // The name exists in another organization.
            Err(error) if error.status() == Some(403) => Err(ProviderError {
                kind: ProviderErrorKind::NameTaken,
                status: Some(403),
                request_id: error.request_id().map(str::to_owned),
                message: error.to_string(),
            }),
            Err(error) => Err(map_error(error)),
        }
    }

    async fn create_app(
        &self,
        name: &str,
        org: &str,
        idempotency_key: &str,
    ) -> ProviderResult<AppInfo> {
        let request = CreateAppRequest {
            name: name.to_owned(),
            org_slug: org.to_owned(),
            idempotency_key: Some(idempotency_key.to_owned()),
            ..CreateAppRequest::default()
        };
        self.client
            .apps()
            .create(&request)
            .await
            .map_err(map_error)?;
        Ok(AppInfo {
            name: name.to_owned(),
            status: None,
        })
    }

    async fn delete_app(&self, name: &str) -> ProviderResult<()> {
        match self.client.apps().delete(name, true).await {
            Ok(()) => Ok(()),
            Err(error) if error.is_not_found() => Ok(()),
            Err(error) => Err(map_error(error)),
        }
    }

    async fn list_apps(&self, org: &str) -> ProviderResult<Vec<AppInfo>> {
        let apps = self.client.apps().list(org).await.map_err(map_error)?;
        Ok(apps
            .into_iter()
            .map(|app| AppInfo {
                name: app.name,
                status: app.status,
            })
            .collect())
    }

    async fn list_volumes(&self, app: &str) -> ProviderResult<Vec<VolumeInfo>> {
        let volumes = self.client.volumes(app).list().await.map_err(map_error)?;
        Ok(volumes.into_iter().map(volume_info).collect())
    }

    async fn create_volume(
        &self,
        app: &str,
        request: &VolumeRequest,
    ) -> ProviderResult<VolumeInfo> {
        let request = CreateVolumeRequest {
            name: request.name.clone(),
            region: Some(request.region.clone()),
            size_gb: Some(request.size_gb),
            encrypted: Some(true),
            source_volume_id: match &request.source {
                Some(VolumeSource::Volume(id)) => Some(id.clone()),
                _ => None,
            },
            snapshot_id: match &request.source {
                Some(VolumeSource::Snapshot(id)) => Some(id.clone()),
                _ => None,
            },
            ..CreateVolumeRequest::default()
        };
        let volume = self
            .client
            .volumes(app)
            .create(&request)
            .await
            .map_err(map_error)?;
        Ok(volume_info(volume))
    }

    async fn delete_volume(&self, app: &str, id: &str) -> ProviderResult<()> {
        match self.client.volumes(app).delete(id).await {
            Ok(_) => Ok(()),
            Err(error) if error.is_not_found() => Ok(()),
            Err(error) => Err(map_error(error)),
        }
    }

    async fn list_ips(&self, app: &str) -> ProviderResult<Vec<IpRecord>> {
        let listed = self.client.ips().list(app).await.map_err(map_error)?;
        let mut ips: Vec<IpRecord> = listed
            .ip_addresses
            .into_iter()
            .filter_map(|ip| {
                Some(IpRecord {
                    kind: ip_kind(&ip.kind)?,
                    address: ip.address,
                    id: Some(ip.id),
                })
            })
            .collect();
        let has_shared = ips.iter().any(|ip| ip.kind == IpKind::SharedV4);
        if let Some(shared) = listed
            .shared_ip_address
            .filter(|address| !address.is_empty() && !has_shared)
        {
            ips.push(IpRecord {
                kind: IpKind::SharedV4,
                address: shared,
                id: None,
            });
        }
        Ok(ips)
    }

    async fn allocate_ip(
        &self,
        app: &str,
        kind: IpKind,
        _region: &str,
    ) -> ProviderResult<IpRecord> {
        // Public addresses are global anycast and a private one serves the whole app,
        // so no region is sent (as `fly ips allocate-*` does by default).
        let allocated = self
            .client
            .ips()
            .allocate(app, ip_type(kind), None)
            .await
            .map_err(map_error)?;
        if let Some(ip) = allocated {
            return Ok(IpRecord {
                kind,
                address: ip.address,
                id: Some(ip.id),
            });
        }
        // A shared IPv4 has no address object: read it from the app.
        let listed = self.list_ips(app).await?;
        listed
            .into_iter()
            .find(|ip| ip.kind == kind)
            .ok_or_else(|| {
                ProviderError::new(
                    ProviderErrorKind::Transient,
                    format!("{} address not visible yet", kind.as_str()),
                )
            })
    }

    async fn release_ip(&self, app: &str, ip: &IpRecord) -> ProviderResult<()> {
        let which = match &ip.id {
            Some(id) => IpRelease::Id(id.clone()),
            None => IpRelease::Address(ip.address.clone()),
        };
        match self.client.ips().release(app, &which).await {
            Ok(()) => Ok(()),
            Err(error) if error.is_not_found() => Ok(()),
            Err(error) => Err(map_error(error)),
        }
    }

    async fn list_machines(
        &self,
        app: &str,
        tag: Option<(&str, &str)>,
    ) -> ProviderResult<Vec<MachineInfo>> {
        let filter = ListMachines {
            metadata: tag
                .map(|(key, value)| vec![(key.to_owned(), value.to_owned())])
                .unwrap_or_default(),
            ..ListMachines::default()
        };
        let machines = self
            .client
            .machines(app)
            .list(&filter)
            .await
            .map_err(map_error)?;
        let mut infos: Vec<MachineInfo> = machines.into_iter().map(machine_info).collect();
        // Filter here too, so a server that ignores the filter cannot mislead adoption.
        if let Some((key, value)) = tag {
            infos.retain(|machine| machine.metadata.get(key).map(String::as_str) == Some(value));
        }
        Ok(infos)
    }

    async fn get_machine(&self, app: &str, id: &str) -> ProviderResult<Option<MachineInfo>> {
        match self.client.machines(app).get(id).await {
            Ok(machine) => Ok(Some(machine_info(machine))),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(map_error(error)),
        }
    }

    async fn create_machine(
        &self,
        app: &str,
        request: &MachineRequest,
    ) -> ProviderResult<MachineInfo> {
        let create = CreateMachineRequest {
            name: Some(request.name.clone()),
            region: Some(request.region.clone()),
            config: Self::machine_config(request),
            ..CreateMachineRequest::default()
        };
        let machine = self
            .client
            .machines(app)
            .create(&create)
            .await
            .map_err(map_error)?;
        Ok(machine_info(machine))
    }

    async fn create_warmup_machine(
        &self,
        app: &str,
        request: &WarmupRequest,
    ) -> ProviderResult<MachineInfo> {
        let create = CreateMachineRequest {
            name: Some(request.name.clone()),
            region: Some(request.region.clone()),
            config: MachineConfig {
                image: request.image.clone(),
                // Never booted: the smallest size, placement follows the volume.
                guest: Some(MachineGuest {
                    cpu_kind: Some("shared".to_owned()),
                    cpus: Some(1),
                    memory_mb: Some(256),
                    ..MachineGuest::default()
                }),
                mounts: vec![MachineMount {
                    volume: request.volume_id.clone(),
                    path: request.mount_path.clone(),
                    ..MachineMount::default()
                }],
                metadata: request.metadata.clone(),
                restart: Some(MachineRestart {
                    policy: Some(RestartPolicy::No),
                    max_retries: None,
                }),
                ..MachineConfig::default()
            },
            skip_launch: Some(true),
            ..CreateMachineRequest::default()
        };
        let machine = self
            .client
            .machines(app)
            .create(&create)
            .await
            .map_err(map_error)?;
        Ok(machine_info(machine))
    }

    async fn adopt_machine(
        &self,
        app: &str,
        id: &str,
        request: &MachineRequest,
    ) -> ProviderResult<MachineInfo> {
        // The full config is known (it is the workspace's own), so no read first.
        let update = UpdateMachineRequest {
            region: Some(request.region.clone()),
            config: Self::machine_config(request),
            ..UpdateMachineRequest::default()
        };
        let updated = self
            .client
            .machines(app)
            .update(id, &update, None)
            .await
            .map_err(map_error)?;
        Ok(machine_info(updated))
    }

    async fn update_machine(
        &self,
        app: &str,
        id: &str,
        change: &MachineChange,
    ) -> ProviderResult<MachineInfo> {
        let machines = self.client.machines(app);
        let machine = machines.get(id).await.map_err(map_error)?;
        let Some(mut config) = machine.config().cloned() else {
            return Err(ProviderError::new(
                ProviderErrorKind::Other,
                format!("machine {id} has no config to update"),
            ));
        };
        config
            .env
            .extend(change.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        if let Some(image) = &change.image {
            config.image = image.clone();
        }
        if let Some(guest) = &change.guest {
            let mut current = config.guest.take().unwrap_or_default();
            current.cpu_kind = Some(guest.cpu_kind.as_str().to_owned());
            current.cpus = Some(guest.cpus);
            current.memory_mb = Some(guest.memory_mb);
            config.guest = Some(current);
        }
        let running = matches!(machine.state.as_str(), "started" | "starting");
        let update = UpdateMachineRequest {
            name: Some(machine.name.clone()),
            region: Some(machine.region.clone()),
            config,
            skip_launch: (!running).then_some(true),
            // Someone else changed it since our read: the caller's retry reads again.
            current_version: machine.version.clone(),
            ..UpdateMachineRequest::default()
        };
        let updated = machines
            .update(id, &update, None)
            .await
            .map_err(map_error)?;
        Ok(machine_info(updated))
    }

    async fn extend_volume(&self, app: &str, id: &str, size_gb: u32) -> ProviderResult<bool> {
        self.client
            .volumes(app)
            .extend(id, size_gb)
            .await
            .map(|response| response.needs_restart)
            .map_err(map_error)
    }

    async fn create_snapshot(
        &self,
        app: &str,
        volume_id: &str,
    ) -> ProviderResult<Option<SnapshotInfo>> {
        let volumes = self.client.volumes(app);
        // Fly answers the create with an empty body: the new snapshot is the one
        // that was not listed before.
        let before = volumes.list_snapshots(volume_id).await.map_err(map_error)?;
        volumes
            .create_snapshot(volume_id)
            .await
            .map_err(map_error)?;
        let after = volumes.list_snapshots(volume_id).await.map_err(map_error)?;
        Ok(after
            .into_iter()
            .filter(|snapshot| !before.iter().any(|old| old.id == snapshot.id))
            .map(|snapshot| snapshot_info(volume_id, snapshot))
            .next_back())
    }

    async fn list_snapshots(
        &self,
        app: &str,
        volume_id: &str,
    ) -> ProviderResult<Vec<SnapshotInfo>> {
        let snapshots = self
            .client
            .volumes(app)
            .list_snapshots(volume_id)
            .await
            .map_err(map_error)?;
        Ok(snapshots
            .into_iter()
            .map(|snapshot| snapshot_info(volume_id, snapshot))
            .collect())
    }

    async fn clone_machine(
        &self,
        app: &str,
        source: &str,
        request: &CloneRequest,
    ) -> ProviderResult<MachineInfo> {
        let machines = self.client.machines(app);
        let machine = machines.get(source).await.map_err(map_error)?;
        let Some(mut config) = machine.config().cloned() else {
            return Err(ProviderError::new(
                ProviderErrorKind::Other,
                format!("machine {source} has no config to copy"),
            ));
        };
        let Some(mount) = config.mounts.first_mut() else {
            return Err(ProviderError::new(
                ProviderErrorKind::Other,
                format!("machine {source} mounts no volume"),
            ));
        };
        mount.volume = request.volume_id.clone();
        // Size and name belong to the old volume; Fly reads them from the new one.
        mount.size_gb = None;
        mount.name = None;
        config.mounts.truncate(1);
        config.metadata.extend(
            request
                .metadata
                .iter()
                .map(|(key, value)| (key.clone(), value.clone())),
        );
        let create = CreateMachineRequest {
            name: Some(request.name.clone()),
            region: Some(request.region.clone()),
            config,
            ..CreateMachineRequest::default()
        };
        let created = machines.create(&create).await.map_err(map_error)?;
        Ok(machine_info(created))
    }

    async fn restart_machine(&self, app: &str, id: &str) -> ProviderResult<()> {
        self.client
            .machines(app)
            .restart(id, None)
            .await
            .map_err(map_error)
    }

    async fn start_machine(&self, app: &str, id: &str) -> ProviderResult<()> {
        self.client
            .machines(app)
            .start(id, None)
            .await
            .map(|_| ())
            .map_err(map_error)
    }

    async fn cordon_machine(&self, app: &str, id: &str, cordoned: bool) -> ProviderResult<()> {
        self.client
            .machines(app)
            .cordon(id, cordoned, None)
            .await
            .map_err(map_error)
    }

    async fn stop_machine(&self, app: &str, id: &str, force: bool) -> ProviderResult<()> {
        let request = StopRequest {
            signal: Some(if force { "SIGKILL" } else { "SIGTERM" }.to_owned()),
            timeout: (!force).then(|| "30s".to_owned()),
        };
        self.client
            .machines(app)
            .stop(id, &request, None)
            .await
            .map_err(map_error)
    }

    async fn suspend_machine(&self, app: &str, id: &str) -> ProviderResult<()> {
        self.client
            .machines(app)
            .suspend(id, None)
            .await
            .map_err(map_error)
    }

    async fn destroy_machine(&self, app: &str, id: &str) -> ProviderResult<()> {
        match self.client.machines(app).delete(id, true, None).await {
            Ok(()) => Ok(()),
            Err(error) if error.is_not_found() => Ok(()),
            Err(error) => Err(map_error(error)),
        }
    }

    async fn wait_machine(
        &self,
        app: &str,
        id: &str,
        state: MachineState,
        timeout: Duration,
    ) -> ProviderResult<()> {
        let machines = self.client.machines(app);
        // Waiting for `stopped` needs the machine version (Fly's rule).
        let version = if state == MachineState::Stopped {
            match machines.get(id).await {
                Ok(machine) if machine.state.as_str() == state.as_str() => return Ok(()),
                Ok(machine) => machine.version.or(machine.instance_id),
                Err(error) if error.is_not_found() && state == MachineState::Destroyed => {
                    return Ok(());
                }
                Err(error) => return Err(map_error(error)),
            }
        } else {
            None
        };
        match machines
            .wait_for_state(id, &[fly_state(&state)], version.as_deref(), timeout)
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error.is_not_found() && state == MachineState::Destroyed => Ok(()),
            Err(FlyError::Timeout) => Err(ProviderError::new(
                ProviderErrorKind::Timeout,
                format!(
                    "machine {id} did not reach {state} within {} s",
                    timeout.as_secs()
                ),
            )),
            Err(error) => Err(map_error(error)),
        }
    }

    async fn probe(&self, app: &str) -> ProbeResult {
        let host = format!("{app}.fly.dev");
        let (url, request) = match &self.probe_base_url {
            Some(base) => {
                let url = format!("{}/healthz", base.trim_end_matches('/'));
                let request = self.http().get(&url).header(reqwest::header::HOST, host);
                (url, request)
            }
            None => {
                let url = format!("https://{host}/healthz");
                (url.clone(), self.http().get(&url))
            }
        };
        let mut result = ProbeResult {
            url,
            http_status: None,
            status: None,
            last_heartbeat_ms: None,
            error: None,
        };
        match request.send().await {
            Ok(response) => {
                result.http_status = Some(response.status().as_u16());
                match response.json::<serde_json::Value>().await {
                    Ok(body) => {
                        result.status = body
                            .get("status")
                            .and_then(|v| v.as_str())
                            .map(str::to_owned);
                        result.last_heartbeat_ms = body
                            .get("lastHeartbeat")
                            .and_then(serde_json::Value::as_i64);
                    }
                    Err(error) => {
                        result.error = Some(format!("not code-server's /healthz answer: {error}"))
                    }
                }
            }
            Err(error) => result.error = Some(error.to_string()),
        }
        result
    }

    async fn logs(&self, app: &str, limit: usize) -> ProviderResult<Vec<LogLine>> {
        let logs = self.client.logs(app);
        let mut lines: Vec<LogLine> = Vec::new();
        let mut query = LogQuery::default();
        for _ in 0..MAX_LOG_PAGES {
            let page = logs.page(&query).await.map_err(map_error)?;
            let empty = page.entries.is_empty();
            lines.extend(page.entries.into_iter().map(log_line));
            if lines.len() > limit {
                lines.drain(..lines.len() - limit);
            }
            match page.next_token {
                Some(token) if !empty && query.next_token.as_deref() != Some(token.as_str()) => {
                    query.next_token = Some(token);
                }
                _ => break,
            }
        }
        Ok(lines)
    }

    fn follow_logs(&self, app: &str) -> BoxStream<'static, ProviderResult<LogLine>> {
        self.client
            .logs(app)
            .follow(LogQuery::default())
            .map(|entry| entry.map(log_line).map_err(map_error))
            .boxed()
    }

    // Exec and secrets live in `fly_access.rs`.
    async fn exec_machine(
        &self,
        app: &str,
        id: &str,
        command: &crate::exec::ExecCommand<'_>,
    ) -> ProviderResult<crate::exec::ExecOutput> {
        self.exec_on(app, id, command).await
    }
    async fn list_secrets(&self, app: &str) -> ProviderResult<Vec<crate::secrets::SecretInfo>> {
        self.secrets_of(app).await
    }
    async fn set_secret(
        &self,
        app: &str,
        key: &str,
        value: &secrecy::SecretString,
    ) -> ProviderResult<u64> {
        self.secret_to(app, key, value).await
    }
    async fn unset_secret(&self, app: &str, key: &str) -> ProviderResult<Option<u64>> {
        self.secret_gone(app, key).await
    }

    fn call_counts(&self) -> Option<fly_api::CallCounts> {
        Some(self.client.call_counters().snapshot())
    }
}
