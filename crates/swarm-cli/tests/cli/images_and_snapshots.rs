//! Image update and rollback, region move, snapshot and restore.

use assert_cmd::Command;
use fly_sim::SimHandle;

use crate::password_and_resize::{login_accepts, sim_file};
use crate::{Home, run, runtime, start_sim};

#[test]
fn update_rollback_move_snapshot_and_restore_work_in_both_output_modes_and_keep_files() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let home = Home::new();
    images_regions_and_snapshots(&rt, &sim, &|| home.swarm_at(&sim));
    rt.block_on(sim.shutdown());
}

/// Update, rollback, move, snapshot and restore of one workspace on `sim`.
pub(crate) fn images_regions_and_snapshots(
    rt: &tokio::runtime::Runtime,
    sim: &SimHandle,
    swarm: &dyn Fn() -> Command,
) {
    let created = run(swarm(), &["create", "life", "--json"]).ok();
    let password = created.json()["password"].as_str().unwrap().to_owned();
    let first_image = created.json()["workspace"]["spec"]["image"]
        .as_str()
        .unwrap()
        .to_owned();
    let keep = |put: Option<&str>| sim_file(rt, sim, "life", "project/keep.txt", put);
    assert_eq!(keep(Some("v1")).as_deref(), Some("v1"));

    // update: human, then versions in JSON.
    let human = run(
        swarm(),
        &["update", "life", "--image", "codercom/code-server:4.107.0"],
    )
    .ok();
    assert!(
        human.stdout.contains("runs version 2") && human.stdout.contains("4.107.0"),
        "{}",
        human.stdout
    );
    assert!(
        human.stderr.contains("snapshotted first"),
        "{}",
        human.stderr
    );
    let versions = run(swarm(), &["versions", "life", "--json"]).ok().json();
    assert_eq!(versions.as_array().map(Vec::len), Some(2));
    assert_eq!(versions[1]["image"], "codercom/code-server:4.107.0");
    let table = run(swarm(), &["versions", "life"]).ok();
    assert!(table.stdout.contains("2 *"), "{}", table.stdout);
    assert_eq!(keep(None).as_deref(), Some("v1"), "file survives update");

    // rollback: JSON, then human with --to.
    let rolled = run(swarm(), &["rollback", "life", "--json"]).ok().json();
    assert_eq!(rolled["to"]["version"], 3);
    assert_eq!(rolled["to"]["rollback_of"], 1);
    assert_eq!(rolled["workspace"]["spec"]["image"], first_image.as_str());
    let human = run(swarm(), &["rollback", "life", "--to", "2"]).ok();
    assert!(
        human.stdout.contains("a rollback to version 2"),
        "{}",
        human.stdout
    );
    assert_eq!(keep(None).as_deref(), Some("v1"), "file survives rollback");

    // snapshot create (human) and list (JSON); then the file changes.
    let human = run(swarm(), &["snapshot", "create", "life"]).ok();
    let snapshot = human
        .stdout
        .split_whitespace()
        .find(|word| word.starts_with("vs_"))
        .unwrap_or_else(|| panic!("no snapshot id in {}", human.stdout))
        .to_owned();
    let listed = run(swarm(), &["snapshot", "list", "life", "--json"])
        .ok()
        .json();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == snapshot.as_str()),
        "{listed}"
    );
    let table = run(swarm(), &["snapshot", "list", "life"]).ok();
    assert!(table.stdout.contains(&snapshot), "{}", table.stdout);
    assert_eq!(keep(Some("v2")).as_deref(), Some("v2"));

    // move: human, then back in JSON.
    let human = run(swarm(), &["move", "life", "--region", "fra"]).ok();
    assert!(
        human.stdout.contains("moved from ams to fra"),
        "{}",
        human.stdout
    );
    assert_eq!(keep(None).as_deref(), Some("v2"), "file survives move");
    let moved = run(swarm(), &["move", "life", "--region", "ams", "--json"])
        .ok()
        .json();
    assert_eq!(moved["workspace"]["spec"]["region"], "ams");
    assert_eq!(moved["previous_region"], "fra");
    assert_eq!(keep(None).as_deref(), Some("v2"));

    // restore: the snapshot taken before both moves is still listed (Fly keeps a
    // replaced volume's snapshots); off a terminal restore needs --yes.
    let snapshots = run(swarm(), &["snapshot", "list", "life", "--json"])
        .ok()
        .json();
    assert!(
        snapshots
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == snapshot.as_str()
                && s["volume_id"] != moved["workspace"]["volume_id"]),
        "{snapshots}"
    );
    assert_eq!(keep(Some("v3")).as_deref(), Some("v3"));
    let refused = run(swarm(), &["restore", "life", "--snapshot", &snapshot]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert_eq!(keep(None).as_deref(), Some("v3"), "nothing restored");
    let restored = run(
        swarm(),
        &[
            "restore",
            "life",
            "--snapshot",
            &snapshot,
            "--yes",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(restored["workspace"]["status"], "running");
    assert_eq!(
        keep(None).as_deref(),
        Some("v1"),
        "the snapshot's files are back"
    );
    let human = run(
        swarm(),
        &["restore", "life", "--snapshot", &snapshot, "--yes"],
    )
    .ok();
    assert!(
        human.stdout.contains("restored from snapshot"),
        "{}",
        human.stdout
    );
    assert!(
        login_accepts(rt, sim, "life", &password),
        "password kept throughout"
    );

    // Refused after a look at the store or Fly: exit 2, named, nothing changed.
    let world = sim.world();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["rollback", "life", "--to", "9"],
            "versions (1, 2, 3, 4)",
        ),
        (vec!["rollback", "life", "--to", "4"], "runs now"),
        (vec!["move", "life", "--region", "ams"], "already in ams"),
        (
            vec!["restore", "life", "--snapshot", "vs_nothere", "--yes"],
            "snapshot list life",
        ),
        (vec!["update", "nobody", "--image", "img:1"], "nobody"),
        (vec!["versions", "nobody"], "nobody"),
    ];
    for (args, needle) in &cases {
        for json in [false, true] {
            let mut args = args.clone();
            if json {
                args.push("--json");
            }
            let out = run(swarm(), &args);
            assert_eq!(out.code, 2, "`swarm {args:?}`\nstderr:{}", out.stderr);
            assert!(
                out.stderr.contains(needle),
                "`swarm {args:?}`: {}",
                out.stderr
            );
        }
    }
    assert_eq!(sim.world(), world, "nothing changed on Fly");
    run(swarm(), &["delete", "life", "--yes"]).ok();
    assert_eq!(sim.stats().machines + sim.stats().volumes, 0);
}
