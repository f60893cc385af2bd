//! VS Code Remote Swarm's domain library: code-server workspaces on Fly.io.
//!
//! - [`Swarm`]: the entry type, one async method per operation (create, list, show,
//!   start, stop, delete, health, logs, resize, update, rollback (of an image version or of the
//!   last machine change), move, snapshot,
//!   restore, password, reconcile), each returning a serialisable
//!   result or an [`Error`] whose [`Error::exit_code`] separates bad input (2) from
//!   failure (1).
//! - [`validate`]: the input rules; [`model`]: the types; [`config`]: the defaults.
//! - [`store`]: the [`Store`] trait and its SQLite backend (journal, locks, schema).
//! - [`provider`]: the [`Provider`] trait and the Fly.io implementation.
//!
//! See the crate README for the decisions behind the design.

pub mod config;
pub mod controller;
pub mod cost;
pub mod cost_report;
pub mod error;
pub mod exec;
pub mod failpoint;
pub mod first_boot;
#[doc(hidden)]
pub mod fuzzing;
mod image;
mod journal;
mod lifecycle;
pub mod lock;
mod machine_rollback;
pub mod model;
pub mod password;
mod pool;
pub mod pool_model;
pub mod provider;
pub mod quota;
mod reconcile;
mod replace;
pub mod secrets;
pub mod store;
mod suspend;
mod swarm;
pub mod validate;
pub mod version;

pub use config::SwarmConfig;
pub use error::{Error, Result};
pub use exec::{ExecOptions, ExecOutput, Executed};
pub use model::*;
pub use pool::validate_pool_fill;
pub use pool_model::*;
pub use provider::{FlyProvider, Provider, ProviderError, ProviderErrorKind, SnapshotInfo};
pub use replace::TAG_OPERATION;
pub use secrets::{SecretAction, SecretChanged, SecretInfo, SecretList};
pub use store::{AnyStore, PgStore, SqliteStore, Store, StoreError, open_store};
pub use suspend::{IdlePolicy, SUSPEND_MAX_MEMORY_MB, check_suspendable, parse_idle_policy};
pub use swarm::{Progress, Swarm};
