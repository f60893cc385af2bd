//! One function per command: call `swarm`, print the result.

mod config;
mod confirm;
mod create;
mod format;
mod health_and_logs;
mod inspect;
mod machine_changes;
mod pool;
mod power;
mod reconcile;
mod volume;

pub use config::config;
pub use create::{create, create_options};
pub use health_and_logs::{health, logs};
pub use inspect::{cost, list, show};
pub use machine_changes::{password, resize, rollback, update, versions};
pub use pool::{pool, pool_fill_target};
pub use power::{delete, start, stop, suspend};
pub use reconcile::reconcile;
pub use volume::{move_region, restore, snapshot};
