//! App logs (`{api_base}/api/v1/apps/{app}/logs`).

use serde::{Deserialize, Serialize};

/// Which logs to read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogQuery {
    /// Continue after this page (`None`: start with the most recent lines).
    pub next_token: Option<String>,
    /// Only this machine.
    pub instance: Option<String>,
    /// Only this region.
    pub region: Option<String>,
}

/// One log line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub timestamp: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub level: String,
    #[serde(default)]
    pub instance: String,
    #[serde(default)]
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
}

/// One page of logs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogPage {
    pub entries: Vec<LogEntry>,
    /// Pass back to get the next page.
    pub next_token: Option<String>,
}

/// The wire shape of a logs page.
#[derive(Debug, Deserialize)]
pub struct WireLogPage {
    #[serde(default)]
    pub data: Vec<WireLogItem>,
    #[serde(default)]
    pub meta: Option<WireLogMeta>,
}

#[derive(Debug, Deserialize)]
pub struct WireLogItem {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub attributes: WireLogAttributes,
}

#[derive(Debug, Default, Deserialize)]
pub struct WireLogAttributes {
    #[serde(default)]
    pub timestamp: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub level: String,
    #[serde(default)]
    pub instance: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub meta: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct WireLogMeta {
    #[serde(default)]
    pub next_token: Option<String>,
}

impl From<WireLogPage> for LogPage {
    fn from(page: WireLogPage) -> Self {
        LogPage {
            entries: page
                .data
                .into_iter()
                .map(|item| LogEntry {
                    id: item.id,
                    timestamp: item.attributes.timestamp,
                    message: item.attributes.message,
                    level: item.attributes.level,
                    instance: item.attributes.instance,
                    region: item.attributes.region,
                    meta: item.attributes.meta,
                })
                .collect(),
            next_token: page
                .meta
                .and_then(|m| m.next_token)
                .filter(|t| !t.is_empty()),
        }
    }
}
