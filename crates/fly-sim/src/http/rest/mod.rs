//! Machines REST under `/v1` (REFERENCE §3–§5, §7).

mod apps;
mod ips;
mod leases;
mod machines;
mod metadata;
mod secrets;
mod volumes;

use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{Value, json};

use super::{Shared, json_response};

pub use apps::{create_app, delete_app, get_app, list_apps};
pub use ips::{assign_ip, list_ip_assignments, remove_ip};
pub use leases::{acquire_lease, get_lease, release_lease};
pub use machines::{
    cordon_machine, create_machine, delete_machine, get_machine, list_machines, machine_events,
    machine_versions, restart_machine, signal_machine, start_machine, stop_machine,
    suspend_machine, uncordon_machine, update_machine, wait_machine,
};
pub use metadata::{
    delete_metadata_key, get_metadata, get_metadata_key, patch_metadata, set_metadata_key,
};
pub use secrets::{delete_secret, get_secret, list_secrets, set_secret, update_secrets};
pub use volumes::{
    create_snapshot, create_volume, delete_volume, extend_volume, get_volume, list_snapshots,
    list_volumes, update_volume,
};

type AppPath = Path<String>;
type MachinePath = Path<(String, String)>;

fn str_field<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

pub async fn regions(State(_inner): Shared) -> Response {
    let regions: Vec<Value> = crate::world::REGIONS
        .iter()
        .map(|(code, name)| {
            json!({"code": code, "name": name, "gateway_available": true,
            "requires_paid_plan": false, "deprecated": false})
        })
        .collect();
    json_response(
        200,
        json!({"nearest": crate::world::DEFAULT_REGION, "regions": regions}),
    )
}
