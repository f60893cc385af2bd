//! Entry point of the `config_file` fuzz target: the CLI's config file parser.

use std::path::{Path, PathBuf};

use swarm_cli::cli::GlobalArgs;
use swarm_cli::settings::{Env, Settings, Source, parse_file};

/// Where the fuzzed text pretends to come from; every error must name it.
const PATH: &str = "/fuzz/config.toml";

/// Feeds `data` to the config file parser as the file's text, then resolves the
/// settings from it as `swarm --config PATH` would with an empty environment.
///
/// Invariants: never panics; a parse error names the file; a file that parses either
/// resolves (each value the file gives is the value used, and the domain config builds)
/// or fails with a message naming the file; a create with the resolved defaults either
/// validates or returns errors that each name a field.
pub fn config_file(data: &[u8]) {
    // The real reader refuses non-UTF-8 before parsing; lossy text still exercises TOML.
    let text = String::from_utf8_lossy(data);
    let path = Path::new(PATH);
    let file = match parse_file(&text, path) {
        Ok(file) => file,
        Err(error) => {
            assert!(
                error
                    .0
                    .starts_with(&format!("invalid config file {PATH}: ")),
                "parse error without the file: {error}"
            );
            return;
        }
    };
    let expected = (
        file.region.clone(),
        file.org.clone(),
        file.image
            .as_ref()
            .map(swarm_cli::settings::FileImage::reference),
        file.storage,
        file.idle_timeout.clone(),
    );
    let global = GlobalArgs {
        json: false,
        local: false,
        org: None,
        db: None,
        config: Some(PathBuf::from(PATH)),
        server: None,
        token_file: None,
        verbose: 0,
    };
    let settings = match Settings::from_file(
        &global,
        &Env::new(),
        file,
        Some(PathBuf::from(PATH)),
        Source::Flag("--config"),
    ) {
        Ok(settings) => settings,
        Err(error) => {
            assert!(error.0.contains(PATH), "error without the file: {error}");
            return;
        }
    };
    let (region, org, image, storage, idle_timeout) = expected;
    let from_file = Source::File(PathBuf::from(PATH));
    for (given, setting) in [
        (region, &settings.region),
        (org, &settings.org),
        (image, &settings.image),
        (idle_timeout, &settings.idle_timeout),
    ] {
        if let Some(given) = given {
            assert_eq!(given, setting.value);
            assert_eq!(setting.source, from_file);
        }
    }
    if let Some(storage) = storage {
        assert_eq!(
            (storage, &settings.storage.source),
            (settings.storage.value, &from_file)
        );
    }
    let config = match settings.swarm_config() {
        Ok(config) => config,
        Err(error) => panic!("resolved settings give no domain config: {error}"),
    };
    let options = swarm_core::CreateOptions {
        name: "fuzz".to_owned(),
        ..swarm_core::CreateOptions::default()
    };
    match swarm_core::validate::validate_create(&options, &config) {
        Ok(created) => {
            assert_eq!(created.spec.region, config.default_region);
            assert_eq!(created.spec.storage_gb, config.default_storage_gb);
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "a refusal without a reason");
            for error in errors {
                assert!(!error.field.is_empty(), "an error naming no field: {error}");
            }
        }
    }
}
