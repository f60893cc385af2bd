//! The steps of a create, each adopting what a lost answer may have made: the app
//! (and the proof it is ours), the volume, the IPs, the machine; and the undo of a
//! failed create.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::json;

use crate::error::{Error, Result};
use crate::failpoint::crash_point;
use crate::journal::Journal;
use crate::provider::{
    GuestFile, MachineInfo, MachineRequest, Provider, ProviderErrorKind, TAG_VERSION,
    TAG_WORKSPACE, TAG_WORKSPACE_ID, VolumeRequest,
};
use swarm_core::first_boot;
use swarm_core::model::{IpKind, IpRecord, MachineState, WorkspaceRecord, WorkspaceStatus};
use swarm_store::Store;

use crate::swarm::{Swarm, machine_name, persistent_env};

impl<S: Store, P: Provider> Swarm<S, P> {
    /// Whether the existing app named like `record` may be treated as ours: our record
    /// holds it, our journal shows its create succeeded, Fly hands it back to a repeat
    /// of the create under the key our journal noted, or it holds a resource tagged
    /// with our id. An app name belongs to at most one live record: an older record of
    /// the same name (deleted, its create interrupted) never claims the app of a newer
    /// one.
    pub(crate) async fn app_is_ours(&self, record: &WorkspaceRecord, app: &str) -> Result<bool> {
        if let Some(live) = self.store.workspace_by_name(app).await?
            && live.id != record.id
        {
            return Ok(false);
        }
        if record.app.as_deref() == Some(app) {
            return Ok(true);
        }
        let mut create_key = None;
        for operation in self.store.operations_of(record.id).await? {
            for step in self.store.operation_steps(operation.id).await? {
                match step.step.as_str() {
                    "app_created" => return Ok(true),
                    // Fly refused our key: the name was someone else's.
                    "app_taken" => return Ok(false),
                    "app_creating" => match step.detail.get("idempotency_key") {
                        Some(key) => create_key = key.as_str().map(str::to_owned),
                        // Journals older than keyed creates noted `app_creating` only
                        // after a lookup found no app of the name: the app is ours.
                        None => return Ok(true),
                    },
                    _ => {}
                }
            }
        }
        if let Some(key) = create_key {
            // A repeat of our create: Fly answers with the app our create made, or
            // `name_taken` if the name was someone else's (or Fly forgot the key:
            // then only our tags below can tell).
            match self
                .retry("create app", || {
                    self.provider.create_app(app, &record.spec.org, &key)
                })
                .await
            {
                Ok(_) => return Ok(true),
                Err(error) if error.kind == ProviderErrorKind::NameTaken => {}
                Err(error) => return Err(self.provider_error(error, record)),
            }
        }
        let id = record.id.to_string();
        let machines = self
            .retry("list machines", || {
                self.provider
                    .list_machines(app, Some((TAG_WORKSPACE_ID, &id)))
            })
            .await
            .map_err(|error| self.provider_error(error, record))?;
        if !machines.is_empty() {
            return Ok(true);
        }
        let volumes = self
            .retry("list volumes", || self.provider.list_volumes(app))
            .await
            .map_err(|error| self.provider_error(error, record))?;
        Ok(volumes
            .iter()
            .any(|volume| volume.name == record.volume_name()))
    }

    /// Creates the workspace's app under the workspace id as idempotency key; its
    /// `app_creating` note is already committed. A repeat after an ambiguous failure
    /// gets our app back; `name_taken` means the name is someone else's, and the note
    /// `app_taken` says so before the create is undone (which then leaves that app
    /// alone, see [`Swarm::app_is_ours`]).
    pub(crate) async fn create_app(
        &self,
        journal: &Journal<S>,
        record: &WorkspaceRecord,
    ) -> Result<String> {
        let name = record.app_name();
        let key = record.id.to_string();
        let mut attempt = 1;
        loop {
            match self.provider.create_app(name, &record.spec.org, &key).await {
                Ok(app) => {
                    crash_point("create", "after_app_create");
                    return Ok(app.name);
                }
                Err(error) if error.kind == ProviderErrorKind::NameTaken => {
                    // Not in CREATE_POINTS: the name must be someone else's.
                    crash_point("create", "after_app_refused");
                    journal.note("app_taken", json!({ "app": name })).await?;
                    return Err(Error::NameTaken {
                        name: name.to_owned(),
                    });
                }
                Err(error) if self.backoff(attempt, "create app", &error).await => attempt += 1,
                Err(error) => return Err(self.provider_error(error, record)),
            }
        }
    }

    /// Creates the volume (named from the workspace id) in the app just made, whose
    /// note `volume_creating` is journaled; after a failed attempt, adopts the volume
    /// it may have made. Returns (id, adopted); the caller commits `volume_created`.
    pub(crate) async fn ensure_volume(&self, record: &WorkspaceRecord) -> Result<(String, bool)> {
        let app = record.app_name();
        let volume_name = record.volume_name();
        let request = VolumeRequest {
            name: volume_name.clone(),
            region: record.spec.region.clone(),
            size_gb: record.spec.storage_gb,
            source: None,
        };
        let mut sent = false;
        let mut attempt = 1;
        loop {
            let volumes = if !sent {
                Vec::new()
            } else {
                match self.provider.list_volumes(app).await {
                    Ok(volumes) => volumes,
                    Err(error) if self.backoff(attempt, "list volumes", &error).await => {
                        attempt += 1;
                        continue;
                    }
                    Err(error) => return Err(self.provider_error(error, record)),
                }
            };
            let mut ours: Vec<_> = volumes
                .into_iter()
                .filter(|v| v.name == volume_name && v.is_live())
                .collect();
            if !ours.is_empty() {
                // Keep the first; an ambiguous retry may have made a twin.
                let keep = ours.remove(0);
                for twin in ours {
                    tracing::warn!(volume = %twin.id, "removing a duplicate volume left by a retried create");
                    let _ = self
                        .retry("delete volume", || {
                            self.provider.delete_volume(app, &twin.id)
                        })
                        .await;
                }
                return Ok((keep.id, sent));
            }
            sent = true;
            match self.provider.create_volume(app, &request).await {
                Ok(volume) => return Ok((volume.id, false)),
                Err(error) if self.backoff(attempt, "create volume", &error).await => attempt += 1,
                Err(error) => return Err(self.provider_error(error, record)),
            }
        }
    }

    /// Allocates the IP mode's addresses in the app just made (the note
    /// `ips_allocating` is journaled), adopting after a failed attempt what it made.
    pub(crate) async fn ensure_ips(
        &self,
        journal: &Journal<S>,
        record: &WorkspaceRecord,
    ) -> Result<Vec<IpRecord>> {
        // Each kind is independent of the others: allocate them concurrently.
        let held = futures::future::try_join_all(
            record
                .spec
                .ip_mode
                .ip_kinds()
                .iter()
                .map(|kind| self.ensure_ip(record, *kind)),
        )
        .await?;
        let detail: Vec<String> = held
            .iter()
            .map(|ip| format!("{} {}", ip.kind.as_str(), ip.address))
            .collect();
        let ips = held.clone();
        journal
            .step(
                "ips_allocated",
                json!({ "ips": detail }),
                Some("after_ips"),
                move |record| record.ips = ips,
            )
            .await?;
        Ok(held)
    }

    /// One address of `kind`: adopted if the app has one, else allocated.
    pub(crate) async fn ensure_ip(
        &self,
        record: &WorkspaceRecord,
        kind: IpKind,
    ) -> Result<IpRecord> {
        let app = record.app_name();
        let mut attempt = 1;
        loop {
            // In an app we just made there is nothing to adopt until an attempt failed.
            let listed = if attempt == 1 {
                Vec::new()
            } else {
                match self.provider.list_ips(app).await {
                    Ok(listed) => listed,
                    Err(error) if self.backoff(attempt, "list ips", &error).await => {
                        attempt += 1;
                        continue;
                    }
                    Err(error) => return Err(self.provider_error(error, record)),
                }
            };
            if let Some(found) = listed.into_iter().find(|ip| ip.kind == kind) {
                return Ok(found);
            }
            match self
                .provider
                .allocate_ip(app, kind, &record.spec.region)
                .await
            {
                Ok(ip) => return Ok(ip),
                Err(error) if self.backoff(attempt, "allocate ip", &error).await => attempt += 1,
                Err(error) => return Err(self.provider_error(error, record)),
            }
        }
    }

    pub(crate) fn machine_request(
        &self,
        record: &WorkspaceRecord,
        volume_id: &str,
        hashed_password: &str,
    ) -> MachineRequest {
        let spec = &record.spec;
        let mut env: BTreeMap<String, String> = spec.env.clone();
        env.insert("HASHED_PASSWORD".to_owned(), hashed_password.to_owned());
        if spec.idle_policy.is_stop() {
            // With `suspend` Fly's proxy puts it to rest; code-server must not exit first.
            env.insert(
                "CODE_SERVER_IDLE_TIMEOUT_SECONDS".to_owned(),
                spec.idle_timeout_secs.to_string(),
            );
        }
        for (key, value) in persistent_env(&self.config.mount_path) {
            env.insert(key.to_owned(), value);
        }
        if let Some(url) = &spec.dotfiles {
            env.insert(first_boot::DOTFILES_ENV.to_owned(), url.clone());
        }
        let files = spec
            .init_script
            .iter()
            .map(|script| GuestFile {
                path: first_boot::INIT_SCRIPT_PATH.to_owned(),
                contents: script.as_bytes().to_vec(),
                mode: 0o644,
            })
            .collect();
        let mut metadata = spec.metadata.clone();
        metadata.insert(TAG_WORKSPACE_ID.to_owned(), record.id.to_string());
        metadata.insert(TAG_WORKSPACE.to_owned(), spec.name.as_str().to_owned());
        metadata.insert(TAG_VERSION.to_owned(), env!("CARGO_PKG_VERSION").to_owned());
        MachineRequest {
            name: machine_name(record),
            region: spec.region.clone(),
            image: spec.image.clone(),
            guest: spec.guest,
            env,
            volume_id: volume_id.to_owned(),
            mount_path: self.config.mount_path.clone(),
            metadata,
            files,
            idle_policy: spec.idle_policy,
        }
    }

    /// Creates the machine (tagged with the workspace id) in an app that holds none of
    /// this workspace's; after a failed attempt, adopts the machine it may have made.
    /// With `noted`, its `machine_creating` note is already journaled. The caller
    /// records `machine_created`.
    pub(crate) async fn ensure_machine(
        &self,
        journal: &Journal<S>,
        record: &WorkspaceRecord,
        volume_id: &str,
        hashed_password: &str,
        noted: bool,
    ) -> Result<(MachineInfo, bool)> {
        let app = record.app_name();
        let id = record.id.to_string();
        let request = self.machine_request(record, volume_id, hashed_password);
        let mut sent = false;
        let mut attempt = 1;
        let mut claim_deadline = None;
        loop {
            let machines = if !sent {
                Vec::new()
            } else {
                match self
                    .provider
                    .list_machines(app, Some((TAG_WORKSPACE_ID, &id)))
                    .await
                {
                    Ok(machines) => machines,
                    Err(error) if self.backoff(attempt, "list machines", &error).await => {
                        attempt += 1;
                        continue;
                    }
                    Err(error) => return Err(self.provider_error(error, record)),
                }
            };
            let mut live: Vec<_> = machines
                .into_iter()
                .filter(|m| !matches!(m.state, MachineState::Destroying | MachineState::Destroyed))
                .collect();
            if !live.is_empty() {
                let keep = live.remove(0);
                for twin in live {
                    tracing::warn!(machine = %twin.id, "destroying a duplicate machine left by a retried create");
                    let _ = self
                        .retry("destroy machine", || {
                            self.provider.destroy_machine(app, &twin.id)
                        })
                        .await;
                }
                return Ok((keep, sent));
            }
            if !sent {
                if !noted {
                    journal
                        .note("machine_creating", json!({ "name": request.name }))
                        .await?;
                }
                sent = true;
            }
            match self.provider.create_machine(app, &request).await {
                Ok(machine) => return Ok((machine, false)),
                // "volume already claimed": Fly can hold a volume's claim a moment after
                // its machine was destroyed (REFERENCE S10), as a pool slot's volume
                // right after its warm-up. Refused, so nothing was made: ask again.
                Err(error)
                    if error.status == Some(412)
                        && *claim_deadline
                            .get_or_insert_with(|| Instant::now() + self.config.start_timeout)
                            > Instant::now() =>
                {
                    tokio::time::sleep(self.config.step_backoff).await;
                }
                Err(error) if self.backoff(attempt, "create machine", &error).await => attempt += 1,
                Err(error) => return Err(self.provider_error(error, record)),
            }
        }
    }

    /// Undoes a failed create and returns the error to report.
    pub(crate) async fn compensate(
        &self,
        journal: &Journal<S>,
        step: &'static str,
        error: Error,
    ) -> Error {
        let record = journal.record().await;
        tracing::warn!(workspace = %record.name, step, %error, "create failed; removing what was made");
        let _ = journal
            .note(
                "compensating",
                json!({ "step": step, "error": error.to_string() }),
            )
            .await;
        let cleanup = match self.teardown(journal, &record, false).await {
            Ok(removed) => {
                let message = error.to_string();
                let saved = journal
                    .step(
                        "compensated",
                        json!({ "removed": removed }),
                        None,
                        |record| {
                            record.status = WorkspaceStatus::Deleted;
                            record.last_error = Some(message);
                        },
                    )
                    .await;
                match saved {
                    Ok(_) => {
                        let _ = journal.finish("failed; compensated").await;
                        if removed.is_empty() {
                            "nothing was left behind".to_owned()
                        } else {
                            format!("removed what was made ({})", removed.join(", "))
                        }
                    }
                    Err(store) => {
                        format!("cleanup done but not recorded ({store}); run `swarm reconcile`")
                    }
                }
            }
            Err(cleanup_error) => {
                let message = format!("{error}; cleanup failed: {cleanup_error}");
                let _ = journal
                    .step(
                        "compensation_failed",
                        json!({ "error": cleanup_error.to_string() }),
                        None,
                        |record| {
                            record.status = WorkspaceStatus::Failed;
                            record.last_error = Some(message);
                        },
                    )
                    .await;
                format!(
                    "cleanup failed too ({cleanup_error}); run `swarm reconcile` to remove what remains"
                )
            }
        };
        Error::CreateFailed {
            name: record.name.as_str().to_owned(),
            step,
            source: Box::new(error),
            cleanup,
        }
    }
}
