//! Crash points for tests: `SWARM_CRASH_AT=<step>` aborts the process (a real crash,
//! no unwinding, no cleanup) right after that step boundary has been committed to
//! the store. `<step>` is a bare step name (`after_app`, any operation) or qualified
//! with the operation (`delete.after_app`).

/// The env var naming the crash point.
pub const CRASH_AT_ENV: &str = "SWARM_CRASH_AT";

/// Crash points of `create`, in order. `after_app_create` falls between Fly's answer
/// and its commit: the app exists and only the keyed `app_creating` note says whose.
pub const CREATE_POINTS: [&str; 7] = [
    "after_intent",
    "after_app_create",
    "after_app",
    "after_volume",
    "after_ips",
    "after_machine",
    "after_started",
];
/// Crash points of `delete`, in order.
pub const DELETE_POINTS: [&str; 6] = [
    "after_intent",
    "after_stop",
    "after_machine",
    "after_volume",
    "after_ips",
    "after_app",
];

/// Crash points of `password --rotate`, in order.
pub const PASSWORD_POINTS: [&str; 2] = ["after_intent", "after_machine"];
/// Crash points of `resize`, in order (each only when that part changes).
pub const RESIZE_POINTS: [&str; 3] = ["after_intent", "after_machine", "after_volume"];

/// Crash points of `update` and `rollback`, in order.
pub const IMAGE_POINTS: [&str; 3] = ["after_intent", "after_snapshot", "after_machine"];
/// Crash points of `rollback --machine` (operation `machine_rollback`), in order
/// (`after_snapshot` only when the image changes).
pub const MACHINE_ROLLBACK_POINTS: [&str; 3] = ["after_intent", "after_snapshot", "after_machine"];
/// Crash points of `move` and `restore`, in order (`after_stop` only when it ran).
pub const REPLACE_POINTS: [&str; 7] = [
    "after_intent",
    "after_stop",
    "after_volume",
    "after_machine",
    "after_healthy",
    "after_switch",
    "after_cleanup",
];

/// Crash points of `pool fill` (operation `pool_fill`), in order, per slot.
pub const POOL_FILL_POINTS: [&str; 7] = [
    "after_intent",
    "after_app",
    "after_volume",
    "after_ips",
    "after_machine",
    "after_stopped",
    "after_ready",
];
/// Crash points of a slot's image refresh (operation `pool_refresh`, by `pool fill`
/// or `reconcile`).
pub const POOL_REFRESH_POINTS: [&str; 1] = ["after_update"];
/// Crash points of `pool drain` (operation `pool_drain`), in order, per slot.
pub const POOL_DRAIN_POINTS: [&str; 2] = ["after_intent", "after_app"];
/// Crash points of a `create` that takes a pool slot, in order. `after_slot_update`
/// falls between Fly's answer to the adopting update and the journal's commit.
pub const POOL_CREATE_POINTS: [&str; 5] = [
    "after_intent",
    "after_pool_take",
    "after_slot_update",
    "after_machine",
    "after_started",
];

/// Aborts the process if `SWARM_CRASH_AT` names this point of `operation`.
pub fn crash_point(operation: &str, point: &str) {
    let Ok(wanted) = std::env::var(CRASH_AT_ENV) else {
        return;
    };
    let qualified = wanted.split_once('.');
    let hit = match qualified {
        Some((op, step)) => op == operation && step == point,
        None => wanted == point,
    };
    if hit {
        eprintln!("swarm: crash point {operation}.{point} reached ({CRASH_AT_ENV}); aborting");
        std::process::abort();
    }
}
