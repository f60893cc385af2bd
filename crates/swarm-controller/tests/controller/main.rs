//! The Swarm Controller over real HTTP: a server on 127.0.0.1:0 in front of a real
//! store and an in-process fly-sim, called with a real HTTP client.

#[path = "../common/mod.rs"]
mod common;
mod events;
mod metrics;
mod prometheus;
mod reconcile;
mod refusals;
mod routes;
mod workspaces;

use common::server::Server;

/// The machine (app, id) of a workspace.
async fn machine_of(server: &Server, name: &str) -> (String, String) {
    let record = server.controller.swarm().show(name).await.expect("record");
    (
        record.app.expect("app"),
        record.machine_id.expect("machine"),
    )
}
