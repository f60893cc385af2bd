//! Bad `--db` URLs: each class gives its error and exit code, masks the password,
//! and writes nothing.

use sqlx::Connection as _;
use swarm_store::{StoreError, open_store};

use crate::backend::Backend;

#[tokio::test]
async fn an_unknown_scheme_is_bad_input_naming_db_and_the_accepted_forms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("mysql://root:hunter2@{}/swarm", dir.path().display());
    let error = open_store(&url, "local").await.expect_err("refused");
    let text = error.to_string();
    assert!(matches!(error, StoreError::BadUrl { .. }), "{error:?}");
    assert!(
        text.contains("--db") && text.contains("postgres://") && text.contains("sqlite://"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
    assert!(
        error.is_refused_unchanged(),
        "bad input (exit 2): {error:?}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("dir").count(),
        0,
        "nothing written"
    );
}

#[tokio::test]
async fn an_unreachable_server_fails_with_exit_1_naming_host_and_port() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("port")
        .port();
    // The listener is gone: nothing answers on that port.
    let url = format!("postgres://swarm:hunter2@127.0.0.1:{port}/swarm");
    let error = open_store(&url, "local").await.expect_err("unreachable");
    let text = error.to_string();
    assert!(matches!(error, StoreError::Unreachable { .. }), "{error:?}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(
        !text.contains("hunter2") && !format!("{error:?}").contains("hunter2"),
        "{text}"
    );
    assert!(
        !error.is_refused_unchanged(),
        "a failure (exit 1): {error:?}"
    );
}

#[tokio::test]
async fn postgres_a_wrong_password_or_missing_database_is_bad_input_and_writes_nothing() {
    let Some(backend) = Backend::postgres().await else {
        return;
    };
    let database = backend.database.as_ref().expect("postgres");
    let mut url = url::Url::parse(&backend.url).expect("url");
    url.set_password(Some("wrong-password")).expect("password");
    let error = open_store(url.as_str(), "local")
        .await
        .expect_err("refused");
    let text = error.to_string();
    if !matches!(error, StoreError::Refused { .. })
        && std::env::var("SWARM_TEST_DATABASE_URL").is_ok()
    {
        eprintln!(
            "note: the server at {} does not check passwords; {text}",
            database.server
        );
    } else {
        assert!(matches!(error, StoreError::Refused { .. }), "{error:?}");
        assert!(
            text.contains("wrong password") && text.contains(":***@"),
            "{text}"
        );
        assert!(!text.contains("wrong-password"), "{text}");
        assert!(
            error.is_refused_unchanged(),
            "bad input (exit 2): {error:?}"
        );
    }
    let mut missing = url::Url::parse(&backend.url).expect("url");
    missing.set_path("no_such_database_here");
    let error = open_store(missing.as_str(), "local")
        .await
        .expect_err("refused");
    let text = error.to_string();
    assert!(matches!(error, StoreError::Refused { .. }), "{error:?}");
    assert!(
        text.contains("no database named no_such_database_here"),
        "{text}"
    );
    assert!(
        error.is_refused_unchanged(),
        "bad input (exit 2): {error:?}"
    );
    // Nothing written: the test database has no tables, none was created.
    let mut admin = sqlx::PgConnection::connect(&backend.url)
        .await
        .expect("connect");
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut admin)
    .await
    .expect("tables");
    assert_eq!(tables, 0);
    let created: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_database WHERE datname = 'no_such_database_here'",
    )
    .fetch_one(&mut admin)
    .await
    .expect("databases");
    assert_eq!(created, 0);
}
