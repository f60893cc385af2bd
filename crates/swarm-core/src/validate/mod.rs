//! Validation at the edge: every error names the field, the value and the rule.

mod create;
mod guest;
mod image;
mod inputs;
mod resize;
mod targets;
#[cfg(test)]
mod tests;

pub use crate::error::ValidationError;
pub use crate::model::validate_name;
pub use create::*;
pub use guest::*;
pub use image::*;
pub use inputs::*;
pub use resize::*;
pub use targets::*;
