//! PostgreSQL backend: one database shared by any number of swarm processes on any
//! number of hosts. Migrations embedded from `crates/swarm-store/migrations/postgres/`,
//! applied in one transaction under an advisory lock; the schema number is meta's
//! `schema_version`. Writers of one user are serialised by an advisory lock on the
//! user, leases expire by the database's clock (docs in crates/swarm/README.md).

mod journal;
mod leases;
mod pool_slots;
mod records;
mod schema;
mod store_impl;
mod target;
mod tokens_events;

use std::time::Duration;

use sqlx::Connection as _;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::StoreError;
use swarm_core::version::Version;

pub use schema::PG_SCHEMA_VERSION;
pub(crate) use target::ACCEPTED;
pub use target::mask_url;

/// The PostgreSQL store. Cheap to clone (a connection pool). Its `Debug` shows the
/// URL with the password masked.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The URL, password masked.
    shown: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.shown)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the database `url` names for the Fly at `fly_endpoint`, and
    /// migrates it. Refuses, writing nothing, a schema newer than this program's, a
    /// store last opened by a newer major version, or a store of another Fly (that
    /// one after migrating, as the SQLite store does). A server that is not there or
    /// refuses us fails before anything is written.
    pub async fn open(url: &str, fly_endpoint: &str) -> Result<Self, StoreError> {
        let options = target::parse(url)?;
        // One plain connection first: the pool retries a refused connection until
        // its timeout, this fails at once with what is wrong.
        let probe = sqlx::PgConnection::connect_with(&options)
            .await
            .map_err(|error| target::connect_failure(error, url, &options))?;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(15))
            .connect_with(options.clone())
            .await
            .map_err(|error| target::connect_failure(error, url, &options))?;
        let store = Self {
            pool,
            shown: mask_url(url),
        };
        schema::migrate(&store.pool).await?;
        store.check_fly(fly_endpoint).await?;
        Ok(store)
    }

    /// The URL, password masked.
    pub fn shown_url(&self) -> &str {
        &self.shown
    }

    /// The schema version recorded in the database.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        schema::found_version(&mut *self.pool.acquire().await?).await
    }

    /// The newest swarm version that opened this store.
    pub async fn swarm_version(&self) -> Result<Option<Version>, StoreError> {
        schema::stored_version(&mut *self.pool.acquire().await?).await
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn check_fly(&self, fly_endpoint: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('fly_endpoint', $1) ON CONFLICT (key) DO NOTHING",
        )
        .bind(fly_endpoint)
        .execute(&self.pool)
        .await?;
        let stored: String =
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'fly_endpoint'")
                .fetch_one(&self.pool)
                .await?;
        if stored == fly_endpoint {
            Ok(())
        } else {
            Err(StoreError::WrongFly {
                store: stored,
                requested: fly_endpoint.to_owned(),
            })
        }
    }

    /// Opens a write transaction on a connection of its own (see [`WriteTransaction`]).
    async fn begin_write(&self) -> Result<WriteTransaction, StoreError> {
        let mut transaction = WriteTransaction {
            connection: self.pool.acquire().await?,
            open: true,
        };
        sqlx::raw_sql("BEGIN")
            .execute(&mut *transaction.connection)
            .await?;
        Ok(transaction)
    }
}

/// A connection inside `BEGIN`. Dropped before `COMMIT` went through (a statement
/// failed, or the future was cancelled), the connection is closed, so the server
/// rolls back at once and frees its row and advisory locks; back in the pool it would
/// hold them until the connection was next used.
struct WriteTransaction {
    connection: sqlx::pool::PoolConnection<sqlx::Postgres>,
    open: bool,
}

impl WriteTransaction {
    fn connection(&mut self) -> &mut sqlx::PgConnection {
        &mut self.connection
    }

    async fn commit(mut self) -> Result<(), StoreError> {
        sqlx::raw_sql("COMMIT")
            .execute(&mut *self.connection)
            .await?;
        self.open = false;
        Ok(())
    }

    async fn rollback(mut self) -> Result<(), StoreError> {
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut *self.connection)
            .await?;
        self.open = false;
        Ok(())
    }
}

impl Drop for WriteTransaction {
    fn drop(&mut self) {
        if self.open {
            self.connection.close_on_drop();
        }
    }
}

/// A size or count as PostgreSQL's BIGINT.
fn big(value: u32) -> i64 {
    i64::from(value)
}

/// A BIGINT column back into a size; a value out of range is damage.
fn small(value: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} {value} out of range")))
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}
