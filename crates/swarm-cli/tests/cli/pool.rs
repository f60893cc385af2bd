//! The warm pool: fill, list, create from it, drain; its config and bad input.

use crate::{Home, run, runtime, start_sim};

#[test]
fn pool_fill_list_create_and_drain_in_both_output_modes() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let home = Home::new();
    let swarm = || home.swarm_at(&sim);

    let filled = run(
        swarm(),
        &["pool", "fill", "--region", "ams", "--size", "2", "--json"],
    )
    .ok()
    .json();
    assert_eq!(filled["region"], "ams");
    assert_eq!(filled["ready"], 2);
    assert_eq!(filled["created"].as_array().map(Vec::len), Some(2));
    assert_eq!(filled["pool"]["monthly_cost_usd"], 3.3, "{filled}");
    let stats = sim.stats();
    // Each slot holds a stopped machine.
    assert_eq!((stats.apps, stats.machines, stats.volumes), (2, 2, 2));

    let listed = run(swarm(), &["pool", "list", "--json"]).ok().json();
    let slots = listed["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 2);
    for slot in slots {
        assert!(
            slot["app"].as_str().unwrap().starts_with("swarm-pool-"),
            "{slot}"
        );
        assert_eq!(slot["state"], "ready");
        assert_eq!(slot["region"], "ams");
        assert_eq!(slot["volume_size_gb"], 10);
        assert!(slot["volume_id"].as_str().is_some(), "{slot}");
        assert_eq!(slot["ips"].as_array().map(Vec::len), Some(2), "{slot}");
        assert!(slot["machine"].as_str().is_some(), "{slot}");
        assert!(
            slot["warmed_image"]
                .as_str()
                .is_some_and(|image| image.starts_with("codercom/code-server")),
            "the fill warmed the default image: {slot}"
        );
        assert_eq!(slot["monthly_cost_usd"], 1.65);
    }
    let warmed = slots[0]["warmed_image"].as_str().unwrap().to_owned();
    assert!(listed["prices_source"].as_str().unwrap().contains("fly.io"));
    let human = run(swarm(), &["pool", "list"]).ok();
    for word in [
        "APP",
        "STATE",
        "REGION",
        "VOLUME",
        "IPS",
        "WARM IMAGE",
        warmed.as_str(),
        "MACHINE",
        "PER MONTH",
        "(stopped)",
        "$1.65",
        "$3.30",
    ] {
        assert!(
            human.stdout.contains(word),
            "{word} missing:\n{}",
            human.stdout
        );
    }

    // create takes a slot: the URL is the slot's app.
    let created = run(swarm(), &["create", "alice", "--json"]).ok().json();
    let app = created["workspace"]["app"].as_str().unwrap().to_owned();
    assert!(app.starts_with("swarm-pool-"), "{created}");
    assert_eq!(
        created["workspace"]["url"],
        format!("https://{app}.fly.dev")
    );
    assert_eq!(
        run(swarm(), &["pool", "list", "--json"]).ok().json()["ready"],
        1
    );
    let shown = run(swarm(), &["show", "alice", "--json"]).ok().json();
    assert_eq!(shown["app"], app.as_str());
    run(swarm(), &["stop", "alice"]).ok();
    run(swarm(), &["start", "alice"]).ok();
    let reconciled = run(swarm(), &["reconcile", "--json"]).ok().json();
    assert_eq!(reconciled["pool_slots"], 1, "{reconciled}");
    run(swarm(), &["delete", "alice", "--yes"]).ok();

    let drained = run(swarm(), &["pool", "drain"]).ok();
    assert!(
        drained.stdout.contains("removed 1 slot"),
        "{}",
        drained.stdout
    );
    let empty = run(swarm(), &["pool", "list", "--json"]).ok().json();
    assert_eq!(empty["slots"].as_array().map(Vec::len), Some(0));
    assert_eq!(
        run(swarm(), &["pool", "drain", "--json"]).ok().json()["removed"],
        serde_json::json!([])
    );
    let stats = sim.stats();
    assert_eq!(
        (stats.apps, stats.machines, stats.volumes, stats.ips),
        (0, 0, 0, 0),
        "{stats:?}"
    );
    rt.block_on(sim.shutdown());
}

#[test]
fn pool_fill_reads_the_config_file_and_bad_pool_input_exits_2_changing_nothing() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let home = Home::new();
    let config = home.path().join("swarm.toml");
    let config_arg = config.display().to_string();
    let swarm = || home.swarm_at(&sim);

    // (args, word the error must name, whether swarm (not clap's parser) refused it,
    // so `--json` gets the error as a JSON document)
    for (args, field, ours) in [
        (
            vec!["pool", "fill", "--region", "ams", "--size", "0"],
            "size",
            true,
        ),
        (
            vec!["pool", "fill", "--region", "ams", "--size", "51"],
            "size",
            true,
        ),
        (
            vec!["pool", "fill", "--region", "ams", "--size", "4294967295"],
            "size",
            true,
        ),
        (
            vec!["pool", "fill", "--region", "ams", "--size", "-1"],
            "-1",
            false,
        ),
        (
            vec!["pool", "fill", "--region", "ams", "--size", "two"],
            "size",
            false,
        ),
        (
            vec!["pool", "fill", "--region", "xyz", "--size", "1"],
            "region",
            true,
        ),
        (
            vec!["pool", "fill", "--region", "AMS", "--size", "1"],
            "region",
            true,
        ),
        (vec!["pool", "fill", "--region", "ams"], "size", true),
    ] {
        for json in [false, true] {
            let mut args = args.clone();
            if json {
                args.push("--json");
            }
            let out = run(swarm(), &args);
            assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
            assert!(out.stderr.contains(field), "{args:?}: {}", out.stderr);
            if json && ours {
                assert_eq!(out.json()["exit_code"], 2, "{args:?}");
            }
        }
    }
    assert_eq!(sim.stats().requests_total, 0, "bad input made Fly calls");
    assert!(!home.db().exists(), "bad input opened the store");

    // A bad [pool] table is refused too, naming the key.
    std::fs::write(&config, "[pool]\nregion = \"xyz\"\nsize = 1\n").unwrap();
    let out = run(swarm(), &["--config", &config_arg, "pool", "fill"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("pool region"), "{}", out.stderr);
    std::fs::write(&config, "[pool]\nsize = 0\n").unwrap();
    let out = run(swarm(), &["--config", &config_arg, "pool", "list"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("pool size"), "{}", out.stderr);
    std::fs::write(&config, "[pool]\nsise = 2\n").unwrap();
    let out = run(swarm(), &["--config", &config_arg, "pool", "list"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("sise"), "{}", out.stderr);
    assert_eq!(sim.stats().requests_total, 0);

    // `pool fill` without flags uses [pool]; flags beat it.
    std::fs::write(&config, "[pool]\nregion = \"fra\"\nsize = 1\n").unwrap();
    let shown = run(swarm(), &["--config", &config_arg, "config", "--json"])
        .ok()
        .json();
    assert_eq!(shown["settings"]["pool_region"]["value"], "fra", "{shown}");
    assert_eq!(shown["settings"]["pool_size"]["value"], 1, "{shown}");
    let filled = run(
        swarm(),
        &["--config", &config_arg, "pool", "fill", "--json"],
    )
    .ok()
    .json();
    assert_eq!(filled["region"], "fra");
    assert_eq!(filled["created"].as_array().map(Vec::len), Some(1));
    let filled = run(
        swarm(),
        &[
            "--config",
            &config_arg,
            "pool",
            "fill",
            "--size",
            "2",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(
        (filled["region"].as_str(), filled["ready"].as_u64()),
        (Some("fra"), Some(2))
    );
    let human = run(swarm(), &["--config", &config_arg, "pool", "fill"]).ok();
    assert!(human.stdout.contains("0 made now"), "{}", human.stdout);
    run(swarm(), &["pool", "drain"]).ok();
    let stats = sim.stats();
    assert_eq!(
        (stats.apps, stats.volumes, stats.ips),
        (0, 0, 0),
        "{stats:?}"
    );
    rt.block_on(sim.shutdown());
}
