//! `client.secrets(app)`.

use std::collections::BTreeMap;

use http::Method;
use secrecy::SecretString;

use crate::client::{Call, FlyClient, require};
use crate::models::{AppSecret, AppSecrets, SecretsUpdateRequest, SecretsVersion};
use crate::retry::Idempotency;
use crate::throttle::Quota;
use crate::{Error, Result};

/// App secrets (REST). Values are write-only: they are never read back or logged.
#[derive(Debug, Clone)]
pub struct Secrets {
    client: FlyClient,
    app: String,
}

impl FlyClient {
    /// Secrets of `app`.
    pub fn secrets(&self, app: &str) -> Secrets {
        Secrets {
            client: self.clone(),
            app: app.to_string(),
        }
    }
}

impl Secrets {
    /// Names and digests of the app's secrets.
    pub async fn list(&self) -> Result<Vec<AppSecret>> {
        require("app name", &self.app)?;
        let call = Call::v1(Method::GET, "list_secrets", ["apps", &self.app, "secrets"])
            .throttled(&self.app, Quota::ACTION);
        let secrets: AppSecrets = self.client.json(call).await?;
        Ok(secrets.secrets)
    }

    /// One secret's name, digest and times; [`Error::is_not_found`] when the app has
    /// no secret of that name. The value is never asked for.
    pub async fn get(&self, name: &str) -> Result<AppSecret> {
        require("app name", &self.app)?;
        require("secret name", name)?;
        let call = Call::v1(
            Method::GET,
            "get_secret",
            ["apps", &self.app, "secrets", name],
        )
        .throttled(&self.app, Quota::ACTION);
        self.client.json(call).await
    }

    /// Sets secrets in one update; returns the new secrets version (pass it as
    /// `min_secrets_version` so machines pick it up).
    pub async fn set(&self, values: BTreeMap<String, SecretString>) -> Result<u64> {
        require("app name", &self.app)?;
        if values.is_empty() {
            return Err(Error::InvalidInput(
                "secrets: give at least one name to set".into(),
            ));
        }
        if let Some(name) = values.keys().find(|k| k.trim().is_empty()) {
            return Err(Error::InvalidInput(format!(
                "secret name {name:?} must not be empty"
            )));
        }
        let call = Call::v1(Method::POST, "set_secrets", ["apps", &self.app, "secrets"])
            .json_body(&SecretsUpdateRequest { values })?
            // Setting the same values twice ends in the same state.
            .idempotency(Idempotency::Safe)
            .throttled(&self.app, Quota::ACTION);
        let answer: SecretsVersion = self.client.json(call).await?;
        answer.get().ok_or_else(|| Error::Decode {
            path: "version".into(),
            message: "missing secrets version".into(),
        })
    }

    /// Removes secrets, one `DELETE` each (the bulk endpoint's null values are not in
    /// Fly's schema); returns the secrets version after the last one. Names that are
    /// already gone are skipped; if none was deleted, their 404 is returned.
    pub async fn unset(&self, names: &[&str]) -> Result<u64> {
        require("app name", &self.app)?;
        if names.is_empty() {
            return Err(Error::InvalidInput(
                "secrets: give at least one name to unset".into(),
            ));
        }
        let mut version = None;
        let mut not_found = None;
        for name in names {
            require("secret name", name)?;
            let call = Call::v1(
                Method::DELETE,
                "delete_secret",
                ["apps", &self.app, "secrets", name],
            )
            .throttled(&self.app, Quota::ACTION);
            match self.client.json::<SecretsVersion>(call).await {
                Ok(answer) => version = answer.get().or(version),
                // Already gone: unsetting is repeatable.
                Err(err) if err.is_not_found() => not_found = Some(err),
                Err(err) => return Err(err),
            }
        }
        match (version, not_found) {
            (Some(version), _) => Ok(version),
            // Nothing was deleted, so there is no new version to report.
            (None, Some(err)) => Err(err),
            (None, None) => Err(Error::Decode {
                path: "version".into(),
                message: "missing secrets version".into(),
            }),
        }
    }
}
