//! The scenario setup of `crates/swarm/tests/common` (shared by path, not copied) and
//! a controller serving over it.
#![allow(dead_code)]

#[path = "../../../swarm/tests/common/mod.rs"]
mod scenario;
pub mod server;

pub use scenario::*;
