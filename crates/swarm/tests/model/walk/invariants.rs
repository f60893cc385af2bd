//! What must hold after every step, after every recover, and at the end of a walk.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use fly_sim::SimHandle;
use serde_json::Value;
use swarm::store::Store as _;
use swarm::{WorkspaceRecord, WorkspaceStatus};

use super::{Known, Walk, known_from};
use crate::{NAMES, Tally};

impl Walk {
    /// Invariants that hold after every step, whatever failed.
    pub(super) async fn check_always(&self) {
        let store = self.swarm.store();
        let all = store.list_workspaces(true).await.expect("list");
        let unfinished: BTreeSet<uuid::Uuid> = store
            .unfinished_operations()
            .await
            .expect("journal")
            .into_iter()
            .map(|op| op.workspace_id)
            .collect();
        let by_name: BTreeMap<&str, Vec<&WorkspaceRecord>> =
            all.iter().fold(BTreeMap::new(), |mut map, record| {
                map.entry(record.name.as_str()).or_default().push(record);
                map
            });
        // No record lost: everything the model knows as live has a live record.
        for (name, known) in &self.known {
            let live = by_name
                .get(name)
                .into_iter()
                .flatten()
                .any(|r| r.status != WorkspaceStatus::Deleted);
            if let Known::Live { .. } | Known::Unsure { may_vanish: false } = known {
                assert!(live, "record of {name} lost; {}", self.context());
            }
        }
        // Nothing on Fly that no record accounts for; no twins outside an operation.
        for app in sim_apps(&self.sim) {
            let records = by_name.get(app.name.as_str()).cloned().unwrap_or_default();
            // The live record owns the app; failing that, one whose operation is unfinished.
            let owner = records
                .iter()
                .find(|r| r.status != WorkspaceStatus::Deleted)
                .or_else(|| records.iter().find(|r| unfinished.contains(&r.id)));
            assert!(
                owner.is_some()
                    || app.machines.is_empty() && app.volumes.is_empty() && app.deleting,
                "app {} on Fly with no record accounting for it ({} machines, {} volumes); {}",
                app.name,
                app.machines.len(),
                app.volumes.len(),
                self.context()
            );
            let Some(owner) = owner else { continue };
            for (machine, tag) in &app.machines {
                assert_eq!(
                    tag.as_deref(),
                    Some(owner.id.to_string().as_str()),
                    "machine {machine} of {} is not tagged with its workspace; {}",
                    app.name,
                    self.context()
                );
            }
            if !unfinished.contains(&owner.id) {
                assert!(
                    app.machines.len() <= 1 && app.volumes.len() <= 1,
                    "{} has {} machines and {} volumes with no operation under way; {}",
                    app.name,
                    app.machines.len(),
                    app.volumes.len(),
                    self.context()
                );
            }
        }
    }

    /// Reconcile until it converges; then everything agrees.
    pub(super) async fn recover(&mut self, tally: &Tally) {
        tally.recovers.fetch_add(1, Ordering::Relaxed);
        let mut converged = false;
        for _ in 0..8 {
            match self.swarm.reconcile().await {
                Ok(report) if report.converged() => {
                    converged = true;
                    break;
                }
                Ok(report) => self
                    .log
                    .push(format!("  reconcile not converged: {report:?}")),
                Err(error) => self.log.push(format!("  reconcile failed: {error}")),
            }
        }
        assert!(converged, "reconcile never converged; {}", self.context());
        let store = self.swarm.store();
        let unfinished = store.unfinished_operations().await.expect("journal");
        assert!(
            unfinished.is_empty(),
            "operations left unfinished after reconcile: {unfinished:?}; {}",
            self.context()
        );
        let apps = sim_apps(&self.sim);
        let live: Vec<WorkspaceRecord> = store.list_workspaces(false).await.expect("list");
        for record in &live {
            let name = record.name.as_str();
            assert!(
                matches!(
                    record.status,
                    WorkspaceStatus::Running | WorkspaceStatus::Stopped
                ),
                "{name} is {} after reconcile; {}",
                record.status,
                self.context()
            );
            let app = apps
                .iter()
                .find(|app| app.name == name)
                .unwrap_or_else(|| panic!("{name} has no app on Fly; {}", self.context()));
            let machines: Vec<&String> = app.machines.iter().map(|(id, _)| id).collect();
            assert_eq!(
                machines,
                vec![record.machine_id.as_ref().expect("machine id")],
                "{name}: Fly's machines and the record's; {}",
                self.context()
            );
            assert_eq!(
                app.volumes,
                vec![record.volume_id.clone().expect("volume id")],
                "{name}: Fly's volumes and the record's; {}",
                self.context()
            );
            let state = app.states.first().map(String::as_str);
            let expected = match record.status {
                WorkspaceStatus::Running => "started",
                _ => "stopped",
            };
            assert_eq!(
                state,
                Some(expected),
                "{name}: machine state; {}",
                self.context()
            );
        }
        for app in &apps {
            assert!(
                live.iter().any(|r| r.name.as_str() == app.name) || app.deleting,
                "orphan app {} after reconcile; {}",
                app.name,
                self.context()
            );
        }
        // The model follows the records again.
        for name in NAMES {
            let record = live.iter().find(|r| r.name.as_str() == name);
            match (self.known.get(name).cloned(), record) {
                (Some(Known::Live { .. } | Known::Unsure { .. }), Some(record))
                | (None, Some(record)) => {
                    self.known.insert(name, known_from(record));
                }
                (Some(Known::Unsure { may_vanish: true }) | None, None) => {
                    self.known.remove(name);
                }
                (Some(known), None) => {
                    panic!("{name} ({known:?}) vanished; {}", self.context())
                }
            }
        }
        self.check_not_interleaved().await;
    }

    /// Two operations of one workspace never ran at once: the steps of each operation
    /// that finished by itself form one block in time.
    pub(super) async fn check_not_interleaved(&self) {
        let store = self.swarm.store();
        for record in store.list_workspaces(true).await.expect("list") {
            let mut spans = Vec::new();
            for op in store.operations_of(record.id).await.expect("ops") {
                // Finished by reconcile after a crash: its steps straddle the gap.
                let by_reconcile = op
                    .outcome
                    .as_deref()
                    .is_none_or(|o| o.contains("reconcile") || o.contains("record missing"));
                if by_reconcile {
                    continue;
                }
                let steps = store.operation_steps(op.id).await.expect("steps");
                if let (Some(first), Some(last)) = (steps.first(), steps.last()) {
                    spans.push((first.at, last.at, op.id, op.kind.as_str()));
                }
            }
            spans.sort();
            for pair in spans.windows(2) {
                assert!(
                    pair[0].1 <= pair[1].0,
                    "operations {:?} and {:?} on {} overlapped in time; {}",
                    pair[0],
                    pair[1],
                    record.name,
                    self.context()
                );
            }
        }
    }

    /// Leaves nothing behind: every workspace deleted, Fly empty.
    pub(crate) async fn finish(mut self, tally: &Tally) {
        self.recover(tally).await;
        let live = self
            .swarm
            .store()
            .list_workspaces(false)
            .await
            .expect("list");
        for record in live {
            let name = record.name.as_str();
            let mut done = false;
            for _ in 0..6 {
                if self.swarm.delete(name).await.is_ok() {
                    done = true;
                    break;
                }
                let _ = self.swarm.reconcile().await;
            }
            assert!(done, "could not delete {name}; {}", self.context());
        }
        let _ = self.swarm.reconcile().await;
        let stats = self.sim.stats();
        assert_eq!(
            (stats.machines, stats.volumes, stats.ips),
            (0, 0, 0),
            "leaked on Fly at the end; {}",
            self.context()
        );
        tally
            .requests
            .fetch_add(stats.requests_total, Ordering::Relaxed);
        tally
            .faults
            .fetch_add(stats.faults_injected, Ordering::Relaxed);
        tally
            .lost_responses
            .fetch_add(stats.ambiguous_injected, Ordering::Relaxed);
        self.sim.shutdown().await;
    }
}

/// A live app on the sim: its live machines (id, workspace tag), their states, and
/// its live volumes.
struct SimApp {
    name: String,
    deleting: bool,
    machines: Vec<(String, Option<String>)>,
    states: Vec<String>,
    volumes: Vec<String>,
}

fn sim_apps(sim: &SimHandle) -> Vec<SimApp> {
    let world = sim.world();
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let items = |v: &Value| -> Vec<Value> {
        match v {
            Value::Array(items) => items.clone(),
            Value::Object(map) => map.values().cloned().collect(),
            _ => Vec::new(),
        }
    };
    items(&world["apps"])
        .iter()
        .map(|app| {
            let live_machines: Vec<Value> = items(&app["machines"])
                .into_iter()
                .filter(|m| !matches!(m["state"].as_str(), Some("destroyed" | "destroying")))
                .collect();
            SimApp {
                name: text(&app["name"]),
                deleting: app["deleting"].as_bool().unwrap_or(false),
                machines: live_machines
                    .iter()
                    .map(|m| {
                        (
                            text(&m["id"]),
                            m["config"]["metadata"][swarm::provider::TAG_WORKSPACE_ID]
                                .as_str()
                                .map(str::to_owned),
                        )
                    })
                    .collect(),
                states: live_machines.iter().map(|m| text(&m["state"])).collect(),
                volumes: items(&app["volumes"])
                    .iter()
                    .filter(|v| {
                        !matches!(
                            v["state"].as_str(),
                            Some(
                                "destroyed"
                                    | "destroying"
                                    | "pending_destroy"
                                    | "scheduling_destroy"
                            )
                        )
                    })
                    .map(|v| text(&v["id"]))
                    .collect(),
            }
        })
        .collect()
}
