//! This program's version and the rules between versions (docs/VERSIONING.md): which
//! servers a CLI may use, and which stores a program may open.

use std::fmt;

pub use semver::Version;

/// The version of this build (the workspace's `[workspace.package] version`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The response header in which `swarm serve` names its version on every answer.
pub const VERSION_HEADER: &str = "swarm-version";

/// What a binary says about itself: `swarm --version`, `GET /v1/version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct BuildInfo {
    pub version: &'static str,
    /// The git commit it was built from, when the build could tell.
    pub commit: Option<&'static str>,
}

impl BuildInfo {
    /// This library's version, with no commit (a binary knows its own commit).
    pub const fn library() -> Self {
        Self {
            version: VERSION,
            commit: None,
        }
    }
}

impl fmt::Display for BuildInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.commit {
            Some(commit) => write!(f, "{} (commit {commit})", self.version),
            None => write!(f, "{} (commit unknown)", self.version),
        }
    }
}

/// What `GET /v1/version` answers (no token needed: a client checks it before
/// anything else, docs/VERSIONING.md).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ServerVersion {
    /// The server's swarm version (semver).
    pub version: String,
    /// The git commit it was built from, when known.
    pub commit: Option<String>,
    /// The API's path prefix version.
    pub api: String,
}

impl From<BuildInfo> for ServerVersion {
    fn from(build: BuildInfo) -> Self {
        Self {
            version: build.version.to_owned(),
            commit: build.commit.map(str::to_owned),
            api: "v1".to_owned(),
        }
    }
}

/// This build's version, parsed.
pub fn current() -> Version {
    // CARGO_PKG_VERSION is valid semver: cargo refuses a manifest whose version is not.
    Version::parse(VERSION).unwrap_or_else(|_| Version::new(0, 0, 0))
}

/// Why a CLI may not use a server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this swarm is {client} and the server runs swarm {server}: {reason}; {remedy}")]
pub struct Incompatible {
    pub client: Version,
    pub server: Version,
    pub reason: &'static str,
    pub remedy: &'static str,
}

/// The plan's rule: a CLI uses a server of the same major version whose minor is at
/// least the CLI's (a server keeps every route and field of the minors before it;
/// an older server lacks what a newer CLI may send).
pub fn check_server(client: &Version, server: &Version) -> Result<(), Incompatible> {
    let refuse = |reason, remedy| {
        Err(Incompatible {
            client: client.clone(),
            server: server.clone(),
            reason,
            remedy,
        })
    };
    if client.major != server.major {
        return refuse(
            "their major versions differ",
            "use a swarm CLI of the server's major version",
        );
    }
    if server.minor < client.minor {
        return refuse(
            "the server is an older minor version than the CLI",
            "upgrade the server, or use a CLI no newer than the server",
        );
    }
    Ok(())
}

/// A store last opened by `written_by` may be opened by `ours` unless it came from a
/// newer major version (whose data this one cannot be trusted to read or write).
pub fn store_opens(ours: &Version, written_by: &Version) -> bool {
    written_by.major <= ours.major
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).expect("version")
    }

    #[test]
    fn a_server_of_the_same_major_and_a_minor_at_least_the_clients_is_usable() {
        assert!(check_server(&v("1.2.0"), &v("1.2.0")).is_ok());
        assert!(
            check_server(&v("1.2.5"), &v("1.2.0")).is_ok(),
            "patch is free"
        );
        assert!(check_server(&v("1.2.0"), &v("1.7.3")).is_ok());
        assert!(check_server(&v("0.2.0"), &v("0.3.0")).is_ok());
    }

    #[test]
    fn another_major_or_an_older_minor_is_refused_naming_both_versions() {
        let error = check_server(&v("1.2.0"), &v("2.0.0")).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("1.2.0") && text.contains("2.0.0"), "{text}");
        assert!(text.contains("major"), "{text}");
        let error = check_server(&v("0.3.0"), &v("0.2.9")).unwrap_err();
        assert!(error.to_string().contains("older minor"), "{error}");
        assert!(check_server(&v("2.0.0"), &v("1.9.0")).is_err());
    }

    #[test]
    fn a_store_of_a_newer_major_does_not_open() {
        assert!(store_opens(&v("0.2.0"), &v("0.1.0")));
        assert!(store_opens(&v("0.2.0"), &v("0.9.0")), "same major");
        assert!(!store_opens(&v("0.2.0"), &v("1.0.0")));
        assert!(store_opens(&v("2.0.0"), &v("1.4.0")));
    }

    #[test]
    fn build_info_names_version_and_commit() {
        let info = BuildInfo {
            version: "1.2.3",
            commit: Some("abc1234"),
        };
        assert_eq!(info.to_string(), "1.2.3 (commit abc1234)");
        assert_eq!(current().to_string(), VERSION);
    }
}
