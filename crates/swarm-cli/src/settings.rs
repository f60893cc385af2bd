//! Configuration: flags > env > config file > defaults, each value remembering where it
//! came from so `swarm config` can say so.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use swarm::SwarmConfig;
use swarm::validate::{
    ValidationError, parse_cpu_kind, parse_idle_timeout, parse_ip_mode, validate_region,
};

use crate::cli::GlobalArgs;

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum Source {
    Flag(&'static str),
    Env(&'static str),
    File(PathBuf),
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag(flag) => write!(f, "flag {flag}"),
            Self::Env(var) => write!(f, "env {var}"),
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Default => f.write_str("default"),
        }
    }
}

/// The config file's keys. Unknown keys are an error, so a typo is not silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub org: Option<String>,
    pub region: Option<String>,
    pub regions: Option<Vec<String>>,
    pub image: Option<FileImage>,
    pub cpus: Option<u32>,
    pub cpu_kind: Option<String>,
    pub memory: Option<u32>,
    pub storage: Option<u32>,
    pub idle_timeout: Option<String>,
    /// `stop` or `suspend` (see `swarm create --idle-policy`).
    pub idle_policy: Option<String>,
    pub ip: Option<String>,
    /// A dotfiles repository for every create that names none.
    pub dotfiles: Option<String>,
    pub db: Option<String>,
    /// `[pool]`: what `swarm pool fill` does without flags.
    pub pool: Option<PoolFileConfig>,
    /// Per-user limits for `swarm serve`.
    pub quotas: Option<swarm_controller::Quotas>,
}

/// The config file's image: `image = "REF"`, or `image.repository` with `image.tag`
/// (e.g. a workspace image of one's own in Fly's registry, pinned by its tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileImage {
    Reference(String),
    Parts { repository: String, tag: String },
}

impl FileImage {
    /// The image reference it names (`repository:tag` for the parts).
    pub fn reference(&self) -> String {
        match self {
            Self::Reference(reference) => reference.clone(),
            Self::Parts { repository, tag } => format!("{repository}:{tag}"),
        }
    }
}

impl<'de> Deserialize<'de> for FileImage {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let parts = match toml::Value::deserialize(deserializer)? {
            toml::Value::String(reference) => return Ok(Self::Reference(reference)),
            toml::Value::Table(parts) => parts,
            _ => {
                return Err(D::Error::custom(
                    "image must be an image reference (image = \"REPO:TAG\") or image.repository with image.tag",
                ));
            }
        };
        if let Some(key) = parts.keys().find(|k| *k != "repository" && *k != "tag") {
            return Err(D::Error::custom(format!(
                "unknown key image.{key}: the image table takes repository and tag"
            )));
        }
        let text = |key: &str| match parts.get(key) {
            Some(toml::Value::String(value)) if !value.trim().is_empty() => Ok(value.clone()),
            Some(_) => Err(D::Error::custom(format!(
                "image.{key} must be a non-empty string"
            ))),
            None => Err(D::Error::custom(format!(
                "image.{key} is required beside image.{}: give both (e.g. image.repository = \"registry.fly.io/my-images\", image.tag = \"2026-12-07\")",
                if key == "tag" { "repository" } else { "tag" }
            ))),
        };
        let (repository, tag) = (text("repository")?, text("tag")?);
        let last = repository.rsplit('/').next().unwrap_or_default();
        if repository.contains('@') || last.contains(':') {
            return Err(D::Error::custom(format!(
                "image.repository {repository:?} must be a repository without a tag or digest; put the tag in image.tag"
            )));
        }
        if tag.contains([':', '/', '@']) || tag.chars().any(char::is_whitespace) {
            return Err(D::Error::custom(format!(
                "image.tag {tag:?} must be a tag alone (letters, digits, '.', '_', '-'), without ':', '/' or '@'"
            )));
        }
        Ok(Self::Parts { repository, tag })
    }
}

/// The config file's `[pool]` table.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolFileConfig {
    pub region: Option<String>,
    pub size: Option<u32>,
}

/// A configuration problem: bad input, exit 2, nothing changed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

impl From<ValidationError> for SettingsError {
    fn from(error: ValidationError) -> Self {
        Self(error.to_string())
    }
}

/// One resolved value and its origin.
#[derive(Debug, Clone, Serialize)]
pub struct Setting<T> {
    pub value: T,
    pub source: Source,
}

/// The effective configuration (without the Fly token, which `backend` resolves).
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub config_file: Setting<Option<PathBuf>>,
    pub org: Setting<String>,
    pub region: Setting<String>,
    pub regions: Setting<Vec<String>>,
    pub image: Setting<String>,
    pub cpus: Setting<u32>,
    pub cpu_kind: Setting<Option<String>>,
    pub memory: Setting<u32>,
    pub storage: Setting<u32>,
    pub idle_timeout: Setting<String>,
    pub idle_policy: Setting<String>,
    pub ip: Setting<String>,
    pub dotfiles: Setting<Option<String>>,
    pub db: Setting<Option<String>>,
    /// `pool fill`'s region when `--region` is not given (`None`: the default region).
    pub pool_region: Setting<Option<String>>,
    /// `pool fill`'s size when `--size` is not given.
    pub pool_size: Setting<Option<u32>>,
    pub quotas: Setting<swarm_controller::Quotas>,
}

/// Reads the environment through a map so tests can pass their own.
pub type Env = BTreeMap<String, String>;

pub fn process_env() -> Env {
    // A value that is not UTF-8 is kept (lossily) so that it is refused by the rules
    // like any other bad value, instead of silently counting as unset.
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.to_string_lossy().into_owned())))
        .collect()
}

/// The default config file: `$XDG_CONFIG_HOME/swarm/config.toml` (or the platform's).
pub fn default_config_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "swarm")
        .map(|dirs| dirs.config_dir().join("config.toml"))
}

fn pick<T: Clone>(
    flag: Option<(T, &'static str)>,
    env: Option<(T, &'static str)>,
    file: Option<T>,
    file_path: &Path,
    default: T,
) -> Setting<T> {
    if let Some((value, name)) = flag {
        return Setting {
            value,
            source: Source::Flag(name),
        };
    }
    if let Some((value, name)) = env {
        return Setting {
            value,
            source: Source::Env(name),
        };
    }
    if let Some(value) = file {
        return Setting {
            value,
            source: Source::File(file_path.to_owned()),
        };
    }
    Setting {
        value: default,
        source: Source::Default,
    }
}

fn env_str(env: &Env, name: &'static str) -> Option<(String, &'static str)> {
    env.get(name)
        .filter(|v| !v.is_empty())
        .map(|v| (v.clone(), name))
}

fn env_u32(env: &Env, name: &'static str) -> Result<Option<(u32, &'static str)>, SettingsError> {
    match env_str(env, name) {
        None => Ok(None),
        Some((text, _)) => text
            .trim()
            .parse::<u32>()
            .map(|n| Some((n, name)))
            .map_err(|_| SettingsError(format!("invalid {name} {text:?}: must be a whole number"))),
    }
}

impl Settings {
    /// Resolves every setting. Errors name the flag, variable or file key at fault.
    pub fn resolve(global: &GlobalArgs, env: &Env) -> Result<Self, SettingsError> {
        let (config_path, config_source) = match (&global.config, env.get("SWARM_CONFIG")) {
            (Some(path), _) => (Some(path.clone()), Source::Flag("--config")),
            (None, Some(path)) if !path.is_empty() => {
                (Some(PathBuf::from(path)), Source::Env("SWARM_CONFIG"))
            }
            _ => (default_config_path(), Source::Default),
        };
        let explicit = config_source != Source::Default;
        let file = match &config_path {
            Some(path) => read_file(path, explicit)?,
            None => FileConfig::default(),
        };
        Self::from_file(global, env, file, config_path, config_source)
    }

    /// Resolves every setting from a config file already parsed (`config_path` is where
    /// it was read from, for the sources).
    pub fn from_file(
        global: &GlobalArgs,
        env: &Env,
        file: FileConfig,
        config_path: Option<PathBuf>,
        config_source: Source,
    ) -> Result<Self, SettingsError> {
        let defaults = SwarmConfig::default();
        let path = config_path.clone().unwrap_or_default();

        let regions = pick(
            None,
            env_str(env, "SWARM_REGIONS").map(|(v, n)| (split_list(&v), n)),
            file.regions.clone(),
            &path,
            defaults.regions.clone(),
        );
        if regions.value.is_empty() {
            return Err(SettingsError(format!(
                "invalid regions ({}): list at least one region",
                regions.source
            )));
        }
        for region in &regions.value {
            if region.len() != 3 || !region.bytes().all(|b| b.is_ascii_lowercase()) {
                return Err(SettingsError(format!(
                    "invalid regions ({}): {region:?} is not a Fly region code (three lowercase letters, e.g. ams)",
                    regions.source
                )));
            }
        }
        let settings = Self {
            config_file: Setting {
                value: config_path.filter(|p| p.is_file()),
                source: config_source,
            },
            org: pick(
                global.org.clone().map(|v| (v, "--org")),
                env_str(env, "FLY_ORG"),
                file.org.clone(),
                &path,
                defaults.org.clone(),
            ),
            region: pick(
                None,
                env_str(env, "SWARM_REGION"),
                file.region.clone(),
                &path,
                defaults.default_region,
            ),
            regions,
            image: pick(
                None,
                env_str(env, "SWARM_IMAGE"),
                file.image.as_ref().map(FileImage::reference),
                &path,
                defaults.default_image,
            ),
            cpus: pick(
                None,
                env_u32(env, "SWARM_CPUS")?,
                file.cpus,
                &path,
                defaults.default_cpus,
            ),
            cpu_kind: pick(
                None,
                env_str(env, "SWARM_CPU_KIND").map(|(v, n)| (Some(v), n)),
                file.cpu_kind.clone().map(Some),
                &path,
                None,
            ),
            memory: pick(
                None,
                env_u32(env, "SWARM_MEMORY")?,
                file.memory,
                &path,
                defaults.default_memory_mb,
            ),
            storage: pick(
                None,
                env_u32(env, "SWARM_STORAGE")?,
                file.storage,
                &path,
                defaults.default_storage_gb,
            ),
            idle_timeout: pick(
                None,
                env_str(env, "SWARM_IDLE_TIMEOUT"),
                file.idle_timeout.clone(),
                &path,
                format!("{}s", defaults.default_idle_timeout_secs),
            ),
            idle_policy: pick(
                None,
                env_str(env, "SWARM_IDLE_POLICY"),
                file.idle_policy.clone(),
                &path,
                defaults.default_idle_policy.as_str().to_owned(),
            ),
            ip: pick(
                None,
                env_str(env, "SWARM_IP"),
                file.ip.clone(),
                &path,
                "shared".to_owned(),
            ),
            dotfiles: pick(
                None,
                env_str(env, "SWARM_DOTFILES").map(|(v, n)| (Some(v), n)),
                file.dotfiles.clone().map(Some),
                &path,
                None,
            ),
            db: pick(
                global.db.clone().map(|v| (Some(v), "--db")),
                env_str(env, "SWARM_DB").map(|(v, n)| (Some(v), n)),
                file.db.clone().map(Some),
                &path,
                None,
            ),
            pool_region: pick(
                None,
                env_str(env, "SWARM_POOL_REGION").map(|(v, n)| (Some(v), n)),
                file.pool.as_ref().and_then(|p| p.region.clone()).map(Some),
                &path,
                None,
            ),
            pool_size: pick(
                None,
                env_u32(env, "SWARM_POOL_SIZE")?.map(|(v, n)| (Some(v), n)),
                file.pool.as_ref().and_then(|p| p.size).map(Some),
                &path,
                None,
            ),
            quotas: pick(None, None, file.quotas, &path, Default::default()),
        };
        settings.check()?;
        Ok(settings)
    }

    /// The defaults themselves must obey the same rules as flags.
    fn check(&self) -> Result<(), SettingsError> {
        let at =
            |source: &Source, e: ValidationError| SettingsError(format!("{e} (from {source})"));
        let config = SwarmConfig {
            regions: self.regions.value.clone(),
            ..SwarmConfig::default()
        };
        validate_region(&self.region.value, &config).map_err(|e| {
            // The list may be what is at fault (`regions` in the file, region by default).
            if self.regions.source == self.region.source {
                at(&self.region.source, e)
            } else {
                SettingsError(format!(
                    "{e} (region from {}, regions from {})",
                    self.region.source, self.regions.source
                ))
            }
        })?;
        if let Some(kind) = &self.cpu_kind.value {
            parse_cpu_kind(kind).map_err(|e| at(&self.cpu_kind.source, e))?;
        }
        parse_idle_timeout(&self.idle_timeout.value)
            .map_err(|e| at(&self.idle_timeout.source, e))?;
        parse_ip_mode(&self.ip.value).map_err(|e| at(&self.ip.source, e))?;
        if let Some(url) = &self.dotfiles.value {
            swarm::first_boot::validate_dotfiles_url(url)
                .map_err(|e| at(&self.dotfiles.source, e))?;
        }
        swarm::parse_idle_policy(&self.idle_policy.value)
            .map_err(|e| at(&self.idle_policy.source, e))?;
        if let Some(region) = &self.pool_region.value {
            validate_region(region, &config).map_err(|e| {
                SettingsError(format!(
                    "{} (pool region, from {})",
                    e, self.pool_region.source
                ))
            })?;
        }
        if let Some(size) = self.pool_size.value
            && !(1..=swarm::MAX_POOL_SIZE).contains(&size)
        {
            return Err(SettingsError(format!(
                "invalid pool size \"{size}\" (from {}): must be 1 to {} slots per region",
                self.pool_size.source,
                swarm::MAX_POOL_SIZE
            )));
        }
        swarm::validate::validate_image(&self.image.value)
            .map_err(|e| at(&self.image.source, e))?;
        swarm::validate::validate_storage(self.storage.value)
            .map_err(|e| at(&self.storage.source, e))?;
        // Default sizes are checked here, where their source is known; create would
        // refuse them too, but without naming the variable or file that set them.
        let memory = self.memory.value;
        if memory < 256 || !memory.is_multiple_of(256) {
            return Err(SettingsError(format!(
                "invalid memory \"{memory}\" (from {}): must be a multiple of 256 MB, at least 256",
                self.memory.source
            )));
        }
        let sized = SwarmConfig {
            default_memory_mb: memory,
            ..SwarmConfig::default()
        };
        swarm::validate::resolve_guest(
            Some(self.cpus.value),
            self.cpu_kind.value.as_deref(),
            None,
            &sized,
            &mut Vec::new(),
        )
        .map_err(|e| at(&self.cpus.source, e))?;
        if self.org.value.is_empty()
            || !self
                .org
                .value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(SettingsError(format!(
                "invalid org {:?} (from {}): an organization slug has lowercase letters, digits and dashes",
                self.org.value, self.org.source
            )));
        }
        Ok(())
    }

    /// The domain configuration these settings describe.
    pub fn swarm_config(&self) -> Result<SwarmConfig, SettingsError> {
        Ok(SwarmConfig {
            org: self.org.value.clone(),
            default_region: self.region.value.clone(),
            regions: self.regions.value.clone(),
            default_image: self.image.value.clone(),
            default_cpus: self.cpus.value,
            default_cpu_kind: self.cpu_kind.value.clone(),
            default_memory_mb: self.memory.value,
            default_storage_gb: self.storage.value,
            default_idle_timeout_secs: parse_idle_timeout(&self.idle_timeout.value)?,
            default_idle_policy: swarm::parse_idle_policy(&self.idle_policy.value)?,
            default_ip_mode: parse_ip_mode(&self.ip.value)?,
            default_dotfiles: self.dotfiles.value.clone(),
            ..SwarmConfig::default()
        })
    }
}

fn split_list(text: &str) -> Vec<String> {
    text.split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A config file is a few hundred bytes; reading stops well above that, so a path such
/// as `/dev/zero` is refused instead of read forever.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

fn read_file(path: &Path, explicit: bool) -> Result<FileConfig, SettingsError> {
    let cannot_read = |e: &dyn fmt::Display| {
        SettingsError(format!("cannot read config file {}: {e}", path.display()))
    };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            return Ok(FileConfig::default());
        }
        Err(e) => return Err(cannot_read(&e)),
    };
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_CONFIG_BYTES + 1),
        &mut bytes,
    )
    .map_err(|e| cannot_read(&e))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(cannot_read(
            &"larger than 1 MiB; is it really swarm's config file?",
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        cannot_read(&format!(
            "not UTF-8 text (invalid byte at offset {}); is it really swarm's config file?",
            e.utf8_error().valid_up_to()
        ))
    })?;
    parse_file(&text, path)
}

/// Parses a config file's text; errors name the file and the key or line at fault.
pub fn parse_file(text: &str, path: &Path) -> Result<FileConfig, SettingsError> {
    toml::from_str(text).map_err(|e| {
        SettingsError(format!(
            "invalid config file {}: {}",
            path.display(),
            describe_toml_error(text, &e)
        ))
    })
}

/// Where and what, without quoting the file: a file given by mistake (`~/.fly/config.yml`,
/// `/proc/self/environ`) may hold a token, and toml's own message shows the line.
fn describe_toml_error(text: &str, error: &toml::de::Error) -> String {
    let message: String = error
        .message()
        .trim_end()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let Some(span) = error.span() else {
        return message;
    };
    let start = span.start.min(text.len());
    let before = text.get(..start).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    // Name the key of that line when it is a plain `key = ...` or a `[table]` header.
    let line_text = text[line_start..].lines().next().unwrap_or("").trim();
    let key = if line_text.starts_with('[') {
        line_text
            .split(']')
            .next()
            .map(|k| k.trim_matches(['[', ' ']))
    } else {
        line_text.split_once('=').map(|(k, _)| k.trim())
    }
    .filter(|k| {
        !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    });
    match key {
        Some(key) => format!("line {line}, column {column} (key {key}): {message}"),
        None => format!("line {line}, column {column}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(config: Option<PathBuf>) -> GlobalArgs {
        GlobalArgs {
            json: false,
            local: false,
            org: None,
            db: None,
            config,
            server: None,
            token_file: None,
            verbose: 0,
        }
    }

    #[test]
    fn flags_beat_env_beat_file_beat_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "region = \"fra\"\norg = \"file-org\"\nstorage = 20\n",
        )
        .unwrap();
        let mut env = Env::new();
        env.insert("FLY_ORG".into(), "env-org".into());
        let mut args = global(Some(path.clone()));
        let s = Settings::resolve(&args, &env).unwrap();
        assert_eq!(s.region.value, "fra");
        assert_eq!(s.region.source, Source::File(path.clone()));
        assert_eq!(s.org.value, "env-org");
        assert_eq!(s.org.source, Source::Env("FLY_ORG"));
        assert_eq!(s.storage.value, 20);
        assert_eq!(s.cpus.source, Source::Default);
        args.org = Some("flag-org".into());
        let s = Settings::resolve(&args, &env).unwrap();
        assert_eq!(
            (s.org.value.as_str(), s.org.source),
            ("flag-org", Source::Flag("--org"))
        );
    }

    #[test]
    fn the_image_is_a_reference_or_a_repository_with_a_tag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let resolve = |text: &str| {
            std::fs::write(&path, text).unwrap();
            Settings::resolve(&global(Some(path.clone())), &Env::new())
        };
        let s = resolve("image = \"codercom/code-server:4.106.3\"\n").unwrap();
        assert_eq!(s.image.value, "codercom/code-server:4.106.3");
        let s =
            resolve("image.repository = \"registry.fly.io/team-images\"\nimage.tag = \"0.2.0\"\n")
                .unwrap();
        assert_eq!(s.image.value, "registry.fly.io/team-images:0.2.0");
        assert_eq!(s.image.source, Source::File(path.clone()));
        let s = resolve("[image]\nrepository = \"localhost:5000/ws\"\ntag = \"v1\"\n").unwrap();
        assert_eq!(
            s.image.value, "localhost:5000/ws:v1",
            "a registry port is no tag"
        );

        for (text, names) in [
            (
                "image.repository = \"registry.fly.io/x\"\n",
                "image.tag is required",
            ),
            ("image.tag = \"v1\"\n", "image.repository is required"),
            (
                "image.repository = \"registry.fly.io/x:v0\"\nimage.tag = \"v1\"\n",
                "image.repository",
            ),
            (
                "image.repository = \"registry.fly.io/x\"\nimage.tag = \"a:b\"\n",
                "image.tag",
            ),
            (
                "image.repository = \"r\"\nimage.tag = \"v1\"\nimage.digest = \"x\"\n",
                "image.digest",
            ),
            ("image = 3\n", "image must be"),
            (
                "image.repository = \"\"\nimage.tag = \"v1\"\n",
                "image.repository",
            ),
        ] {
            let error = resolve(text).unwrap_err();
            assert!(error.0.contains(names), "{text:?}: {error}");
            assert!(error.0.contains(&path.display().to_string()), "{error}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_culprit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "regoin = \"fra\"\n").unwrap();
        let err = Settings::resolve(&global(Some(path.clone())), &Env::new()).unwrap_err();
        assert!(err.0.contains("regoin"), "{err}");
        std::fs::write(&path, "region = \"xyz\"\n").unwrap();
        let err = Settings::resolve(&global(Some(path.clone())), &Env::new()).unwrap_err();
        assert!(
            err.0.contains("region") && err.0.contains("xyz") && err.0.contains("file"),
            "{err}"
        );
        let mut env = Env::new();
        env.insert("SWARM_CPUS".into(), "two".into());
        let err = Settings::resolve(&global(None), &env).unwrap_err();
        assert!(err.0.contains("SWARM_CPUS"), "{err}");
    }

    #[test]
    fn config_errors_say_where_but_never_quote_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yml");
        // flyctl's file given by mistake: toml's own message would print the token line.
        std::fs::write(&path, "access_token: fm2_canary-secret\nlast_login: x\n").unwrap();
        let err = Settings::resolve(&global(Some(path.clone())), &Env::new()).unwrap_err();
        assert!(!err.0.contains("fm2_canary-secret"), "{err}");
        assert!(err.0.contains("line 1, column"), "{err}");
        std::fs::write(&path, "region = \"ams\"\nmemory = true\n").unwrap();
        let err = Settings::resolve(&global(Some(path.clone())), &Env::new()).unwrap_err();
        assert!(
            err.0.contains("line 2") && err.0.contains("key memory"),
            "{err}"
        );
        assert!(!err.0.contains('\n'), "one line: {err}");
        // Endless or binary input is refused, not read forever.
        let err = Settings::resolve(&global(Some("/dev/zero".into())), &Env::new()).unwrap_err();
        assert!(err.0.contains("larger than 1 MiB"), "{err}");
        std::fs::write(&path, b"region = \"\xff\"\n").unwrap();
        let err = Settings::resolve(&global(Some(path)), &Env::new()).unwrap_err();
        assert!(err.0.contains("not UTF-8"), "{err}");
    }

    #[test]
    fn a_region_outside_the_files_regions_names_both_sources() {
        // Found by the `config_file` fuzz target: `regions = ["sea"]` alone refused the
        // default region with "(from default)", not naming the file that caused it.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "regions = [\"sea\"]\n").unwrap();
        let err = Settings::resolve(&global(Some(path.clone())), &Env::new()).unwrap_err();
        let file = format!("regions from file {}", path.display());
        assert!(
            err.0.contains("region from default") && err.0.contains(&file),
            "{err}"
        );
        std::fs::write(&path, "regions = [\"sea\"]\nregion = \"sea\"\n").unwrap();
        let s = Settings::resolve(&global(Some(path)), &Env::new()).unwrap();
        assert_eq!(s.region.value, "sea");
    }

    #[test]
    fn a_missing_explicit_config_file_is_an_error_but_a_missing_default_is_not() {
        let err = Settings::resolve(&global(Some("/nonexistent/swarm.toml".into())), &Env::new())
            .unwrap_err();
        assert!(err.0.contains("/nonexistent/swarm.toml"), "{err}");
    }
}
