//! Where a create's time goes: a `tracing` layer that times every span of interest
//! (one per Fly call: fly-api's `fly_api` span, named by its action; one per local
//! step: swarm's `swarm_step` spans, named by their `step` field: argon2, store writes,
//! the health probe) from creation to close, and sums them by name.
//!
//! Spans overlap (the IPs run beside the volume → machine chain, the hash beside the
//! volume), so the sums add up to more than the wall time; the per-name sums say which
//! step to shorten next, the wall time what the user waited.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Total time and count of one kind of span.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sum {
    pub total: Duration,
    pub count: usize,
}

/// The sums recorded since the last [`Spans::take`].
#[derive(Debug, Clone, Default)]
pub struct Spans {
    sums: Arc<Mutex<BTreeMap<String, Sum>>>,
}

impl Spans {
    /// Installs the recording layer as the global subscriber (once per process).
    pub fn install() -> Self {
        use tracing_subscriber::layer::SubscriberExt as _;
        let spans = Self::default();
        let subscriber = tracing_subscriber::registry().with(Recorder {
            sums: Arc::clone(&spans.sums),
        });
        // A second install (never done) would keep the first: harmless.
        let _ = tracing::subscriber::set_global_default(subscriber);
        spans
    }

    /// The sums so far, and a fresh start.
    pub fn take(&self) -> BTreeMap<String, Sum> {
        std::mem::take(&mut *self.sums.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

struct Recorder {
    sums: Arc<Mutex<BTreeMap<String, Sum>>>,
}

/// What the layer keeps in a span's extensions.
struct Timing {
    label: String,
    started: Instant,
}

/// Picks the naming field of a span: `action` (fly-api) or `step` (swarm).
#[derive(Default)]
struct LabelVisitor {
    label: Option<String>,
}

impl Visit for LabelVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if matches!(field.name(), "action" | "step") {
            self.label = Some(value.to_owned());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if matches!(field.name(), "action" | "step") {
            self.label = Some(format!("{value:?}").trim_matches('"').to_owned());
        }
    }
}

impl<S> Layer<S> for Recorder
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let kind = match attrs.metadata().name() {
            "fly_api" => "fly",
            "swarm_step" => "local",
            _ => return,
        };
        let mut visitor = LabelVisitor::default();
        attrs.record(&mut visitor);
        let label = format!(
            "{kind}: {}",
            visitor.label.unwrap_or_else(|| "?".to_owned())
        );
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Timing {
                label,
                started: Instant::now(),
            });
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let extensions = span.extensions();
        let Some(timing) = extensions.get::<Timing>() else {
            return;
        };
        let mut sums = self.sums.lock().unwrap_or_else(|e| e.into_inner());
        let sum = sums.entry(timing.label.clone()).or_default();
        sum.total += timing.started.elapsed();
        sum.count += 1;
    }
}
