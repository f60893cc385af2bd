//! What a workspace is doing: `health` (machine state and code-server's `/healthz`)
//! and `logs`.

use futures::StreamExt;
use futures::stream::BoxStream;
use time::OffsetDateTime;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::provider::Provider;
use swarm_core::model::{Health, HealthStatus, LogLine, MachineState};
use swarm_store::Store;

use crate::swarm::Swarm;

impl<S: Store, P: Provider> Swarm<S, P> {
    /// Machine state plus an HTTP probe of code-server's `/healthz`. A stopped
    /// workspace is not probed (the request would wake it through autostart).
    pub async fn health(&self, name: &str) -> Result<Health> {
        let record = self.show(name).await?;
        let (Some(app), Some(machine_id)) = (&record.app, &record.machine_id) else {
            return Ok(Health {
                name: name.to_owned(),
                status: HealthStatus::Unhealthy,
                machine_state: None,
                uptime_secs: None,
                idle_since: None,
                probe: None,
                summary: format!("workspace is {} and has no machine", record.status),
            });
        };
        let machine = self
            .retry("get machine", || self.provider.get_machine(app, machine_id))
            .await
            .map_err(|error| self.provider_error(error, &record))?;
        let Some(machine) = machine else {
            return Ok(Health {
                name: name.to_owned(),
                status: HealthStatus::Unhealthy,
                machine_state: None,
                uptime_secs: None,
                idle_since: None,
                probe: None,
                summary: format!("machine {machine_id} is missing on Fly; run `swarm reconcile`"),
            });
        };
        let now = OffsetDateTime::now_utc();
        let started_at = machine.updated_at.as_deref().and_then(|at| {
            OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()
        });
        let uptime_secs = (machine.state == MachineState::Started)
            .then(|| started_at.map(|at| u64::try_from((now - at).whole_seconds()).unwrap_or(0)))
            .flatten();
        let probe = if machine.state == MachineState::Started {
            Some(
                self.provider
                    .probe(app)
                    .instrument(tracing::debug_span!("swarm_step", step = "health probe"))
                    .await,
            )
        } else {
            None
        };
        let answered = probe
            .as_ref()
            .is_some_and(|probe| probe.http_status == Some(200));
        let status = match machine.state {
            MachineState::Started if answered => HealthStatus::Healthy,
            // Booting code-server: give it two minutes before calling it unhealthy.
            MachineState::Started if uptime_secs.is_none_or(|secs| secs < 120) => {
                HealthStatus::Recovering
            }
            MachineState::Created
            | MachineState::Starting
            | MachineState::Restarting
            | MachineState::Replacing
            | MachineState::Updating => HealthStatus::Recovering,
            _ => HealthStatus::Unhealthy,
        };
        let idle_since = probe.as_ref().and_then(|probe| {
            (probe.status.as_deref() == Some("expired")).then(|| match probe.last_heartbeat_ms {
                Some(ms) if ms > 0 => {
                    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
                }
                _ => started_at,
            })?
        });
        let probe_text = match &probe {
            None => "not probed (machine not started)".to_owned(),
            Some(probe) => match (&probe.http_status, &probe.status, &probe.error) {
                // code-server says "expired" for "up, but nobody used it lately".
                (Some(200), Some(status), _) if status == "expired" => {
                    "code-server up, idle".to_owned()
                }
                (Some(200), Some(status), _) => format!("code-server {status}"),
                (Some(code), _, _) => format!("code-server answered HTTP {code}"),
                (None, _, Some(error)) => format!("code-server unreachable: {error}"),
                _ => "code-server unreachable".to_owned(),
            },
        };
        let summary = match uptime_secs {
            Some(secs) => format!("machine {} for {secs} s; {probe_text}", machine.state),
            None => format!("machine {}; {probe_text}", machine.state),
        };
        Ok(Health {
            name: name.to_owned(),
            status,
            machine_state: Some(machine.state),
            uptime_secs,
            idle_since,
            probe,
            summary,
        })
    }

    /// The last `limit` log lines.
    pub async fn logs(&self, name: &str, limit: usize) -> Result<Vec<LogLine>> {
        let record = self.show(name).await?;
        let app = record.app_name().to_owned();
        self.retry("logs", || self.provider.logs(&app, limit))
            .await
            .map_err(|error| self.provider_error(error, &record))
    }

    /// New log lines as they arrive, until dropped.
    pub async fn follow_logs(&self, name: &str) -> Result<BoxStream<'static, Result<LogLine>>> {
        let record = self.show(name).await?;
        let app = record.app_name().to_owned();
        let regions = self.config.regions.clone();
        let region = record.spec.region.clone();
        Ok(self
            .provider
            .follow_logs(&app)
            .map(move |line| {
                line.map_err(|error| Error::from_provider(error, &app, &region, &regions))
            })
            .boxed())
    }
}
