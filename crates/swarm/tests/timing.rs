//! Acceptance 6: independent steps run concurrently. Against the sim's realistic
//! latency model (`Latency::Fly`, sped up by `time_scale`), create takes the critical
//! path (app → volume → machine → started), not the sum of its calls. A timing wrapper
//! around the Fly provider records when each call ran, and can hold the IP allocations
//! back to show the machine never waits for them.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{client, test_config};
use fly_sim::{Latency, SimConfig};
use futures::stream::BoxStream;
use swarm::model::{IpKind, IpRecord, LogLine, MachineState, ProbeResult};
use swarm::provider::{
    AppInfo, CloneRequest, MachineInfo, MachineRequest, ProviderResult, SnapshotInfo, VolumeInfo,
    VolumeRequest, WarmupRequest,
};
use swarm::{
    CreateOptions, CreateStep, FlyProvider, Provider, ReconcileAction, SqliteStore, Swarm,
    WorkspaceStatus,
};

/// Wall time = model time × this.
const TIME_SCALE: f64 = 0.1;

type Calls = Arc<Mutex<Vec<(&'static str, Instant, Instant)>>>;

struct Timed {
    inner: FlyProvider,
    calls: Calls,
    /// `allocate_ip` waits while this reads false.
    ips_open: tokio::sync::watch::Receiver<bool>,
}

impl Timed {
    fn new(inner: FlyProvider, calls: Calls) -> (Self, tokio::sync::watch::Sender<bool>) {
        let (open, ips_open) = tokio::sync::watch::channel(true);
        let timed = Timed {
            inner,
            calls,
            ips_open,
        };
        (timed, open)
    }
}

impl Timed {
    async fn time<T>(&self, label: &'static str, call: impl std::future::Future<Output = T>) -> T {
        let start = Instant::now();
        let result = call.await;
        self.calls
            .lock()
            .expect("calls")
            .push((label, start, Instant::now()));
        result
    }
}

impl Provider for Timed {
    fn endpoint(&self) -> String {
        self.inner.endpoint()
    }
    async fn get_app(&self, name: &str) -> ProviderResult<Option<AppInfo>> {
        self.time("get_app", self.inner.get_app(name)).await
    }
    async fn create_app(&self, name: &str, org: &str, key: &str) -> ProviderResult<AppInfo> {
        self.time("create_app", self.inner.create_app(name, org, key))
            .await
    }
    async fn delete_app(&self, name: &str) -> ProviderResult<()> {
        self.time("delete_app", self.inner.delete_app(name)).await
    }
    async fn list_apps(&self, org: &str) -> ProviderResult<Vec<AppInfo>> {
        self.time("list_apps", self.inner.list_apps(org)).await
    }
    async fn list_volumes(&self, app: &str) -> ProviderResult<Vec<VolumeInfo>> {
        self.time("list_volumes", self.inner.list_volumes(app))
            .await
    }
    async fn create_volume(
        &self,
        app: &str,
        request: &VolumeRequest,
    ) -> ProviderResult<VolumeInfo> {
        self.time("create_volume", self.inner.create_volume(app, request))
            .await
    }
    async fn delete_volume(&self, app: &str, id: &str) -> ProviderResult<()> {
        self.time("delete_volume", self.inner.delete_volume(app, id))
            .await
    }
    async fn list_ips(&self, app: &str) -> ProviderResult<Vec<IpRecord>> {
        self.time("list_ips", self.inner.list_ips(app)).await
    }
    async fn allocate_ip(&self, app: &str, kind: IpKind, region: &str) -> ProviderResult<IpRecord> {
        let mut open = self.ips_open.clone();
        open.wait_for(|open| *open).await.expect("gate kept");
        self.time("allocate_ip", self.inner.allocate_ip(app, kind, region))
            .await
    }
    async fn release_ip(&self, app: &str, ip: &IpRecord) -> ProviderResult<()> {
        self.time("release_ip", self.inner.release_ip(app, ip))
            .await
    }
    async fn list_machines(
        &self,
        app: &str,
        tag: Option<(&str, &str)>,
    ) -> ProviderResult<Vec<MachineInfo>> {
        self.time("list_machines", self.inner.list_machines(app, tag))
            .await
    }
    async fn get_machine(&self, app: &str, id: &str) -> ProviderResult<Option<MachineInfo>> {
        self.time("get_machine", self.inner.get_machine(app, id))
            .await
    }
    async fn create_machine(
        &self,
        app: &str,
        request: &MachineRequest,
    ) -> ProviderResult<MachineInfo> {
        self.time("create_machine", self.inner.create_machine(app, request))
            .await
    }
    async fn create_warmup_machine(
        &self,
        app: &str,
        request: &WarmupRequest,
    ) -> ProviderResult<MachineInfo> {
        self.time(
            "create_warmup_machine",
            self.inner.create_warmup_machine(app, request),
        )
        .await
    }
    async fn adopt_machine(
        &self,
        app: &str,
        id: &str,
        request: &MachineRequest,
    ) -> ProviderResult<MachineInfo> {
        self.time("adopt_machine", self.inner.adopt_machine(app, id, request))
            .await
    }
    async fn start_machine(&self, app: &str, id: &str) -> ProviderResult<()> {
        self.time("start_machine", self.inner.start_machine(app, id))
            .await
    }
    async fn cordon_machine(&self, app: &str, id: &str, cordoned: bool) -> ProviderResult<()> {
        self.time(
            "cordon_machine",
            self.inner.cordon_machine(app, id, cordoned),
        )
        .await
    }
    async fn stop_machine(&self, app: &str, id: &str, force: bool) -> ProviderResult<()> {
        self.time("stop_machine", self.inner.stop_machine(app, id, force))
            .await
    }
    async fn suspend_machine(&self, app: &str, id: &str) -> ProviderResult<()> {
        self.time("suspend_machine", self.inner.suspend_machine(app, id))
            .await
    }
    async fn update_machine(
        &self,
        app: &str,
        id: &str,
        change: &swarm::provider::MachineChange,
    ) -> ProviderResult<MachineInfo> {
        self.time("update_machine", self.inner.update_machine(app, id, change))
            .await
    }
    async fn extend_volume(&self, app: &str, id: &str, size_gb: u32) -> ProviderResult<bool> {
        self.time("extend_volume", self.inner.extend_volume(app, id, size_gb))
            .await
    }
    async fn create_snapshot(
        &self,
        app: &str,
        volume: &str,
    ) -> ProviderResult<Option<SnapshotInfo>> {
        self.time("create_snapshot", self.inner.create_snapshot(app, volume))
            .await
    }
    async fn list_snapshots(&self, app: &str, volume: &str) -> ProviderResult<Vec<SnapshotInfo>> {
        self.time("list_snapshots", self.inner.list_snapshots(app, volume))
            .await
    }
    async fn clone_machine(
        &self,
        app: &str,
        source: &str,
        request: &CloneRequest,
    ) -> ProviderResult<MachineInfo> {
        self.time(
            "clone_machine",
            self.inner.clone_machine(app, source, request),
        )
        .await
    }
    async fn restart_machine(&self, app: &str, id: &str) -> ProviderResult<()> {
        self.time("restart_machine", self.inner.restart_machine(app, id))
            .await
    }
    async fn destroy_machine(&self, app: &str, id: &str) -> ProviderResult<()> {
        self.time("destroy_machine", self.inner.destroy_machine(app, id))
            .await
    }
    async fn wait_machine(
        &self,
        app: &str,
        id: &str,
        state: MachineState,
        timeout: Duration,
    ) -> ProviderResult<()> {
        self.time(
            "wait_machine",
            self.inner.wait_machine(app, id, state, timeout),
        )
        .await
    }
    async fn probe(&self, app: &str) -> ProbeResult {
        self.inner.probe(app).await
    }
    async fn logs(&self, app: &str, limit: usize) -> ProviderResult<Vec<LogLine>> {
        self.inner.logs(app, limit).await
    }
    fn follow_logs(&self, app: &str) -> BoxStream<'static, ProviderResult<LogLine>> {
        self.inner.follow_logs(app)
    }
    async fn exec_machine(
        &self,
        app: &str,
        id: &str,
        command: &swarm::exec::ExecCommand<'_>,
    ) -> ProviderResult<swarm::ExecOutput> {
        self.inner.exec_machine(app, id, command).await
    }
    async fn list_secrets(&self, app: &str) -> ProviderResult<Vec<swarm::SecretInfo>> {
        self.inner.list_secrets(app).await
    }
    async fn set_secret(
        &self,
        app: &str,
        key: &str,
        value: &secrecy::SecretString,
    ) -> ProviderResult<u64> {
        self.inner.set_secret(app, key, value).await
    }
    async fn unset_secret(&self, app: &str, key: &str) -> ProviderResult<Option<u64>> {
        self.inner.unset_secret(app, key).await
    }
}

fn model_ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0 / TIME_SCALE
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_takes_the_critical_path_not_the_sum_of_its_calls() {
    let sim = common::start_sim_with(SimConfig {
        latency: Latency::Fly,
        time_scale: TIME_SCALE,
        seed: 7,
        ..SimConfig::default()
    })
    .await;
    let url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = test_config(&url);
    let store = SqliteStore::open(dir.path().join("swarm.db"), &config.fly_endpoint)
        .await
        .expect("store");
    let calls: Calls = Arc::default();
    let (provider, _open) = Timed::new(FlyProvider::new(client(&url), &config), Arc::clone(&calls));
    let swarm = Swarm::new(store, provider, config);

    let started = Instant::now();
    swarm
        .create(&CreateOptions {
            name: "timed".to_owned(),
            image: Some("codercom/code-server:4.106.3".to_owned()),
            ..CreateOptions::default()
        })
        .await
        .expect("create");
    let total = started.elapsed();

    let calls = calls.lock().expect("calls").clone();
    let span = |labels: &[&str]| -> (Instant, Instant) {
        let matching: Vec<_> = calls
            .iter()
            .filter(|(label, ..)| labels.contains(label))
            .collect();
        assert!(!matching.is_empty(), "no {labels:?} calls in {calls:?}");
        let start = matching
            .iter()
            .map(|(_, start, _)| *start)
            .min()
            .expect("start");
        let end = matching.iter().map(|(_, _, end)| *end).max().expect("end");
        (start, end)
    };
    let busy = |labels: &[&str]| -> Duration {
        calls
            .iter()
            .filter(|(label, ..)| labels.contains(label))
            .map(|(_, start, end)| *end - *start)
            .sum()
    };
    let app = busy(&["get_app", "create_app"]);
    let volume_branch = busy(&["list_volumes", "create_volume"]);
    let ip_branch = busy(&["list_ips", "allocate_ip"]);
    let machine = busy(&[
        "list_machines",
        "create_machine",
        "wait_machine",
        "get_machine",
    ]);
    let critical_path = app + volume_branch.max(ip_branch) + machine;
    let sum_of_calls: Duration = calls.iter().map(|(_, start, end)| *end - *start).sum();
    // Time during which at least one call was in flight (local work excluded).
    let mut intervals: Vec<(Instant, Instant)> =
        calls.iter().map(|(_, start, end)| (*start, *end)).collect();
    intervals.sort();
    let mut union = Duration::ZERO;
    let mut current: Option<(Instant, Instant)> = None;
    for (start, end) in intervals {
        current = match current {
            Some((cs, ce)) if start <= ce => Some((cs, ce.max(end))),
            Some((cs, ce)) => {
                union += ce - cs;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    if let Some((cs, ce)) = current {
        union += ce - cs;
    }

    // Volume and IP calls overlapped in time.
    let (volume_start, volume_end) = span(&["list_volumes", "create_volume"]);
    let (ips_start, ips_end) = span(&["list_ips", "allocate_ip"]);
    assert!(
        volume_start < ips_end && ips_start < volume_end,
        "volume and IP steps did not overlap"
    );

    let report = format!(
        "create (model ms): Fly calls in flight {:.0} (whole create incl. local hashing and store commits {:.0}); \
         critical path of its calls {:.0} (app {:.0} + max(volume {:.0}, ips {:.0}) + machine→started {:.0}); \
         sum of all calls {:.0}",
        model_ms(union),
        model_ms(total),
        model_ms(critical_path),
        model_ms(app),
        model_ms(volume_branch),
        model_ms(ip_branch),
        model_ms(machine),
        model_ms(sum_of_calls),
    );
    eprintln!("{report}");
    // Fly time is the critical path (a little slack for scheduling), and the overlap
    // saved at least half of the shorter parallel branch compared with the sum.
    let slack = critical_path / 20;
    assert!(union <= critical_path + slack, "{report}");
    assert!(
        sum_of_calls - union >= volume_branch.min(ip_branch) / 2,
        "{report}"
    );
    sim.shutdown().await;
}

/// The addresses are allocated alongside the volume → machine chain, so the machine
/// never waits for them; and a create interrupted after its machine, before its
/// addresses, is finished by `reconcile`, which allocates them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_machine_does_not_wait_for_the_ips_and_reconcile_allocates_missing_ones() {
    let sim = common::start_sim().await;
    let url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = test_config(&url);
    let store = SqliteStore::open(dir.path().join("swarm.db"), &config.fly_endpoint)
        .await
        .expect("store");
    let (provider, open) = Timed::new(FlyProvider::new(client(&url), &config), Arc::default());
    let swarm = Swarm::new(store, provider, config);
    open.send_replace(false);

    let (machine_made, machine_seen) = tokio::sync::watch::channel(false);
    let progress = move |step: &CreateStep| {
        if matches!(step, CreateStep::Machine { .. }) {
            machine_made.send_replace(true);
        }
    };
    let options = CreateOptions {
        name: "late-ips".to_owned(),
        image: Some("codercom/code-server:4.106.3".to_owned()),
        ..CreateOptions::default()
    };
    let mut seen = machine_seen.clone();
    tokio::select! {
        result = swarm.create_with_progress(&options, &progress) => {
            panic!("create ended while its IPs were held back: {result:?}")
        }
        waited = tokio::time::timeout(Duration::from_secs(60), seen.wait_for(|made| *made)) => {
            waited
                .expect("the machine was made while the IPs were held back")
                .expect("progress kept");
        }
    }
    // The create was dropped there, like a crash: its journal ends at the machine.
    open.send_replace(true);
    let report = swarm.reconcile().await.expect("reconcile");
    assert!(report.converged(), "{report:?}");
    assert!(
        report
            .actions
            .iter()
            .any(|action| matches!(action, ReconcileAction::FinishedCreate { .. })),
        "{report:?}"
    );
    let record = swarm.show("late-ips").await.expect("record");
    assert_eq!(record.status, WorkspaceStatus::Running);
    let kinds: Vec<IpKind> = record.ips.iter().map(|ip| ip.kind).collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert!(
        kinds.contains(&IpKind::SharedV4) && kinds.contains(&IpKind::V6),
        "{kinds:?}"
    );
    swarm.delete("late-ips").await.expect("delete");
    common::assert_sim_empty(&sim);
    sim.shutdown().await;
}
