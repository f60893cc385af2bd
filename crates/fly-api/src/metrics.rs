//! Counters of the calls a client makes, for a service's metrics. The pipeline
//! updates them on every attempt; a reader takes a [`CallCounts`] snapshot.
//!
//! Endpoints are named by method and route template (`POST /v1/apps/{app}/machines`),
//! never by raw ids, so the number of distinct labels stays bounded.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Shared by a client and whoever reports on it.
#[derive(Debug, Default)]
pub struct CallCounters {
    counts: Mutex<CallCounts>,
}

/// A snapshot of [`CallCounters`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallCounts {
    /// Attempts by (endpoint, outcome); the outcome is the HTTP status (`"200"`), or
    /// `"timeout"` / `"transport_error"` when no answer came.
    pub calls: BTreeMap<(String, String), u64>,
    /// Retries by endpoint (attempts after the first).
    pub retries: BTreeMap<String, u64>,
    /// `429 Too Many Requests` answers by endpoint.
    pub rate_limited: BTreeMap<String, u64>,
}

impl CallCounters {
    pub fn snapshot(&self) -> CallCounts {
        self.lock().clone()
    }

    pub(crate) fn attempt(&self, endpoint: &str, outcome: &str) {
        let mut counts = self.lock();
        *counts
            .calls
            .entry((endpoint.to_owned(), outcome.to_owned()))
            .or_default() += 1;
        if outcome == "429" {
            *counts.rate_limited.entry(endpoint.to_owned()).or_default() += 1;
        }
    }

    pub(crate) fn retry(&self, endpoint: &str) {
        *self.lock().retries.entry(endpoint.to_owned()).or_default() += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CallCounts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The route template of a path: the segment after a collection name is an id.
/// `["v1", "apps", "ws-1", "machines", "e784", "stop"]` → `/v1/apps/{app}/machines/{machine}/stop`.
pub(crate) fn route_template(segments: &[String]) -> String {
    let mut template = String::new();
    let mut previous = "";
    for segment in segments {
        template.push('/');
        let placeholder = match previous {
            "apps" => Some("{app}"),
            "machines" => Some("{machine}"),
            "volumes" => Some("{volume}"),
            "secrets" => Some("{secret}"),
            "snapshots" => Some("{snapshot}"),
            _ => None,
        };
        match placeholder {
            Some(placeholder) => {
                template.push_str(placeholder);
                previous = "";
            }
            None => {
                template.push_str(segment);
                previous = segment;
            }
        }
    }
    template
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(path: &str) -> String {
        let segments: Vec<String> = path.split('/').map(str::to_owned).collect();
        route_template(&segments)
    }

    #[test]
    fn ids_become_placeholders_and_literals_stay() {
        assert_eq!(template("v1/apps"), "/v1/apps");
        assert_eq!(template("v1/apps/ws-1/machines"), "/v1/apps/{app}/machines");
        assert_eq!(
            template("v1/apps/ws-1/machines/e784/stop"),
            "/v1/apps/{app}/machines/{machine}/stop"
        );
        assert_eq!(
            template("v1/apps/ws-1/volumes/vol_1/snapshots"),
            "/v1/apps/{app}/volumes/{volume}/snapshots"
        );
        assert_eq!(template("api/v1/apps/ws-1/logs"), "/api/v1/apps/{app}/logs");
        assert_eq!(template("graphql"), "/graphql");
    }

    #[test]
    fn counts_attempts_retries_and_429s() {
        let counters = CallCounters::default();
        counters.attempt("GET /v1/apps/{app}", "429");
        counters.retry("GET /v1/apps/{app}");
        counters.attempt("GET /v1/apps/{app}", "200");
        let counts = counters.snapshot();
        assert_eq!(
            counts
                .calls
                .get(&("GET /v1/apps/{app}".into(), "429".into())),
            Some(&1)
        );
        assert_eq!(counts.retries.get("GET /v1/apps/{app}"), Some(&1));
        assert_eq!(counts.rate_limited.get("GET /v1/apps/{app}"), Some(&1));
    }
}
