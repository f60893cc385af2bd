//! Formatting shared by several commands' output.

use swarm::WorkspaceRecord;

use crate::output::{self};

/// The operation that replaced a machine config, as the user typed it.
pub(super) fn change_name(operation: &str) -> &str {
    match operation {
        "machine_rollback" => "machine rollback",
        other => other,
    }
}

pub(super) fn guest(guest: &swarm::GuestSize) -> String {
    format!(
        "{}x{} {}",
        guest.cpus,
        guest.cpu_kind,
        output::memory(guest.memory_mb)
    )
}

/// RFC 3339 to the second: precise enough to tell versions apart, short in a table.
pub(super) fn fmt_time(t: time::OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

pub(super) fn size(ws: &WorkspaceRecord) -> String {
    let g = &ws.spec.guest;
    format!(
        "{} × {} CPU, {} memory, {} GB volume, region {}",
        g.cpus,
        g.cpu_kind,
        output::memory(g.memory_mb),
        ws.spec.storage_gb,
        ws.spec.region
    )
}

pub(super) fn list_or_nothing(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".into()
    } else {
        items.join(", ")
    }
}
