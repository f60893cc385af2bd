//! What makes the pages live, as server-sent events: changes to the caller's
//! workspaces (the list and a workspace's state follow them), and the steps of a
//! long operation as its journal records them. The page itself never polls.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::SinkExt;
use futures::channel::mpsc;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::Dash;
use crate::OperationStatus;
use swarm::provider::Provider;
use swarm_store::Store;

/// How often a running operation's journal is read for new steps (in the server:
/// steps are written by the domain library, which announces nothing).
const STEP_READ_EVERY: Duration = Duration::from_millis(150);

type Events = mpsc::Sender<Result<Event, Infallible>>;

fn stream(receiver: mpsc::Receiver<Result<Event, Infallible>>) -> Response {
    Sse::new(receiver)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// `workspace` events with a changed workspace's list row (or `gone`), for the
/// caller's workspaces only; `resync` when the page fell too far behind.
pub(super) async fn changes<S: Store, P: Provider>(
    State(dash): State<Dash<S, P>>,
    headers: HeaderMap,
) -> Response {
    let Some((_, session)) = dash.session(&headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let c = std::sync::Arc::clone(&dash.controller);
    let caller = session.caller;
    // Subscribed before the first read, so no change falls between the two.
    let mut changes = c.operations.subscribe();
    let (mut events, receiver) = mpsc::channel(16);
    tokio::spawn(async move {
        // Names this page has been shown: only their disappearance is news to it.
        let mut shown: HashSet<String> = c
            .swarm
            .list()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|record| caller.may_use(record.spec.owner.as_deref()))
            .map(|record| record.name.to_string())
            .collect();
        if send(&mut events, Event::default().event("ready").data("live"))
            .await
            .is_err()
        {
            return;
        }
        loop {
            let name = match changes.recv().await {
                Ok(name) => name,
                Err(RecvError::Lagged(_)) => {
                    let _ = send(&mut events, Event::default().event("resync").data("")).await;
                    return;
                }
                Err(RecvError::Closed) => return,
            };
            let data = match c.visible(&caller, &name).await {
                Ok(record) => {
                    shown.insert(name.clone());
                    let check = c
                        .last_health(|owner| caller.may_use(owner))
                        .into_iter()
                        .find(|(checked, _)| *checked == name)
                        .map(|(_, check)| check);
                    json!({
                        "name": name,
                        "status": record.status,
                        "row": super::pages::row(&record, check.as_ref(), caller.admin),
                    })
                }
                Err(_) if shown.remove(&name) => json!({ "name": name, "gone": true }),
                Err(_) => continue,
            };
            let event = Event::default().event("workspace").data(data.to_string());
            if send(&mut events, event).await.is_err() {
                return;
            }
        }
    });
    stream(receiver)
}

/// `step` events as the operation's journal records them, then `done` (whose
/// outcome the page reads from the API's `GET /v1/operations/{id}`).
pub(super) async fn steps<S: Store, P: Provider>(
    State(dash): State<Dash<S, P>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some((_, session)) = dash.session(&headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let c = std::sync::Arc::clone(&dash.controller);
    if !c.operations.visible_to(&id, &session.caller) {
        return crate::ApiError::not_found(format!("no operation {id}")).into_response();
    }
    let (mut events, receiver) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut workspace_id = None;
        let mut journal_op = None;
        let mut sent = 0;
        loop {
            let Some((name, status, began)) = c.operations.peek(&id, STEP_READ_EVERY).await else {
                return;
            };
            if workspace_id.is_none() {
                workspace_id = c
                    .swarm
                    .store()
                    .workspace_by_name(&name)
                    .await
                    .ok()
                    .flatten()
                    .map(|record| record.id);
            }
            if let Some(workspace) = workspace_id {
                if journal_op.is_none() {
                    // The workspace's journal entry begun after this operation was.
                    let since = began - time::Duration::seconds(1);
                    journal_op = c
                        .swarm
                        .store()
                        .operations_of(workspace)
                        .await
                        .ok()
                        .and_then(|ops| {
                            ops.last()
                                .filter(|op| op.started_at >= since)
                                .map(|op| op.id)
                        });
                }
                if let Some(op) = journal_op {
                    let steps = c
                        .swarm
                        .store()
                        .operation_steps(op)
                        .await
                        .unwrap_or_default();
                    if steps.len() > sent {
                        for step in &steps[sent..] {
                            let data = json!({ "step": step.step, "at": step.at.unix_timestamp() });
                            let event = Event::default().event("step").data(data.to_string());
                            if send(&mut events, event).await.is_err() {
                                return;
                            }
                        }
                        sent = steps.len();
                        // The list shows the state a step left the workspace in.
                        c.operations.changed(&name);
                    }
                }
            }
            if status != OperationStatus::Running {
                let _ = send(&mut events, Event::default().event("done").data(id.clone())).await;
                return;
            }
        }
    });
    stream(receiver)
}

async fn send(events: &mut Events, event: Event) -> Result<(), mpsc::SendError> {
    events.send(Ok(event)).await
}
