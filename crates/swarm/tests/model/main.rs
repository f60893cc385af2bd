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

#[path = "../common/mod.rs"]
mod common;
mod walk;

use walk::Walk;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use common::test_config;
use fly_api::{
    FlyClient, ReqwestTransport, RetryPolicy, Token, Transport, TransportRequest, TransportResponse,
};
use futures::future::BoxFuture;
use futures::{FutureExt as _, StreamExt as _};
use swarm::{FlyProvider, SqliteStore, Swarm, SwarmConfig};
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
