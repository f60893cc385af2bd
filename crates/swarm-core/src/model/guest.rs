//! The machine's size: CPU kind, CPUs and memory.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Fly's CPU kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuKind {
    Shared,
    Performance,
}

impl CpuKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::Performance => "performance",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Shared, Self::Performance]
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

impl fmt::Display for CpuKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Guest size of the workspace's machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestSize {
    pub cpu_kind: CpuKind,
    pub cpus: u32,
    pub memory_mb: u32,
}
