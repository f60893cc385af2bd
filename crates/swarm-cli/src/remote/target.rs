//! Which controller to talk to and with which token: `--server` or `SWARM_SERVER`,
//! `SWARM_TOKEN` or `--token-file`.

use std::path::{Path, PathBuf};

use secrecy::SecretString;

use crate::Failure;
use crate::settings::Env;

use super::WAIT_SECS;

/// Where `--server` came from, to name it in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerSource {
    Flag,
    Env,
}

impl ServerSource {
    fn name(self) -> &'static str {
        match self {
            Self::Flag => "--server",
            Self::Env => "SWARM_SERVER",
        }
    }
}

/// Where the token came from, to name it in errors (never its text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Env,
    File(PathBuf),
}

impl std::fmt::Display for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env => f.write_str("env SWARM_TOKEN"),
            Self::File(path) => write!(f, "--token-file {}", path.display()),
        }
    }
}

/// An API token for the controller. `Debug` never prints it; only the request's
/// `Authorization` header (marked sensitive) ever holds its text.
#[derive(Clone)]
pub struct ServerToken(pub(super) SecretString);

impl std::fmt::Debug for ServerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerToken(<redacted>)")
    }
}

/// The controller to talk to: from `--server` or `SWARM_SERVER`, plus its token.
#[derive(Debug, Clone)]
pub struct ServerTarget {
    pub url: reqwest::Url,
    pub source: ServerSource,
    pub token: ServerToken,
    pub token_source: TokenSource,
    /// Seconds one request waits for an operation before asking again.
    pub wait_secs: u64,
}

impl ServerTarget {
    /// `None` when neither `--server` nor `SWARM_SERVER` is set: the CLI talks to Fly.
    pub fn resolve(
        flag: Option<&str>,
        token_file: Option<&Path>,
        env: &Env,
    ) -> Result<Option<Self>, Failure> {
        let (text, source) = match (flag, env.get("SWARM_SERVER")) {
            (Some(url), _) => (url, ServerSource::Flag),
            (None, Some(url)) if !url.is_empty() => (url.as_str(), ServerSource::Env),
            (None, _) => {
                if token_file.is_some() {
                    return Err(Failure::usage(
                        "--token-file is the token for --server: give --server URL (or SWARM_SERVER) too".into(),
                    ));
                }
                return Ok(None);
            }
        };
        let url = parse_server_url(text, source)?;
        let (token, token_source) = read_token(token_file, env)?;
        let wait_secs = match env.get("SWARM_SERVER_WAIT").filter(|v| !v.is_empty()) {
            None => WAIT_SECS,
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|secs| (1..=WAIT_SECS).contains(secs))
                .ok_or_else(|| {
                    Failure::usage(format!(
                        "invalid SWARM_SERVER_WAIT {text:?}: seconds from 1 to {WAIT_SECS}, how long one request waits for an operation"
                    ))
                })?,
        };
        Ok(Some(Self {
            url,
            source,
            token,
            token_source,
            wait_secs,
        }))
    }

    /// The URL as the user gave it, for messages (never holds a secret: refused).
    pub fn shown_url(&self) -> &str {
        self.url.as_str().trim_end_matches('/')
    }

    pub fn source_name(&self) -> &'static str {
        self.source.name()
    }

    /// Plain http to anything but this machine: the token would cross a network unencrypted.
    pub fn sends_token_in_the_clear(&self) -> bool {
        let loopback = match self.url.host() {
            Some(url::Host::Domain(name)) => name == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        self.url.scheme() == "http" && !loopback
    }
}

fn parse_server_url(text: &str, source: ServerSource) -> Result<reqwest::Url, Failure> {
    let name = source.name();
    let bad = |why: &str| {
        Failure::usage(format!(
            "invalid {name} {text:?}: {why}; e.g. https://swarm.example.com or http://127.0.0.1:8080"
        ))
    };
    let url = reqwest::Url::parse(text.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must start with http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Not echoed: the part before @ may be a secret.
        return Err(Failure::usage(format!(
            "invalid {name}: it holds a user name or password; give the URL alone and the token in SWARM_TOKEN or --token-file"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    Ok(url)
}

fn read_token(file: Option<&Path>, env: &Env) -> Result<(ServerToken, TokenSource), Failure> {
    let (text, source) = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|error| {
                Failure::usage(format!(
                    "cannot read --token-file {}: {error}",
                    path.display()
                ))
            })?;
            (text, TokenSource::File(path.to_owned()))
        }
        None => match env.get("SWARM_TOKEN") {
            Some(text) if !text.trim().is_empty() => (text.clone(), TokenSource::Env),
            _ => {
                return Err(Failure::usage(
                    "--server needs an API token: set SWARM_TOKEN, or give --token-file PATH (an admin makes one with `swarm token create --user NAME`)".into(),
                ));
            }
        },
    };
    let token = text.trim();
    // Checked here so the header cannot fail later; the text is never echoed.
    if token.is_empty()
        || reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).is_err()
    {
        return Err(Failure::usage(format!(
            "the API token in {source} is empty or holds characters a token never has (control characters, non-ASCII); copy it again from `swarm token create`"
        )));
    }
    Ok((ServerToken(SecretString::from(token.to_owned())), source))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn no_server_means_fly_and_a_server_needs_a_token() {
        assert!(
            ServerTarget::resolve(None, None, &env(&[]))
                .unwrap()
                .is_none()
        );
        let missing =
            ServerTarget::resolve(Some("http://127.0.0.1:1"), None, &env(&[])).unwrap_err();
        assert_eq!(missing.code, 2);
        assert!(
            missing.message.contains("SWARM_TOKEN"),
            "{}",
            missing.message
        );
        let target = ServerTarget::resolve(
            None,
            None,
            &env(&[
                ("SWARM_SERVER", "http://127.0.0.1:1/"),
                ("SWARM_TOKEN", "swt_x\n"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(target.source, ServerSource::Env);
        assert_eq!(target.shown_url(), "http://127.0.0.1:1");
        assert_eq!(target.wait_secs, 60);
    }

    #[test]
    fn the_wait_per_request_is_1_to_60_seconds() {
        let with_wait = |wait: &str| {
            ServerTarget::resolve(
                Some("http://127.0.0.1:1"),
                None,
                &env(&[("SWARM_TOKEN", "swt_x"), ("SWARM_SERVER_WAIT", wait)]),
            )
        };
        assert_eq!(with_wait("5").unwrap().unwrap().wait_secs, 5);
        for bad in ["0", "61", "-1", "soon", "99999999999999999999"] {
            let failure = with_wait(bad).unwrap_err();
            assert_eq!(failure.code, 2, "{bad}");
            assert!(failure.message.contains("SWARM_SERVER_WAIT"), "{bad}");
        }
    }

    #[test]
    fn bad_urls_are_usage_errors_naming_where_they_came_from() {
        let token = env(&[("SWARM_TOKEN", "swt_x")]);
        for bad in [
            "not a url",
            "ftp://host",
            "localhost:8080",
            "http://",
            "http://h/?a=1",
        ] {
            let failure = ServerTarget::resolve(Some(bad), None, &token).unwrap_err();
            assert_eq!(failure.code, 2, "{bad}");
            assert!(
                failure.message.contains("--server"),
                "{bad}: {}",
                failure.message
            );
        }
        let failure = ServerTarget::resolve(
            None,
            None,
            &env(&[("SWARM_SERVER", "nope"), ("SWARM_TOKEN", "swt_x")]),
        )
        .unwrap_err();
        assert!(
            failure.message.contains("SWARM_SERVER"),
            "{}",
            failure.message
        );
        let failure =
            ServerTarget::resolve(Some("https://u:hunter2@host"), None, &token).unwrap_err();
        assert!(!failure.message.contains("hunter2"), "{}", failure.message);
    }

    #[test]
    fn the_token_never_shows() {
        let secret = "swt_0123456789abcdef";
        let target = ServerTarget::resolve(
            Some("http://127.0.0.1:1"),
            None,
            &env(&[("SWARM_TOKEN", secret)]),
        )
        .unwrap()
        .unwrap();
        assert!(!format!("{target:?}").contains(secret));
        let bad = ServerTarget::resolve(
            Some("http://127.0.0.1:1"),
            None,
            &env(&[("SWARM_TOKEN", "swt_a\u{7}secret")]),
        )
        .unwrap_err();
        assert!(!bad.message.contains("secret"), "{}", bad.message);
    }
}
