//! S1 (issues 7 and 21): one create until `started`, ours beside the plan's own
//! sequence, on the same `fly-sim --latency fly --rate-limits fly`, each on a fresh sim
//! with the same seed: the plan with the image cold and warm, ours with the image cold
//! and warm (no pool), and ours from a pool slot. Every run of ours records where its
//! time goes (spans per Fly call and per local step, see `spans.rs`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fly_sim::{Latency, SimHandle};
use swarm::provider::{MachineRequest, TAG_WORKSPACE, VolumeRequest};
use swarm::{CpuKind, FlyProvider, GuestSize, IpKind, MachineState, Provider};

use crate::bound;
use crate::cli_runs::{median, ms};
use crate::scenarios::{BENCH_IMAGE, open_swarm, pinned, start_sim_p50, swarm_config};
use crate::spans::{Spans, Sum};

/// The project plan's create, step after step, on the same client and provider:
/// get/create app → create volume → create machine → allocate the IPs one after the
/// other → wait until `started` (one `/wait`, looped to the deadline by the provider).
pub(crate) async fn plan_create(provider: &FlyProvider, name: &str) -> anyhow::Result<()> {
    let config = swarm_config("");
    if provider.get_app(name).await?.is_none() {
        provider.create_app(name, &config.org, name).await?;
    }
    let volume = provider
        .create_volume(
            name,
            &VolumeRequest {
                name: "ws_baseline".into(),
                region: config.default_region.clone(),
                size_gb: config.default_storage_gb,
                source: None,
            },
        )
        .await?;
    let request = MachineRequest {
        name: format!("{name}-ws"),
        region: config.default_region.clone(),
        image: BENCH_IMAGE.into(),
        guest: GuestSize {
            cpu_kind: CpuKind::Shared,
            cpus: 1,
            memory_mb: 2048,
        },
        env: BTreeMap::from([(
            "HASHED_PASSWORD".to_owned(),
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g".into(),
        )]),
        volume_id: volume.id,
        mount_path: config.mount_path.clone(),
        metadata: BTreeMap::from([(TAG_WORKSPACE.to_owned(), name.to_owned())]),
        files: Vec::new(),
        idle_policy: Default::default(),
    };
    let machine = provider.create_machine(name, &request).await?;
    for kind in [IpKind::SharedV4, IpKind::V6] {
        provider
            .allocate_ip(name, kind, &config.default_region)
            .await?;
    }
    provider
        .wait_machine(
            name,
            &machine.id,
            MachineState::Started,
            Duration::from_secs(300),
        )
        .await?;
    Ok(())
}

/// Who creates, and from what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    PlanCold,
    PlanWarm,
    OursCold,
    OursWarm,
    OursPool,
}

impl Variant {
    const ALL: [Self; 5] = [
        Self::PlanCold,
        Self::PlanWarm,
        Self::OursCold,
        Self::OursWarm,
        Self::OursPool,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::PlanCold => "plan's sequence, image cold",
            Self::PlanWarm => "plan's sequence, image warm",
            Self::OursCold => "ours, no pool, image cold",
            Self::OursWarm => "ours, no pool, image warm",
            Self::OursPool => "ours from the pool",
        }
    }

    fn warm(self) -> bool {
        matches!(self, Self::PlanWarm | Self::OursWarm)
    }
}

pub(crate) struct CreateRun {
    pub wall_ms: f64,
    /// The critical path the sim's draws allowed (none for a pool create).
    pub bound_ms: Option<f64>,
    pub parts: String,
    pub requests: u64,
    pub spans: BTreeMap<String, Sum>,
}

/// One create of `variant` on a fresh sim seeded `seed`.
pub(crate) async fn one_create(
    seed: u64,
    variant: Variant,
    p50: bool,
    spans: &Spans,
) -> anyhow::Result<CreateRun> {
    let sim = start_sim_p50(Latency::Fly, true, seed, p50).await?;
    let url = sim.base_url();
    let dir = tempfile::tempdir()?;
    let swarm = open_swarm(&url, &dir.path().join("bench.db")).await?;
    let region = swarm.config().default_region.clone();
    if variant.warm() {
        sim.prepare_image(&region, BENCH_IMAGE);
    }
    if variant == Variant::OursPool {
        let filled = swarm.pool_fill(&region, 1).await?;
        if filled.ready != 1 {
            bail!("pool fill made {} ready slots, not 1", filled.ready);
        }
        // Fly may hold nothing more after the fill; the draws of the fill are not ours.
    }
    let name = "bench-one";
    let (r0, m0) = (sim.stats().requests_total, sim.model_now_ms());
    spans.take();
    let start = Instant::now();
    match variant {
        Variant::PlanCold | Variant::PlanWarm => plan_create(swarm.provider(), name).await?,
        _ => {
            let created = swarm.create(&pinned(name)).await?;
            let from_pool = created
                .workspace
                .app_name()
                .starts_with(swarm::POOL_APP_PREFIX);
            if from_pool != (variant == Variant::OursPool) {
                bail!("{variant:?}: the create took the pool path {from_pool}");
            }
        }
    }
    let wall_ms = ms(start.elapsed());
    let recorded = spans.take();
    let draws: Vec<_> = sim.draws().into_iter().filter(|d| d.at_ms >= m0).collect();
    let (bound_ms, parts) = match variant {
        Variant::OursPool => (None, pool_parts(&sim, m0)),
        _ => {
            let (bound, parts) =
                bound::create(&draws, name).context("the draw log lacks a step of the create")?;
            (Some(bound as f64), parts)
        }
    };
    let requests = sim.stats().requests_total - r0;
    swarm.store().close().await;
    sim.shutdown().await;
    Ok(CreateRun {
        wall_ms,
        bound_ms,
        parts,
        requests,
        spans: recorded,
    })
}

/// The Fly calls a pool create made, in order (its bound is their chain).
fn pool_parts(sim: &SimHandle, since_ms: i64) -> String {
    sim.draws()
        .into_iter()
        .filter(|d| d.at_ms >= since_ms)
        .map(|d| format!("{:?} {} {} ms", d.knob, d.label, d.model_ms))
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn create(runs: usize, seed: u64, p50: bool) -> anyhow::Result<()> {
    let spans = Spans::install();
    let draws = if p50 {
        "every draw at its p50"
    } else {
        "log-normal draws"
    };
    println!(
        "## S1: one create until started (latency fly, {draws}; rate limits fly), {runs} runs"
    );
    println!(
        "Ours returns when the machine is `started`, as the plan's sequence does: neither waits for code-server to answer, so the ratios below are for `started` alone."
    );
    println!();
    let header: Vec<&str> = Variant::ALL.iter().map(|v| v.label()).collect();
    println!("| run | seed | {} |", header.join(" ms | ") + " ms");
    println!("| --- | --- |{}", " --- |".repeat(Variant::ALL.len()));
    let mut results: BTreeMap<usize, Vec<CreateRun>> = BTreeMap::new();
    for i in 0..runs {
        let seed = seed + i as u64;
        let mut cells = Vec::new();
        // Rotate the order, so no variant always meets a warmer machine.
        let mut order: Vec<usize> = (0..Variant::ALL.len()).collect();
        order.rotate_left(i % Variant::ALL.len());
        let mut row: BTreeMap<usize, CreateRun> = BTreeMap::new();
        for index in order {
            let run = one_create(seed, Variant::ALL[index], p50, &spans).await?;
            row.insert(index, run);
        }
        for (index, run) in row {
            cells.push(format!("{:.0}", run.wall_ms));
            eprintln!(
                "  run {i} {}: {} requests; {}",
                Variant::ALL[index].label(),
                run.requests,
                run.parts
            );
            results.entry(index).or_default().push(run);
        }
        println!("| {i} | {seed} | {} |", cells.join(" | "));
    }
    let wall = |v: Variant| -> f64 {
        let index = Variant::ALL.iter().position(|x| *x == v).unwrap_or(0);
        median(
            &results
                .get(&index)
                .map(|runs| runs.iter().map(|r| r.wall_ms).collect::<Vec<_>>())
                .unwrap_or_default(),
        )
    };
    let plan_warm = wall(Variant::PlanWarm);
    let plan_cold = wall(Variant::PlanCold);
    println!();
    println!(
        "| median of {runs} | ms | / plan, image warm | / plan, image cold | / its per-run bound | requests |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for (index, variant) in Variant::ALL.iter().enumerate() {
        let runs_of = results.get(&index).map(Vec::as_slice).unwrap_or_default();
        let ratios: Vec<f64> = runs_of
            .iter()
            .filter_map(|r| r.bound_ms.map(|b| r.wall_ms / b))
            .collect();
        let requests: Vec<f64> = runs_of.iter().map(|r| r.requests as f64).collect();
        println!(
            "| {} | {:.0} | {:.3} | {:.3} | {} | {:.0} |",
            variant.label(),
            wall(*variant),
            wall(*variant) / plan_warm,
            wall(*variant) / plan_cold,
            if ratios.is_empty() {
                "-".to_owned()
            } else {
                format!("{:.3}", median(&ratios))
            },
            median(&requests)
        );
    }
    println!();
    println!(
        "Goals (issue 21): ours with no pool, image warm ≤ 1.0 × the plan's sequence with the image warm; ours from the pool ≤ 0.25 ×."
    );
    breakdown(&results);
    Ok(())
}

/// The per-step sums of our creates: median over the runs of each span's total.
fn breakdown(results: &BTreeMap<usize, Vec<CreateRun>>) {
    println!();
    println!(
        "Where the time goes (medians over the runs of each span's summed time; spans overlap, so a column adds up to more than its wall time):"
    );
    println!();
    let shown: Vec<(usize, Variant)> = Variant::ALL
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, v)| matches!(v, Variant::PlanWarm | Variant::OursWarm | Variant::OursPool))
        .collect();
    let mut labels: Vec<String> = shown
        .iter()
        .flat_map(|(index, _)| results.get(index).into_iter().flatten())
        .flat_map(|run| run.spans.keys().cloned())
        .collect();
    labels.sort();
    labels.dedup();
    let header: Vec<String> = shown
        .iter()
        .map(|(_, v)| format!("{} ms (calls)", v.label()))
        .collect();
    println!("| span | {} |", header.join(" | "));
    println!("| --- |{}", " --- |".repeat(shown.len()));
    for label in labels {
        let cells: Vec<String> = shown
            .iter()
            .map(|(index, _)| {
                let runs = results.get(index).map(Vec::as_slice).unwrap_or_default();
                let totals: Vec<f64> = runs
                    .iter()
                    .map(|r| r.spans.get(&label).map_or(0.0, |s| ms(s.total)))
                    .collect();
                let counts: Vec<f64> = runs
                    .iter()
                    .map(|r| r.spans.get(&label).map_or(0.0, |s| s.count as f64))
                    .collect();
                if counts.iter().all(|c| *c == 0.0) {
                    "-".to_owned()
                } else {
                    format!("{:.1} ({:.0})", median(&totals), median(&counts))
                }
            })
            .collect();
        println!("| {label} | {} |", cells.join(" | "));
    }
}
