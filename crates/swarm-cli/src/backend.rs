//! Which Fly.io to talk to: the real one (a token was found) or the local one (fly-sim
//! in-process, its world persisted beside the store). Records of the two never mix:
//! each has its own store file, and the store refuses an endpoint it was not made for.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use fly_api::{FlyClient, Token, TokenSource};
use fly_sim::{Latency, Sim, SimConfig, SimHandle};
use swarm::{AnyStore, FlyProvider, SqliteStore, StoreError, Swarm};

use crate::settings::{Env, Settings, SettingsError};

/// The workspace manager as the CLI uses it.
pub type App = Swarm<AnyStore, FlyProvider>;

/// Label stored with local records (the sim's port changes on every run).
pub const LOCAL_ENDPOINT: &str = "local-fly-sim";

/// Where the Fly API is, and with what token.
#[derive(Debug)]
pub enum Target {
    /// Real Fly.io (or any Fly-compatible API named by the env vars).
    Fly {
        token: Token,
        source: TokenSource,
        machines_url: String,
        api_url: String,
    },
    /// The embedded local Fly.
    Local { reason: LocalReason },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalReason {
    NoToken,
    Forced,
}

impl Target {
    pub fn resolve(force_local: bool, env: &Env) -> Self {
        if force_local {
            return Self::Local {
                reason: LocalReason::Forced,
            };
        }
        match fly_api::discover_token_with(|name| env.get(name).cloned(), None) {
            Some((token, source)) => Self::Fly {
                token,
                source,
                machines_url: env_or(env, "FLY_FLAPS_BASE_URL", "https://api.machines.dev"),
                api_url: env_or(env, "FLY_API_BASE_URL", "https://api.fly.io"),
            },
            None => Self::Local {
                reason: LocalReason::NoToken,
            },
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self, Self::Local { .. })
    }
}

fn env_or(env: &Env, name: &str, default: &str) -> String {
    env.get(name)
        .filter(|v| !v.is_empty())
        .cloned()
        .unwrap_or_else(|| default.to_owned())
}

/// Our files: `$XDG_STATE_HOME/swarm` (or the platform's equivalent).
pub fn state_dir() -> anyhow::Result<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "swarm")
        .context("cannot find the user's home folder to keep swarm's state in; pass --db")?;
    Ok(dirs
        .state_dir()
        .unwrap_or_else(|| dirs.data_local_dir())
        .to_path_buf())
}

/// Where the store is: `--db`/`SWARM_DB`/config, else one file per Fly under the
/// state dir.
pub enum StoreAt {
    File(PathBuf),
    /// A PostgreSQL URL; it may hold a password, so it is shown masked only.
    Postgres(String),
}

impl StoreAt {
    /// For messages and `swarm config`: the path, or the URL with its password masked.
    pub fn shown(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Postgres(url) => swarm::store::mask_url(url),
        }
    }
}

impl std::fmt::Debug for StoreAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreAt({})", self.shown())
    }
}

pub fn store_at(settings: &Settings, target: &Target) -> anyhow::Result<StoreAt> {
    if let Some(url) = &settings.db.value
        && (url.starts_with("postgres://") || url.starts_with("postgresql://"))
    {
        return Ok(StoreAt::Postgres(url.clone()));
    }
    store_path(settings, target).map(StoreAt::File)
}

/// The store file's path: `--db`/`SWARM_DB`/config, else one file per Fly under the
/// state dir.
pub fn store_path(settings: &Settings, target: &Target) -> anyhow::Result<PathBuf> {
    if let Some(url) = &settings.db.value {
        let path = sqlite_path(url)
            .and_then(|path| regular_file_or_absent(url, path))
            .map_err(|e| anyhow::Error::new(e).context(settings.db.source.to_string()))?;
        return Ok(path);
    }
    let file = if target.is_local() {
        "local.db"
    } else {
        "swarm.db"
    };
    Ok(state_dir()?.join(file))
}

/// Accepts `sqlite://PATH`, `sqlite:PATH` or a bare path. No `..` tricks: the path is
/// used as given, but must name a file, not a folder.
pub fn sqlite_path(url: &str) -> Result<PathBuf, SettingsError> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if url.contains("://") && !url.starts_with("sqlite://") {
        return Err(SettingsError(format!(
            "invalid db {}: give a file path, sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB",
            swarm::store::mask_url(url)
        )));
    }
    if path.is_empty() || path.ends_with('/') || path.contains('\0') {
        return Err(SettingsError(format!(
            "invalid db {url:?}: give a file path, e.g. sqlite:///home/me/swarm.db"
        )));
    }
    Ok(PathBuf::from(path))
}

/// The store must be a file: a folder is refused at once, and a FIFO or device would
/// block the open or take the store's `chmod 0600` (think `--db /dev/null` as root).
fn regular_file_or_absent(url: &str, path: PathBuf) -> Result<PathBuf, SettingsError> {
    match std::fs::metadata(&path) {
        Ok(meta) if !meta.is_file() => {
            let what = if meta.is_dir() {
                "a folder"
            } else {
                "not a regular file"
            };
            Err(SettingsError(format!(
                "invalid db {url:?}: {} is {what}; give a file path, e.g. sqlite:///home/me/swarm.db",
                path.display()
            )))
        }
        _ => Ok(path),
    }
}

/// A connected manager, plus the embedded Fly when there is one.
#[derive(Debug)]
pub struct Backend {
    pub app: App,
    pub sim: Option<SimHandle>,
}

impl Backend {
    pub async fn connect(settings: &Settings, target: &Target, env: &Env) -> anyhow::Result<Self> {
        let mut config = settings.swarm_config()?;
        let store_at = store_at(settings, target)?;
        // A store this swarm must not open is refused before the local Fly starts.
        if let StoreAt::File(path) = &store_at {
            SqliteStore::check_openable(path)
                .await
                .with_context(|| format!("cannot open the store {}", path.display()))?;
        }
        let (client, sim) = match target {
            Target::Fly {
                token,
                source,
                machines_url,
                api_url,
            } => {
                config.fly_endpoint = machines_url.clone();
                // A Fly-compatible API on this machine (a fly-sim) also serves the app proxy.
                if is_loopback(machines_url) {
                    config.probe_base_url = Some(machines_url.clone());
                }
                if let Some(url) = env.get("SWARM_PROBE_URL").filter(|v| !v.is_empty()) {
                    config.probe_base_url = Some(url.clone());
                }
                let client = FlyClient::builder()
                    .token(token.clone())
                    .machines_base_url(machines_url)
                    .api_base_url(api_url)
                    .user_agent(concat!("swarm/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| fly_settings_error(&e, source))?;
                (client, None)
            }
            Target::Local { .. } => {
                // The sim makes the folder for its world file, after checking its settings.
                let world_beside = match &store_at {
                    StoreAt::File(path) => path.clone(),
                    StoreAt::Postgres(_) => state_dir()?.join("local-postgres.db"),
                };
                let sim = start_local_fly(&world_beside, env).await?;
                config.fly_endpoint = LOCAL_ENDPOINT.to_owned();
                config.probe_base_url = Some(sim.base_url());
                let client = FlyClient::builder()
                    .token(Token::new("local-fly-sim"))
                    .machines_base_url(sim.base_url())
                    .api_base_url(sim.base_url())
                    .build()
                    .context("cannot set up the client for the local Fly")?;
                (client, Some(sim))
            }
        };
        let store = open_store(&store_at, &config.fly_endpoint).await?;
        let provider = FlyProvider::new(client, &config);
        Ok(Self {
            app: Swarm::new(store, provider, config),
            sim,
        })
    }

    /// Persists the local Fly's world (if any). Call on every exit path.
    pub async fn close(self) {
        // Locks dropped on an error path are freed in the background: let them finish.
        swarm::lock::finish_releases().await;
        self.app.store().close().await;
        if let Some(sim) = self.sim {
            sim.shutdown().await;
        }
    }
}

/// The store alone, for commands that need no Fly (`swarm token create`): no local Fly
/// is started, so a running `swarm serve` keeps the only copy of its world.
pub async fn store_only(settings: &Settings, target: &Target) -> anyhow::Result<AnyStore> {
    let endpoint = match target {
        Target::Fly { machines_url, .. } => machines_url.clone(),
        Target::Local { .. } => LOCAL_ENDPOINT.to_owned(),
    };
    open_store(&store_at(settings, target)?, &endpoint).await
}

async fn open_store(store_at: &StoreAt, fly_endpoint: &str) -> anyhow::Result<AnyStore> {
    match store_at {
        StoreAt::File(store_path) => {
            create_parent(store_path)?;
            match SqliteStore::open(store_path, fly_endpoint).await {
                Ok(store) => Ok(AnyStore::Sqlite(store)),
                // Already names the file and what to do.
                Err(error @ StoreError::Unusable { .. }) => Err(error.into()),
                Err(error) => Err(anyhow::Error::new(error)
                    .context(format!("cannot open the store {}", store_path.display()))),
            }
        }
        // Its errors name the server (password masked) and what to do.
        StoreAt::Postgres(url) => Ok(swarm::store::open_store(url, fly_endpoint).await?),
    }
}

fn create_parent(store_path: &Path) -> anyhow::Result<()> {
    if let Some(parent) = store_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the folder {}", parent.display()))?;
    }
    Ok(())
}

/// The client refuses a bad endpoint or token before any request: bad input, named by
/// the variable the user set (the client only knows its own field names).
fn fly_settings_error(error: &fly_api::Error, source: &TokenSource) -> SettingsError {
    let text = error.to_string();
    let culprit = if text.contains("machines_base_url") {
        "FLY_FLAPS_BASE_URL".to_owned()
    } else if text.contains("api_base_url") {
        "FLY_API_BASE_URL".to_owned()
    } else {
        source.to_string()
    };
    SettingsError(format!("invalid Fly.io setting ({culprit}): {text}"))
}

fn is_loopback(url: &str) -> bool {
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    host == "localhost" || host.starts_with("127.") || url.contains("://[::1]")
}

/// The local Fly's world lives beside the store: `local.db` → `local.fly.json`.
pub fn local_world_path(store_path: &Path) -> PathBuf {
    store_path.with_extension("fly.json")
}

async fn start_local_fly(store_path: &Path, env: &Env) -> anyhow::Result<SimHandle> {
    let latency = match env.get("SWARM_LOCAL_LATENCY").map(String::as_str) {
        None | Some("" | "fly") => Latency::Fly,
        Some("zero") => Latency::Zero,
        Some(other) => {
            return Err(SettingsError(format!(
                "invalid SWARM_LOCAL_LATENCY {other:?}: use fly (Fly's real timings) or zero"
            ))
            .into());
        }
    };
    let config = SimConfig {
        latency,
        state_file: Some(local_world_path(store_path)),
        wait_lock: true,
        ..SimConfig::default()
    };
    Sim::start(config, "127.0.0.1:0")
        .await
        .context("cannot start the local Fly (fly-sim)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_urls() {
        assert_eq!(
            sqlite_path("sqlite:///tmp/a.db").unwrap(),
            PathBuf::from("/tmp/a.db")
        );
        assert_eq!(
            sqlite_path("sqlite:rel.db").unwrap(),
            PathBuf::from("rel.db")
        );
        assert_eq!(
            sqlite_path("/tmp/b.db").unwrap(),
            PathBuf::from("/tmp/b.db")
        );
        assert!(
            sqlite_path("postgres://x")
                .unwrap_err()
                .0
                .contains("sqlite://")
        );
        assert!(sqlite_path("sqlite://").is_err());
        assert!(sqlite_path("/tmp/dir/").is_err());
    }

    #[test]
    fn the_store_must_be_a_regular_file_or_not_exist_yet() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().to_string_lossy().into_owned();
        let err = regular_file_or_absent(&folder, PathBuf::from(&folder)).unwrap_err();
        assert!(err.0.contains("is a folder"), "{err}");
        let err = regular_file_or_absent("/dev/null", PathBuf::from("/dev/null")).unwrap_err();
        assert!(err.0.contains("not a regular file"), "{err}");
        let new = dir.path().join("new.db");
        assert_eq!(regular_file_or_absent("x", new.clone()).unwrap(), new);
        std::fs::write(&new, b"").unwrap();
        assert_eq!(regular_file_or_absent("x", new.clone()).unwrap(), new);
    }

    #[test]
    fn a_bad_endpoint_or_token_names_the_variable() {
        let build = |url: &str, token: &str| {
            FlyClient::builder()
                .token(Token::new(token))
                .machines_base_url(url)
                .build()
                .unwrap_err()
        };
        let err = fly_settings_error(&build("not a url", "t"), &TokenSource::FlyApiToken);
        assert!(err.0.contains("FLY_FLAPS_BASE_URL"), "{err}");
        let err = fly_settings_error(
            &build("http://127.0.0.1:9", "a\r\nX-Injected: 1"),
            &TokenSource::FlyApiToken,
        );
        assert!(err.0.contains("env FLY_API_TOKEN"), "{err}");
        assert!(
            !err.0.contains("X-Injected"),
            "the token is not echoed: {err}"
        );
    }

    #[test]
    fn token_decides_the_target() {
        let mut env = Env::new();
        assert!(Target::resolve(false, &env).is_local() || dirs_have_flyctl_token());
        env.insert("FLY_API_TOKEN".into(), "t".into());
        env.insert("FLY_FLAPS_BASE_URL".into(), "http://127.0.0.1:9".into());
        match Target::resolve(false, &env) {
            Target::Fly {
                machines_url,
                api_url,
                source,
                ..
            } => {
                assert_eq!(machines_url, "http://127.0.0.1:9");
                assert_eq!(api_url, "https://api.fly.io");
                assert_eq!(source, TokenSource::FlyApiToken);
            }
            other => panic!("expected Fly, got {other:?}"),
        }
        assert!(Target::resolve(true, &env).is_local());
    }

    fn dirs_have_flyctl_token() -> bool {
        fly_api::discover_token_with(|_| None, None).is_some()
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback("http://127.0.0.1:4280"));
        assert!(is_loopback("http://localhost:1"));
        assert!(!is_loopback("https://api.machines.dev"));
    }
}
