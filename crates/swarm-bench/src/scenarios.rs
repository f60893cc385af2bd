//! The scenarios. Each prints its figures as Markdown table rows on stdout.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fly_api::{FlyClient, Token};
use fly_sim::{Knob, Latency, Sim, SimConfig, SimHandle};
use futures::StreamExt;
use swarm::provider::{MachineRequest, TAG_WORKSPACE, TAG_WORKSPACE_ID, VolumeRequest};
use swarm::{
    CpuKind, CreateOptions, FlyProvider, GuestSize, IpMode, MachineState, Provider, SqliteStore,
    Store as _, Swarm, SwarmConfig, WorkspaceName, WorkspaceRecord, WorkspaceSpec, WorkspaceStatus,
};

use crate::bound;
use crate::cli_runs::{self, median, ms};

pub(crate) type BenchSwarm = Swarm<SqliteStore, FlyProvider>;

async fn start_sim(latency: Latency, rate_limits: bool, seed: u64) -> anyhow::Result<SimHandle> {
    start_sim_p50(latency, rate_limits, seed, false).await
}

pub(crate) async fn start_sim_p50(
    latency: Latency,
    rate_limits: bool,
    seed: u64,
    p50_only: bool,
) -> anyhow::Result<SimHandle> {
    let config = SimConfig {
        latency,
        rate_limits,
        seed,
        record_draws: true,
        latency_p50_only: p50_only,
        ..SimConfig::default()
    };
    Ok(Sim::start(config, "127.0.0.1:0").await?)
}

/// The client as `swarm` builds it: default retry policy, client-side throttling on.
fn client(url: &str) -> anyhow::Result<FlyClient> {
    Ok(FlyClient::builder()
        .token(Token::new("bench-token"))
        .machines_base_url(url)
        .api_base_url(url)
        .build()?)
}

/// The image every benchmark workspace runs, pinned as a deployment would.
pub(crate) const BENCH_IMAGE: &str = "codercom/code-server:4.96.4";

/// `swarm`'s defaults (DESIGN §2), pointed at the sim, with the bench's image as the
/// configured default (the image `pool fill` warms).
pub(crate) fn swarm_config(url: &str) -> SwarmConfig {
    SwarmConfig {
        probe_base_url: Some(url.to_owned()),
        fly_endpoint: url.to_owned(),
        default_image: BENCH_IMAGE.to_owned(),
        ..SwarmConfig::default()
    }
}

pub(crate) async fn open_swarm(url: &str, db: &Path) -> anyhow::Result<BenchSwarm> {
    let config = swarm_config(url);
    let store = SqliteStore::open(db, &config.fly_endpoint).await?;
    let provider = FlyProvider::new(client(url)?, &config);
    Ok(Swarm::new(store, provider, config))
}

pub(crate) fn pinned(name: &str) -> CreateOptions {
    CreateOptions {
        name: name.to_owned(),
        image: Some(BENCH_IMAGE.into()),
        ..CreateOptions::default()
    }
}

// ------------------------------------------------------------------- S3

struct Phase {
    name: &'static str,
    wall_ms: f64,
    bound_ms: f64,
    requests: u64,
    throttled: u64,
    failures: usize,
}

fn counts(sim: &SimHandle) -> (u64, u64) {
    let stats = sim.stats();
    let r429 = stats.requests_by_status.get(&429).copied().unwrap_or(0);
    (stats.requests_total, r429)
}

async fn run_all<F, Fut, T>(names: &[String], f: F) -> usize
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = swarm::Result<T>>,
{
    let results = futures::future::join_all(names.iter().cloned().map(f)).await;
    let mut failures = 0;
    for (name, result) in names.iter().zip(results) {
        if let Err(error) = result {
            eprintln!("  {name}: {error}");
            failures += 1;
        }
    }
    failures
}

async fn concurrent_once(n: usize, seed: u64) -> anyhow::Result<Vec<Phase>> {
    let sim = start_sim(Latency::Fly, true, seed).await?;
    let url = sim.base_url();
    let dir = tempfile::tempdir()?;
    let swarm = open_swarm(&url, &dir.path().join("bench.db")).await?;
    let names: Vec<String> = (0..n).map(|i| format!("conc-{i:03}")).collect();
    let mut phases = Vec::new();
    let phase = |name, t: Instant, m0: i64, before: (u64, u64), failures, sim: &SimHandle| {
        let (req, r429) = counts(sim);
        let draws: Vec<_> = sim.draws().into_iter().filter(|d| d.at_ms >= m0).collect();
        (
            Phase {
                name,
                wall_ms: ms(t.elapsed()),
                bound_ms: 0.0,
                requests: req - before.0,
                throttled: r429 - before.1,
                failures,
            },
            draws,
        )
    };

    // create
    let (t, m0, before) = (Instant::now(), sim.model_now_ms(), counts(&sim));
    let failures = run_all(&names, |name| {
        let swarm = swarm.clone();
        async move { swarm.create(&pinned(&name)).await }
    })
    .await;
    let (mut p, _) = phase("create", t, m0, before, failures, &sim);
    // Fly's app creation limit (per org: 1/s, burst 3) admits the last create after
    // (n − 3) s; it then needs one create's critical path (image already prepared).
    p.bound_ms = (n.saturating_sub(3)) as f64 * 1000.0 + bound::create_p50_cached();
    phases.push(p);

    let ids: Vec<bound::Ids> = swarm
        .list()
        .await?
        .into_iter()
        .filter_map(|r| {
            Some(bound::Ids {
                app: r.app.clone()?,
                machine: r.machine_id.clone()?,
                volume: r.volume_id.clone()?,
            })
        })
        .collect();

    // stop
    let (t, m0, before) = (Instant::now(), sim.model_now_ms(), counts(&sim));
    let failures = run_all(&names, |name| {
        let swarm = swarm.clone();
        async move { swarm.stop(&name, false).await }
    })
    .await;
    let (mut p, draws) = phase("stop", t, m0, before, failures, &sim);
    p.bound_ms = bound::stop(&draws, &ids) as f64;
    phases.push(p);

    // start
    let (t, m0, before) = (Instant::now(), sim.model_now_ms(), counts(&sim));
    let failures = run_all(&names, |name| {
        let swarm = swarm.clone();
        async move { swarm.start(&name).await }
    })
    .await;
    let (mut p, draws) = phase("start", t, m0, before, failures, &sim);
    p.bound_ms = bound::start(&draws, &ids) as f64;
    phases.push(p);

    // delete
    let (t, m0, before) = (Instant::now(), sim.model_now_ms(), counts(&sim));
    let failures = run_all(&names, |name| {
        let swarm = swarm.clone();
        async move { swarm.delete(&name).await }
    })
    .await;
    let (mut p, draws) = phase("delete", t, m0, before, failures, &sim);
    p.bound_ms = bound::delete(&draws, &ids) as f64;
    let stats = sim.stats();
    if stats.apps + stats.machines + stats.volumes + stats.ips > 0 {
        eprintln!("  left on the sim after delete: {stats:?}");
        p.failures += 1;
    }
    phases.push(p);
    swarm.store().close().await;
    sim.shutdown().await;
    Ok(phases)
}

pub async fn concurrent(n: usize, runs: usize, seed: u64) -> anyhow::Result<()> {
    println!("## S3: {n} workspaces at once (latency fly, rate limits fly), {runs} run(s)");
    println!("| run | phase | wall s | bound s | ratio | requests | 429s | 429 share | failures |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for i in 0..runs {
        for p in concurrent_once(n, seed + i as u64).await? {
            println!(
                "| {i} | {} | {:.2} | {:.2} | {:.3} | {} | {} | {:.2} % | {} |",
                p.name,
                p.wall_ms / 1000.0,
                p.bound_ms / 1000.0,
                p.wall_ms / p.bound_ms,
                p.requests,
                p.throttled,
                100.0 * p.throttled as f64 / p.requests.max(1) as f64,
                p.failures
            );
        }
    }
    Ok(())
}

// ------------------------------------------------------------------- S4

fn spec(name: &WorkspaceName) -> WorkspaceSpec {
    WorkspaceSpec {
        name: name.clone(),
        region: "ams".into(),
        guest: GuestSize {
            cpu_kind: CpuKind::Shared,
            cpus: 1,
            memory_mb: 2048,
        },
        storage_gb: 10,
        image: BENCH_IMAGE.into(),
        env: Default::default(),
        metadata: Default::default(),
        ip_mode: IpMode::Shared,
        idle_timeout_secs: 1800,
        dotfiles: None,
        init_script: None,
        idle_policy: Default::default(),
        org: "personal".into(),
        owner: None,
    }
}

fn record(
    name: &str,
    app: Option<String>,
    volume: Option<String>,
    machine: Option<String>,
) -> anyhow::Result<WorkspaceRecord> {
    let now = time::OffsetDateTime::now_utc();
    let name = WorkspaceName::parse(name).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut record = WorkspaceRecord::new(spec(&name), WorkspaceStatus::Running, now);
    record.app = app;
    record.volume_id = volume;
    record.machine_id = machine;
    Ok(record)
}

/// Makes `n` workspaces on a zero-latency sim without limits (so filling is fast),
/// persisted to `state`; returns their records (app, volume, machine set; no IPs).
async fn fill_world(n: usize, state: &Path) -> anyhow::Result<Vec<WorkspaceRecord>> {
    fill_world_named(n, state, "rc").await
}

/// As [`fill_world`], names `<prefix>-00000` on.
pub(crate) async fn fill_world_named(
    n: usize,
    state: &Path,
    prefix: &str,
) -> anyhow::Result<Vec<WorkspaceRecord>> {
    let sim = Sim::start(
        SimConfig {
            latency: Latency::Zero,
            rate_limits: false,
            state_file: Some(state.to_path_buf()),
            ..SimConfig::default()
        },
        "127.0.0.1:0",
    )
    .await?;
    let url = sim.base_url();
    let config = swarm_config(&url);
    let provider = FlyProvider::new(
        FlyClient::builder()
            .token(Token::new("bench-token"))
            .machines_base_url(&url)
            .api_base_url(&url)
            .throttle(false)
            .build()?,
        &config,
    );
    let made: Vec<anyhow::Result<WorkspaceRecord>> = futures::stream::iter(0..n)
        .map(|i| {
            let provider = &provider;
            let config = &config;
            async move {
                let name = format!("{prefix}-{i:05}");
                let mut rec = record(&name, None, None, None)?;
                provider
                    .create_app(&name, &config.org, &rec.id.to_string())
                    .await?;
                let volume = provider
                    .create_volume(
                        &name,
                        &VolumeRequest {
                            name: rec.volume_name(),
                            region: "ams".into(),
                            size_gb: 10,
                            source: None,
                        },
                    )
                    .await?;
                let machine = provider
                    .create_machine(
                        &name,
                        &MachineRequest {
                            name: format!("{name}-ws"),
                            region: "ams".into(),
                            image: rec.spec.image.clone(),
                            guest: rec.spec.guest,
                            env: BTreeMap::new(),
                            volume_id: volume.id.clone(),
                            mount_path: config.mount_path.clone(),
                            files: Vec::new(),
                            metadata: BTreeMap::from([
                                (TAG_WORKSPACE_ID.to_owned(), rec.id.to_string()),
                                (TAG_WORKSPACE.to_owned(), name.clone()),
                            ]),
                            idle_policy: Default::default(),
                        },
                    )
                    .await?;
                provider
                    .wait_machine(
                        &name,
                        &machine.id,
                        MachineState::Started,
                        Duration::from_secs(60),
                    )
                    .await?;
                rec.app = Some(name);
                rec.volume_id = Some(volume.id);
                rec.machine_id = Some(machine.id);
                Ok(rec)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    sim.shutdown().await;
    made.into_iter().collect()
}

pub async fn reconcile(bin: &Path, n: usize, runs: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("world.json");
    let db = dir.path().join("swarm.db");
    let t = Instant::now();
    let records = fill_world(n, &state).await?;
    eprintln!("filled {n} workspaces in {:.1?}", t.elapsed());
    // The measured sim: the same world, latency zero, Fly's rate limits on.
    let sim = Sim::start(
        SimConfig {
            latency: Latency::Zero,
            rate_limits: true,
            state_file: Some(state.clone()),
            ..SimConfig::default()
        },
        "127.0.0.1:0",
    )
    .await?;
    let url = sim.base_url();
    {
        let store = SqliteStore::open(&db, &url).await?;
        for rec in &records {
            store.insert_workspace(rec).await?;
        }
        store.close().await;
    }
    let env = cli_runs::swarm_env(&url, &db);
    println!(
        "## S4: swarm reconcile over {n} workspaces (latency zero, rate limits fly), {runs} runs"
    );
    println!("| run | wall s | requests | peak RSS MiB | checked | actions |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut walls = Vec::new();
    let mut rss = Vec::new();
    for i in 0..runs {
        let before = sim.stats().requests_total;
        let run = cli_runs::run(bin, &["reconcile", "--json"], &env, true).await?;
        let requests = sim.stats().requests_total - before;
        let report: serde_json::Value =
            serde_json::from_slice(&run.stdout).context("reconcile --json output")?;
        let checked = report["checked"].as_u64().unwrap_or(0);
        let actions = report["actions"].as_array().map_or(0, Vec::len);
        if checked != n as u64 {
            bail!("reconcile checked {checked} workspaces, not {n}");
        }
        let mib = run.max_rss_kib.map(|k| k as f64 / 1024.0);
        println!(
            "| {i} | {:.2} | {requests} | {} | {checked} | {actions} |",
            run.wall.as_secs_f64(),
            mib.map_or("n/a".into(), |m| format!("{m:.1}"))
        );
        walls.push(run.wall.as_secs_f64());
        if let Some(m) = mib {
            rss.push(m);
        }
    }
    println!(
        "\nmedian wall {:.2} s (goal < 10 s); median peak RSS {} MiB (goal < 150 MB)",
        median(&walls),
        if rss.is_empty() {
            "n/a".into()
        } else {
            format!("{:.1}", median(&rss))
        }
    );
    sim.shutdown().await;
    Ok(())
}

// ------------------------------------------------------------------- S5

pub async fn list(bin: &Path, n: usize, runs: usize) -> anyhow::Result<()> {
    const ENDPOINT: &str = "http://127.0.0.1:9";
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("swarm.db");
    {
        let store = SqliteStore::open(&db, ENDPOINT).await?;
        for i in 0..n {
            let name = format!("ws-{i:05}");
            let rec = record(
                &name,
                Some(name.clone()),
                Some(format!("vol_{i:016}")),
                Some(format!("{i:014x}")),
            )?;
            store.insert_workspace(&rec).await?;
        }
        store.close().await;
    }
    let env = cli_runs::swarm_env(ENDPOINT, &db);
    let middle = format!("ws-{:05}", n / 2);
    let cases: Vec<(String, Vec<&str>)> = vec![
        ("swarm list".into(), vec!["list"]),
        ("swarm list --json".into(), vec!["list", "--json"]),
        (format!("swarm show {middle}"), vec!["show", &middle]),
        (
            format!("swarm show {middle} --json"),
            vec!["show", &middle, "--json"],
        ),
    ];
    println!("## S5: whole `swarm` processes over a store of {n} records, {runs} runs each");
    println!("| command | median ms | fastest ms | slowest ms | peak RSS MiB | goal |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (label, args) in cases {
        // One warm-up run (page cache), not counted.
        cli_runs::run(bin, &args, &env, false).await?;
        let mut walls = Vec::new();
        for _ in 0..runs {
            walls.push(ms(cli_runs::run(bin, &args, &env, false).await?.wall));
        }
        let mut rss = Vec::new();
        for _ in 0..3 {
            if let Some(k) = cli_runs::run(bin, &args, &env, true).await?.max_rss_kib {
                rss.push(k as f64 / 1024.0);
            }
        }
        let fastest = walls.iter().copied().fold(f64::INFINITY, f64::min);
        let slowest = walls.iter().copied().fold(0.0, f64::max);
        println!(
            "| `{label}` | {:.1} | {fastest:.1} | {slowest:.1} | {} | < 50 ms |",
            median(&walls),
            if rss.is_empty() {
                "n/a".into()
            } else {
                format!("{:.1}", median(&rss))
            }
        );
    }
    Ok(())
}

// ------------------------------------------------------------------- S2

/// The Fly calls the sim answered since model time `since_ms`, in order, for the
/// profile of what a create still waits on.
fn calls_since(sim: &SimHandle, since_ms: i64) -> Vec<String> {
    sim.draws()
        .into_iter()
        .filter(|d| d.at_ms >= since_ms && d.knob == Knob::ApiRtt)
        .map(|d| d.label)
        .collect()
}

/// Whether the machine of the workspace created since `since_ms` paid the first
/// preparation of its image in the region (12 s at p50) or a cached one (1.5 s).
fn image_first_use(sim: &SimHandle, since_ms: i64) -> bool {
    sim.draws()
        .iter()
        .any(|d| d.at_ms >= since_ms && d.knob == Knob::ImagePrepareFirst)
}

struct PoolCreate {
    run: usize,
    seed: u64,
    index: usize,
    wall_ms: f64,
    first_use: bool,
    requests: u64,
}

pub async fn pool(runs: usize, seed: u64, slots: usize, p50: bool) -> anyhow::Result<()> {
    let draws = if p50 {
        "every draw at its p50"
    } else {
        "log-normal draws"
    };
    println!(
        "## S2: creates from a warm pool of {slots} slot(s) (latency fly, {draws}; rate limits fly), {runs} runs"
    );
    let mut creates = Vec::new();
    let mut fills = Vec::new();
    let mut baselines = Vec::new();
    let mut cached_baselines = Vec::new();
    for i in 0..runs {
        let seed = seed + i as u64;
        let sim = start_sim_p50(Latency::Fly, true, seed, p50).await?;
        let url = sim.base_url();
        let dir = tempfile::tempdir()?;
        let swarm = open_swarm(&url, &dir.path().join("bench.db")).await?;
        let region = swarm.config().default_region.clone();
        let t = Instant::now();
        let filled = swarm.pool_fill(&region, u32::try_from(slots)?).await?;
        fills.push(ms(t.elapsed()));
        if filled.ready < slots {
            bail!("pool fill made {} ready slots, not {slots}", filled.ready);
        }
        for index in 0..slots {
            let name = format!("pooled-{index}");
            let (m0, r0) = (sim.model_now_ms(), sim.stats().requests_total);
            let t = Instant::now();
            let created = swarm.create(&pinned(&name)).await?;
            let wall_ms = ms(t.elapsed());
            let app = created.workspace.app_name();
            if !app.starts_with(swarm::POOL_APP_PREFIX) {
                bail!("{name} did not take a pool slot (app {app})");
            }
            eprintln!(
                "  run {i} create {index}: Fly calls on the path: {}",
                calls_since(&sim, m0).join(", ")
            );
            creates.push(PoolCreate {
                run: i,
                seed,
                index,
                wall_ms,
                first_use: image_first_use(&sim, m0),
                requests: sim.stats().requests_total - r0,
            });
        }
        // The same plan on this sim, where the image is now prepared in the region:
        // the like-for-like comparison for the creates that met a cached image.
        let t = Instant::now();
        crate::create_bench::plan_create(swarm.provider(), "base-cached").await?;
        cached_baselines.push(ms(t.elapsed()));
        swarm.store().close().await;
        sim.shutdown().await;
        // The sequential baseline of S1 on a fresh sim with the same seed.
        let spans = crate::spans::Spans::default();
        baselines.push(
            crate::create_bench::one_create(
                seed,
                crate::create_bench::Variant::PlanCold,
                p50,
                &spans,
            )
            .await?
            .wall_ms,
        );
    }
    println!("| run | seed | create | pool create ms | image in region | requests |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for c in &creates {
        println!(
            "| {} | {} | {} | {:.0} | {} | {} |",
            c.run,
            c.seed,
            c.index,
            c.wall_ms,
            if c.first_use { "first use" } else { "cached" },
            c.requests
        );
    }
    println!();
    println!("| run | baseline ms (fresh sim) | baseline ms (image cached) | pool fill ms |");
    println!("| --- | --- | --- | --- |");
    for i in 0..runs {
        println!(
            "| {i} | {:.0} | {:.0} | {:.0} |",
            baselines[i], cached_baselines[i], fills[i]
        );
    }
    let all: Vec<f64> = creates.iter().map(|c| c.wall_ms).collect();
    let firsts: Vec<f64> = creates
        .iter()
        .filter(|c| c.first_use)
        .map(|c| c.wall_ms)
        .collect();
    let cached: Vec<f64> = creates
        .iter()
        .filter(|c| !c.first_use)
        .map(|c| c.wall_ms)
        .collect();
    let base = median(&baselines);
    let base_cached = median(&cached_baselines);
    println!();
    println!("| median | ms | / baseline (fresh sim) | / baseline (image cached) | goal |");
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| pool create, all ({}) | {:.0} | {:.3} | {:.3} | ≤ 0.25 × baseline (image cached), issue 21 |",
        all.len(),
        median(&all),
        median(&all) / base,
        median(&all) / base_cached
    );
    for (label, sample) in [("image first use", &firsts), ("image cached", &cached)] {
        if !sample.is_empty() {
            println!(
                "| pool create, {label} ({}) | {:.0} | {:.3} | {:.3} | |",
                sample.len(),
                median(sample),
                median(sample) / base,
                median(sample) / base_cached
            );
        }
    }
    println!("| baseline, fresh sim ({runs}) | {base:.0} | 1.000 | | |");
    println!("| baseline, image cached ({runs}) | {base_cached:.0} | | 1.000 | |");
    Ok(())
}

// ------------------------------------------------------------------- S6 (issue 9)

/// Latencies of `GET /v1/workspaces` made one after another until `done` is set.
async fn poll_list(
    http: reqwest::Client,
    url: String,
    token: String,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<Vec<f64>> {
    let mut latencies = Vec::new();
    while !done.load(std::sync::atomic::Ordering::SeqCst) {
        let t = Instant::now();
        let response = http.get(&url).bearer_auth(&token).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        latencies.push(ms(t.elapsed()));
        if !status.is_success() {
            bail!("GET /v1/workspaces answered {status}");
        }
        if body.is_empty() {
            bail!("GET /v1/workspaces answered an empty body");
        }
    }
    Ok(latencies)
}

pub(crate) fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

pub async fn serve(n: usize, runs: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("world.json");
    let db = dir.path().join("swarm.db");
    let records = fill_world_named(n, &state, "sv").await?;
    // The measured sim: the same world with Fly's latencies and rate limits.
    let sim = Sim::start(
        SimConfig {
            latency: Latency::Fly,
            rate_limits: true,
            state_file: Some(state.clone()),
            ..SimConfig::default()
        },
        "127.0.0.1:0",
    )
    .await?;
    let url = sim.base_url();
    let swarm = open_swarm(&url, &db).await?;
    for rec in &records {
        swarm.store().insert_workspace(rec).await?;
    }
    let token = swarm_controller::create_token(swarm.store(), "bench-admin", true).await?;
    let controller = swarm_controller::Controller::new(swarm);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let list_url = format!("http://{}/v1/workspaces", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = {
        let controller = std::sync::Arc::clone(&controller);
        tokio::spawn(async move {
            controller
                .serve(listener, None, async {
                    let _ = stopped.await;
                })
                .await
        })
    };
    let http = reqwest::Client::new();

    // The list alone, no reconcile running: what the pass adds to it.
    let idle: Vec<f64> = {
        let mut v = Vec::new();
        for _ in 0..50 {
            let t = Instant::now();
            http.get(&list_url)
                .bearer_auth(token.expose())
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            v.push(ms(t.elapsed()));
        }
        v
    };

    println!(
        "## S6 (issue 9): one controller reconcile pass over {n} workspaces (latency fly, rate limits fly), `GET /v1/workspaces` meanwhile, {runs} runs"
    );
    println!(
        "| run | pass s | checked | actions | Fly requests | 429s | GETs | GET median ms | GET p95 ms |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut passes = Vec::new();
    let mut medians = Vec::new();
    let mut p95s = Vec::new();
    let mut total_429 = 0;
    for i in 0..runs {
        let before = counts(&sim);
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let client = tokio::spawn(poll_list(
            http.clone(),
            list_url.clone(),
            token.expose().to_owned(),
            std::sync::Arc::clone(&done),
        ));
        let status = controller.reconcile_once().await;
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        let latencies = client.await??;
        let (requests, throttled) = counts(&sim);
        let (requests, throttled) = (requests - before.0, throttled - before.1);
        if let Some(error) = &status.error {
            bail!("reconcile failed: {error}");
        }
        let (med, p95) = (median(&latencies), percentile(&latencies, 0.95));
        println!(
            "| {i} | {:.2} | {} | {} | {requests} | {throttled} | {} | {med:.2} | {p95:.2} |",
            status.duration_ms as f64 / 1000.0,
            status.checked,
            status.actions,
            latencies.len()
        );
        passes.push(status.duration_ms as f64 / 1000.0);
        medians.push(med);
        p95s.push(p95);
        total_429 += throttled;
    }
    println!(
        "\nmedian pass {:.2} s; 429s in all passes: {total_429} (goal 0); GET /v1/workspaces during the pass: median of run medians {:.2} ms (goal < 20 ms), median p95 {:.2} ms; with no pass running: median {:.2} ms, p95 {:.2} ms",
        median(&passes),
        median(&medians),
        median(&p95s),
        median(&idle),
        percentile(&idle, 0.95)
    );
    let _ = stop.send(());
    served.await??;
    controller.swarm().store().close().await;
    sim.shutdown().await;
    Ok(())
}
