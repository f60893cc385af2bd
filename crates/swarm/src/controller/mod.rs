//! The Swarm Controller (`swarm serve`): a team's workspaces as a service over HTTP.
//!
//! It adds no Fly logic: each route calls the same [`Swarm`] method as the CLI
//! command of that name, so results, refusals and messages are the CLI's. Long
//! operations answer `202` with an operation resource at once ([`operations`]); the
//! journal in the store keeps them safe across a crash, as for the CLI. Callers are
//! named by API tokens ([`auth`]); a user sees and acts on their own workspaces only
//! (another user's answers `404`, as if it did not exist), an admin on all.

mod api_error;
pub mod auth;
pub mod operations;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;

use crate::provider::Provider;
use crate::store::Store;
use crate::swarm::Swarm;

pub use api_error::{ApiError, ErrorBody, FieldError};
pub use auth::{Caller, NewToken, TokenError, create_token};
pub use operations::{OperationStatus, OperationView, Operations};

/// How long a shutdown waits for running operations before leaving them to the
/// journal (and the next `reconcile`).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(60);

/// The service: the domain library plus the operations it runs.
#[derive(Debug)]
pub struct Controller<S: Store, P: Provider> {
    pub(crate) swarm: Arc<Swarm<S, P>>,
    pub(crate) operations: Arc<Operations>,
}

impl<S: Store, P: Provider> Controller<S, P> {
    pub fn new(swarm: Swarm<S, P>) -> Arc<Self> {
        Arc::new(Self {
            swarm: Arc::new(swarm),
            operations: Arc::new(Operations::default()),
        })
    }

    pub fn swarm(&self) -> &Swarm<S, P> {
        &self.swarm
    }

    pub fn operations(&self) -> &Operations {
        &self.operations
    }

    /// The HTTP API (`/v1/…`, `/healthz`, `/readyz`).
    pub fn router(self: &Arc<Self>) -> Router {
        routes::router(Arc::clone(self))
    }

    /// Serves on `listener` until `shutdown` resolves, then waits up to
    /// [`SHUTDOWN_GRACE`] for running operations; what is still running then is left
    /// to the journal. Returns the number of operations left unfinished.
    pub async fn serve(
        self: &Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<usize> {
        axum::serve(
            listener,
            self.router()
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        Ok(self.operations.drain(SHUTDOWN_GRACE).await)
    }
}
