//! Machine leases: acquire, refresh, release, and the check mutating calls make.

use crate::clock::Clock;
use crate::world::{ApiError, Lease, Machine, World};

/// Whether a lease is held and unexpired at `now_secs`.
fn active_lease(m: &Machine, now_ms: i64) -> Option<&Lease> {
    m.lease
        .as_ref()
        .filter(|l| l.expires_at.saturating_mul(1000) > now_ms)
}

/// 409 unless the caller holds the machine's lease (or none is held).
pub(in crate::world) fn check_lease(
    m: &Machine,
    nonce: Option<&str>,
    now_ms: i64,
) -> Result<(), ApiError> {
    match active_lease(m, now_ms) {
        Some(lease) if Some(lease.nonce.as_str()) != nonce => {
            Err(ApiError::lease_held(&m.id, &lease.owner, lease.expires_at))
        }
        _ => Ok(()),
    }
}

pub(super) fn lease_owner(org: &str) -> String {
    format!("sim-user@{org}.fly.sim")
}

impl World {
    /// Acquire or refresh. Returns `(created, lease)`.
    pub fn acquire_lease(
        &mut self,
        clock: &Clock,
        app: &str,
        id: &str,
        ttl: Option<i64>,
        description: Option<String>,
        nonce: Option<&str>,
    ) -> Result<(bool, Lease), ApiError> {
        let ttl = ttl.unwrap_or(30);
        if ttl <= 0 {
            return Err(ApiError::bad_request(
                "ttl: must be a positive number of seconds",
            ));
        }
        let now = clock.now_ms();
        let fresh_nonce = self.hex(12);
        let org = self.org.clone();
        let m = self.machine_mut(app, id)?;
        if m.state == "destroyed" {
            return Err(ApiError::machine_not_found(id));
        }
        let held = active_lease(m, now).cloned();
        match held {
            Some(lease) if Some(lease.nonce.as_str()) == nonce => {
                let refreshed = Lease {
                    expires_at: (now / 1000).saturating_add(ttl),
                    description: description.unwrap_or(lease.description.clone()),
                    version: m.version.clone(),
                    ..lease
                };
                m.lease = Some(refreshed.clone());
                Ok((false, refreshed))
            }
            Some(lease) => Err(ApiError::lease_held(id, &lease.owner, lease.expires_at)),
            None => {
                let lease = Lease {
                    nonce: fresh_nonce,
                    owner: lease_owner(&org),
                    description: description.unwrap_or_default(),
                    expires_at: (now / 1000).saturating_add(ttl),
                    version: m.version.clone(),
                };
                m.lease = Some(lease.clone());
                Ok((true, lease))
            }
        }
    }

    pub fn get_lease(&self, clock: &Clock, app: &str, id: &str) -> Result<Lease, ApiError> {
        let m = self.machine_ref(app, id)?;
        active_lease(m, clock.now_ms())
            .cloned()
            .ok_or_else(|| ApiError::new(404, format!("no active lease for machine {id}")))
    }

    pub fn release_lease(
        &mut self,
        clock: &Clock,
        app: &str,
        id: &str,
        nonce: Option<&str>,
    ) -> Result<(), ApiError> {
        let now = clock.now_ms();
        let m = self.machine_mut(app, id)?;
        let Some(nonce) = nonce else {
            return Err(ApiError::bad_request(
                "fly-machine-lease-nonce: header required to release a lease",
            ));
        };
        match active_lease(m, now) {
            Some(lease) if lease.nonce != nonce => {
                Err(ApiError::lease_held(id, &lease.owner, lease.expires_at))
            }
            _ => {
                m.lease = None;
                Ok(())
            }
        }
    }
}
