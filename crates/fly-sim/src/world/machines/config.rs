//! Create and update requests, and the config checks and defaults Fly applies.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::world::ApiError;

/// A create or update request, already parsed from JSON.
#[derive(Debug, Clone, Default)]
pub struct MachineRequest {
    pub name: Option<String>,
    pub region: Option<String>,
    pub config: Value,
    pub skip_launch: bool,
    pub lease_ttl: Option<i64>,
    pub current_version: Option<String>,
}

impl MachineRequest {
    /// Parses `CreateMachineRequest` / `UpdateMachineRequest`.
    pub fn from_json(body: &Value) -> Result<MachineRequest, ApiError> {
        let obj = body
            .as_object()
            .ok_or_else(|| ApiError::bad_request("request body must be a JSON object"))?;
        let text = |key: &str| -> Result<Option<String>, ApiError> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ApiError::bad_request(format!("{key}: must be a string"))),
            }
        };
        let config = obj.get("config").cloned().unwrap_or(Value::Null);
        if !config.is_object() {
            return Err(ApiError::bad_request("config: required, must be an object"));
        }
        let lease_ttl = match obj.get("lease_ttl") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_i64().ok_or_else(|| {
                ApiError::bad_request("lease_ttl: must be an integer number of seconds")
            })?),
        };
        Ok(MachineRequest {
            name: text("name")?.filter(|n| !n.is_empty()),
            region: text("region")?.filter(|r| !r.is_empty()),
            config,
            skip_launch: obj
                .get("skip_launch")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            lease_ttl,
            current_version: text("current_version")?.filter(|v| !v.is_empty()),
        })
    }
}

const SHARED_CPUS: &[i64] = &[1, 2, 4, 6, 8];
const PERFORMANCE_CPUS: &[i64] = &[1, 2, 4, 6, 8, 10, 12, 14, 16];

/// Validates a guest per REFERENCE §4.7; `None` when valid.
pub fn guest_error(cpu_kind: &str, cpus: i64, memory_mb: i64) -> Option<String> {
    let (allowed, min_per, max_per) = match cpu_kind {
        "shared" => (SHARED_CPUS, 256, 2048),
        "performance" => (PERFORMANCE_CPUS, 2048, 8192),
        other => {
            return Some(format!(
                "invalid config.guest.cpu_kind {other:?}, must be shared or performance"
            ));
        }
    };
    if !allowed.contains(&cpus) {
        return Some(format!(
            "invalid config.guest.cpus, {cpus} is not a valid number of {cpu_kind} CPUs ({allowed:?})"
        ));
    }
    let min = min_per * cpus;
    let max = max_per * cpus;
    if memory_mb < min {
        return Some(format!(
            "invalid config.guest.memory_mb, minimum required {min} MiB"
        ));
    }
    if memory_mb > max {
        return Some(format!(
            "invalid config.guest.memory_mb, cannot exceed {max} MiB"
        ));
    }
    if memory_mb % 256 != 0 {
        return Some("invalid config.guest.memory_mb, must be a multiple of 256 MiB".into());
    }
    None
}

fn preset(size: &str) -> Option<(&'static str, i64, i64)> {
    let (kind, rest) = if let Some(rest) = size.strip_prefix("shared-cpu-") {
        ("shared", rest)
    } else if let Some(rest) = size.strip_prefix("performance-") {
        ("performance", rest)
    } else {
        return None;
    };
    let cpus: i64 = rest.strip_suffix('x')?.parse().ok()?;
    let mem = if kind == "shared" { 256 } else { 2048 } * cpus;
    Some((kind, cpus, mem))
}

/// Checks and fills a machine config the way Fly's API does.
pub(super) fn normalize_config(config: &mut Value) -> Result<(), String> {
    let obj = config.as_object_mut().ok_or("config: must be an object")?;
    match obj.get("image") {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        _ => return Err("invalid config.image, image is required".into()),
    }
    // Guest: explicit, else from the deprecated `size` preset, else shared-cpu-1x.
    let (mut kind, mut cpus, mut mem) = ("shared".to_string(), 1, 256);
    if let Some(size) = obj.get("size").and_then(Value::as_str) {
        let (k, c, m) = preset(size).ok_or_else(|| format!("invalid config.size {size:?}"))?;
        (kind, cpus, mem) = (k.to_string(), c, m);
    }
    let guest = obj.entry("guest").or_insert_with(|| json!({}));
    let guest = guest
        .as_object_mut()
        .ok_or("invalid config.guest, must be an object")?;
    if let Some(v) = guest.get("cpu_kind") {
        kind = v
            .as_str()
            .ok_or("invalid config.guest.cpu_kind, must be a string")?
            .to_string();
    }
    if let Some(v) = guest.get("cpus") {
        cpus = v
            .as_i64()
            .ok_or("invalid config.guest.cpus, must be an integer")?;
    }
    if let Some(v) = guest.get("memory_mb") {
        mem = v
            .as_i64()
            .ok_or("invalid config.guest.memory_mb, must be an integer")?;
    }
    if let Some(err) = guest_error(&kind, cpus, mem) {
        return Err(err);
    }
    guest.insert("cpu_kind".into(), json!(kind));
    guest.insert("cpus".into(), json!(cpus));
    guest.insert("memory_mb".into(), json!(mem));
    if let Some(env) = obj.get("env") {
        let env = env
            .as_object()
            .ok_or("invalid config.env, must be an object")?;
        if let Some((k, _)) = env.iter().find(|(_, v)| !v.is_string()) {
            return Err(format!("invalid config.env.{k}, values must be strings"));
        }
    }
    if let Some(meta) = obj.get("metadata") {
        let meta = meta
            .as_object()
            .ok_or("invalid config.metadata, must be an object")?;
        if let Some((k, _)) = meta.iter().find(|(_, v)| !v.is_string()) {
            return Err(format!(
                "invalid config.metadata.{k}, values must be strings"
            ));
        }
    }
    if let Some(services) = obj.get_mut("services") {
        let services = services
            .as_array_mut()
            .ok_or("invalid config.services, must be an array")?;
        for (i, service) in services.iter_mut().enumerate() {
            let service = service
                .as_object_mut()
                .ok_or_else(|| format!("invalid config.services[{i}], must be an object"))?;
            // Fly answers off/stop as booleans for older clients (spec `autostop`).
            let normalized = match service.get("autostop") {
                Some(Value::String(s)) if s == "off" => Some(json!(false)),
                Some(Value::String(s)) if s == "stop" => Some(json!(true)),
                Some(Value::String(s)) if s == "suspend" => None,
                Some(Value::Bool(_)) | None | Some(Value::Null) => None,
                Some(other) => {
                    return Err(format!(
                        "invalid config.services[{i}].autostop {other}, must be off, stop or suspend"
                    ));
                }
            };
            if let Some(v) = normalized {
                service.insert("autostop".into(), v);
            }
        }
    }
    if let Some(mounts) = obj.get("mounts") {
        let mounts = mounts
            .as_array()
            .ok_or("invalid config.mounts, must be an array")?;
        for (i, mount) in mounts.iter().enumerate() {
            if mount.get("volume").and_then(Value::as_str).is_none() {
                return Err(format!(
                    "invalid config.mounts[{i}].volume, a volume id is required"
                ));
            }
            match mount.get("path").and_then(Value::as_str) {
                Some(p) if p.starts_with('/') => {}
                _ => {
                    return Err(format!(
                        "invalid config.mounts[{i}].path, must be an absolute path"
                    ));
                }
            }
        }
    }
    Ok(())
}

pub(super) fn mount_ids(config: &Value) -> Vec<String> {
    config
        .get("mounts")
        .and_then(Value::as_array)
        .map(|ms| {
            ms.iter()
                .filter_map(|m| m.get("volume").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn image_of(config: &Value) -> String {
    config
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

pub(super) fn env_of(config: &Value) -> BTreeMap<String, String> {
    config
        .get("env")
        .and_then(Value::as_object)
        .map(|env| {
            env.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Parses a Go duration (`"10s"`, `"1m30s"`, `"500ms"`) or plain seconds into ms.
pub fn parse_go_duration_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return Some((secs * 1000.0) as i64);
    }
    let mut total = 0.0;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() || n == 'µ' {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let value: f64 = number.parse().ok()?;
        number.clear();
        let factor = match unit.as_str() {
            "ns" => 1e-6,
            "us" | "µs" => 1e-3,
            "ms" => 1.0,
            "s" => 1000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            _ => return None,
        };
        total += value * factor;
        any = true;
    }
    if !number.is_empty() || !any {
        return None;
    }
    Some(total as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_bounds_follow_fly() {
        assert_eq!(guest_error("shared", 1, 1024), None);
        assert_eq!(
            guest_error("shared", 4, 512).as_deref(),
            Some("invalid config.guest.memory_mb, minimum required 1024 MiB")
        );
        assert_eq!(
            guest_error("shared", 1, 4096).as_deref(),
            Some("invalid config.guest.memory_mb, cannot exceed 2048 MiB")
        );
        assert_eq!(
            guest_error("performance", 8, 8192).as_deref(),
            Some("invalid config.guest.memory_mb, minimum required 16384 MiB")
        );
        assert!(guest_error("shared", 3, 768).is_some());
        assert!(guest_error("shared", 1, 300).is_some());
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_go_duration_ms("10s"), Some(10_000));
        assert_eq!(parse_go_duration_ms("1m30s"), Some(90_000));
        assert_eq!(parse_go_duration_ms("250ms"), Some(250));
        assert_eq!(parse_go_duration_ms("7"), Some(7_000));
        assert_eq!(parse_go_duration_ms("bogus"), None);
    }
}
