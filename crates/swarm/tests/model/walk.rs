//! The model: what the test knows of each workspace, and one random step at a time.

mod invariants;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use fly_sim::{Latency, Sim, SimConfig, SimHandle};
use swarm::store::Store as _;
use swarm::{CreateOptions, Error, ResizeOptions, WorkspaceRecord, WorkspaceStatus};

use crate::{CrashSwitch, IMAGES, ModelSwarm, NAMES, Rng, Tally, open_swarm};

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

pub(crate) struct Walk {
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
    pub(crate) async fn new(seed: u64) -> Self {
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
    pub(crate) async fn step(&mut self, tally: &Tally) {
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
