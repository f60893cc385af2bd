//! The API token: where it comes from (flyctl's rules) and how it is sent.

use std::fmt;
use std::path::{Path, PathBuf};

use http::HeaderValue;
use secrecy::{ExposeSecret, SecretString};

/// A Fly API token. Never printed: `Debug` shows `Token([REDACTED])`.
#[derive(Clone)]
pub struct Token(SecretString);

impl Token {
    /// Wraps a token as given (a macaroon, a `FlyV1 …` string or a legacy token).
    pub fn new(token: impl Into<String>) -> Self {
        Token(SecretString::from(token.into().trim().to_string()))
    }

    /// The raw token. Call only where it is put on the wire.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// True for macaroon tokens, which Fly wants with the `FlyV1` scheme.
    pub fn is_macaroon(&self) -> bool {
        let raw = strip_scheme(self.expose_secret());
        self.expose_secret()
            .get(..6)
            .is_some_and(|p| p.eq_ignore_ascii_case("FlyV1 "))
            || ["fm1r_", "fm1a_", "fm2_"]
                .iter()
                .any(|p| raw.starts_with(p))
    }

    /// The `Authorization` header value, marked sensitive so it is never logged.
    pub(crate) fn header_value(&self) -> crate::Result<HeaderValue> {
        let raw = strip_scheme(self.expose_secret());
        if raw.is_empty() {
            return Err(crate::Error::Config("the Fly API token is empty".into()));
        }
        let scheme = if self.is_macaroon() {
            "FlyV1"
        } else {
            "Bearer"
        };
        let mut value = HeaderValue::from_str(&format!("{scheme} {raw}")).map_err(|_| {
            crate::Error::Config(
                "the Fly API token contains characters not allowed in an HTTP header".into(),
            )
        })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// Removes a leading `FlyV1 ` or `Bearer ` (any case), as fly-go's parser does.
fn strip_scheme(token: &str) -> &str {
    for scheme in ["FlyV1 ", "Bearer "] {
        if token
            .get(..scheme.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(scheme))
        {
            return token[scheme.len()..].trim_start();
        }
    }
    token
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token([REDACTED])")
    }
}

impl From<String> for Token {
    fn from(s: String) -> Self {
        Token::new(s)
    }
}

impl From<&str> for Token {
    fn from(s: &str) -> Self {
        Token::new(s)
    }
}

impl From<SecretString> for Token {
    fn from(s: SecretString) -> Self {
        Token::new(s.expose_secret())
    }
}

impl<'de> serde::Deserialize<'de> for Token {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        SecretString::deserialize(d).map(Token::from)
    }
}

/// Where a token was found, for `swarm config` and diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenSource {
    /// Env `FLY_ACCESS_TOKEN`.
    FlyAccessToken,
    /// Env `FLY_API_TOKEN`.
    FlyApiToken,
    /// `access_token` in flyctl's config file at this path.
    ConfigFile(PathBuf),
    /// Given directly by the program.
    Explicit,
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::FlyAccessToken => f.write_str("env FLY_ACCESS_TOKEN"),
            TokenSource::FlyApiToken => f.write_str("env FLY_API_TOKEN"),
            TokenSource::ConfigFile(p) => write!(f, "{} (access_token)", p.display()),
            TokenSource::Explicit => f.write_str("given explicitly"),
        }
    }
}

/// Finds a token the way flyctl does: `FLY_ACCESS_TOKEN`, then `FLY_API_TOKEN`, then
/// `access_token` in `<home>/.fly/config.yml`. `home` overrides the user's home folder.
/// Empty values count as unset. The file is only read, never written.
pub fn discover_token(home: Option<&Path>) -> Option<(Token, TokenSource)> {
    discover_token_with(|name| std::env::var(name).ok(), home)
}

/// [`discover_token`] with the environment given as a function (for tests and embedding).
pub fn discover_token_with(
    env: impl Fn(&str) -> Option<String>,
    home: Option<&Path>,
) -> Option<(Token, TokenSource)> {
    for (name, source) in [
        ("FLY_ACCESS_TOKEN", TokenSource::FlyAccessToken),
        ("FLY_API_TOKEN", TokenSource::FlyApiToken),
    ] {
        if let Some(value) = env(name).filter(|v| !v.trim().is_empty()) {
            return Some((Token::new(value), source));
        }
    }
    let home = match home {
        Some(h) => h.to_path_buf(),
        None => directories::BaseDirs::new()?.home_dir().to_path_buf(),
    };
    let path = home.join(".fly").join("config.yml");
    let token = read_flyctl_config(&path)?;
    Some((token, TokenSource::ConfigFile(path)))
}

fn read_flyctl_config(path: &Path) -> Option<Token> {
    #[derive(serde::Deserialize)]
    struct FlyctlConfig {
        #[serde(default)]
        access_token: Option<String>,
    }
    let text = std::fs::read_to_string(path).ok()?;
    match serde_saphyr::from_str::<FlyctlConfig>(&text) {
        Ok(cfg) => cfg
            .access_token
            .filter(|t| !t.trim().is_empty())
            .map(Token::new),
        Err(_) => {
            // The parse error could quote the token; say only where.
            tracing::warn!(path = %path.display(), "flyctl config file is not valid YAML; ignoring it");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macaroons_use_flyv1_others_bearer() {
        let h = |t: &str| {
            let v = Token::new(t).header_value().unwrap();
            assert!(v.is_sensitive());
            v.to_str().unwrap().to_string()
        };
        assert_eq!(h("fm2_abc"), "FlyV1 fm2_abc");
        assert_eq!(h("fm1r_abc"), "FlyV1 fm1r_abc");
        assert_eq!(h("fm1a_abc"), "FlyV1 fm1a_abc");
        assert_eq!(h("FlyV1 fm2_abc,fm2_def"), "FlyV1 fm2_abc,fm2_def");
        assert_eq!(h("flyv1 fm2_abc"), "FlyV1 fm2_abc");
        assert_eq!(h("legacy123"), "Bearer legacy123");
        assert_eq!(h("Bearer legacy123"), "Bearer legacy123");
        assert!(Token::new("  ").header_value().is_err());
        assert!(Token::new("bad\ntoken").header_value().is_err());
    }

    #[test]
    fn debug_hides_token() {
        let t = Token::new("fm2_CANARY");
        assert_eq!(format!("{t:?}"), "Token([REDACTED])");
    }

    #[test]
    fn discovery_follows_flyctl_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".fly")).unwrap();
        std::fs::write(
            dir.path().join(".fly/config.yml"),
            "access_token: fm2_fromfile\nwire_guard_state: {}\n",
        )
        .unwrap();
        let env = |a: Option<&str>, b: Option<&str>| {
            let (a, b) = (a.map(String::from), b.map(String::from));
            move |name: &str| match name {
                "FLY_ACCESS_TOKEN" => a.clone(),
                "FLY_API_TOKEN" => b.clone(),
                _ => None,
            }
        };
        let (t, s) = discover_token_with(env(Some("one"), Some("two")), Some(dir.path())).unwrap();
        assert_eq!((t.expose_secret(), s), ("one", TokenSource::FlyAccessToken));
        let (t, s) = discover_token_with(env(Some(""), Some("two")), Some(dir.path())).unwrap();
        assert_eq!((t.expose_secret(), s), ("two", TokenSource::FlyApiToken));
        let (t, s) = discover_token_with(env(None, None), Some(dir.path())).unwrap();
        assert_eq!(t.expose_secret(), "fm2_fromfile");
        assert_eq!(
            s,
            TokenSource::ConfigFile(dir.path().join(".fly/config.yml"))
        );

        let empty = tempfile::tempdir().unwrap();
        assert!(discover_token_with(env(None, None), Some(empty.path())).is_none());
        std::fs::create_dir(empty.path().join(".fly")).unwrap();
        std::fs::write(empty.path().join(".fly/config.yml"), ": : not yaml [").unwrap();
        assert!(discover_token_with(env(None, None), Some(empty.path())).is_none());
    }
}
