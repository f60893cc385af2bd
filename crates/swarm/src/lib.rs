//! VS Code Remote Swarm's operations on Fly.io: code-server workspaces.
//!
//! - [`Swarm`]: the entry type, one async method per operation (create, list, show,
//!   start, stop, suspend, delete, health, logs, exec, secrets, resize, update, rollback,
//!   move, snapshot, restore, password, reconcile, pool), each returning a serialisable
//!   result or an [`Error`] whose [`Error::exit_code`] separates bad input (2) from
//!   failure (1).
//! - [`provider`]: the [`Provider`] trait and the Fly.io implementation.
//! - Below it: `swarm-core` (the model, validation, config; re-exported here as
//!   [`model`], [`validate`], [`config`]) and `swarm-store` (the [`Store`] trait and its
//!   backends, re-exported as [`store`]).
//!
//! See the crate README for the decisions behind the design.

pub mod cost_report;
mod create;
mod create_steps;
pub mod error;
pub mod exec;
pub mod failpoint;
mod image;
mod journal;
mod lifecycle;
mod machine_rollback;
mod observe;
mod pool;
pub mod provider;
mod reconcile;
mod replace;
pub mod secrets;
mod start_stop;
mod suspend;
mod swarm;
mod teardown;

pub use error::{Error, Result};
pub use exec::{ExecOptions, ExecOutput, Executed};
pub use pool::validate_pool_fill;
pub use provider::{FlyProvider, Provider, ProviderError, ProviderErrorKind, SnapshotInfo};
pub use replace::TAG_OPERATION;
pub use secrets::{SecretAction, SecretChanged, SecretInfo, SecretList};
pub use swarm::{Progress, Swarm};
// The model and the store, under the names the operations use them by.
pub use swarm_core::{
    SwarmConfig, config, cost, first_boot, model, password, pool_model, quota, validate, version,
};
pub use swarm_core::{model::*, pool_model::*};
pub use swarm_store as store;
pub use swarm_store::{AnyStore, PgStore, SqliteStore, Store, StoreError, lock, open_store};
