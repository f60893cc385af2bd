//! `swarm exec` and `swarm secret` through a Swarm Controller.

use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;
use swarm::{ExecOptions, Executed, SecretChanged, SecretList};

use super::{ErrorBody, REQUEST_TIMEOUT, Remote, workspace};
use crate::Failure;

impl Remote {
    pub async fn exec(&self, name: &str, options: &ExecOptions) -> Result<Executed, Failure> {
        let path = workspace(name, "/exec");
        let mut body = json!({ "command": options.command, "start": options.start_first });
        if let Some(timeout) = options.timeout_secs {
            body["timeout"] = json!(timeout);
        }
        // The server answers when the command ends: allow for the command itself.
        let runs = Duration::from_secs(options.timeout_secs.unwrap_or(60));
        let request = self
            .http
            .post(self.url(&path))
            .header(reqwest::header::AUTHORIZATION, self.authorization()?)
            .timeout(REQUEST_TIMEOUT + runs)
            .json(&body);
        let (status, text) = self.send(request).await?;
        if status.is_success() {
            return serde_json::from_str(&text).map_err(|error| Failure {
                code: 1,
                message: format!(
                    "the answer of {} to {path} could not be read ({error}); is it a `swarm serve` of this version?",
                    self.target.shown_url()
                ),
            });
        }
        let mut failure = self.refusal(status, &path, &text);
        // As the local CLI: a command stopped at its timeout exits 124.
        if serde_json::from_str::<ErrorBody>(&text).is_ok_and(|body| body.code == "exec_timeout") {
            failure.code = 124;
        }
        Err(failure)
    }

    pub async fn list_secrets(&self, name: &str) -> Result<SecretList, Failure> {
        self.call(reqwest::Method::GET, &workspace(name, "/secrets"), None)
            .await
    }

    pub async fn set_secret(
        &self,
        name: &str,
        key: &str,
        value: &SecretString,
    ) -> Result<SecretChanged, Failure> {
        // The value goes in the body (never the URL), built here and dropped after.
        let body = json!({ "value": value.expose_secret() });
        let path = workspace(name, &format!("/secrets/{key}"));
        self.call(reqwest::Method::PUT, &path, Some(&body)).await
    }

    pub async fn unset_secret(&self, name: &str, key: &str) -> Result<SecretChanged, Failure> {
        let path = workspace(name, &format!("/secrets/{key}"));
        self.call(reqwest::Method::DELETE, &path, None).await
    }
}
