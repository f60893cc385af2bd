//! Migrations and the refusals that come before them (a newer schema, a newer major
//! version), all in one transaction under one advisory lock: two processes opening a
//! new database at once apply each migration once, and a refusal writes nothing.

use sqlx::{PgConnection, PgPool};

use crate::StoreError;
use swarm_core::version::{self, Version};

/// Migrations in order; entry `i` brings the schema to version `i + 1`.
const MIGRATIONS: [&str; 1] = [include_str!("../../migrations/postgres/0001_initial.sql")];

/// The newest PostgreSQL schema this program knows (numbered apart from SQLite's).
pub const PG_SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The advisory lock key migrations run under (any fixed number; "swarm" in ASCII).
const MIGRATION_LOCK: i64 = 0x73_77_61_72_6d;

/// The schema number in meta, 0 for a database without swarm's tables.
pub(super) async fn found_version(connection: &mut PgConnection) -> Result<i64, StoreError> {
    let has_meta: bool = sqlx::query_scalar("SELECT to_regclass('meta') IS NOT NULL")
        .fetch_one(&mut *connection)
        .await?;
    if !has_meta {
        return Ok(0);
    }
    let text: Option<String> =
        sqlx::query_scalar("SELECT value FROM meta WHERE key = 'schema_version'")
            .fetch_optional(&mut *connection)
            .await?;
    match text {
        None => Ok(0),
        Some(text) => text
            .parse()
            .map_err(|error| StoreError::Corrupt(format!("schema_version {text:?}: {error}"))),
    }
}

/// The `swarm_version` meta holds, if any.
pub(super) async fn stored_version(
    connection: &mut PgConnection,
) -> Result<Option<Version>, StoreError> {
    let has_meta: bool = sqlx::query_scalar("SELECT to_regclass('meta') IS NOT NULL")
        .fetch_one(&mut *connection)
        .await?;
    if !has_meta {
        return Ok(None);
    }
    let text: Option<String> =
        sqlx::query_scalar("SELECT value FROM meta WHERE key = 'swarm_version'")
            .fetch_optional(&mut *connection)
            .await?;
    text.map(|text| {
        Version::parse(&text)
            .map_err(|error| StoreError::Corrupt(format!("swarm_version {text:?}: {error}")))
    })
    .transpose()
}

pub(super) async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut connection = pool.acquire().await?;
    sqlx::raw_sql("BEGIN").execute(&mut *connection).await?;
    let result = migrate_in(&mut connection).await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    match sqlx::raw_sql(end).execute(&mut *connection).await {
        Ok(_) => result,
        Err(error) => {
            // Unsure how the transaction ended: this connection is not reused.
            connection.close_on_drop();
            result.and(Err(error.into()))
        }
    }
}

async fn migrate_in(connection: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *connection)
        .await?;
    let found = found_version(connection).await?;
    if found > PG_SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found,
            supported: PG_SCHEMA_VERSION,
        });
    }
    let written_by = stored_version(connection).await?;
    let ours = version::current();
    if let Some(stored) = &written_by
        && !version::store_opens(&ours, stored)
    {
        return Err(StoreError::NewerVersion {
            found: stored.to_string(),
            ours: ours.to_string(),
        });
    }
    for (index, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        sqlx::raw_sql(*sql).execute(&mut *connection).await?;
        let version = index + 1;
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('schema_version', $1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(version.to_string())
        .execute(&mut *connection)
        .await?;
        tracing::info!(version, "store schema migrated (PostgreSQL)");
    }
    if written_by.as_ref().is_none_or(|stored| *stored < ours) {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('swarm_version', $1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(ours.to_string())
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}
