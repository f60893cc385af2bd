//! A local Fly.io: the Machines REST API, the GraphQL subset for IPs and secrets, the
//! logs endpoint and the `<app>.fly.dev` proxy, with Fly's semantics, timings, rate
//! limits and seeded faults.
//!
//! ```no_run
//! # async fn demo() -> Result<(), fly_sim::SimError> {
//! let sim = fly_sim::Sim::start(fly_sim::SimConfig::default(), "127.0.0.1:0").await?;
//! println!("point FLY_FLAPS_BASE_URL and FLY_API_BASE_URL at {}", sim.base_url());
//! let stats = sim.stats();
//! assert_eq!(stats.apps, 0);
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

mod clock;
mod faults;
mod http;
mod persist;
mod ratelimit;
mod world;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tokio::sync::watch;

use clock::Clock;
pub use clock::{Draw, Knob};
pub use world::{REGIONS, guest_error, validate_app_name};
use world::{Timer, TimerKind, World};

/// Latency profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Latency {
    /// No delays; transitions still happen in the background, promptly.
    #[default]
    Zero,
    /// REFERENCE §13.1 `realistic`: log-normal draws around Fly's typical timings.
    Fly,
}

/// How the sim behaves. `Default`: latency zero, no faults, rate limits on, seed 0,
/// no state file, no token, org `personal`, time scale 1.
#[derive(Clone)]
pub struct SimConfig {
    pub latency: Latency,
    /// 0..=1: 5xx/429/connection reset *before* doing anything.
    pub fault_rate: f64,
    /// 0..=1: apply the change, then lose the response (500 or reset). Mutations only.
    pub ambiguous_rate: f64,
    pub rate_limits: bool,
    pub seed: u64,
    pub state_file: Option<PathBuf>,
    /// When set, only this token is accepted (`Bearer` or `FlyV1`); 401 otherwise.
    pub token: Option<String>,
    pub org: String,
    /// Model durations are multiplied by this (0.01 = 100× faster).
    pub time_scale: f64,
    /// Add `Retry-After: 1` to 429 answers.
    pub retry_after: bool,
    /// App names that belong to "other organisations" (besides any `taken-*` name).
    pub taken_names: Vec<String>,
    /// Wait for the state-file lock instead of failing when another sim holds it.
    pub wait_lock: bool,
    /// Keep every request/response pair for [`SimHandle::recorded`] (tests).
    pub record: bool,
    /// Keep every latency draw for [`SimHandle::draws`] (benchmarks).
    pub record_draws: bool,
    /// Under `fly`, every draw is its p50 instead of random (benchmarks comparing two
    /// clients on equal latencies).
    pub latency_p50_only: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            latency: Latency::Zero,
            fault_rate: 0.0,
            ambiguous_rate: 0.0,
            rate_limits: true,
            seed: 0,
            state_file: None,
            token: None,
            org: "personal".into(),
            time_scale: 1.0,
            retry_after: false,
            taken_names: Vec::new(),
            wait_lock: false,
            record: false,
            record_draws: false,
            latency_p50_only: false,
        }
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("latency", &self.latency)
            .field("fault_rate", &self.fault_rate)
            .field("ambiguous_rate", &self.ambiguous_rate)
            .field("rate_limits", &self.rate_limits)
            .field("seed", &self.seed)
            .field("state_file", &self.state_file)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("org", &self.org)
            .field("time_scale", &self.time_scale)
            .field("retry_after", &self.retry_after)
            .field("taken_names", &self.taken_names)
            .field("wait_lock", &self.wait_lock)
            .field("record", &self.record)
            .field("record_draws", &self.record_draws)
            .field("latency_p50_only", &self.latency_p50_only)
            .finish()
    }
}

/// Why the sim could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("state file {path}: {message}")]
    StateFile { path: PathBuf, message: String },
    #[error(
        "state file {path} is in use by another fly-sim (lock {lock} held); stop it or pass --wait-lock"
    )]
    Locked { path: PathBuf, lock: PathBuf },
}

/// Live counts.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SimStats {
    pub apps: usize,
    /// Machines not destroyed.
    pub machines: usize,
    /// Volumes not destroyed.
    pub volumes: usize,
    /// Dedicated addresses plus shared v4s.
    pub ips: usize,
    pub requests_total: u64,
    /// By HTTP status, e.g. `requests_by_status[&429]`.
    pub requests_by_status: BTreeMap<u16, u64>,
    /// Faults injected before any work (5xx, 429, reset).
    pub faults_injected: u64,
    /// Responses lost after the change was applied.
    pub ambiguous_injected: u64,
}

/// One recorded exchange (with [`SimConfig::record`]).
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    pub query: String,
    pub request_body: serde_json::Value,
    pub status: u16,
    pub response_body: serde_json::Value,
}

#[derive(Debug, Default)]
struct Counters {
    requests_total: AtomicU64,
    by_status: Mutex<BTreeMap<u16, u64>>,
    faults: AtomicU64,
    ambiguous: AtomicU64,
}

/// Shared state behind every handler.
#[derive(Debug)]
struct Inner {
    config: SimConfig,
    clock: Clock,
    world: Mutex<World>,
    changed: watch::Sender<u64>,
    shutdown: watch::Sender<bool>,
    counters: Counters,
    faults: Mutex<faults::FaultRng>,
    limiter: Mutex<ratelimit::Limiter>,
    dirty: AtomicBool,
    records: Mutex<Vec<Exchange>>,
    state_lock: Mutex<Option<std::fs::File>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    fn read<R>(&self, f: impl FnOnce(&World, &Clock) -> R) -> R {
        let w = lock(&self.world);
        f(&w, &self.clock)
    }

    /// Runs a change under the lock, then schedules its timers and wakes waiters.
    fn mutate<R>(self: &Arc<Self>, f: impl FnOnce(&mut World, &Clock) -> R) -> R {
        let (result, timers) = {
            let mut w = lock(&self.world);
            let result = f(&mut w, &self.clock);
            (result, w.take_outbox())
        };
        self.dirty.store(true, Ordering::Release);
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
        for timer in timers {
            self.spawn_timer(timer);
        }
        result
    }

    fn spawn_timer(self: &Arc<Self>, timer: Timer) {
        let inner = Arc::clone(self);
        let mut shutdown = self.shutdown.subscribe();
        tokio::spawn(async move {
            tokio::select! {
                _ = inner.clock.sleep_until_model(timer.at_ms) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            inner.mutate(|w, clock| match &timer.kind {
                TimerKind::Machine { app, id, seq } => w.fire_machine(clock, app, id, *seq),
                TimerKind::Volume { app, id, seq } => w.fire_volume(app, id, *seq),
                TimerKind::AppDeleted { app } => w.finish_app_delete(app),
                TimerKind::Idle { app, id, activity } => w.fire_idle(clock, app, id, *activity),
                TimerKind::Autostop { app, id } => w.fire_autostop(clock, app, id),
            });
        });
    }

    fn stats(&self) -> SimStats {
        let (apps, machines, volumes, ips) = self.read(|w, _| w.counts());
        SimStats {
            apps,
            machines,
            volumes,
            ips,
            requests_total: self.counters.requests_total.load(Ordering::Relaxed),
            requests_by_status: lock(&self.counters.by_status).clone(),
            faults_injected: self.counters.faults.load(Ordering::Relaxed),
            ambiguous_injected: self.counters.ambiguous.load(Ordering::Relaxed),
        }
    }
}

/// Entry point.
#[derive(Debug)]
pub struct Sim;

impl Sim {
    /// Binds `listen` (e.g. `"127.0.0.1:0"`), loads the state file if any, and serves.
    pub async fn start(config: SimConfig, listen: &str) -> Result<SimHandle, SimError> {
        if !(0.0..=1.0).contains(&config.fault_rate) {
            return Err(SimError::Config(format!(
                "fault_rate {} must be between 0 and 1",
                config.fault_rate
            )));
        }
        if !(0.0..=1.0).contains(&config.ambiguous_rate) {
            return Err(SimError::Config(format!(
                "ambiguous_rate {} must be between 0 and 1",
                config.ambiguous_rate
            )));
        }
        if !(config.time_scale.is_finite() && config.time_scale > 0.0) {
            return Err(SimError::Config(format!(
                "time_scale {} must be a positive number",
                config.time_scale
            )));
        }
        if let Err(e) = world::validate_app_name(&config.org) {
            return Err(SimError::Config(format!(
                "org {:?}: {}",
                config.org,
                e.message()
            )));
        }
        let (state_lock, loaded) = match &config.state_file {
            Some(path) => {
                let lock = persist::acquire_lock(path, config.wait_lock).await?;
                (Some(lock), persist::load(path)?)
            }
            None => (None, None),
        };
        let latency_fly = config.latency == Latency::Fly;
        let mut model_start = clock::unix_now_ms();
        let world = match loaded {
            Some(mut w) => {
                w.reseed(config.seed);
                w.org = config.org.clone();
                w.latency_fly = latency_fly;
                w.taken_names.extend(config.taken_names.iter().cloned());
                // Never let model time run backwards across a reload.
                model_start = model_start.max(persist::latest_instant(&w));
                w.resume_timers();
                w
            }
            None => World::new(&config.org, config.seed, latency_fly, &config.taken_names),
        };
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| SimError::Bind {
                addr: listen.to_string(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: listen.to_string(),
            source,
        })?;
        let inner = Arc::new(Inner {
            clock: {
                let mut clock =
                    Clock::new(config.latency, config.time_scale, config.seed, model_start);
                if config.record_draws {
                    clock = clock.record_draws();
                }
                if config.latency_p50_only {
                    clock = clock.p50_only();
                }
                clock
            },
            faults: Mutex::new(faults::FaultRng::new(
                config.seed,
                config.fault_rate,
                config.ambiguous_rate,
            )),
            limiter: Mutex::new(ratelimit::Limiter::default()),
            config,
            world: Mutex::new(world),
            changed: watch::channel(0).0,
            shutdown: watch::channel(false).0,
            counters: Counters::default(),
            dirty: AtomicBool::new(false),
            records: Mutex::new(Vec::new()),
            state_lock: Mutex::new(state_lock),
        });
        // Timers of transitions that were in flight when the state was saved.
        inner.mutate(|_, _| ());
        let router = http::router(Arc::clone(&inner));
        let mut stop = inner.shutdown.subscribe();
        let server = tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        });
        let saver = persist::spawn_saver(Arc::clone(&inner));
        Ok(SimHandle {
            addr,
            inner,
            server,
            saver,
        })
    }
}

/// A running sim.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    inner: Arc<Inner>,
    server: tokio::task::JoinHandle<()>,
    saver: Option<tokio::task::JoinHandle<()>>,
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the Machines base *and* the GraphQL/logs base.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stats(&self) -> SimStats {
        self.inner.stats()
    }

    /// The whole world as JSON (machine configs incl. env, volumes, IPs, secret names...).
    pub fn world(&self) -> serde_json::Value {
        self.inner.read(|w, _| w.dump())
    }

    /// Request/response pairs so far (only with [`SimConfig::record`]).
    pub fn recorded(&self) -> Vec<Exchange> {
        lock(&self.inner.records).clone()
    }

    /// Every latency draw so far, in order (only with [`SimConfig::record_draws`]).
    pub fn draws(&self) -> Vec<Draw> {
        self.inner.clock.draws()
    }

    /// Model time now, in Unix milliseconds.
    pub fn model_now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// Makes the machine's code-server have last seen a request at `at_ms` (model
    /// Unix ms): idle-detection tests get an old heartbeat (`/healthz` answers
    /// `expired` with that `lastHeartbeat`) without waiting. Its idle timer restarts
    /// from that moment, as code-server's would. False when there is no such machine.
    pub fn set_last_heartbeat(&self, app: &str, machine_id: &str, at_ms: i64) -> bool {
        self.inner
            .mutate(|w, _| w.heartbeat_at(app, machine_id, at_ms))
    }

    /// Throws away a suspended machine's memory snapshot, as a host migration, Fly's
    /// maintenance or a lost snapshot file does: its next start cold boots. False
    /// when there is no such machine or it holds no snapshot.
    pub fn discard_snapshot(&self, app: &str, machine_id: &str) -> bool {
        self.inner
            .mutate(|w, _| w.discard_snapshot(app, machine_id))
    }

    /// Marks `image` as already prepared in `region`, as after an earlier machine with
    /// it there: the next machine with it waits the cached preparation (1.5 s at p50),
    /// not the first one (12 s). Benchmarks use it to time a create with a warm image
    /// without spending a first preparation on a throwaway machine.
    pub fn prepare_image(&self, region: &str, image: &str) {
        let key = format!("{region}/{image}");
        self.inner.mutate(|w, _| {
            w.prepared_images.insert(key);
        });
    }

    /// Stops serving and persists the state file if one is set.
    pub async fn shutdown(self) {
        self.inner.shutdown.send_replace(true);
        let _ = self.server.await;
        if let Some(saver) = self.saver {
            saver.abort();
        }
        persist::save_now(&self.inner);
        lock(&self.inner.state_lock).take();
    }
}
