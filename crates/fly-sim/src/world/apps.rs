//! Apps, secrets and IP addresses.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::{ApiError, App, Ip, Secret, TimerKind, World};
use crate::clock::{Clock, Knob};

/// Fly's app-name rules (REFERENCE §3, S5).
pub fn validate_app_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(ApiError::unprocessable("Name can't be blank"));
    }
    if name
        .chars()
        .any(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
    {
        return Err(ApiError::unprocessable(
            "Name may only contain numbers, lowercase letters and dashes",
        ));
    }
    if name.len() > 63 {
        return Err(ApiError::unprocessable(
            "Name is too long (maximum is 63 characters)",
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(ApiError::unprocessable(
            "Name must start and end with a letter or a digit",
        ));
    }
    Ok(())
}

fn digest(value: &str) -> String {
    // FNV-1a: a stable, non-reversible-enough fingerprint; never the value itself.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in value.as_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

impl World {
    pub fn org_matches(&self, slug: &str) -> bool {
        slug == self.org || slug == "personal"
    }

    /// `POST /v1/apps`. Returns the app name.
    ///
    /// With an `idempotency_key` (REFERENCE §3, from the spec), a create repeating the
    /// key of a live app and its name (or no name) gets that app back instead of
    /// `name_taken`; the same key with another name is refused. The spec does not say
    /// how long Fly keeps a key: here, as long as the app lives.
    pub fn create_app(
        &mut self,
        clock: &Clock,
        name: Option<&str>,
        org_slug: &str,
        network: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<String, ApiError> {
        if let Some(key) = idempotency_key
            && let Some(first) = self
                .apps
                .values()
                .find(|app| !app.deleting && app.idempotency_key.as_deref() == Some(key))
        {
            return match name {
                None => Ok(first.name.clone()),
                Some(name) if name == first.name => Ok(first.name.clone()),
                // The spec: "rejected outright"; the text is ours [inferred].
                Some(_) => Err(ApiError::unprocessable(format!(
                    "idempotency_key was used to create app \"{}\"; a retry must name the same app",
                    first.name
                ))),
            };
        }
        let Some(name) = name else {
            return Err(ApiError::bad_request(
                "name: required (app_name is accepted too)",
            ));
        };
        validate_app_name(name)?;
        if !self.org_matches(org_slug) {
            return Err(ApiError::new(
                404,
                format!("Could not find Organization \"{org_slug}\""),
            ));
        }
        if self.apps.contains_key(name) || self.name_taken_elsewhere(name) {
            return Err(ApiError::name_taken());
        }
        let now = clock.now_ms();
        self.next_numeric_id += 1;
        let app = App {
            id: self.alnum(16),
            name: name.to_string(),
            org: self.org.clone(),
            network: network.unwrap_or("default").to_string(),
            internal_numeric_id: self.next_numeric_id,
            created_at: now,
            idempotency_key: idempotency_key.map(str::to_owned),
            deleting: false,
            machines: HashMap::new(),
            volumes: HashMap::new(),
            retired_snapshots: HashMap::new(),
            ips: Vec::new(),
            shared_ip: None,
            secrets: BTreeMap::new(),
            secrets_version: 0,
            logs: VecDeque::new(),
        };
        self.apps.insert(name.to_string(), app);
        Ok(name.to_string())
    }

    /// `DELETE /v1/apps/{app}`: 202, cascade in the background (REFERENCE S6).
    pub fn delete_app(&mut self, clock: &Clock, name: &str) -> Result<(), ApiError> {
        let now = clock.now_ms();
        let app = self.app_mut(name)?;
        if app.deleting {
            return Ok(());
        }
        app.deleting = true;
        let ids: Vec<String> = app.machines.keys().cloned().collect();
        for id in ids {
            // Force-destroy every machine; ignore already destroyed ones.
            let _ = self.destroy_machine(clock, name, &id, true, None, true);
        }
        let delay = clock.draw_for(Knob::AppDelete, name);
        self.schedule(
            now + delay,
            TimerKind::AppDeleted {
                app: name.to_string(),
            },
        );
        Ok(())
    }

    /// Removes a deleted app and everything it held.
    pub fn finish_app_delete(&mut self, name: &str) {
        if self.apps.get(name).is_some_and(|a| a.deleting) {
            self.apps.remove(name);
        }
    }

    // ---- secrets ----

    /// Sets (Some) or unsets (None) secrets; returns the new secrets version.
    pub fn update_secrets(
        &mut self,
        clock: &Clock,
        app: &str,
        values: Vec<(String, Option<String>)>,
        replace_all: bool,
    ) -> Result<u64, ApiError> {
        for (key, _) in &values {
            validate_secret_name(key)?;
        }
        let now = clock.now_ms();
        let app = self.app_mut(app)?;
        if replace_all {
            app.secrets.clear();
        }
        for (key, value) in values {
            match value {
                Some(value) => {
                    let created_at = app.secrets.get(&key).map_or(now, |s| s.created_at);
                    app.secrets.insert(
                        key,
                        Secret {
                            digest: digest(&value),
                            value,
                            created_at,
                            updated_at: now,
                        },
                    );
                }
                None => {
                    app.secrets.remove(&key);
                }
            }
        }
        app.secrets_version += 1;
        Ok(app.secrets_version)
    }

    // ---- IPs ----

    /// Allocates an address; `None` for `shared_v4` (read the app's shared IP instead).
    pub fn allocate_ip(
        &mut self,
        clock: &Clock,
        app: &str,
        kind: &str,
        region: Option<&str>,
        service_name: Option<&str>,
    ) -> Result<Option<Ip>, ApiError> {
        if !matches!(kind, "v4" | "v6" | "shared_v4" | "private_v6") {
            return Err(ApiError::bad_request(format!(
                "invalid IP address type {kind:?}: expected v4, v6, shared_v4 or private_v6"
            )));
        }
        if let Some(region) = region
            && !region.is_empty()
            && region != "global"
            && !super::region_known(region)
        {
            return Err(ApiError::invalid_region(region));
        }
        self.app(app)?;
        self.ip_counter += 1;
        let n = self.ip_counter;
        let now = clock.now_ms();
        let id = format!("ip_{}", self.alnum(14));
        let app_ref = self.app_mut(app)?;
        if kind == "shared_v4" {
            if app_ref.shared_ip.is_none() {
                app_ref.shared_ip = Some(format!("66.241.{}.{}", 124 + (n / 250) % 8, n % 250 + 1));
            }
            return Ok(None);
        }
        let address = match kind {
            "v4" => format!("137.66.{}.{}", (n / 250) % 250, n % 250 + 1),
            "v6" => format!("2a09:8280:1::{:x}:{:x}", n >> 16, n & 0xffff),
            _ => format!(
                "fdaa:0:{:x}:a7b:{:x}::2",
                app_ref.internal_numeric_id & 0xffff,
                n & 0xffff
            ),
        };
        let ip = Ip {
            id,
            address,
            kind: kind.to_string(),
            region: region
                .filter(|r| !r.is_empty())
                .unwrap_or("global")
                .to_string(),
            created_at: now,
            service_name: service_name.map(str::to_string),
        };
        app_ref.ips.push(ip.clone());
        Ok(Some(ip))
    }

    /// Releases by id or address (the shared v4 too). Returns the app name.
    pub fn release_ip(
        &mut self,
        app: Option<&str>,
        ip_id: Option<&str>,
        address: Option<&str>,
    ) -> Result<String, ApiError> {
        let owner = match app {
            Some(app) => {
                self.app(app)?;
                Some(app.to_string())
            }
            None => self
                .apps
                .values()
                .find(|a| {
                    a.org == self.org
                        && a.ips.iter().any(|ip| {
                            Some(ip.id.as_str()) == ip_id || Some(ip.address.as_str()) == address
                        })
                })
                .map(|a| a.name.clone()),
        };
        let Some(owner) = owner else {
            return Err(ApiError::new(404, "Could not find IP address"));
        };
        let app_ref = self.app_mut(&owner)?;
        let before = app_ref.ips.len();
        app_ref
            .ips
            .retain(|ip| !(Some(ip.id.as_str()) == ip_id || Some(ip.address.as_str()) == address));
        if app_ref.ips.len() == before {
            if address.is_some() && app_ref.shared_ip.as_deref() == address {
                app_ref.shared_ip = None;
            } else {
                return Err(ApiError::new(404, "Could not find IP address"));
            }
        }
        Ok(owner)
    }
}

/// Secrets become env vars of the app's machines, so their names are env var names:
/// `[A-Za-z_][A-Za-z0-9_]*` (the spec's `MachineSecret.env_var`: "a valid environment
/// variable name"; Fly's own server text is not published) [inferred].
pub fn validate_secret_name(key: &str) -> Result<(), ApiError> {
    let mut chars = key.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "invalid secret name {key:?}: must be an environment variable name (letters, digits and underscores, not starting with a digit)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_follow_fly_rules() {
        assert!(validate_app_name("my-app-1").is_ok());
        let err = validate_app_name("My_App").unwrap_err();
        assert_eq!(err.status, 422);
        assert!(
            err.message()
                .contains("numbers, lowercase letters and dashes")
        );
        assert!(validate_app_name(&"a".repeat(64)).is_err());
        assert!(validate_app_name("-x").is_err());
    }
}
