//! VS Code Remote Swarm's workspace model, with no IO: what a workspace is
//! ([`model`]), the rules its inputs must keep ([`validate`]), the defaults
//! ([`config`]), what it costs ([`cost`]), the quotas a user is held to ([`quota`]),
//! the pool's slots ([`pool_model`]), the one-time password ([`password`]), the first
//! boot's dotfiles and init script ([`first_boot`]) and swarm's own version rules
//! ([`version`]).
//!
//! Modules depend downwards only: `error` ← `model` ← `config` ← `validate`.

pub mod config;
pub mod cost;
pub mod error;
pub mod first_boot;
pub mod model;
pub mod password;
pub mod pool_model;
pub mod quota;
pub mod validate;
pub mod version;

pub use config::SwarmConfig;
pub use error::ValidationError;
pub use model::*;
pub use pool_model::*;
