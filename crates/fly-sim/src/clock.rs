//! Model time and latency draws.
//!
//! Model time runs `1 / time_scale` times faster than the wall clock, so a test with
//! `time_scale = 0.01` sees a 12 s image preparation take 120 ms of wall time while every
//! timestamp the sim reports still says 12 s.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::Latency;

/// A knob of the latency model (REFERENCE §13.1 `realistic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Knob {
    ApiRtt,
    AppCreate,
    AppDelete,
    IpAllocate,
    VolumeCreate,
    VolumeDelete,
    MachineCreate,
    ImagePrepareFirst,
    ImagePrepareCached,
    Boot,
    Stop,
    Suspend,
    Resume,
    /// code-server's own start after a cold boot, before it answers (a resume skips it).
    AppBoot,
    Replace,
    Destroy,
    Exec,
    LogLag,
    /// Extra time a destroyed machine keeps its volume claimed (uniform 0–5 s, not log-normal).
    ClaimHold,
    /// Time a fork or restored volume stays `hydrating`.
    Hydrate,
}

impl Knob {
    /// The p50 of the knob in model milliseconds under the `fly` profile.
    pub fn p50_ms(self) -> f64 {
        match self {
            Knob::ApiRtt => 60.0,
            Knob::AppCreate => 800.0,
            Knob::AppDelete => 2_000.0,
            Knob::IpAllocate => 700.0,
            Knob::VolumeCreate => 1_500.0,
            Knob::VolumeDelete => 300.0,
            Knob::MachineCreate => 500.0,
            Knob::ImagePrepareFirst => 12_000.0,
            Knob::ImagePrepareCached => 1_500.0,
            Knob::Boot => 400.0,
            Knob::Stop => 1_000.0,
            Knob::Suspend => 1_500.0,
            Knob::Resume => 300.0,
            Knob::AppBoot => 1_000.0,
            Knob::Replace => 3_000.0,
            Knob::Destroy => 2_000.0,
            Knob::Exec => 1_000.0,
            Knob::LogLag => 1_000.0,
            Knob::ClaimHold => 2_500.0,
            Knob::Hydrate => 30_000.0,
        }
    }
}

/// sigma of ln(X) such that p95 = 3 × p50: ln 3 / 1.6449.
const SIGMA: f64 = 0.667_9;

/// One latency draw, kept when [`crate::SimConfig::record_draws`] is on, so a benchmark
/// can compute the bound of a run from the durations the sim actually drew.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Draw {
    pub knob: Knob,
    /// The drawn duration, model milliseconds.
    pub model_ms: i64,
    /// Model time of the draw (Unix ms).
    pub at_ms: i64,
    /// What it was drawn for: `METHOD /path` for a round trip, the app name for a
    /// request-side delay, the machine id for a transition; empty when unattributed.
    pub label: String,
}

/// Model clock plus the seeded latency generator.
#[derive(Debug)]
pub struct Clock {
    latency: Latency,
    time_scale: f64,
    wall_start: Instant,
    model_start_ms: i64,
    rng: Mutex<StdRng>,
    draws: Option<Mutex<Vec<Draw>>>,
    /// Every `fly` draw is its knob's p50 (benchmarks comparing two clients).
    p50_only: bool,
}

impl Clock {
    pub fn new(latency: Latency, time_scale: f64, seed: u64, model_start_ms: i64) -> Self {
        Clock {
            latency,
            time_scale,
            wall_start: Instant::now(),
            model_start_ms,
            // A separate stream from the fault RNG, so latency draws never shift fault draws.
            rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0x6c61_7465_6e63_7921)),
            draws: None,
            p50_only: false,
        }
    }

    /// Makes every draw its knob's p50: two runs then see the same latencies whatever
    /// order they make their requests in.
    pub fn p50_only(mut self) -> Self {
        self.p50_only = true;
        self
    }

    /// Keeps every draw from now on (see [`Draw`]).
    pub fn record_draws(mut self) -> Self {
        self.draws = Some(Mutex::new(Vec::new()));
        self
    }

    /// The draws kept so far (empty unless recording).
    pub fn draws(&self) -> Vec<Draw> {
        match &self.draws {
            Some(d) => d.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            None => Vec::new(),
        }
    }

    /// Now, in model milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        let wall = self.wall_start.elapsed().as_secs_f64() * 1000.0;
        let model = if self.time_scale > 0.0 {
            wall / self.time_scale
        } else {
            wall
        };
        self.model_start_ms + model as i64
    }

    /// Wall-clock time corresponding to a model duration.
    pub fn wall(&self, model_ms: i64) -> Duration {
        if model_ms <= 0 {
            return Duration::ZERO;
        }
        Duration::try_from_secs_f64((model_ms as f64 / 1000.0) * self.time_scale.max(0.0))
            .unwrap_or(Duration::MAX)
    }

    /// Sleeps for a model duration.
    pub async fn sleep_model(&self, model_ms: i64) {
        let wall = self.wall(model_ms);
        if !wall.is_zero() {
            tokio::time::sleep(wall).await;
        }
    }

    /// Sleeps until a model instant.
    pub async fn sleep_until_model(&self, at_ms: i64) {
        let remaining = at_ms - self.now_ms();
        self.sleep_model(remaining).await;
    }

    /// Draws a duration for a knob in model ms: 0 under `zero`, log-normal under `fly`.
    pub fn draw(&self, knob: Knob) -> i64 {
        self.draw_for(knob, "")
    }

    /// [`Clock::draw`], attributed to `label` in the draw log.
    pub fn draw_for(&self, knob: Knob, label: &str) -> i64 {
        let ms = self.draw_inner(knob);
        if let Some(draws) = &self.draws {
            draws.lock().unwrap_or_else(|e| e.into_inner()).push(Draw {
                knob,
                model_ms: ms,
                at_ms: self.now_ms(),
                label: label.to_string(),
            });
        }
        ms
    }

    fn draw_inner(&self, knob: Knob) -> i64 {
        if self.latency == Latency::Zero {
            return 0;
        }
        if self.p50_only {
            return knob.p50_ms().round() as i64;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        if knob == Knob::ClaimHold {
            return rng.random_range(0..=5_000);
        }
        // Box–Muller from two uniforms in (0, 1].
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        let value = knob.p50_ms() * (SIGMA * z).exp();
        value.round().max(1.0) as i64
    }
}

/// Wall clock now in Unix milliseconds.
pub fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC3339 text of a model timestamp (UTC, second precision like Fly's `created_at`).
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => t
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lognormal_draws_have_the_documented_median_and_tail() {
        let clock = Clock::new(Latency::Fly, 1.0, 7, 0);
        let mut draws: Vec<i64> = (0..4000).map(|_| clock.draw(Knob::Boot)).collect();
        draws.sort_unstable();
        let p50 = draws[2000] as f64;
        let p95 = draws[3800] as f64;
        assert!((320.0..480.0).contains(&p50), "p50 {p50}");
        let ratio = p95 / p50;
        assert!((2.4..3.8).contains(&ratio), "p95/p50 {ratio}");
    }

    #[test]
    fn zero_profile_draws_nothing_and_scale_shrinks_wall_time() {
        let clock = Clock::new(Latency::Zero, 0.01, 0, 0);
        assert_eq!(clock.draw(Knob::ImagePrepareFirst), 0);
        assert_eq!(clock.wall(12_000), Duration::from_millis(120));
    }

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
