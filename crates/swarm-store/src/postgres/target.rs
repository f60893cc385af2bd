//! A `postgres://` URL: parsed into connect options, shown only with its password
//! masked, and a failed connection told apart by what the user must fix.

use std::str::FromStr as _;

use sqlx::postgres::PgConnectOptions;

use crate::StoreError;

/// The URL forms `--db` takes, for error messages.
pub(crate) const ACCEPTED: &str = "a file path, sqlite://PATH, or postgres://USER:PASSWORD@HOST:PORT/DATABASE (postgresql:// too)";

/// `url` with any password replaced by `***`, in the userinfo and in a `password=`
/// query parameter: the only form of a store URL that is shown or logged.
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Where the server is: `host:port`, or the socket folder.
pub(crate) fn server_of(options: &PgConnectOptions) -> String {
    match options.get_socket() {
        Some(socket) => format!("{}:{}", socket.display(), options.get_port()),
        None => format!("{}:{}", options.get_host(), options.get_port()),
    }
}

/// Parses a `postgres://` URL; its error names `--db` (masked) and the form expected.
pub(crate) fn parse(url: &str) -> Result<PgConnectOptions, StoreError> {
    PgConnectOptions::from_str(url).map_err(|error| StoreError::BadUrl {
        url: mask_url(url),
        message: format!(
            "not a valid PostgreSQL URL ({}); write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE",
            scrub(&error.to_string(), url)
        ),
    })
}

/// An error text with the URL (and so its password) cut out, in case a driver
/// message quotes it.
fn scrub(message: &str, url: &str) -> String {
    if url.is_empty() {
        message.to_owned()
    } else {
        message.replace(url, &mask_url(url))
    }
}

/// What a failed first connection means for the user: the server is not there
/// (exit 1, try again later), or it refused us (exit 2, fix `--db`).
pub(crate) fn connect_failure(
    error: sqlx::Error,
    url: &str,
    options: &PgConnectOptions,
) -> StoreError {
    let server = server_of(options);
    let masked = mask_url(url);
    match &error {
        sqlx::Error::Io(io) => StoreError::Unreachable {
            server,
            message: io.to_string(),
        },
        sqlx::Error::PoolTimedOut => StoreError::Unreachable {
            server,
            message: "no answer before the connect timeout".to_owned(),
        },
        sqlx::Error::Database(db) => {
            let user = options.get_username();
            let database = options.get_database().unwrap_or(user);
            match db.code().as_deref() {
                // invalid_password, invalid_authorization_specification
                Some("28P01" | "28000") => StoreError::Refused {
                    url: masked,
                    message: format!(
                        "the server at {server} refused user {user}: wrong password or no such user \
                         (server said: {}); give the right user and password in --db",
                        db.message()
                    ),
                },
                // invalid_catalog_name
                Some("3D000") => StoreError::Refused {
                    url: masked,
                    message: format!(
                        "the server at {server} has no database named {database}; create it \
                         (`createdb {database}`) or name an existing one in --db"
                    ),
                },
                _ => StoreError::Database(error),
            }
        }
        sqlx::Error::Tls(tls) => StoreError::Unreachable {
            server,
            message: format!("TLS: {}", scrub(&tls.to_string(), url)),
        },
        _ => StoreError::Database(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_masked_wherever_the_url_carries_it() {
        assert_eq!(
            mask_url("postgres://swarm:s3cret@db.internal:5433/swarm"),
            "postgres://swarm:***@db.internal:5433/swarm"
        );
        assert_eq!(
            mask_url("postgresql://swarm:p%40ss@db/swarm?sslmode=require&password=other"),
            "postgresql://swarm:***@db/swarm?sslmode=require&password=***"
        );
        assert_eq!(
            mask_url("postgres://swarm@db/swarm"),
            "postgres://swarm@db/swarm"
        );
        assert_eq!(mask_url("/var/lib/swarm.db"), "/var/lib/swarm.db");
    }

    #[test]
    fn a_bad_url_is_named_without_its_password() {
        let error = parse("postgres://swarm:s3cret@db:notaport/swarm").expect_err("bad port");
        let text = error.to_string();
        assert!(
            text.contains("postgres://swarm:***@db:notaport/swarm"),
            "{text}"
        );
        assert!(!text.contains("s3cret"), "{text}");
        assert!(error.is_refused_unchanged());
    }
}
