//! The simulated world: apps, machines, volumes, IPs, secrets, leases and logs.
//!
//! Pure and synchronous: every operation runs under one lock, reads the model clock, and
//! leaves background work (state transitions, deletions) as [`Timer`]s in an outbox that
//! the HTTP layer drains and schedules.

mod apps;
mod error;
mod exec;
mod machines;
mod render;
mod suspend;
mod volumes;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Clock;

pub use apps::validate_app_name;
pub use error::ApiError;
pub use exec::ExecRequest;
pub use machines::{MachineRequest, WaitOutcome, guest_error, parse_go_duration_ms};
pub use render::{app as render_app, ip as render_ip};
pub use volumes::VolumeRequest;

/// Real Fly region codes the sim accepts.
pub const REGIONS: &[(&str, &str)] = &[
    ("ams", "Amsterdam, Netherlands"),
    ("arn", "Stockholm, Sweden"),
    ("bog", "Bogotá, Colombia"),
    ("bom", "Mumbai, India"),
    ("bos", "Boston, Massachusetts (US)"),
    ("cdg", "Paris, France"),
    ("den", "Denver, Colorado (US)"),
    ("dfw", "Dallas, Texas (US)"),
    ("ewr", "Secaucus, NJ (US)"),
    ("eze", "Ezeiza, Argentina"),
    ("fra", "Frankfurt, Germany"),
    ("gdl", "Guadalajara, Mexico"),
    ("gru", "Sao Paulo, Brazil"),
    ("hkg", "Hong Kong, Hong Kong"),
    ("iad", "Ashburn, Virginia (US)"),
    ("jnb", "Johannesburg, South Africa"),
    ("lax", "Los Angeles, California (US)"),
    ("lhr", "London, United Kingdom"),
    ("mad", "Madrid, Spain"),
    ("mia", "Miami, Florida (US)"),
    ("nrt", "Tokyo, Japan"),
    ("ord", "Chicago, Illinois (US)"),
    ("otp", "Bucharest, Romania"),
    ("qro", "Querétaro, Mexico"),
    ("scl", "Santiago, Chile"),
    ("sea", "Seattle, Washington (US)"),
    ("sin", "Singapore, Singapore"),
    ("sjc", "San Jose, California (US)"),
    ("syd", "Sydney, Australia"),
    ("waw", "Warsaw, Poland"),
    ("yul", "Montreal, Canada"),
    ("yyz", "Toronto, Canada"),
];

/// Region used when a create request names none.
pub const DEFAULT_REGION: &str = "ams";
/// Days a snapshot is kept unless the volume says otherwise (REFERENCE: 1..60, default 5).
pub const DEFAULT_SNAPSHOT_RETENTION: i64 = 5;

pub fn region_known(code: &str) -> bool {
    REGIONS.iter().any(|(c, _)| *c == code)
}

/// Background work the HTTP layer schedules at a model instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    pub at_ms: i64,
    pub kind: TimerKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerKind {
    /// Apply a machine's pending step if its sequence number still matches.
    Machine { app: String, id: String, seq: u64 },
    /// Apply a volume's pending state change.
    Volume { app: String, id: String, seq: u64 },
    /// Finish an app deletion.
    AppDeleted { app: String },
    /// code-server's idle timer.
    Idle {
        app: String,
        id: String,
        activity: u64,
    },
    /// Fly Proxy's autostop check of a started machine.
    Autostop { app: String, id: String },
}

/// One step a machine takes on its own.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub at_ms: i64,
    pub to: String,
    /// Steps that follow, each with its drawn duration (model ms).
    #[serde(default)]
    pub then: Vec<(String, i64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub source: String,
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lease {
    pub nonce: String,
    pub owner: String,
    pub description: String,
    /// Unix seconds (model time).
    pub expires_at: i64,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionRecord {
    pub version: String,
    /// `Null` for the current version (its config is the machine's): one copy, not two.
    pub config: Value,
    pub replaced: bool,
}

/// One transition drawn from the latency model, for assertions (`world()`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timing {
    pub from: String,
    pub to: String,
    pub model_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub id: String,
    pub name: String,
    pub region: String,
    pub state: String,
    pub config: Value,
    pub version: String,
    pub private_ip: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub events: VecDeque<Event>,
    pub versions: Vec<VersionRecord>,
    pub lease: Option<Lease>,
    pub cordoned: bool,
    pub pending: Option<Pending>,
    pub seq: u64,
    /// Env the "process" sees: config env plus the app's secrets at the last (re)launch.
    pub runtime_env: BTreeMap<String, String>,
    pub timings: Vec<Timing>,
    /// code-server: last non-healthz request (model ms), 0 if none since boot.
    pub last_heartbeat: i64,
    pub activity: u64,
    pub sessions: HashSet<String>,
    pub destroyed_at: Option<i64>,
    pub mounted_volumes: Vec<String>,
    /// Suspended with a memory snapshot a start can resume from.
    #[serde(default)]
    pub memory_snapshot: bool,
    /// The current start resumes from the snapshot (set at `starting`).
    #[serde(default)]
    pub resuming: bool,
    /// The last start was a resume: code-server kept running.
    #[serde(default)]
    pub resumed: bool,
    /// Last request through the proxy (model ms): autostop's measure of traffic.
    #[serde(default)]
    pub last_proxied: i64,
    /// When code-server answers after the last start (model ms).
    #[serde(default)]
    pub app_ready_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: String,
    pub created_at: i64,
    pub size: i64,
    pub digest: String,
    pub volume_size: i64,
    #[serde(with = "hex_files")]
    pub files: BTreeMap<String, Vec<u8>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Volume {
    pub id: String,
    pub name: String,
    pub region: String,
    pub zone: String,
    pub size_gb: i64,
    pub encrypted: bool,
    pub state: String,
    pub attached_machine_id: Option<String>,
    /// A destroyed holder keeps its claim until this model instant (REFERENCE S10).
    pub claim_until: i64,
    pub created_at: i64,
    pub snapshot_retention: i64,
    pub auto_backup_enabled: bool,
    pub seq: u64,
    pub pending: Option<(i64, String)>,
    pub snapshots: Vec<Snapshot>,
    #[serde(with = "hex_files")]
    pub files: BTreeMap<String, Vec<u8>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ip {
    pub id: String,
    pub address: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub region: String,
    pub created_at: i64,
    pub service_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Secret {
    pub value: String,
    pub digest: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogLine {
    pub seq: u64,
    pub timestamp: i64,
    /// The line is visible to the logs endpoint from this instant (log lag).
    pub visible_at: i64,
    pub message: String,
    pub level: String,
    pub instance: String,
    pub region: String,
    pub provider: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct App {
    pub id: String,
    pub name: String,
    pub org: String,
    pub network: String,
    pub internal_numeric_id: u64,
    pub created_at: i64,
    /// The create's `idempotency_key`: a create repeating it gets this app back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    pub deleting: bool,
    // Boxed: a map with one entry still reserves several slots.
    pub machines: HashMap<String, Box<Machine>>,
    pub volumes: HashMap<String, Box<Volume>>,
    /// Snapshots of destroyed volumes, by the volume's id: Fly keeps them for their
    /// retention, listable and restorable ("restore a deleted volume").
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub retired_snapshots: HashMap<String, Vec<Snapshot>>,
    pub ips: Vec<Ip>,
    pub shared_ip: Option<String>,
    pub secrets: BTreeMap<String, Secret>,
    pub secrets_version: u64,
    pub logs: VecDeque<LogLine>,
}

/// Most log lines kept per app.
const LOG_CAP: usize = 500;
/// Most events kept per machine (the events endpoint returns at most 50).
const EVENT_CAP: usize = 50;

#[derive(Debug, Serialize, Deserialize)]
pub struct World {
    pub org: String,
    pub apps: HashMap<String, App>,
    /// Names held by other organisations: create → 422 name_taken, GET → 403.
    pub taken_names: HashSet<String>,
    /// `region/image` pairs already prepared (first use pays `image_prepare`).
    pub prepared_images: HashSet<String>,
    pub next_numeric_id: u64,
    pub log_seq: u64,
    pub ip_counter: u64,
    pub latency_fly: bool,
    #[serde(skip)]
    pub outbox: Vec<Timer>,
    #[serde(skip, default = "default_rng")]
    rng: StdRng,
}

fn default_rng() -> StdRng {
    StdRng::seed_from_u64(0)
}

impl World {
    pub fn new(org: &str, seed: u64, latency_fly: bool, taken: &[String]) -> World {
        World {
            org: org.to_string(),
            apps: HashMap::new(),
            taken_names: taken.iter().cloned().collect(),
            prepared_images: HashSet::new(),
            next_numeric_id: 1000,
            log_seq: 0,
            ip_counter: 0,
            latency_fly,
            outbox: Vec::new(),
            rng: StdRng::seed_from_u64(seed ^ 0x6964_7321),
        }
    }

    /// Re-seeds the id generator after a reload, so new ids do not repeat old ones.
    pub fn reseed(&mut self, seed: u64) {
        let salt = self.next_numeric_id ^ self.log_seq.rotate_left(17) ^ self.ip_counter;
        self.rng = StdRng::seed_from_u64(seed ^ salt ^ 0x7265_6c6f_6164);
    }

    pub fn schedule(&mut self, at_ms: i64, kind: TimerKind) {
        self.outbox.push(Timer { at_ms, kind });
    }

    /// Timers for every in-flight transition (after a reload).
    pub fn resume_timers(&mut self) {
        let mut timers = Vec::new();
        for app in self.apps.values() {
            if app.deleting {
                timers.push(Timer {
                    at_ms: 0,
                    kind: TimerKind::AppDeleted {
                        app: app.name.clone(),
                    },
                });
            }
            for m in app.machines.values() {
                if let Some(p) = &m.pending {
                    timers.push(Timer {
                        at_ms: p.at_ms,
                        kind: TimerKind::Machine {
                            app: app.name.clone(),
                            id: m.id.clone(),
                            seq: m.seq,
                        },
                    });
                }
                if m.state == "started" {
                    timers.extend(machines::idle_timer(app, m));
                    timers.extend(suspend::autostop_timer(app, m));
                }
            }
            for v in app.volumes.values() {
                if let Some((at, _)) = &v.pending {
                    timers.push(Timer {
                        at_ms: *at,
                        kind: TimerKind::Volume {
                            app: app.name.clone(),
                            id: v.id.clone(),
                            seq: v.seq,
                        },
                    });
                }
            }
        }
        self.outbox.extend(timers);
    }

    pub fn take_outbox(&mut self) -> Vec<Timer> {
        std::mem::take(&mut self.outbox)
    }

    // ---- ids ----

    fn hex(&mut self, n: usize) -> String {
        const HEX: &[u8] = b"0123456789abcdef";
        (0..n)
            .map(|_| HEX[self.rng.random_range(0..16)] as char)
            .collect()
    }

    fn alnum(&mut self, n: usize) -> String {
        const CHARS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        (0..n)
            .map(|_| CHARS[self.rng.random_range(0..CHARS.len())] as char)
            .collect()
    }

    /// A 26-char ULID from a model timestamp.
    fn ulid(&mut self, ms: i64) -> String {
        const CROCKFORD: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
        let mut out = String::with_capacity(26);
        let t = ms.max(0) as u64;
        for i in (0..10).rev() {
            out.push(CROCKFORD[((t >> (i * 5)) & 31) as usize] as char);
        }
        for _ in 0..16 {
            out.push(CROCKFORD[self.rng.random_range(0..32)] as char);
        }
        out
    }

    fn machine_name(&mut self) -> String {
        const ADJ: &[&str] = &[
            "aged", "bold", "calm", "dawn", "eager", "fancy", "gentle", "hidden", "icy", "jolly",
            "late", "misty", "noisy", "old", "proud", "quiet", "red", "silent", "young",
        ];
        const NOUN: &[&str] = &[
            "thunder", "breeze", "cloud", "dew", "field", "forest", "glade", "hill", "lake",
            "meadow", "moon", "pond", "river", "sea", "snow", "star", "sun", "wave", "wind",
        ];
        let a = ADJ[self.rng.random_range(0..ADJ.len())];
        let n = NOUN[self.rng.random_range(0..NOUN.len())];
        let d: u32 = self.rng.random_range(1000..10000);
        format!("{a}-{n}-{d}")
    }

    // ---- logs ----

    #[allow(
        clippy::too_many_arguments,
        reason = "a log line's fields, all required"
    )]
    pub fn log(
        &mut self,
        clock: &Clock,
        app: &str,
        instance: &str,
        region: &str,
        provider: &str,
        message: String,
        at_ms: i64,
    ) {
        let lag = clock.draw(crate::clock::Knob::LogLag);
        self.log_seq += 1;
        let seq = self.log_seq;
        if let Some(app) = self.apps.get_mut(app) {
            app.logs.push_back(LogLine {
                seq,
                timestamp: at_ms,
                visible_at: at_ms + lag,
                message,
                level: "info".into(),
                instance: instance.to_string(),
                region: region.to_string(),
                provider: provider.to_string(),
            });
            while app.logs.len() > LOG_CAP {
                app.logs.pop_front();
            }
        }
    }

    // ---- lookups ----

    pub fn app(&self, name: &str) -> Result<&App, ApiError> {
        match self.apps.get(name) {
            Some(app) if app.org == self.org => Ok(app),
            _ if self.name_taken_elsewhere(name) => Err(ApiError::forbidden_app(name)),
            _ => Err(ApiError::app_not_found(name)),
        }
    }

    pub fn app_mut(&mut self, name: &str) -> Result<&mut App, ApiError> {
        if !self.apps.contains_key(name) {
            return Err(if self.name_taken_elsewhere(name) {
                ApiError::forbidden_app(name)
            } else {
                ApiError::app_not_found(name)
            });
        }
        self.apps
            .get_mut(name)
            .ok_or_else(|| ApiError::app_not_found(name))
    }

    pub fn name_taken_elsewhere(&self, name: &str) -> bool {
        name.starts_with("taken-") || self.taken_names.contains(name)
    }

    /// Live counts for [`crate::SimStats`].
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let mut machines = 0;
        let mut volumes = 0;
        let mut ips = 0;
        for app in self.apps.values() {
            machines += app
                .machines
                .values()
                .filter(|m| m.state != "destroyed")
                .count();
            volumes += app
                .volumes
                .values()
                .filter(|v| v.state != "destroyed")
                .count();
            ips += app.ips.len() + usize::from(app.shared_ip.is_some());
        }
        (self.apps.len(), machines, volumes, ips)
    }

    /// The whole world as JSON for assertions (`/__sim/world`).
    pub fn dump(&self) -> Value {
        render::dump(self)
    }
}

impl App {
    fn push_event(m: &mut Machine, event: Event) {
        m.events.push_back(event);
        while m.events.len() > EVENT_CAP {
            m.events.pop_front();
        }
    }
}

/// Stores file contents as hex strings in the state file.
mod hex_files {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(
        files: &BTreeMap<String, Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let encoded: BTreeMap<&String, String> = files
            .iter()
            .map(|(k, v)| (k, v.iter().map(|b| format!("{b:02x}")).collect()))
            .collect();
        encoded.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Vec<u8>>, D::Error> {
        let encoded = BTreeMap::<String, String>::deserialize(d)?;
        encoded
            .into_iter()
            .map(|(k, v)| decode(&v).map(|bytes| (k, bytes)))
            .collect::<Result<_, _>>()
            .map_err(serde::de::Error::custom)
    }

    fn decode(text: &str) -> Result<Vec<u8>, String> {
        if !text.len().is_multiple_of(2) {
            return Err("odd-length hex".into());
        }
        (0..text.len())
            .step_by(2)
            .map(|i| {
                text.get(i..i + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                    .ok_or_else(|| format!("bad hex at {i}"))
            })
            .collect()
    }
}
