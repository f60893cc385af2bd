//! Per-workspace leases. Expiry is computed and compared by the database's clock
//! (`clock_timestamp()`), never a host's, so replicas on several hosts agree on when
//! a lease has run out; a holder's host clock being off does not matter.

use std::time::Duration;

use sqlx::Row;
use time::OffsetDateTime;

use super::journal::RELEASE_LOCK;
use super::{PgStore, ttl_ms};
use crate::{LockHolder, StoreError};

impl PgStore {
    pub(super) async fn pg_try_lock(
        &self,
        name: &str,
        owner: &str,
        operation: &str,
        ttl: Duration,
    ) -> Result<Option<LockHolder>, StoreError> {
        // One statement: a free, expired or already-ours lease is taken atomically;
        // a live one of another holder is left alone (0 rows).
        let taken = sqlx::query(
            "INSERT INTO locks (name, owner, pid, operation, acquired_at, expires_at) \
             VALUES ($1, $2, $3, $4, clock_timestamp(), clock_timestamp() + $5 * interval '1 millisecond') \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, pid = excluded.pid, \
                 operation = excluded.operation, acquired_at = excluded.acquired_at, \
                 expires_at = excluded.expires_at \
             WHERE locks.expires_at < clock_timestamp() OR locks.owner = excluded.owner",
        )
        .bind(name)
        .bind(owner)
        .bind(i64::from(std::process::id()))
        .bind(operation)
        .bind(ttl_ms(ttl))
        .execute(&self.pool)
        .await?
        .rows_affected();
        if taken == 1 {
            return Ok(None);
        }
        let row =
            sqlx::query("SELECT owner, pid, operation, acquired_at FROM locks WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else {
            // Released between our two statements: report busy once; the caller retries.
            return Ok(Some(LockHolder {
                owner: String::new(),
                pid: 0,
                operation: "unknown".to_owned(),
                acquired_at: OffsetDateTime::now_utc(),
            }));
        };
        let pid: i64 = row.try_get("pid")?;
        Ok(Some(LockHolder {
            owner: row.try_get("owner")?,
            pid: u32::try_from(pid).unwrap_or(0),
            operation: row.try_get("operation")?,
            acquired_at: row.try_get("acquired_at")?,
        }))
    }

    pub(super) async fn pg_renew_lock(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let renewed = sqlx::query(
            "UPDATE locks SET expires_at = clock_timestamp() + $3 * interval '1 millisecond' \
             WHERE name = $1 AND owner = $2",
        )
        .bind(name)
        .bind(owner)
        .bind(ttl_ms(ttl))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(renewed == 1)
    }

    pub(super) async fn pg_release_lock(&self, name: &str, owner: &str) -> Result<(), StoreError> {
        sqlx::query(RELEASE_LOCK)
            .bind(name)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
