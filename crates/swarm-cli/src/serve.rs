//! `swarm serve` and `swarm token create`: the CLI side of the Swarm Controller
//! (`swarm-controller`). The HTTP API itself lives in the `swarm-controller` crate.

use std::net::SocketAddr;

use serde_json::json;
use swarm::AnyStore;
use swarm_controller::{Background, Controller, create_token};

use crate::Failure;
use crate::backend::Backend;
use crate::cli::{ServeArgs, TokenAction, TokenArgs};
use crate::output::Output;

/// `--listen` as a socket address, or bad input naming it.
pub fn listen_address(args: &ServeArgs) -> Result<SocketAddr, Failure> {
    args.listen.parse().map_err(|_| {
        Failure::usage(format!(
            "invalid --listen {:?}: must be HOST:PORT with an IP address, e.g. 127.0.0.1:8080 (port 0 picks a free one)",
            args.listen
        ))
    })
}

/// Serves until Ctrl-C or SIGTERM, then lets running operations finish.
pub async fn serve(
    backend: Backend,
    out: &Output,
    args: &ServeArgs,
    quotas: swarm_controller::Quotas,
) -> Result<(), Failure> {
    let address = listen_address(args)?;
    let background = Background {
        reconcile_every: (args.reconcile_every > 0)
            .then(|| std::time::Duration::from_secs(args.reconcile_every)),
        idle_check_every: (args.idle_check_every > 0)
            .then(|| std::time::Duration::from_secs(args.idle_check_every)),
    };
    let listener = match tokio::net::TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(error) => {
            close(backend).await;
            return Err(Failure {
                code: 1,
                message: format!("cannot listen on {address}: {error}"),
            });
        }
    };
    let local = listener.local_addr().map_err(|error| Failure {
        code: 1,
        message: format!("cannot read the address listened on: {error}"),
    })?;
    // The contract: this is the first line on stdout.
    out.line(format!("listening on http://{local}"));
    out.line(format!(
        "dashboard: http://{local}/ (sign in with an API token from `swarm token create`)"
    ));
    let Backend { app, sim } = backend;
    let lease = std::time::Duration::from_secs(args.leader_lease);
    let controller = Controller::with_leader_lease(app, quotas, crate::BUILD, lease);
    let served = controller
        .serve_with(listener, background, shutdown_signal())
        .await;
    let unfinished = controller.operations().running();
    controller.swarm().store().close().await;
    if let Some(sim) = sim {
        sim.shutdown().await;
    }
    let left = served.map_err(|error| Failure {
        code: 1,
        message: format!("the server failed: {error}"),
    })?;
    if left > 0 || unfinished > 0 {
        out.warn(format!(
            "stopped with {} operation(s) unfinished; they are journaled: `swarm reconcile` finishes or undoes them",
            left.max(unfinished)
        ));
    }
    Ok(())
}

async fn close(backend: Backend) {
    backend.close().await;
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// `swarm token create --user NAME [--admin]`.
pub async fn token(store: &AnyStore, out: &Output, args: TokenArgs) -> Result<(), Failure> {
    let TokenAction::Create(create) = args.action;
    let token = create_token(store, &create.user, create.admin)
        .await
        .map_err(|error| match error {
            swarm_controller::TokenError::InvalidUser(_) => Failure::usage(error.to_string()),
            other => Failure {
                code: 1,
                message: other.to_string(),
            },
        })?;
    if out.json {
        out.json(&json!({
            "id": token.id,
            "user": token.user,
            "admin": token.admin,
            "token": token.expose(),
        }))?;
    } else {
        out.line(format!(
            "Token {} for {}{}:",
            token.id,
            token.user,
            if token.admin { " (admin)" } else { "" }
        ));
        out.line(format!("  {}", token.expose()));
        out.line("It is shown only this once and stored only as a hash: keep it now.");
    }
    Ok(())
}
