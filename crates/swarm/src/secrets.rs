//! A user's own secrets for a workspace, kept as Fly app secrets through the Machines
//! API's secrets endpoints: Fly injects them into the machine's env when it boots.
//! Their values pass through here on the way to Fly and nowhere else: not into the
//! machine config we send, the store, a log line, an answer or a `Debug`.

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use tracing::Instrument as _;

use crate::error::{Error, Result};
use crate::provider::Provider;
use crate::swarm::Swarm;
use swarm_core::model::{MachineState, WorkspaceRecord, WorkspaceStatus};
use swarm_core::validate::{RESERVED_ENV_KEYS, ValidationError};
use swarm_store::Store;

/// The most bytes a value may have (flyctl reads at most this from stdin).
pub const MAX_SECRET_VALUE_BYTES: usize = 64 * 1024;
/// The longest name [inferred: Fly publishes none; env names this long are unusable].
pub const MAX_SECRET_KEY_LEN: usize = 128;

/// One secret as listed: its name and when it was set, never its value or digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretInfo {
    pub key: String,
    /// RFC 3339, as Fly reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// The secrets of a workspace (`swarm secret list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretList {
    pub workspace: String,
    pub secrets: Vec<SecretInfo>,
}

/// What a set or unset did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretAction {
    Set,
    Unset,
}

/// The answer of a set or unset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretChanged {
    pub workspace: String,
    pub key: String,
    pub action: SecretAction,
    /// Fly's secrets version after the change (`None`: the secret went away
    /// meanwhile, by another hand or an earlier attempt of ours).
    pub version: Option<u64>,
    /// The machine runs with the env it booted with: it sees the change only when it
    /// next boots (stop and start, or any machine update).
    pub restart_needed: bool,
    /// What to do for the change to take effect, in words.
    pub note: String,
}

/// A secret name: an env var name (the spec's `MachineSecret.env_var`), at most
/// [`MAX_SECRET_KEY_LEN`], not `FLY_*` (Fly's own) and none of the keys swarm sets
/// (a secret overrides config env, so `HASHED_PASSWORD` would replace the login).
pub fn validate_secret_key(key: &str) -> Result<(), ValidationError> {
    let mut chars = key.chars();
    let env_name = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !env_name {
        return Err(ValidationError::new(
            "key",
            key,
            "secret names are env var names: letters, digits and _, not starting with a digit (e.g. GITHUB_TOKEN)",
        ));
    }
    if key.len() > MAX_SECRET_KEY_LEN {
        return Err(ValidationError::new(
            "key",
            key,
            format!("at most {MAX_SECRET_KEY_LEN} characters"),
        ));
    }
    if key.to_ascii_uppercase().starts_with("FLY_") {
        return Err(ValidationError::new(
            "key",
            key,
            "names starting with FLY_ are reserved by Fly.io",
        ));
    }
    if RESERVED_ENV_KEYS.contains(&key) {
        return Err(ValidationError::new(
            "key",
            key,
            format!(
                "set by swarm itself; reserved names: {}",
                RESERVED_ENV_KEYS.join(", ")
            ),
        ));
    }
    Ok(())
}

/// A value: at most [`MAX_SECRET_VALUE_BYTES`], no NUL (it becomes an env var). The
/// error names its size, never the value.
pub fn validate_secret_value(value: &SecretString) -> Result<(), ValidationError> {
    let bytes = value.expose_secret().len();
    let shown = format!("<{bytes} bytes>");
    if bytes > MAX_SECRET_VALUE_BYTES {
        return Err(ValidationError::new(
            "value",
            shown,
            format!("at most {MAX_SECRET_VALUE_BYTES} bytes"),
        ));
    }
    if value.expose_secret().contains('\0') {
        return Err(ValidationError::new(
            "value",
            shown,
            "must not contain NUL bytes (it becomes an environment variable)",
        ));
    }
    Ok(())
}

impl<S: Store, P: Provider> Swarm<S, P> {
    /// The workspace's secrets by name, with when each was set.
    pub async fn list_secrets(&self, name: &str) -> Result<SecretList> {
        let record = self.show(name).await?;
        let app = self.require_app(&record, "list the secrets of")?;
        let mut secrets = self
            .retry("list secrets", || self.provider().list_secrets(&app))
            .await
            .map_err(|error| self.provider_error(error, &record))?;
        secrets.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(SecretList {
            workspace: name.to_owned(),
            secrets,
        })
    }

    /// Sets secret `key` of the workspace to `value` (replacing any earlier value).
    pub async fn set_secret(
        &self,
        name: &str,
        key: &str,
        value: &SecretString,
    ) -> Result<SecretChanged> {
        let span = tracing::info_span!("secret_set", workspace = name, key);
        async {
            let mut invalid = Vec::new();
            invalid.extend(validate_secret_key(key).err());
            invalid.extend(validate_secret_value(value).err());
            if !invalid.is_empty() {
                return Err(Error::Invalid(invalid));
            }
            let record = self.show(name).await?;
            let app = self.require_app(&record, "set a secret of")?;
            let lock = self.lock(name, "secret_set").await?;
            let version = self
                .retry("set secret", || {
                    self.provider().set_secret(&app, key, value)
                })
                .await
                .map_err(|error| self.provider_error(error, &record));
            lock.release().await?;
            let version = version?;
            tracing::info!(version, "secret set");
            self.secret_changed(&record, key, SecretAction::Set, Some(version))
                .await
        }
        .instrument(span)
        .await
    }

    /// Removes secret `key` of the workspace; [`Error::SecretNotFound`] when it has none.
    pub async fn unset_secret(&self, name: &str, key: &str) -> Result<SecretChanged> {
        let span = tracing::info_span!("secret_unset", workspace = name, key);
        async {
            validate_secret_key(key).map_err(|error| Error::Invalid(vec![error]))?;
            let record = self.show(name).await?;
            let app = self.require_app(&record, "unset a secret of")?;
            // Known before the delete, so a retried delete's 404 is not mistaken
            // for a name that never was.
            let existing = self
                .retry("list secrets", || self.provider().list_secrets(&app))
                .await
                .map_err(|error| self.provider_error(error, &record))?;
            if !existing.iter().any(|secret| secret.key == key) {
                return Err(Error::SecretNotFound {
                    name: name.to_owned(),
                    key: key.to_owned(),
                });
            }
            let lock = self.lock(name, "secret_unset").await?;
            let version = self
                .retry("unset secret", || self.provider().unset_secret(&app, key))
                .await;
            lock.release().await?;
            let version = version.map_err(|error| self.provider_error(error, &record))?;
            tracing::info!(?version, "secret unset");
            self.secret_changed(&record, key, SecretAction::Unset, version)
                .await
        }
        .instrument(span)
        .await
    }

    fn require_app(&self, record: &WorkspaceRecord, operation: &'static str) -> Result<String> {
        match (&record.app, record.status) {
            (
                Some(app),
                WorkspaceStatus::Running
                | WorkspaceStatus::Starting
                | WorkspaceStatus::Stopping
                | WorkspaceStatus::Stopped
                | WorkspaceStatus::Failed,
            ) => Ok(app.clone()),
            _ => Err(Error::InvalidState {
                name: record.name.as_str().to_owned(),
                status: record.status,
                operation,
                hint: "wait for the operation under way to end, or run `swarm reconcile`"
                    .to_owned(),
            }),
        }
    }

    /// Whether the running machine must boot again to see the change, and how.
    async fn secret_changed(
        &self,
        record: &WorkspaceRecord,
        key: &str,
        action: SecretAction,
        version: Option<u64>,
    ) -> Result<SecretChanged> {
        let name = record.name.as_str();
        let machine_state = match (&record.app, &record.machine_id) {
            (Some(app), Some(id)) => self
                .provider()
                .get_machine(app, id)
                .await
                .ok()
                .flatten()
                .map(|m| m.state),
            _ => None,
        };
        let restart_needed = machine_state.as_ref().is_some_and(|state| {
            matches!(
                state,
                MachineState::Started | MachineState::Starting | MachineState::Restarting
            )
        });
        let note = if restart_needed {
            format!(
                "the running workspace sees this at its next restart: `swarm stop {name}` then `swarm start {name}` (or any resize, update or password rotation)"
            )
        } else {
            format!("the workspace sees this when it next starts (`swarm start {name}`)")
        };
        Ok(SecretChanged {
            workspace: name.to_owned(),
            key: key.to_owned(),
            action,
            version,
            restart_needed,
            note,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_env_names_and_not_ours() {
        for good in ["GITHUB_TOKEN", "_X", "a1"] {
            assert!(validate_secret_key(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1A",
            "A-B",
            "A B",
            "Ä",
            "FLY_API_TOKEN",
            "fly_x",
            "HASHED_PASSWORD",
            &"A".repeat(MAX_SECRET_KEY_LEN + 1),
        ] {
            let error = validate_secret_key(bad).unwrap_err();
            assert_eq!(error.field, "key", "{bad}");
        }
    }

    #[test]
    fn value_errors_never_show_the_value() {
        let big = SecretString::from("canary".repeat(MAX_SECRET_VALUE_BYTES));
        let error = validate_secret_value(&big).unwrap_err();
        assert_eq!(error.field, "value");
        assert!(!error.to_string().contains("canary"), "{error}");
        let nul = SecretString::from("canary\0");
        assert!(
            !validate_secret_value(&nul)
                .unwrap_err()
                .to_string()
                .contains("canary")
        );
        assert!(validate_secret_value(&SecretString::from("ok")).is_ok());
    }
}
