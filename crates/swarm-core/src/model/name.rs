//! The workspace name: Fly's app-name rules, checked wherever a name comes in.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

/// A validated workspace name (Fly app-name rules). Also checked when read back (from
/// the store, say): a name that breaks the rules is damage, not a workspace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct WorkspaceName(pub(crate) String);

impl Serialize for WorkspaceName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl TryFrom<String> for WorkspaceName {
    type Error = ValidationError;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        validate_name(&name).map(|()| Self(name))
    }
}

impl WorkspaceName {
    /// Validates `name` against Fly's app-name rules.
    pub fn parse(name: &str) -> Result<Self, ValidationError> {
        validate_name(name).map(|()| Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkspaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Fly's app-name rules: `[a-z0-9-]`, starts with a letter, ends with a letter or
/// digit, at most 63 characters (one DNS label of `<name>.fly.dev`).
pub fn validate_name(name: &str) -> Result<(), ValidationError> {
    let rule = |text: &str| Err(ValidationError::new("name", name, text));
    if name.is_empty() {
        return rule("must not be empty");
    }
    if name.len() > 63 {
        return rule("at most 63 characters (it becomes <name>.fly.dev)");
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return rule(&format!(
            "only lowercase letters, digits and dashes are allowed (found {bad:?})"
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return rule("must start with a lowercase letter");
    }
    if name.ends_with('-') {
        return rule("must end with a letter or digit");
    }
    Ok(())
}
