//! Issue 8: model-based test. Seeded random walks of create, start, stop, resize,
//! update, rollback, move, delete, crash and recover over a few workspaces, against a
//! fly-sim failing 20 % of calls and losing 5 % of responses after applying them.
//!
//! After every step: nothing on Fly that no record accounts for, at most one machine
//! and one volume per workspace unless an operation on it is unfinished, no record
//! lost, and bad input changing nothing. After every recover (reconcile until it
//! converges): no unfinished operation, every live record agrees with Fly (its machine
//! and volume exist, are the only ones, and the machine state matches the status).
//! Throughout: two operations on one workspace never interleave.
//!
//! A crash is a process death at a random Fly call: the call is sent (or not), the
//! operation is dropped at that await point without any cleanup of its own, and a new
//! `Swarm` (new store connections, new client) carries on.
//!
//! `SWARM_MODEL_SEQUENCES` (default 200), `SWARM_MODEL_STEPS` (30) and
//! `SWARM_MODEL_SEED` (first seed; a failure prints the seed to replay) set the run.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use common::test_config;
use fly_api::{
    FlyClient, ReqwestTransport, RetryPolicy, Token, Transport, TransportRequest, TransportResponse,
};
use fly_sim::{Latency, Sim, SimConfig, SimHandle};
use futures::future::BoxFuture;
use futures::{FutureExt as _, StreamExt as _};
use serde_json::Value;
use swarm::store::Store as _;
use swarm::{
    CreateOptions, Error, FlyProvider, ResizeOptions, SqliteStore, Swarm, SwarmConfig,
    WorkspaceRecord, WorkspaceStatus,
};
use tokio::sync::Notify;

type ModelSwarm = Swarm<SqliteStore, FlyProvider>;

const NAMES: [&str; 3] = ["ws-a", "ws-b", "ws-c"];
const IMAGES: [&str; 3] = [
    "codercom/code-server:4.106.3",
    "codercom/code-server:4.107.0",
    "codercom/code-server:4.108.0",
];
/// Sequences run at once (each with its own sim and store).
const PARALLEL: usize = 20;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// SplitMix64: a seeded, dependency-free generator, so a seed replays a walk.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

// ------------------------------------------------------------------ crash switch

/// Kills the "process" at the n-th Fly call from arming: the operation's future is
/// dropped there. The call itself is sent first or not at all (chosen when armed).
#[derive(Debug, Default)]
struct CrashSwitch {
    countdown: AtomicU64,
    send_first: AtomicBool,
    fired: Notify,
}

impl CrashSwitch {
    fn arm(&self, nth_call: u64, send_first: bool) {
        self.send_first.store(send_first, Ordering::SeqCst);
        self.countdown.store(nth_call, Ordering::SeqCst);
    }

    fn disarm(&self) {
        self.countdown.store(0, Ordering::SeqCst);
    }

    /// True exactly once: on the call that should die.
    fn hit(&self) -> bool {
        self.countdown
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n > 0).then(|| n - 1)
            })
            .is_ok_and(|before| before == 1)
    }
}

#[derive(Debug)]
struct CrashingTransport {
    inner: ReqwestTransport,
    switch: Arc<CrashSwitch>,
}

impl Transport for CrashingTransport {
    fn send(
        &self,
        request: TransportRequest,
    ) -> BoxFuture<'static, fly_api::Result<TransportResponse>> {
        if !self.switch.hit() {
            return self.inner.send(request);
        }
        let switch = Arc::clone(&self.switch);
        let sent = switch
            .send_first
            .load(Ordering::SeqCst)
            .then(|| self.inner.send(request));
        async move {
            if let Some(sent) = sent {
                let _ = sent.await;
            }
            switch.fired.notify_one();
            std::future::pending().await
        }
        .boxed()
    }
}

fn model_config(sim_url: &str) -> SwarmConfig {
    SwarmConfig {
        step_backoff: Duration::from_millis(2),
        step_attempts: 10,
        lock_wait: Duration::from_secs(60),
        ..test_config(sim_url)
    }
}

async fn open_swarm(sim_url: &str, db: &Path, switch: &Arc<CrashSwitch>) -> ModelSwarm {
    let config = model_config(sim_url);
    let client = FlyClient::builder()
        .token(Token::new("model-test-token"))
        .machines_base_url(sim_url)
        .api_base_url(sim_url)
        .transport(Arc::new(CrashingTransport {
            inner: ReqwestTransport::new().expect("transport"),
            switch: Arc::clone(switch),
        }))
        .retry(RetryPolicy {
            initial_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(20),
            ..RetryPolicy::default()
        })
        // Rate limits are the benchmarks' subject; here they would only add waiting.
        .throttle(false)
        .build()
        .expect("fly client");
    let store = SqliteStore::open(db, &config.fly_endpoint)
        .await
        .expect("open store");
    let provider = FlyProvider::new(client, &config);
    Swarm::new(store, provider, config)
}

// ------------------------------------------------------------------ the model

/// What the test knows of one workspace.
#[derive(Debug, Clone, PartialEq)]
enum Known {
    /// Created and not deleted; the record must say exactly this.
    Live {
        status: WorkspaceStatus,
        versions: usize,
        cpus: u32,
        storage_gb: u32,
        region: String,
    },
    /// An operation failed or crashed: the next recover tells. `may_vanish` when it
    /// was a create or delete (the record may legitimately end up deleted).
    Unsure { may_vanish: bool },
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Create,
    Start,
    Stop,
    Resize,
    Update,
    Rollback,
    Move,
    Delete,
}

/// Operations on an existing workspace, weighted (a create of an existing name is
/// refused: it checks that nothing changes).
const OPS_ON_EXISTING: [(Op, u64); 8] = [
    (Op::Start, 15),
    (Op::Stop, 15),
    (Op::Resize, 15),
    (Op::Update, 15),
    (Op::Rollback, 12),
    (Op::Move, 8),
    (Op::Delete, 8),
    (Op::Create, 3),
];
const ALL_OPS: [Op; 8] = [
    Op::Create,
    Op::Start,
    Op::Stop,
    Op::Resize,
    Op::Update,
    Op::Rollback,
    Op::Move,
    Op::Delete,
];

/// What a step did to one workspace, for the model.
enum Outcome {
    Done(Box<WorkspaceRecord>),
    Deleted,
    /// Refused as bad input or a known state (exit 2): nothing may have changed.
    Refused(Error),
    Failed(Error),
    Crashed,
}

#[derive(Default)]
struct Tally {
    sequences: AtomicUsize,
    steps: AtomicUsize,
    crashes: AtomicUsize,
    recovers: AtomicUsize,
    refused: AtomicUsize,
    failed: AtomicUsize,
    pairs: AtomicUsize,
    requests: AtomicU64,
    faults: AtomicU64,
    lost_responses: AtomicU64,
}

struct Walk {
    seed: u64,
    rng: Rng,
    sim: SimHandle,
    db: std::path::PathBuf,
    _dir: tempfile::TempDir,
    switch: Arc<CrashSwitch>,
    swarm: ModelSwarm,
    known: BTreeMap<&'static str, Known>,
    /// What the walk did so far, printed with any failure.
    log: Vec<String>,
}

impl Walk {
    async fn new(seed: u64) -> Self {
        let sim = Sim::start(
            SimConfig {
                latency: Latency::Zero,
                fault_rate: 0.2,
                ambiguous_rate: 0.05,
                rate_limits: false,
                seed,
                ..SimConfig::default()
            },
            "127.0.0.1:0",
        )
        .await
        .expect("start fly-sim");
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("swarm.db");
        let switch = Arc::new(CrashSwitch::default());
        let swarm = open_swarm(&sim.base_url(), &db, &switch).await;
        Walk {
            seed,
            rng: Rng(seed),
            sim,
            db,
            _dir: dir,
            switch,
            swarm,
            known: BTreeMap::new(),
            log: Vec::new(),
        }
    }

    fn context(&self) -> String {
        format!(
            "seed {} (replay: SWARM_MODEL_SEED={} SWARM_MODEL_SEQUENCES=1); steps so far:\n  {}",
            self.seed,
            self.seed,
            self.log.join("\n  ")
        )
    }

    /// Mostly operations that make sense for the workspace's state, some that do not.
    fn choose_op(&mut self, name: &str) -> Op {
        if !self.known.contains_key(name) {
            return if self.rng.below(10) < 8 {
                Op::Create
            } else {
                *self.rng.pick(&ALL_OPS)
            };
        }
        let total: u64 = OPS_ON_EXISTING.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.below(total);
        for (op, weight) in OPS_ON_EXISTING {
            if roll < weight {
                return op;
            }
            roll -= weight;
        }
        Op::Start
    }

    async fn run_op(&mut self, op: Op, name: &'static str) -> Outcome {
        let result = run(&self.swarm, op, name, &mut self.rng).await;
        classify(result)
    }

    /// One random step.
    async fn step(&mut self, tally: &Tally) {
        let name = *self.rng.pick(&NAMES);
        let roll = self.rng.below(100);
        if roll < 8 {
            self.log.push("recover".into());
            self.recover(tally).await;
            return;
        }
        if roll < 20 {
            let op = self.choose_op(name);
            let nth = 1 + self.rng.below(14);
            let send_first = self.rng.below(2) == 0;
            self.log.push(format!(
                "crash {op:?} {name} at call {nth} ({})",
                if send_first {
                    "after sending"
                } else {
                    "before sending"
                }
            ));
            self.switch.arm(nth, send_first);
            let swarm = &self.swarm;
            let rng = &mut self.rng;
            let outcome = tokio::select! {
                result = run(swarm, op, name, rng) => classify(result),
                () = self.switch.fired.notified() => Outcome::Crashed,
            };
            self.switch.disarm();
            if matches!(outcome, Outcome::Crashed) {
                tally.crashes.fetch_add(1, Ordering::Relaxed);
                // The process is gone; a new one starts with fresh connections.
                self.swarm = open_swarm(&self.sim.base_url(), &self.db, &self.switch).await;
            }
            self.absorb(op, name, outcome, tally, true).await;
            return;
        }
        if roll < 26 {
            // Two operations on one workspace at once: the lock serialises them.
            let first = *self
                .rng
                .pick(&[Op::Stop, Op::Start, Op::Resize, Op::Update]);
            let second = *self
                .rng
                .pick(&[Op::Stop, Op::Start, Op::Resize, Op::Update]);
            self.log
                .push(format!("together: {first:?} and {second:?} {name}"));
            tally.pairs.fetch_add(1, Ordering::Relaxed);
            let mut rng_a = Rng(self.rng.next());
            let mut rng_b = Rng(self.rng.next());
            let (a, b) = tokio::join!(
                run(&self.swarm, first, name, &mut rng_a),
                run(&self.swarm, second, name, &mut rng_b)
            );
            // Which ran last is unknown: settle the model from the record.
            for (op, result) in [(first, a), (second, b)] {
                let outcome = classify(result);
                if !matches!(outcome, Outcome::Refused(_)) {
                    // Which ran first is unknown: no version count to check.
                    self.absorb(op, name, outcome, tally, false).await;
                }
            }
            if matches!(self.known.get(name), Some(Known::Live { .. })) {
                let record = self.swarm.show(name).await.expect("record after pair");
                self.known.insert(name, known_from(&record));
            }
            return;
        }
        let op = self.choose_op(name);
        self.log.push(format!("{op:?} {name}"));
        let before = self
            .swarm
            .store()
            .workspace_by_name(name)
            .await
            .expect("read");
        // An operation first settles what a crash left unfinished; that may change the
        // record even when the operation itself is then refused.
        let settling = self
            .swarm
            .store()
            .unfinished_operations()
            .await
            .expect("journal")
            .iter()
            .any(|op| op.workspace_name == name);
        let outcome = self.run_op(op, name).await;
        if let (Outcome::Refused(error), false) = (&outcome, settling) {
            let after = self
                .swarm
                .store()
                .workspace_by_name(name)
                .await
                .expect("read");
            assert_eq!(
                before,
                after,
                "a refused {op:?} ({error}) changed the record; {}",
                self.context()
            );
        }
        self.absorb(op, name, outcome, tally, true).await;
    }

    /// Updates the model from an outcome and checks the record against it.
    async fn absorb(
        &mut self,
        op: Op,
        name: &'static str,
        outcome: Outcome,
        tally: &Tally,
        in_order: bool,
    ) {
        let previous = self.known.get(name).cloned();
        match outcome {
            Outcome::Done(record) => {
                if let (Some(Known::Live { versions, .. }), Op::Update | Op::Rollback, true) =
                    (&previous, op, in_order)
                {
                    assert_eq!(
                        record.image_versions.len(),
                        versions + 1,
                        "{op:?} {name} recorded one version; {}",
                        self.context()
                    );
                }
                self.known.insert(name, known_from(&record));
            }
            Outcome::Deleted => {
                self.known.remove(name);
            }
            Outcome::Refused(error) => {
                tally.refused.fetch_add(1, Ordering::Relaxed);
                self.log.push(format!("  refused: {error}"));
            }
            Outcome::Failed(error) => {
                tally.failed.fetch_add(1, Ordering::Relaxed);
                self.log.push(format!("  failed: {error}"));
                let may_vanish = matches!(op, Op::Create | Op::Delete)
                    || matches!(previous, Some(Known::Unsure { may_vanish: true }));
                if previous.is_some() || matches!(op, Op::Create) {
                    self.known.insert(name, Known::Unsure { may_vanish });
                }
            }
            Outcome::Crashed => {
                self.log.push("  crashed".into());
                let may_vanish = matches!(op, Op::Create | Op::Delete)
                    || matches!(previous, Some(Known::Unsure { may_vanish: true }));
                if previous.is_some() || matches!(op, Op::Create) {
                    self.known.insert(name, Known::Unsure { may_vanish });
                }
            }
        }
        self.check_always().await;
    }

    /// Invariants that hold after every step, whatever failed.
    async fn check_always(&self) {
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
    async fn recover(&mut self, tally: &Tally) {
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
    async fn check_not_interleaved(&self) {
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
    async fn finish(mut self, tally: &Tally) {
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

fn known_from(record: &WorkspaceRecord) -> Known {
    match record.status {
        WorkspaceStatus::Running | WorkspaceStatus::Stopped => Known::Live {
            status: record.status,
            versions: record.image_versions.len(),
            cpus: record.spec.guest.cpus,
            storage_gb: record.spec.storage_gb,
            region: record.spec.region.clone(),
        },
        _ => Known::Unsure { may_vanish: false },
    }
}

/// Runs one operation with random arguments (sometimes invalid on purpose).
async fn run(
    swarm: &ModelSwarm,
    op: Op,
    name: &str,
    rng: &mut Rng,
) -> Result<Option<WorkspaceRecord>, Error> {
    Ok(match op {
        Op::Create => Some(
            swarm
                .create(&CreateOptions {
                    name: name.to_owned(),
                    image: Some(IMAGES[0].to_owned()),
                    ..CreateOptions::default()
                })
                .await?
                .workspace,
        ),
        Op::Start => Some(swarm.start(name).await?.workspace),
        Op::Stop => Some(swarm.stop(name, rng.below(4) == 0).await?.workspace),
        Op::Resize => {
            let options = match rng.below(4) {
                0 => ResizeOptions {
                    cpus: Some(*rng.pick(&[1, 2, 3])),
                    ..ResizeOptions::default()
                },
                1 => ResizeOptions {
                    memory_mb: Some(*rng.pick(&[1024, 2048, 1000])),
                    ..ResizeOptions::default()
                },
                _ => ResizeOptions {
                    storage_gb: Some(*rng.pick(&[5, 11, 12, 600])),
                    ..ResizeOptions::default()
                },
            };
            Some(swarm.resize(name, &options).await?.workspace)
        }
        Op::Update => Some(
            swarm
                .update_image(name, IMAGES[rng.below(3) as usize])
                .await?
                .workspace,
        ),
        Op::Rollback => {
            let to = match rng.below(3) {
                0 => Some(1 + rng.below(5) as u32),
                _ => None,
            };
            Some(swarm.rollback(name, to).await?.workspace)
        }
        Op::Move => {
            let region = *rng.pick(&["ams", "fra", "sea"]);
            Some(swarm.move_region(name, region).await?.workspace)
        }
        Op::Delete => {
            swarm.delete(name).await?;
            None
        }
    })
}

fn classify(result: Result<Option<WorkspaceRecord>, Error>) -> Outcome {
    match result {
        Ok(Some(record)) => Outcome::Done(Box::new(record)),
        Ok(None) => Outcome::Deleted,
        Err(error) if error.exit_code() == 2 => Outcome::Refused(error),
        Err(error) => Outcome::Failed(error),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_walks_with_faults_and_crashes_keep_every_invariant() {
    let sequences = env_number("SWARM_MODEL_SEQUENCES", 200);
    let steps = env_number("SWARM_MODEL_STEPS", 30) as usize;
    let first_seed = env_number("SWARM_MODEL_SEED", 1);
    let tally = Arc::new(Tally::default());
    let started = std::time::Instant::now();
    futures::stream::iter(first_seed..first_seed + sequences)
        .map(|seed| {
            let tally = Arc::clone(&tally);
            async move {
                // Each walk on its own task, so a panic names its seed and stops the run.
                tokio::spawn(async move {
                    let mut walk = Walk::new(seed).await;
                    for _ in 0..steps {
                        walk.step(&tally).await;
                        tally.steps.fetch_add(1, Ordering::Relaxed);
                    }
                    walk.finish(&tally).await;
                    tally.sequences.fetch_add(1, Ordering::Relaxed);
                })
                .await
                .unwrap_or_else(|panic| panic!("walk with seed {seed} failed: {panic}"));
            }
        })
        .buffer_unordered(PARALLEL)
        .collect::<Vec<()>>()
        .await;
    let t = &tally;
    eprintln!(
        "model test: {} sequences × {steps} steps = {} steps in {:.1?}; {} crashes, {} recovers, \
         {} concurrent pairs, {} refused as invalid (nothing changed), {} failed operations; \
         {} Fly API requests, {} faults and {} lost responses injected; nothing leaked or lost",
        t.sequences.load(Ordering::Relaxed),
        t.steps.load(Ordering::Relaxed),
        started.elapsed(),
        t.crashes.load(Ordering::Relaxed),
        t.recovers.load(Ordering::Relaxed),
        t.pairs.load(Ordering::Relaxed),
        t.refused.load(Ordering::Relaxed),
        t.failed.load(Ordering::Relaxed),
        t.requests.load(Ordering::Relaxed),
        t.faults.load(Ordering::Relaxed),
        t.lost_responses.load(Ordering::Relaxed),
    );
    assert_eq!(t.sequences.load(Ordering::Relaxed) as u64, sequences);
}
