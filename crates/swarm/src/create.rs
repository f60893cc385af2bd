//! `create`: validation, the intent, then the plan's Fly steps (or a slot of the
//! pool), with the password's hash computed beside them.

use std::sync::Arc;

use serde_json::json;
use time::OffsetDateTime;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::journal::Journal;
use crate::provider::Provider;
use swarm_core::model::{
    CreateOptions, CreateStep, Created, MachineState, OneTimePassword, ValidatedCreate,
    WorkspaceRecord, WorkspaceStatus,
};
use swarm_core::password;
use swarm_store::{OperationKind, Store};

use crate::swarm::{Progress, Swarm, machine_name, owner_id};

impl<S: Store, P: Provider> Swarm<S, P> {
    /// Creates a workspace. See [`Swarm::create_with_progress`].
    pub async fn create(&self, options: &CreateOptions) -> Result<Created> {
        self.create_with_progress(options, &|_| {}).await
    }

    /// Creates a workspace: validate → intent → app → (volume → machine → started ∥
    /// IPs) → record, calling `progress` after each step. A permanent failure
    /// removes what was made; a crash leaves a journal entry `reconcile` resolves.
    pub async fn create_with_progress(
        &self,
        options: &CreateOptions,
        progress: Progress<'_>,
    ) -> Result<Created> {
        let validated = self.validate(options)?;
        let span = tracing::info_span!("create", workspace = %validated.spec.name);
        self.create_validated(validated, progress)
            .instrument(span)
            .await
    }

    pub(crate) async fn create_validated(
        &self,
        validated: ValidatedCreate,
        progress: Progress<'_>,
    ) -> Result<Created> {
        let spec = validated.spec;
        let name = spec.name.as_str().to_owned();
        // A taken name is refused before the lock is written to the store; checked
        // again under the lock, against a create running in another process.
        if let Some(existing) = self.store.workspace_by_name(&name).await? {
            return Err(Error::AlreadyExists {
                name,
                status: existing.status,
            });
        }
        let pool_may_serve = self.pool_may_serve(&spec).await?;
        // On an early return the lock's drop frees it.
        let lock = self.lock_for_create(&name).await?;
        if let Some(existing) = self.store.workspace_by_name(&name).await? {
            return Err(Error::AlreadyExists {
                name,
                status: existing.status,
            });
        }
        let password = password::generate()?;
        // The argon2id hash (tens of ms of CPU and 19 MiB) is only needed for the
        // machine's config. From a slot the machine comes next: hash now, beside the
        // intent. Otherwise it starts once the app is made, beside the volume's create,
        // so it slows neither the intent's commit nor the app's request.
        let hashing = pool_may_serve.then(|| start_hash(&password));
        let record =
            WorkspaceRecord::new(spec, WorkspaceStatus::Creating, OffsetDateTime::now_utc());
        let id = record.id;
        // The plan's notes go out with the intent, so the app's create follows this one
        // write. Not when a pool slot may serve: then the slot brings the app.
        let notes = if pool_may_serve {
            Vec::new()
        } else {
            plan_notes(&record)
        };
        // Record, journal entry and notes in one transaction, with the owner's quota
        // checked in it: a crash leaves all or none.
        let quota = self.quota_guard(record.spec.owner.as_deref());
        let journal = Journal::insert_and_begin(
            Arc::clone(&self.store),
            record,
            OperationKind::Create,
            &owner_id(),
            notes,
            quota.as_ref(),
        )
        .await
        .map_err(|error| match error {
            swarm_store::StoreError::NameTaken(name) => Error::AlreadyExists {
                name,
                status: WorkspaceStatus::Creating,
            },
            other => Error::from(other),
        })?;
        progress(&CreateStep::IntentRecorded { id });

        let outcome = self
            .provision(
                &journal,
                &password,
                hashing,
                pool_may_serve,
                (lock.name(), lock.owner()),
                progress,
            )
            .await;
        let result = match outcome {
            Ok(record) => {
                // Its last step freed the lock.
                lock.released();
                return Ok(Created {
                    workspace: record,
                    password,
                    notes: validated.notes,
                });
            }
            Err((step, error)) => Err(self.compensate(&journal, step, error).await),
        };
        lock.release().await?;
        result
    }

    /// The create steps proper; on failure returns the step that failed.
    ///
    /// The app is created without a lookup first: its create carries the workspace id
    /// as idempotency key, so Fly itself tells our app (created, or handed back on a
    /// repeat) from someone else's (`name_taken`). Once we have made the app, it holds
    /// nothing: volume, machine and IPs are created without a lookup first, and looked
    /// up only after a failure that may have been applied, saving a round trip each.
    pub(crate) async fn provision(
        &self,
        journal: &Journal<S>,
        password: &OneTimePassword,
        mut hashing: Option<Hashing>,
        pool_may_serve: bool,
        lock: (&str, &str),
        progress: Progress<'_>,
    ) -> std::result::Result<WorkspaceRecord, (&'static str, Error)> {
        // Warm pool: a matching slot already holds app, volume and IPs (see pool.rs).
        // Not tried when none matched just before: a slot filled since is left for the
        // next create (this one takes the normal path, which is always correct).
        let slot = if pool_may_serve {
            self.take_pool_slot(journal)
                .await
                .map_err(|error| ("pool slot", error))?
        } else {
            None
        };
        let record = journal.record().await;
        // Either way the app holds nothing of this workspace yet (ours is new; a slot's
        // machine carries no workspace's tags until this create's update): volume, IPs
        // and machine are created (or the slot's adopted) without listing first.
        let app_made = match &slot {
            Some(slot) => {
                progress(&CreateStep::PoolSlot {
                    app: slot.app.clone(),
                    volume: slot.volume_id.clone(),
                    addresses: slot.ips.iter().map(|ip| ip.address.clone()).collect(),
                });
                false
            }
            None => {
                // The plan's notes went out with the intent unless a pool slot was
                // expected (and none was left): then they go now, before any Fly create.
                if pool_may_serve {
                    journal
                        .notes(plan_notes(&record))
                        .await
                        .map_err(|error| ("app", error.into()))?;
                }
                let app = self
                    .create_app(journal, &record)
                    .await
                    .map_err(|error| ("app", error))?;
                progress(&CreateStep::App {
                    name: app,
                    adopted: false,
                });
                hashing.get_or_insert_with(|| start_hash(password));
                true
            }
        };
        // The addresses need only the app: allocated alongside the whole volume →
        // machine → started chain (a slot holds them already). `reconcile` allocates
        // any a crash left missing.
        let addresses = async {
            if app_made {
                let ips = self
                    .ensure_ips(journal, &record)
                    .await
                    .map_err(|error| ("ips", error))?;
                progress(&CreateStep::Ips {
                    addresses: ips.iter().map(|ip| ip.address.clone()).collect(),
                });
            }
            Ok::<_, (&'static str, Error)>(())
        };
        let machine_chain = async {
            let (volume_id, volume_step) = match &slot {
                Some(slot) => (
                    self.grow_slot_volume(&record, slot)
                        .await
                        .map_err(|error| ("volume", error))?,
                    None,
                ),
                None => {
                    // `app_created` is committed while the volume is made (its
                    // `app_creating` note already covers the app).
                    let ((), volume) = tokio::try_join!(
                        async {
                            journal
                                .step(
                                    "app_created",
                                    json!({ "app": record.app_name() }),
                                    Some("after_app"),
                                    |updated| updated.app = Some(record.app_name().to_owned()),
                                )
                                .await
                                .map(drop)
                                .map_err(|error| ("app", error.into()))
                        },
                        async {
                            self.ensure_volume(&record)
                                .await
                                .map_err(|error| ("volume", error))
                        },
                    )?;
                    progress(&CreateStep::Volume {
                        id: volume.0.clone(),
                        adopted: volume.1,
                    });
                    (volume.0.clone(), Some(volume))
                }
            };
            let hashed_password = hashing
                .unwrap_or_else(|| start_hash(password))
                .await
                .map_err(|error| password::PasswordError::Hash(error.to_string()))
                .and_then(|hashed| hashed)
                .map_err(|error| ("machine", Error::from(error)))?;
            // The volume id is committed while the machine is made: its note is in, and
            // a crash before the commit finds the volume by its name.
            let record_volume = async {
                match &volume_step {
                    Some((id, adopted)) => journal
                        .step(
                            "volume_created",
                            json!({ "volume": id, "adopted": adopted }),
                            Some("after_volume"),
                            |record| record.volume_id = Some(id.clone()),
                        )
                        .await
                        .map(drop),
                    None => Ok(()),
                }
            };
            // The `machine_creating` note went out with `app_creating`. A slot's stopped
            // machine is adopted by one update instead (pool.rs).
            let slot_machine = slot.as_ref().and_then(|slot| slot.machine.clone());
            let make_machine = async {
                match &slot_machine {
                    Some(id) => self
                        .adopt_slot_machine(&record, id, &volume_id, &hashed_password)
                        .await
                        .map(|machine| (machine, true)),
                    None => {
                        self.ensure_machine(
                            journal,
                            &record,
                            &volume_id,
                            &hashed_password,
                            app_made,
                        )
                        .await
                    }
                }
            };
            let (volume_recorded, machine) = tokio::join!(record_volume, make_machine);
            volume_recorded.map_err(|error| ("volume", error.into()))?;
            let machine = machine.map_err(|error| ("machine", error))?;
            progress(&CreateStep::Machine {
                id: machine.0.id.clone(),
                adopted: machine.1,
            });
            let machine_id = machine.0.id.clone();
            // Recording the machine overlaps the wait for it to start (a read): the
            // wait takes seconds (image preparation, boot), the write milliseconds.
            let (recorded, started) = tokio::join!(
                journal.step(
                    "machine_created",
                    json!({ "machine": machine_id, "adopted": machine.1 }),
                    Some("after_machine"),
                    |record| {
                        record.machine_id = Some(machine_id.clone());
                    },
                ),
                self.wait_for(
                    &record,
                    record.app_name(),
                    &machine_id,
                    MachineState::Started,
                    self.config.start_timeout,
                ),
            );
            recorded.map_err(|error| ("machine", error.into()))?;
            started.map_err(|error| ("started", error))?;
            Ok(machine)
        };
        let ((), machine) = tokio::try_join!(addresses, machine_chain)?;
        let app_name = record.app_name().to_owned();
        let machine_id = machine.0.id.clone();
        // Create's answer already names the version and the resolved image digest
        // (starting does not change either); ask again only when it did not.
        let (digest, machine_version) =
            if machine.0.version.is_some() && machine.0.image_digest.is_some() {
                (machine.0.image_digest.clone(), machine.0.version.clone())
            } else {
                let machine = self
                    .retry("get machine", || {
                        self.provider.get_machine(&app_name, &machine_id)
                    })
                    .await
                    .ok()
                    .flatten();
                let digest = machine.as_ref().and_then(|m| m.image_digest.clone());
                (digest, machine.and_then(|machine| machine.version))
            };
        // `started`, the operation's end and the lock's release in one write: one
        // fsync before the create returns instead of three.
        let record = journal
            .last_step(
                "started",
                json!({ "machine": machine_id }),
                Some("after_started"),
                "ok",
                lock,
                |record| {
                    record.status = WorkspaceStatus::Running;
                    if let Some(first) = record.image_versions.first_mut() {
                        first.machine_version = machine_version;
                        first.digest = digest;
                    }
                },
            )
            .await
            .map_err(|error| ("started", error.into()))?;
        progress(&CreateStep::Started { machine_id });
        Ok(record)
    }
}

/// The notes of a normal create's whole plan, committed before the app's create so no
/// later Fly create waits on a note of its own. `app_creating` carries the idempotency
/// key the app is created under: what later proves an app of this name ours.
fn plan_notes(record: &WorkspaceRecord) -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (
            "app_creating",
            json!({ "app": record.app_name(), "idempotency_key": record.id.to_string() }),
        ),
        ("volume_creating", json!({ "name": record.volume_name() })),
        ("ips_allocating", json!({ "mode": record.spec.ip_mode })),
        ("machine_creating", json!({ "name": machine_name(record) })),
    ]
}

/// A password's argon2id hash, computed on a blocking thread.
type Hashing = tokio::task::JoinHandle<std::result::Result<String, password::PasswordError>>;

fn start_hash(password: &OneTimePassword) -> Hashing {
    let password = password.clone();
    let span = tracing::debug_span!("swarm_step", step = "argon2id hash");
    tokio::task::spawn_blocking(move || span.in_scope(|| password::hash(&password)))
}
