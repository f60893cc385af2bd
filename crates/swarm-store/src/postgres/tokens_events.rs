//! Controller API tokens (hashes only) and the workspaces' event history.

use sqlx::Row;

use super::PgStore;
use crate::{ApiTokenRecord, EventRecord, StoreError};

impl PgStore {
    pub(super) async fn pg_insert_api_token(
        &self,
        token: &ApiTokenRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (id, user_name, admin, hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&token.id)
        .bind(&token.user)
        .bind(token.admin)
        .bind(&token.hash)
        .bind(token.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn pg_api_token_by_hash(
        &self,
        hash: &str,
    ) -> Result<Option<ApiTokenRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, user_name, admin, hash, created_at FROM api_tokens WHERE hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(ApiTokenRecord {
                id: row.try_get("id")?,
                user: row.try_get("user_name")?,
                admin: row.try_get("admin")?,
                hash: row.try_get("hash")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .transpose()
    }

    pub(super) async fn pg_insert_event(&self, event: &EventRecord) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO events (workspace, owner, at, actor, action, outcome, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(&event.workspace)
        .bind(&event.owner)
        .bind(event.at)
        .bind(&event.actor)
        .bind(&event.action)
        .bind(&event.outcome)
        .bind(event.detail.to_string())
        .fetch_one(&self.pool)
        .await?)
    }

    pub(super) async fn pg_events_of(
        &self,
        name: &str,
        owner: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, workspace, owner, at, actor, action, outcome, detail FROM events \
             WHERE workspace = $1 AND owner IS NOT DISTINCT FROM $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(name)
        .bind(owner)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let mut events = rows
            .into_iter()
            .map(|row| {
                let detail: String = row.try_get("detail")?;
                Ok(EventRecord {
                    id: row.try_get("id")?,
                    workspace: row.try_get("workspace")?,
                    owner: row.try_get("owner")?,
                    at: row.try_get("at")?,
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    outcome: row.try_get("outcome")?,
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        events.reverse();
        Ok(events)
    }
}
