//! `GET /metrics` in the Prometheus text exposition format (version 0.0.4). A small
//! hand-written registry: a handful of series does not justify a dependency.
//!
//! Labels are bounded: workspace states, operation kinds and outcomes, and Fly
//! endpoints as route templates; never workspace names or ids.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fly_api::CallCounts;

use swarm_core::model::{WorkspaceStatus, WorkspaceSummary};

/// Upper bounds (seconds) of the operation-duration buckets: a start takes seconds,
/// a create with a first image pull or a move minutes.
const DURATION_BUCKETS: [f64; 11] = [
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Every state, so a state with no workspace shows as 0 rather than vanishing.
const STATES: [WorkspaceStatus; 9] = [
    WorkspaceStatus::Creating,
    WorkspaceStatus::Running,
    WorkspaceStatus::Starting,
    WorkspaceStatus::Stopping,
    WorkspaceStatus::Stopped,
    WorkspaceStatus::Suspended,
    WorkspaceStatus::Deleting,
    WorkspaceStatus::Deleted,
    WorkspaceStatus::Failed,
];

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Per bucket, not cumulative; the last slot counts what is above every bound.
    buckets: [u64; DURATION_BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        let slot = DURATION_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(DURATION_BUCKETS.len());
        self.buckets[slot] += 1;
        self.sum += seconds;
        self.count += 1;
    }
}

/// What the controller itself counts.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Operation durations by (kind, outcome).
    durations: Mutex<BTreeMap<(&'static str, &'static str), Histogram>>,
    idle_stops: AtomicU64,
}

impl Metrics {
    /// One finished operation; `outcome` is `succeeded` or `failed`.
    pub fn observe_operation(&self, kind: &'static str, outcome: &'static str, took: Duration) {
        self.durations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((kind, outcome))
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// A workspace stopped by the idle policy.
    pub fn count_idle_stop(&self) {
        self.idle_stops.fetch_add(1, Ordering::Relaxed);
    }

    pub fn idle_stops(&self) -> u64 {
        self.idle_stops.load(Ordering::Relaxed)
    }
}

/// Everything `/metrics` shows, gathered by the route.
pub(crate) struct Scrape<'a> {
    pub workspaces: &'a [WorkspaceSummary],
    pub calls: Option<CallCounts>,
    pub metrics: &'a Metrics,
    pub operations_running: usize,
    pub reconcile_duration_ms: Option<u64>,
}

impl Scrape<'_> {
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        header(
            &mut out,
            "swarm_workspaces",
            "gauge",
            "Workspaces by state, from the store.",
        );
        for state in STATES {
            let count = self.workspaces.iter().filter(|w| w.status == state).count();
            sample(
                &mut out,
                "swarm_workspaces",
                &[("state", state.as_str())],
                count as f64,
            );
        }
        let calls = self.calls.clone().unwrap_or_default();
        header(
            &mut out,
            "swarm_fly_api_calls_total",
            "counter",
            "Fly API attempts by endpoint (method and route template) and HTTP status.",
        );
        for ((endpoint, status), count) in &calls.calls {
            sample(
                &mut out,
                "swarm_fly_api_calls_total",
                &[("endpoint", endpoint.as_str()), ("status", status.as_str())],
                *count as f64,
            );
        }
        header(
            &mut out,
            "swarm_fly_api_retries_total",
            "counter",
            "Fly API calls repeated after a transient failure, by endpoint.",
        );
        for (endpoint, count) in &calls.retries {
            sample(
                &mut out,
                "swarm_fly_api_retries_total",
                &[("endpoint", endpoint.as_str())],
                *count as f64,
            );
        }
        header(
            &mut out,
            "swarm_fly_api_rate_limited_total",
            "counter",
            "Fly API answers 429 Too Many Requests, by endpoint.",
        );
        for (endpoint, count) in &calls.rate_limited {
            sample(
                &mut out,
                "swarm_fly_api_rate_limited_total",
                &[("endpoint", endpoint.as_str())],
                *count as f64,
            );
        }
        header(
            &mut out,
            "swarm_operation_duration_seconds",
            "histogram",
            "Durations of the operations the API ran, by kind and outcome.",
        );
        let durations = self
            .metrics
            .durations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (&(kind, outcome), histogram) in &durations {
            let mut cumulative = 0;
            for (slot, count) in histogram.buckets.iter().enumerate() {
                cumulative += count;
                let le = DURATION_BUCKETS
                    .get(slot)
                    .map_or_else(|| "+Inf".to_owned(), ToString::to_string);
                sample(
                    &mut out,
                    "swarm_operation_duration_seconds_bucket",
                    &[("kind", kind), ("outcome", outcome), ("le", &le)],
                    cumulative as f64,
                );
            }
            let labels = [("kind", kind), ("outcome", outcome)];
            sample(
                &mut out,
                "swarm_operation_duration_seconds_sum",
                &labels,
                histogram.sum,
            );
            sample(
                &mut out,
                "swarm_operation_duration_seconds_count",
                &labels,
                histogram.count as f64,
            );
        }
        header(
            &mut out,
            "swarm_operations_running",
            "gauge",
            "Operations under way in this process.",
        );
        sample(
            &mut out,
            "swarm_operations_running",
            &[],
            self.operations_running as f64,
        );
        header(
            &mut out,
            "swarm_idle_stops_total",
            "counter",
            "Workspaces stopped by the idle policy.",
        );
        sample(
            &mut out,
            "swarm_idle_stops_total",
            &[],
            self.metrics.idle_stops() as f64,
        );
        if let Some(ms) = self.reconcile_duration_ms {
            header(
                &mut out,
                "swarm_reconcile_last_duration_seconds",
                "gauge",
                "Duration of the last reconcile pass.",
            );
            sample(
                &mut out,
                "swarm_reconcile_last_duration_seconds",
                &[],
                ms as f64 / 1000.0,
            );
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{key}=\"{}\"", escape(value));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Label values escape backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let metrics = Metrics::default();
        metrics.observe_operation("stop", "succeeded", Duration::from_millis(300));
        metrics.observe_operation("stop", "succeeded", Duration::from_secs(4000));
        let text = Scrape {
            workspaces: &[],
            calls: None,
            metrics: &metrics,
            operations_running: 0,
            reconcile_duration_ms: None,
        }
        .render();
        assert!(text.contains(
            "swarm_operation_duration_seconds_bucket{kind=\"stop\",outcome=\"succeeded\",le=\"0.1\"} 0\n"
        ));
        assert!(text.contains(
            "swarm_operation_duration_seconds_bucket{kind=\"stop\",outcome=\"succeeded\",le=\"0.5\"} 1\n"
        ));
        assert!(text.contains(
            "swarm_operation_duration_seconds_bucket{kind=\"stop\",outcome=\"succeeded\",le=\"+Inf\"} 2\n"
        ));
        assert!(text.contains(
            "swarm_operation_duration_seconds_count{kind=\"stop\",outcome=\"succeeded\"} 2\n"
        ));
        assert!(text.contains("swarm_workspaces{state=\"running\"} 0\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
