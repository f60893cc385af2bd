use std::collections::BTreeMap;

use super::*;
use crate::config::SwarmConfig;
use crate::model::*;

fn options(name: &str) -> CreateOptions {
    CreateOptions {
        name: name.to_owned(),
        ..CreateOptions::default()
    }
}

#[test]
fn a_name_read_back_is_checked_too() {
    let name: crate::WorkspaceName = serde_json::from_str("\"alice\"").unwrap();
    assert_eq!(serde_json::to_string(&name).unwrap(), "\"alice\"");
    for bad in ["\"../etc\"", "\"Alice\"", "\"\"", "\"a\\nb\""] {
        let error = serde_json::from_str::<crate::WorkspaceName>(bad).unwrap_err();
        assert!(error.to_string().contains("invalid name"), "{bad}: {error}");
    }
}

#[test]
fn names_follow_fly_app_rules() {
    for good in ["a", "alice", "a1", "dev-box-2", &"a".repeat(63)] {
        assert!(validate_name(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "Alice",
        "1abc",
        "-abc",
        "abc-",
        "a_b",
        "a.b",
        "ä",
        &"a".repeat(64),
    ] {
        let error = validate_name(bad).expect_err(bad);
        assert_eq!(error.field, "name");
        assert_eq!(error.value, bad);
    }
    let error = validate_name("Alice").expect_err("uppercase");
    assert!(error.to_string().contains("lowercase"), "{error}");
}

#[test]
fn resize_to_a_huge_cpu_count_is_refused_not_overflowed() {
    // Found by the `validate` fuzz target: the kept memory was bounded with
    // `8192 * cpus` before the count was checked, which overflowed.
    let current = validate_create(&options("alice"), &SwarmConfig::default())
        .expect("valid")
        .spec;
    for cpus in [524_289, u32::MAX] {
        let resize = ResizeOptions {
            cpus: Some(cpus),
            ..ResizeOptions::default()
        };
        let errors =
            validate_resize(&current, &resize, &SwarmConfig::default()).expect_err("no such guest");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            (errors[0].field, errors[0].value.clone()),
            ("cpus", cpus.to_string())
        );
    }
    assert_eq!(
        memory_bounds(CpuKind::Performance, u32::MAX),
        (u32::MAX, u32::MAX)
    );
}

#[test]
fn defaults_are_the_design_defaults() {
    let created = validate_create(&options("alice"), &SwarmConfig::default()).expect("valid");
    let spec = created.spec;
    assert_eq!(spec.region, "ams");
    assert_eq!(
        spec.guest,
        GuestSize {
            cpu_kind: CpuKind::Shared,
            cpus: 1,
            memory_mb: 2048
        }
    );
    assert_eq!(spec.storage_gb, 10);
    assert_eq!(spec.image, "codercom/code-server:latest");
    assert_eq!(spec.ip_mode, IpMode::Shared);
    assert_eq!(spec.org, "personal");
    assert!(
        created.notes.iter().any(|note| note.contains("not pinned")),
        "{:?}",
        created.notes
    );
}

#[test]
fn cpus_alone_pick_performance_and_raise_memory_with_a_note() {
    let mut input = options("alice");
    input.cpus = Some(2);
    input.image = Some("codercom/code-server:4.106.3".to_owned());
    let created = validate_create(&input, &SwarmConfig::default()).expect("valid");
    assert_eq!(
        created.spec.guest,
        GuestSize {
            cpu_kind: CpuKind::Performance,
            cpus: 2,
            memory_mb: 4096
        }
    );
    assert_eq!(created.notes.len(), 1, "{:?}", created.notes);
    assert!(created.notes[0].contains("4096"));
}

#[test]
fn cpu_kind_overrides_and_explicit_memory_outside_bounds_names_the_range() {
    let config = SwarmConfig::default();
    let mut notes = Vec::new();
    let guest = resolve_guest(Some(2), Some("shared"), None, &config, &mut notes).expect("valid");
    assert_eq!(
        guest,
        GuestSize {
            cpu_kind: CpuKind::Shared,
            cpus: 2,
            memory_mb: 2048
        }
    );
    assert!(notes.is_empty());
    let error =
        resolve_guest(Some(1), None, Some(4096), &config, &mut notes).expect_err("too much");
    assert_eq!(error.field, "memory");
    assert!(error.rule.contains("256 to 2048"), "{error}");
    let error = resolve_guest(
        Some(2),
        Some("performance"),
        Some(2048),
        &config,
        &mut notes,
    )
    .expect_err("too little");
    assert!(error.rule.contains("4096 to 16384"), "{error}");
    let error = resolve_guest(Some(1), None, Some(1000), &config, &mut notes).expect_err("step");
    assert!(error.rule.contains("multiple of 256"), "{error}");
    let error = resolve_guest(Some(3), None, None, &config, &mut notes).expect_err("cpus");
    assert_eq!(error.field, "cpus");
    let error =
        resolve_guest(Some(16), Some("shared"), None, &config, &mut notes).expect_err("cpus");
    assert!(error.rule.contains("1, 2, 4, 6, 8"), "{error}");
    let error = resolve_guest(None, Some("turbo"), None, &config, &mut notes).expect_err("kind");
    assert_eq!(error.field, "cpu_kind");
    let odd_default = SwarmConfig {
        default_memory_mb: 1000,
        ..SwarmConfig::default()
    };
    let error = resolve_guest(None, None, None, &odd_default, &mut notes).expect_err("default");
    assert_eq!(error.field, "memory");
    assert!(error.rule.contains("multiple of 256"), "{error}");
}

/// The configured CPU kind and IP mode apply when a create names none; a create's
/// own values win.
#[test]
fn configured_cpu_kind_and_ip_mode_are_defaults_a_create_overrides() {
    let config = SwarmConfig {
        default_cpu_kind: Some("performance".to_owned()),
        default_ip_mode: IpMode::Private,
        ..SwarmConfig::default()
    };
    let spec = validate_create(&options("alice"), &config)
        .expect("valid")
        .spec;
    assert_eq!(spec.guest.cpu_kind, CpuKind::Performance);
    assert_eq!(spec.ip_mode, IpMode::Private);
    let own = CreateOptions {
        cpu_kind: Some("shared".to_owned()),
        ip: Some("dedicated".to_owned()),
        ..options("bob")
    };
    let spec = validate_create(&own, &config).expect("valid").spec;
    assert_eq!(spec.guest.cpu_kind, CpuKind::Shared);
    assert_eq!(spec.ip_mode, IpMode::Dedicated);
}

#[test]
fn regions_storage_env_and_metadata_rules() {
    let config = SwarmConfig::default();
    assert!(validate_region("fra", &config).is_ok());
    let error = validate_region("xyz", &config).expect_err("region");
    assert!(error.to_string().contains("ams, sea"), "{error}");
    assert!(validate_storage(1).is_ok() && validate_storage(500).is_ok());
    assert!(validate_storage(0).is_err() && validate_storage(501).is_err());
    let env = |key: &str| BTreeMap::from([(key.to_owned(), "v".to_owned())]);
    assert!(validate_env(&env("GIT_AUTHOR")).is_ok());
    assert!(validate_env(&env("_x1")).is_ok());
    for bad in [
        "FLY_APP",
        "fly_region",
        "1ABC",
        "A-B",
        "",
        "HASHED_PASSWORD",
        "PASSWORD",
    ] {
        let error = validate_env(&env(bad)).expect_err(bad);
        assert_eq!(error.field, "env");
    }
    let value = |v: &str| BTreeMap::from([("A".to_owned(), v.to_owned())]);
    assert!(validate_env(&value("x=y; \"quoted\"\tand tabbed, ünïcode")).is_ok());
    for bad in [
        "1\nHASHED_PASSWORD=x",
        "a\rb",
        "\u{1b}[31m",
        "a\0b",
        "\u{85}",
    ] {
        let error = validate_env(&value(bad)).expect_err(bad);
        assert!(error.rule.contains("control characters"), "{error}");
    }
    let meta = |key: &str| BTreeMap::from([(key.to_owned(), "v".to_owned())]);
    assert!(validate_metadata(&meta("team")).is_ok());
    assert!(validate_metadata(&meta("swarm_workspace_id")).is_err());
    assert!(validate_metadata(&meta("has space")).is_err());
}

#[test]
fn image_references() {
    for good in [
        "codercom/code-server:latest",
        "codercom/code-server:4.106.3",
        "code-server",
        "registry-1.docker.io/codercom/code-server:4.x",
        "ghcr.io/org/sub/image_name:v1.2-rc",
        "localhost:5000/img",
        "registry.fly.io/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "a__b/c--d",
    ] {
        assert!(
            validate_image(good).is_ok(),
            "{good}: {:?}",
            validate_image(good)
        );
    }
    for bad in [
        "",
        "Codercom/code-server",
        "img:",
        "img:-x",
        "/img",
        "img/",
        "a..b",
        "img@sha256:xyz",
        "a b",
    ] {
        let error = validate_image(bad).expect_err(bad);
        assert_eq!(error.field, "image");
    }
}

#[test]
fn idle_timeouts() {
    assert_eq!(parse_idle_timeout("90").expect("secs"), 90);
    assert_eq!(parse_idle_timeout("90s").expect("s"), 90);
    assert_eq!(parse_idle_timeout("30m").expect("m"), 1800);
    assert_eq!(parse_idle_timeout("1h30m").expect("hm"), 5400);
    for bad in [
        "60",
        "1m",
        "abc",
        "5x",
        "m",
        "10h5",
        "8d",
        "99999999999999999999h",
    ] {
        let error = parse_idle_timeout(bad).expect_err(bad);
        assert_eq!(error.field, "idle_timeout");
    }
}

#[test]
fn all_broken_rules_are_reported() {
    let input = CreateOptions {
        name: "Bad_Name".to_owned(),
        region: Some("mars".to_owned()),
        storage_gb: Some(0),
        ip: Some("public".to_owned()),
        ..CreateOptions::default()
    };
    let errors = validate_create(&input, &SwarmConfig::default()).expect_err("invalid");
    let fields: Vec<&str> = errors.iter().map(|error| error.field).collect();
    assert_eq!(fields, ["name", "region", "storage", "ip"]);
}

proptest::proptest! {
    #[test]
    fn name_validation_never_panics_and_accepts_only_the_rule(name in "\\PC{0,70}") {
        let valid = validate_name(&name).is_ok();
        let expected = !name.is_empty()
            && name.len() <= 63
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && !name.ends_with('-');
        proptest::prop_assert_eq!(valid, expected);
    }

    #[test]
    fn image_and_timeout_parsing_never_panic(text in "\\PC{0,40}") {
        let _ = validate_image(&text);
        let _ = parse_idle_timeout(&text);
    }
}
