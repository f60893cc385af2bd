//! A real PostgreSQL server for tests. `SWARM_TEST_DATABASE_URL` (a superuser URL)
//! names one to use; otherwise a private cluster is started from Debian's binaries
//! (`/usr/lib/postgresql/*/bin`) in a temp dir, on a free loopback port, once per
//! test process, as the `postgres` user when running as root. Each test gets a fresh
//! database, so tests run in parallel. Without any server a test is skipped with one
//! notice line, unless `SWARM_POSTGRES_REQUIRED=1`, which makes it fail.
//!
//! The private cluster's `postgres` runs with a parent-death signal: it stops when the
//! test process ends, however it ends.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sqlx::Connection as _;

/// A superuser URL of the server to use instead of starting one.
pub const DATABASE_URL_ENV: &str = "SWARM_TEST_DATABASE_URL";
/// `1`: no server is a failure, not a skip (CI).
pub const REQUIRED_ENV: &str = "SWARM_POSTGRES_REQUIRED";
/// The superuser password of a private cluster (loopback only, a throwaway cluster).
const CLUSTER_PASSWORD: &str = "swarm-test";

/// A database of its own for one test.
#[derive(Debug)]
pub struct TestDatabase {
    /// A superuser URL of the fresh database.
    pub url: String,
    /// A superuser URL of the server's `postgres` database.
    pub admin_url: String,
    /// `host:port` of the server.
    pub server: String,
}

/// A fresh database, or `None` (after one notice line) when no server can be had and
/// none is required.
///
/// # Panics
/// When no server can be had and `SWARM_POSTGRES_REQUIRED=1`, or creating the
/// database fails.
pub async fn database() -> Option<TestDatabase> {
    let admin_url = match server() {
        Ok(url) => url.clone(),
        Err(reason) => {
            assert!(
                std::env::var(REQUIRED_ENV).as_deref() != Ok("1"),
                "{REQUIRED_ENV}=1 but no PostgreSQL server: {reason}"
            );
            eprintln!("note: skipping a PostgreSQL test: {reason}");
            return None;
        }
    };
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|error| panic!("connecting to the test server: {error}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|error| panic!("CREATE DATABASE {name}: {error}"));
    let _ = admin.close().await;
    let mut url = url::Url::parse(&admin_url).expect("server URL parses");
    url.set_path(&name);
    let server = format!(
        "{}:{}",
        url.host_str().unwrap_or("localhost"),
        url.port().unwrap_or(5432)
    );
    Some(TestDatabase {
        url: url.to_string(),
        admin_url,
        server,
    })
}

/// The superuser URL of this process's server, started on first use.
fn server() -> &'static Result<String, String> {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var(DATABASE_URL_ENV) {
        Ok(url) if !url.is_empty() => Ok(url),
        _ => start_cluster(),
    })
}

/// The newest `/usr/lib/postgresql/N/bin` holding a server.
fn bin_dir() -> Result<PathBuf, String> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "no /usr/lib/postgresql (install the postgresql package)".to_owned())?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin".to_owned())
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// `program` as the `postgres` user when we are root (PostgreSQL refuses root).
fn command(program: &Path, as_postgres: bool) -> Command {
    if as_postgres {
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

const OWNER_FILE: &str = "owner.pid";

/// Removes the dirs of earlier private clusters whose test process has ended (their
/// `postgres` stopped with it; the dir stays, as nothing runs after a process exits).
fn remove_abandoned_clusters(ours: &Path) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let named_ours = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with("swarm-pg-"));
        let owner = std::fs::read_to_string(path.join(OWNER_FILE)).ok();
        let gone = owner
            .and_then(|pid| pid.trim().parse::<u32>().ok())
            .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
        if named_ours && gone && path != ours {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|error| format!("no free loopback port: {error}"))
}

fn start_cluster() -> Result<String, String> {
    let bin = bin_dir()?;
    let as_postgres = running_as_root();
    let dir = tempfile::Builder::new()
        .prefix("swarm-pg-")
        .tempdir()
        .map_err(|error| format!("temp dir: {error}"))?
        .keep();
    // Which test process owns the dir: a later start removes it once that one is gone.
    std::fs::write(dir.join(OWNER_FILE), std::process::id().to_string())
        .map_err(|error| error.to_string())?;
    remove_abandoned_clusters(&dir);
    let data = dir.join("data");
    let password_file = dir.join("password");
    std::fs::write(&password_file, CLUSTER_PASSWORD).map_err(|error| error.to_string())?;
    if as_postgres {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .map_err(|error| format!("chown: {error}"))?;
        if !status.success() {
            return Err(format!("chown of {} to postgres failed", dir.display()));
        }
    }
    let output = command(&bin.join("initdb"), as_postgres)
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        ])
        .arg(format!("--pwfile={}", password_file.display()))
        .args(["--no-sync", "--encoding=UTF8", "--locale=C"])
        .output()
        .map_err(|error| format!("initdb: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let port = free_port()?;
    let mut server = Command::new("setpriv");
    server.arg("--pdeathsig=TERM");
    if as_postgres {
        server.args(["--reuid=postgres", "--regid=postgres", "--init-groups"]);
    }
    server
        .arg(bin.join("postgres"))
        .arg("-D")
        .arg(&data)
        .arg("-k")
        .arg(&dir)
        .args(["-p", &port.to_string()])
        .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
        .args(["-c", "max_connections=200"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("server.log")).map_err(|error| error.to_string())?,
        ));
    // Spawned from a thread that lives as long as the process: the parent-death
    // signal follows the spawning thread, and test threads come and go.
    let (started, spawned) = std::sync::mpsc::channel();
    std::thread::spawn(move || match server.spawn() {
        Ok(mut child) => {
            let _ = started.send(Ok(()));
            let _ = child.wait();
        }
        Err(error) => {
            let _ = started.send(Err(format!("starting postgres: {error}")));
        }
    });
    spawned
        .recv()
        .map_err(|_| "the postgres starter thread died".to_owned())??;
    wait_ready(&bin, port, &dir)?;
    Ok(format!(
        "postgres://postgres:{CLUSTER_PASSWORD}@127.0.0.1:{port}/postgres"
    ))
}

/// Polls the server with a connection attempt (`pg_isready`) until it answers.
fn wait_ready(bin: &Path, port: u16, dir: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-t", "2"])
            .status()
            .is_ok_and(|status| status.success());
        if ready {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            return Err(format!(
                "postgres on port {port} not ready after 60 s: {}",
                log.trim()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
