//! The one error of validation: a field, its value and the rule it breaks.

use std::fmt;

use serde::Serialize;

/// One rule broken by one input value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationError {
    pub field: &'static str,
    pub value: String,
    pub rule: String,
}

impl ValidationError {
    pub fn new(field: &'static str, value: impl fmt::Display, rule: impl Into<String>) -> Self {
        Self {
            field,
            value: value.to_string(),
            rule: rule.into(),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {} {:?}: {}", self.field, self.value, self.rule)
    }
}

impl std::error::Error for ValidationError {}
