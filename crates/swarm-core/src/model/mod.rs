//! The workspace domain model: what the user asks for ([`CreateOptions`]), what was
//! validated ([`WorkspaceSpec`]), what the store keeps ([`WorkspaceRecord`]) and what
//! the operations return.

mod guest;
mod health;
mod idle;
mod machine_state;
mod name;
mod network;
mod outcomes;
mod reconcile;
mod record;
mod spec;

pub use guest::*;
pub use health::*;
pub use idle::*;
pub use machine_state::*;
pub use name::*;
pub use network::*;
pub use outcomes::*;
pub use reconcile::*;
pub use record::*;
pub use spec::*;
