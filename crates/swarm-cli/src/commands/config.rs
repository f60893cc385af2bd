//! `swarm config`: the effective settings and where each came from.

use anyhow::Context as _;
use serde_json::json;

use crate::Failure;
use crate::backend::Target;
use crate::output::Output;
use crate::remote::ServerTarget;
use crate::settings::{Settings, SettingsError};

/// `swarm config`: every effective value and where it came from. Never the token itself.
pub fn config(
    out: &Output,
    settings: &Settings,
    target: &Target,
    server: Option<&ServerTarget>,
) -> Result<(), Failure> {
    let server_json = server.map(|server| {
        json!({
            "url": server.shown_url(),
            "source": server.source_name(),
            "token": {"set": true, "source": server.token_source.to_string()},
        })
    });
    let store = crate::backend::store_at(settings, target).map(|s| s.shown());
    let (fly, token) = match target {
        Target::Fly {
            source,
            machines_url,
            api_url,
            ..
        } => (
            json!({"mode": "fly", "machines_api": machines_url, "graphql_api": api_url}),
            json!({"set": true, "source": source.to_string()}),
        ),
        Target::Local { reason } => (
            json!({"mode": "local", "reason": match reason {
                crate::backend::LocalReason::NoToken => "no Fly.io token found",
                crate::backend::LocalReason::Forced => "--local",
            }}),
            json!({"set": false}),
        ),
    };
    if out.json {
        out.json(&json!({"settings": settings, "fly": fly, "token": token, "store": store.as_ref().ok(), "server": server_json}))?;
        return Ok(());
    }
    let mut rows = vec![
        row("org", &settings.org.value, &settings.org.source),
        row("region", &settings.region.value, &settings.region.source),
        row(
            "regions",
            &settings.regions.value.join(" "),
            &settings.regions.source,
        ),
        row("image", &settings.image.value, &settings.image.source),
        row(
            "cpus",
            &settings.cpus.value.to_string(),
            &settings.cpus.source,
        ),
        row(
            "cpu_kind",
            settings.cpu_kind.value.as_deref().unwrap_or("(by cpus)"),
            &settings.cpu_kind.source,
        ),
        row(
            "memory",
            &format!("{} MB", settings.memory.value),
            &settings.memory.source,
        ),
        row(
            "storage",
            &format!("{} GB", settings.storage.value),
            &settings.storage.source,
        ),
        row(
            "idle_timeout",
            &settings.idle_timeout.value,
            &settings.idle_timeout.source,
        ),
        row("ip", &settings.ip.value, &settings.ip.source),
        row(
            "dotfiles",
            settings.dotfiles.value.as_deref().unwrap_or("(none)"),
            &settings.dotfiles.source,
        ),
        row(
            "pool.region",
            settings
                .pool_region
                .value
                .as_deref()
                .unwrap_or("(the default region)"),
            &settings.pool_region.source,
        ),
        row(
            "pool.size",
            &settings
                .pool_size
                .value
                .map_or("(none: pool fill needs --size)".to_owned(), |n| {
                    n.to_string()
                }),
            &settings.pool_size.source,
        ),
        vec![
            "db".into(),
            store.unwrap_or_else(|e| format!("({e})")),
            settings.db.source.to_string(),
        ],
        vec![
            "config file".into(),
            settings
                .config_file
                .value
                .as_ref()
                .map_or("(none)".into(), |p| p.display().to_string()),
            settings.config_file.source.to_string(),
        ],
    ];
    match target {
        Target::Fly {
            source,
            machines_url,
            api_url,
            ..
        } => {
            rows.push(vec!["fly".into(), "Fly.io API".into(), String::new()]);
            rows.push(vec![
                "machines api".into(),
                machines_url.clone(),
                "env FLY_FLAPS_BASE_URL or default".into(),
            ]);
            rows.push(vec![
                "graphql api".into(),
                api_url.clone(),
                "env FLY_API_BASE_URL or default".into(),
            ]);
            rows.push(vec![
                "token".into(),
                "(set, hidden)".into(),
                source.to_string(),
            ]);
        }
        Target::Local { .. } => {
            rows.push(vec![
                "fly".into(),
                "local (fly-sim, in-process)".into(),
                fly["reason"].as_str().unwrap_or("").into(),
            ]);
            rows.push(vec!["token".into(), "(none)".into(), String::new()]);
        }
    }
    if let Some(server) = server {
        rows.push(vec![
            "server".into(),
            server.shown_url().to_owned(),
            server.source_name().into(),
        ]);
        rows.push(vec![
            "server token".into(),
            "(set, hidden)".into(),
            server.token_source.to_string(),
        ]);
    }
    out.table(&["setting", "value", "source"], rows)
        .context("writing the configuration")?;
    if server.is_some() {
        out.note("Workspace commands go to the server; the Fly.io settings above apply on this machine only.");
    }
    Ok(())
}

fn row(key: &str, value: &str, source: &crate::settings::Source) -> Vec<String> {
    vec![key.to_owned(), value.to_owned(), source.to_string()]
}

impl From<SettingsError> for Failure {
    fn from(error: SettingsError) -> Self {
        Failure::usage(error.0)
    }
}
