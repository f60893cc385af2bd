//! The Fly provider's exec and secrets calls (kept out of `fly.rs`, which is long).

use std::collections::BTreeMap;

use fly_api::models::ExecRequest;
use secrecy::SecretString;

use super::ProviderResult;
use super::fly::FlyProvider;
use super::fly_convert::map_error;
use crate::exec::{ExecCommand, ExecOutput};
use crate::secrets::SecretInfo;

impl FlyProvider {
    pub(super) async fn exec_on(
        &self,
        app: &str,
        id: &str,
        command: &ExecCommand<'_>,
    ) -> ProviderResult<ExecOutput> {
        let request = ExecRequest {
            command: command.command.to_vec(),
            timeout: command.timeout_secs,
            ..ExecRequest::default()
        };
        let answer = self
            .client()
            .machines(app)
            .exec(id, &request)
            .await
            .map_err(map_error)?;
        Ok(ExecOutput {
            stdout: answer.stdout,
            stderr: answer.stderr,
            exit_code: answer.exit_code,
            exit_signal: (answer.exit_signal > 0).then_some(answer.exit_signal),
        })
    }

    pub(super) async fn secrets_of(&self, app: &str) -> ProviderResult<Vec<SecretInfo>> {
        let secrets = self.client().secrets(app).list().await.map_err(map_error)?;
        Ok(secrets
            .into_iter()
            .map(|secret| SecretInfo {
                key: secret.name,
                created_at: secret.created_at,
                updated_at: secret.updated_at,
            })
            .collect())
    }

    pub(super) async fn secret_to(
        &self,
        app: &str,
        key: &str,
        value: &SecretString,
    ) -> ProviderResult<u64> {
        self.client()
            .secrets(app)
            .set(BTreeMap::from([(key.to_owned(), value.clone())]))
            .await
            .map_err(map_error)
    }

    pub(super) async fn secret_gone(&self, app: &str, key: &str) -> ProviderResult<Option<u64>> {
        match self.client().secrets(app).unset(&[key]).await {
            Ok(version) => Ok(Some(version)),
            // `unset` answers 404 only when nothing was deleted; the app itself is
            // known to exist (the caller listed its secrets).
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(map_error(error)),
        }
    }
}
