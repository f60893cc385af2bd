//! The config file: `swarm config` shows every value's source; a create takes its defaults.

use crate::{CANARY_TOKEN, Home, run};

#[test]
fn config_shows_values_with_their_sources_and_never_the_token() {
    let home = Home::new();
    let dir = home.path().join("config/swarm");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), "region = \"fra\"\nstorage = 20\n").unwrap();
    let out = run(
        home.swarm()
            .env("FLY_API_TOKEN", CANARY_TOKEN)
            .env("FLY_ORG", "acme"),
        &["config"],
    )
    .ok();
    assert!(
        out.stdout.contains("fra") && out.stdout.contains("config.toml"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("env FLY_ORG"), "{}", out.stdout);
    assert!(out.stdout.contains("env FLY_API_TOKEN"), "{}", out.stdout);
    let json = run(
        home.swarm().env("FLY_API_TOKEN", CANARY_TOKEN),
        &["config", "--json", "--region-x"],
    );
    assert_eq!(json.code, 2, "unknown flag");
    let json = run(
        home.swarm().env("FLY_API_TOKEN", CANARY_TOKEN),
        &["config", "--json"],
    )
    .ok()
    .json();
    assert_eq!(json["settings"]["region"]["value"], "fra");
    assert_eq!(json["token"]["set"], true);
    let local = run(home.swarm(), &["config", "--json"]).ok().json();
    assert_eq!(local["fly"]["mode"], "local");
}

/// Every default the config file sets reaches the workspace, `ip` and `cpu_kind` too.
#[test]
fn a_create_takes_its_defaults_from_the_config_file() {
    let home = Home::new();
    let dir = home.path().join("config/swarm");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        "region = \"fra\"\nstorage = 20\ncpu_kind = \"performance\"\nip = \"dedicated\"\nidle_timeout = \"45m\"\n",
    )
    .unwrap();
    let created = run(home.swarm(), &["create", "conf", "--json"]).ok().json();
    let spec = &created["workspace"]["spec"];
    assert_eq!(spec["region"], "fra", "{created}");
    assert_eq!(spec["storage_gb"], 20, "{created}");
    assert_eq!(spec["guest"]["cpu_kind"], "performance", "{created}");
    assert_eq!(spec["ip_mode"], "dedicated", "{created}");
    assert_eq!(spec["idle_timeout_secs"], 45 * 60, "{created}");
    // A flag still wins over the file.
    let shared = run(
        home.swarm(),
        &["create", "flag", "--cpu-kind", "shared", "--json"],
    )
    .ok()
    .json();
    assert_eq!(shared["workspace"]["spec"]["guest"]["cpu_kind"], "shared");
    for name in ["conf", "flag"] {
        run(home.swarm(), &["delete", name, "--yes"]).ok();
    }
}
