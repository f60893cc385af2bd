//! `client.logs(app)`: Fly's HTTP log polling API.

use std::collections::VecDeque;
use std::time::Duration;

use futures::Stream;
use http::Method;

use crate::client::{Base, Call, FlyClient, require};
use crate::models::{LogEntry, LogPage, LogQuery, WireLogPage};
use crate::{Error, Result};

/// First pause after an empty page (doubles per empty page), as flyctl.
pub const FOLLOW_MIN_DELAY: Duration = Duration::from_millis(64);
/// Longest pause between polls.
pub const FOLLOW_MAX_DELAY: Duration = Duration::from_millis(4096);
/// `follow` gives up after this many failures in a row.
pub const FOLLOW_MAX_CONSECUTIVE_ERRORS: u32 = 10;

/// Logs of one app.
#[derive(Debug, Clone)]
pub struct Logs {
    client: FlyClient,
    app: String,
}

impl FlyClient {
    /// Logs of `app`.
    pub fn logs(&self, app: &str) -> Logs {
        Logs {
            client: self.clone(),
            app: app.to_string(),
        }
    }
}

impl Logs {
    /// One page of logs.
    pub async fn page(&self, query: &LogQuery) -> Result<LogPage> {
        require("app name", &self.app)?;
        let mut call = Call::new(
            Method::GET,
            Base::Api,
            "app_logs",
            ["api", "v1", "apps", self.app.as_str(), "logs"],
        )
        .query("next_token", query.next_token.clone().unwrap_or_default());
        if let Some(instance) = &query.instance {
            call = call.query("instance", instance);
        }
        if let Some(region) = &query.region {
            call = call.query("region", region);
        }
        let page: WireLogPage = self.client.json(call).await?;
        Ok(page.into())
    }

    /// Follows the logs: yields each entry as it appears, polling with a pause of
    /// 64 ms doubling to 4.096 s while pages come back empty. Ends after an error that
    /// will not heal (401, 403, 404, …) or 10 failures in a row, yielding that error last.
    pub fn follow(&self, query: LogQuery) -> impl Stream<Item = Result<LogEntry>> + Send + 'static {
        let state = Follow {
            logs: self.clone(),
            query,
            buffered: VecDeque::new(),
            delay: FOLLOW_MIN_DELAY,
            errors: 0,
            done: false,
        };
        futures::stream::unfold(state, |mut state| async move {
            loop {
                if let Some(entry) = state.buffered.pop_front() {
                    return Some((Ok(entry), state));
                }
                if state.done {
                    return None;
                }
                match state.logs.page(&state.query).await {
                    Ok(page) => {
                        state.errors = 0;
                        if let Some(token) = page.next_token {
                            state.query.next_token = Some(token);
                        }
                        if page.entries.is_empty() {
                            tokio::time::sleep(state.delay).await;
                            state.delay = (state.delay * 2).min(FOLLOW_MAX_DELAY);
                        } else {
                            state.delay = FOLLOW_MIN_DELAY;
                            state.buffered.extend(page.entries);
                        }
                    }
                    Err(err) => {
                        state.errors += 1;
                        if !follow_can_retry(&err) || state.errors >= FOLLOW_MAX_CONSECUTIVE_ERRORS
                        {
                            state.done = true;
                            return Some((Err(err), state));
                        }
                        tracing::debug!(error = %err, "logs: poll failed, retrying");
                        tokio::time::sleep(state.delay).await;
                        state.delay = (state.delay * 2).min(FOLLOW_MAX_DELAY);
                    }
                }
            }
        })
    }
}

struct Follow {
    logs: Logs,
    query: LogQuery,
    buffered: VecDeque<LogEntry>,
    delay: Duration,
    errors: u32,
    done: bool,
}

fn follow_can_retry(err: &Error) -> bool {
    err.is_retryable()
}
