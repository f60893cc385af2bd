//! `swarm list` and `swarm show` over a store of 10,000 workspaces, as a user runs them
//! (a fresh process each time). Writes `docs/perf-cli-list.md`.
//!
//! Run: `cargo bench -p swarm-cli --bench list`

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use swarm::{
    CpuKind, GuestSize, ImageVersion, IpMode, SqliteStore, Store as _, WorkspaceName,
    WorkspaceRecord, WorkspaceSpec, WorkspaceStatus,
};

const RECORDS: usize = 10_000;
const RUNS: usize = 15;
const ENDPOINT: &str = "http://127.0.0.1:9";

fn record(i: usize) -> WorkspaceRecord {
    let now = time::OffsetDateTime::now_utc();
    let name = WorkspaceName::parse(&format!("ws-{i:05}")).expect("valid name");
    let spec = WorkspaceSpec {
        name: name.clone(),
        region: "ams".into(),
        guest: GuestSize {
            cpu_kind: CpuKind::Shared,
            cpus: 1,
            memory_mb: 2048,
        },
        storage_gb: 10,
        image: "codercom/code-server:4.96.4".into(),
        env: Default::default(),
        metadata: Default::default(),
        ip_mode: IpMode::Shared,
        idle_timeout_secs: 1800,
        org: "personal".into(),
        owner: None,
    };
    WorkspaceRecord {
        id: uuid::Uuid::now_v7(),
        url: format!("https://{}.fly.dev", name.as_str()),
        name,
        status: WorkspaceStatus::Running,
        image_versions: vec![ImageVersion {
            version: 1,
            image: spec.image.clone(),
            digest: None,
            guest: Some(spec.guest),
            machine_version: None,
            snapshot_before: None,
            rollback_of: None,
            at: now,
        }],
        spec,
        app: Some(format!("ws-{i:05}")),
        volume_id: Some(format!("vol_{i:016}")),
        former_volumes: Vec::new(),
        machine_id: Some(format!("{i:014x}")),
        ips: Vec::new(),
        last_error: None,
        created_at: now,
        updated_at: now,
    }
}

fn time_runs(binary: &Path, db: &Path, args: &[&str]) -> Vec<Duration> {
    (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            let out = Command::new(binary)
                .args(args)
                .env("FLY_API_TOKEN", "bench")
                .env("FLY_FLAPS_BASE_URL", ENDPOINT)
                .env("SWARM_DB", format!("sqlite://{}", db.display()))
                .env("SWARM_CONFIG", "/dev/null")
                .output()
                .expect("run swarm");
            let elapsed = start.elapsed();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(!out.stdout.is_empty());
            elapsed
        })
        .collect()
}

fn median(mut runs: Vec<Duration>) -> (Duration, Duration) {
    runs.sort();
    (runs[runs.len() / 2], runs[runs.len() - 1])
}

fn main() {
    let binary = Path::new(env!("CARGO_BIN_EXE_swarm"));
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("bench.db");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let fill = Instant::now();
    rt.block_on(async {
        let store = SqliteStore::open(&db, ENDPOINT).await.expect("store");
        for i in 0..RECORDS {
            store.insert_workspace(&record(i)).await.expect("insert");
        }
        store.close().await;
    });
    eprintln!("filled {RECORDS} records in {:.1?}", fill.elapsed());

    let cases: [(&str, Vec<&str>); 4] = [
        ("swarm list", vec!["list"]),
        ("swarm list --json", vec!["list", "--json"]),
        ("swarm show ws-05000", vec!["show", "ws-05000"]),
        (
            "swarm show ws-05000 --json",
            vec!["show", "ws-05000", "--json"],
        ),
    ];
    let mut report = format!(
        "# `swarm list` / `swarm show` with {RECORDS} records\n\n\
         Made by `cargo bench -p swarm-cli --bench list` on {} ({} cores): each figure is a whole \
         process run (start, open the SQLite store, query, print), {RUNS} runs, release build.\n\n\
         | command | median | slowest | goal |\n| --- | --- | --- | --- |\n",
        std::env::consts::ARCH,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    );
    for (label, args) in cases {
        let (median, max) = median(time_runs(binary, &db, &args));
        let goal = if label.contains("list") {
            "well under 100 ms (issue 5); < 50 ms (issue 7)"
        } else {
            "< 50 ms"
        };
        eprintln!("{label}: median {median:.1?}, slowest {max:.1?}");
        report.push_str(&format!(
            "| `{label}` | {:.1} ms | {:.1} ms | {goal} |\n",
            ms(median),
            ms(max)
        ));
    }
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/perf-cli-list.md");
    std::fs::write(&out, report).expect("write report");
    eprintln!("wrote {}", out.display());
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
