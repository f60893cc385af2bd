//! `client.machines(app)`: lifecycle, wait, events and leases.

use std::future::Future;
use std::time::Duration;

use http::Method;
use serde::Deserialize;
use tokio::time::Instant;

use crate::client::{Call, FlyClient, decode, require};
use crate::models::{
    CreateLeaseRequest, CreateMachineRequest, Lease, ListMachines, Machine, MachineEvent,
    MachineState, StartResponse, StopRequest, UpdateMachineRequest, WaitRequest, WaitResponse,
};
use crate::retry::Idempotency;
use crate::throttle::Quota;
use crate::{Error, Result};

/// Longest a single `/wait` call may block on Fly's side.
pub const MAX_WAIT_SECS: u64 = 60;
/// First delay between `/wait` attempts after a transient failure (doubles each time).
pub const WAIT_RETRY_INITIAL: Duration = Duration::from_millis(500);
/// Cap for that delay.
pub const WAIT_RETRY_MAX: Duration = Duration::from_secs(8);

/// Machine operations within one app.
#[derive(Debug, Clone)]
pub struct Machines {
    client: FlyClient,
    app: String,
}

impl FlyClient {
    /// Machines of `app`.
    pub fn machines(&self, app: &str) -> Machines {
        Machines {
            client: self.clone(),
            app: app.to_string(),
        }
    }
}

impl Machines {
    /// The app these calls address.
    pub fn app(&self) -> &str {
        &self.app
    }

    pub(crate) fn client(&self) -> &FlyClient {
        &self.client
    }

    fn call(&self, method: Method, action: &'static str, rest: &[&str]) -> Result<Call> {
        require("app name", &self.app)?;
        let mut segments = vec!["apps", self.app.as_str(), "machines"];
        segments.extend_from_slice(rest);
        Ok(Call::v1(method, action, segments))
    }

    pub(crate) fn machine_call(
        &self,
        method: Method,
        action: &'static str,
        id: &str,
        rest: &[&str],
    ) -> Result<Call> {
        require("machine id", id)?;
        let mut segments = vec![id];
        segments.extend_from_slice(rest);
        let quota = if action == "get_machine" {
            Quota::GET_MACHINE
        } else {
            Quota::ACTION
        };
        Ok(self.call(method, action, &segments)?.throttled(id, quota))
    }

    /// Creates (and by default boots) a machine. Answers 200 with the machine in
    /// `created` or `starting`; use [`Machines::wait_for_state`] to see it started.
    /// Not retried unless certainly not applied: tag it in `config.metadata` and list to
    /// adopt it after an ambiguous failure.
    pub async fn create(&self, request: &CreateMachineRequest) -> Result<Machine> {
        let call = self
            .call(Method::POST, "create_machine", &[])?
            .json_body(request)?
            .throttled(&self.app, Quota::ACTION);
        self.client.json(call).await
    }

    /// One machine.
    pub async fn get(&self, id: &str) -> Result<Machine> {
        let call = self.machine_call(Method::GET, "get_machine", id, &[])?;
        self.client.json(call).await
    }

    /// Machines of the app, filtered.
    pub async fn list(&self, filter: &ListMachines) -> Result<Vec<Machine>> {
        let mut call = self
            .call(Method::GET, "list_machines", &[])?
            .throttled(&self.app, Quota::ACTION);
        if filter.include_deleted {
            call = call.query("include_deleted", "true");
        }
        if let Some(region) = &filter.region {
            call = call.query("region", region);
        }
        if !filter.state.is_empty() {
            call = call.query("state", filter.state.join(","));
        }
        for (key, value) in &filter.metadata {
            require("metadata key", key)?;
            call = call.query(format!("metadata.{key}"), value);
        }
        if filter.summary {
            call = call.query("summary", "true");
        }
        self.client.json(call).await
    }

    /// Replaces the machine's config (the whole config, not a patch).
    pub async fn update(
        &self,
        id: &str,
        request: &UpdateMachineRequest,
        nonce: Option<&str>,
    ) -> Result<Machine> {
        let call = self
            .machine_call(Method::POST, "update_machine", id, &[])?
            .json_body(request)?
            .nonce(nonce)
            // Sending the same full config again ends in the same state.
            .idempotency(Idempotency::Safe);
        self.client.json(call).await
    }

    /// Starts a stopped, created or suspended machine (a no-op when started).
    pub async fn start(&self, id: &str, nonce: Option<&str>) -> Result<StartResponse> {
        let call = self
            .machine_call(Method::POST, "start_machine", id, &["start"])?
            .nonce(nonce)
            .idempotency(Idempotency::Safe);
        let response = self.client.execute(call).await?;
        if response.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(StartResponse::default());
        }
        decode(&response.body)
    }

    /// Cordons (`true`) or uncordons a machine. A cordoned machine's services are off:
    /// Fly's proxy neither routes requests to it nor autostarts it.
    pub async fn cordon(&self, id: &str, cordoned: bool, nonce: Option<&str>) -> Result<()> {
        let (action, path) = if cordoned {
            ("cordon_machine", "cordon")
        } else {
            ("uncordon_machine", "uncordon")
        };
        let call = self
            .machine_call(Method::POST, action, id, &[path])?
            .nonce(nonce)
            .idempotency(Idempotency::Safe);
        self.client.unit(call).await
    }

    /// Stops a machine (it keeps its volume and config).
    pub async fn stop(&self, id: &str, request: &StopRequest, nonce: Option<&str>) -> Result<()> {
        let call = self
            .machine_call(Method::POST, "stop_machine", id, &["stop"])?
            .json_body(request)?
            .nonce(nonce)
            .idempotency(Idempotency::Safe);
        self.client.unit(call).await
    }

    /// Restarts a started machine.
    pub async fn restart(&self, id: &str, nonce: Option<&str>) -> Result<()> {
        let call = self
            .machine_call(Method::POST, "restart_machine", id, &["restart"])?
            .nonce(nonce)
            .idempotency(Idempotency::Safe);
        self.client.unit(call).await
    }

    /// Suspends a started machine (snapshot of its memory; falls back to a stop).
    pub async fn suspend(&self, id: &str, nonce: Option<&str>) -> Result<()> {
        let call = self
            .machine_call(Method::POST, "suspend_machine", id, &["suspend"])?
            .nonce(nonce)
            .idempotency(Idempotency::Safe);
        self.client.unit(call).await
    }

    /// Destroys a machine; `force` also kills a running one.
    pub async fn delete(&self, id: &str, force: bool, nonce: Option<&str>) -> Result<()> {
        let mut call = self
            .machine_call(Method::DELETE, "delete_machine", id, &[])?
            .nonce(nonce);
        if force {
            call = call.query("force", "true");
        }
        self.client.unit(call).await
    }

    /// One `/wait` call: blocks on Fly's side up to `timeout_secs` (clamped to 1..=60).
    /// A 408 means the state was not reached in time. Not retried here.
    pub async fn wait(&self, id: &str, request: &WaitRequest) -> Result<WaitResponse> {
        let secs = request.timeout_secs.clamp(1, MAX_WAIT_SECS);
        let mut call = self
            .machine_call(Method::GET, "wait_machine", id, &["wait"])?
            .idempotency(Idempotency::Never)
            .extra_timeout(Duration::from_secs(secs));
        for state in &request.states {
            call = call.query("state", state.as_str());
        }
        call = call.query("timeout", secs.to_string());
        if let Some(version) = &request.version {
            call = call.query("version", version);
        }
        let response = self.client.execute(call).await?;
        if response.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(WaitResponse {
                ok: true,
                ..WaitResponse::default()
            });
        }
        decode(&response.body)
    }

    /// Waits until the machine reaches one of `states`, looping `/wait` (≤ 60 s a call)
    /// up to `timeout` overall. Tolerates 408, "currently replaced", 429, 5xx and
    /// transport failures, backing off from 500 ms (doubling, capped at 8 s, or Fly's
    /// `Retry-After`; a 408 that did not wait out its timeout counts as transient too).
    /// [`Error::Timeout`] when `timeout` passes.
    pub async fn wait_for_state(
        &self,
        id: &str,
        states: &[MachineState],
        version: Option<&str>,
        timeout: Duration,
    ) -> Result<WaitResponse> {
        let deadline = Instant::now() + timeout;
        let mut backoff = WAIT_RETRY_INITIAL;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(Error::Timeout);
            }
            let request = WaitRequest {
                states: states.to_vec(),
                timeout_secs: remaining
                    .as_secs_f64()
                    .ceil()
                    .clamp(1.0, MAX_WAIT_SECS as f64) as u64,
                version: version.map(str::to_string),
            };
            let call_started = Instant::now();
            let err = match self.wait(id, &request).await {
                Ok(answer) => return Ok(answer),
                Err(err) => err,
            };
            // A 408 after Fly waited the full time: ask again at once. One that came back
            // early (a proxy, not Fly's wait) is treated as transient, so we never spin.
            let waited_out =
                call_started.elapsed().as_secs_f64() * 2.0 >= request.timeout_secs as f64;
            if err.status() == Some(408) && waited_out {
                tracing::debug!(machine_id = id, "wait: not there yet, asking again");
                continue;
            }
            let replaced = err
                .api()
                .is_some_and(|e| e.message.contains("currently replaced"));
            if !(replaced || err.is_retryable()) {
                return Err(err);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(Error::Timeout);
            }
            let delay = err.retry_after().unwrap_or(backoff).min(remaining);
            tracing::warn!(machine_id = id, delay_ms = delay.as_millis() as u64, error = %err, "wait: transient failure, retrying");
            tokio::time::sleep(delay).await;
            backoff = (backoff * 2).min(WAIT_RETRY_MAX);
        }
    }

    /// The machine's recent events, newest first.
    pub async fn events(&self, id: &str) -> Result<Vec<MachineEvent>> {
        let call = self.machine_call(Method::GET, "machine_events", id, &["events"])?;
        self.client.json(call).await
    }

    /// Takes a lease for `ttl_secs`. 409 when someone else holds one. Not retried unless
    /// certainly not applied (a lost answer would leave us locked out by our own lease).
    pub async fn acquire_lease(
        &self,
        id: &str,
        ttl_secs: u64,
        description: Option<&str>,
    ) -> Result<Lease> {
        if ttl_secs == 0 {
            return Err(Error::InvalidInput(
                "lease ttl_secs must be at least 1".into(),
            ));
        }
        let call = self
            .machine_call(Method::POST, "acquire_lease", id, &["lease"])?
            .json_body(&CreateLeaseRequest {
                ttl: ttl_secs,
                description,
            })?
            .idempotency(Idempotency::Create);
        self.lease_answer(call).await
    }

    /// Extends a lease we hold; the nonce stays the same.
    pub async fn refresh_lease(&self, id: &str, nonce: &str, ttl_secs: u64) -> Result<Lease> {
        require("lease nonce", nonce)?;
        if ttl_secs == 0 {
            return Err(Error::InvalidInput(
                "lease ttl_secs must be at least 1".into(),
            ));
        }
        let call = self
            .machine_call(Method::POST, "refresh_lease", id, &["lease"])?
            .json_body(&CreateLeaseRequest {
                ttl: ttl_secs,
                description: None,
            })?
            .nonce(Some(nonce))
            .idempotency(Idempotency::Safe);
        self.lease_answer(call).await
    }

    /// Releases a lease we hold.
    pub async fn release_lease(&self, id: &str, nonce: &str) -> Result<()> {
        require("lease nonce", nonce)?;
        let call = self
            .machine_call(Method::DELETE, "release_lease", id, &["lease"])?
            .nonce(Some(nonce));
        self.client.unit(call).await
    }

    /// The lease currently held on the machine (404 when none).
    pub async fn get_lease(&self, id: &str) -> Result<Lease> {
        let call = self.machine_call(Method::GET, "get_lease", id, &["lease"])?;
        self.lease_answer(call).await
    }

    async fn lease_answer(&self, call: Call) -> Result<Lease> {
        let response = self.client.execute(call).await?;
        decode_lease(&response.body)
    }

    /// Runs `f` while holding a lease on the machine; `f` gets the nonce to pass to
    /// every mutation. The lease is released afterwards, also when `f` fails (and, from
    /// a spawned task, when the future is dropped). `f`'s result is returned; a failed
    /// release is logged, since the lease expires by itself after `ttl_secs`.
    pub async fn with_lease<T, F, Fut>(&self, id: &str, ttl_secs: u64, f: F) -> Result<T>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let lease = self.acquire_lease(id, ttl_secs, None).await?;
        let mut guard = LeaseGuard {
            machines: self.clone(),
            id: id.to_string(),
            nonce: Some(lease.nonce.clone()),
        };
        let result = f(lease.nonce.clone()).await;
        // The guard keeps the nonce until the release is done, so a drop mid-release
        // still releases.
        let released = self.release_lease(id, &lease.nonce).await;
        guard.nonce = None;
        if let Err(err) = released {
            tracing::warn!(machine_id = id, error = %err, "could not release lease; it will expire");
        }
        result
    }
}

/// Releases a lease if `with_lease`'s future is dropped before it could.
struct LeaseGuard {
    machines: Machines,
    id: String,
    nonce: Option<String>,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if let Some(nonce) = self.nonce.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let machines = self.machines.clone();
            let id = std::mem::take(&mut self.id);
            runtime.spawn(async move {
                if let Err(err) = machines.release_lease(&id, &nonce).await {
                    tracing::warn!(machine_id = id, error = %err, "could not release lease; it will expire");
                }
            });
        }
    }
}

/// Fly answers `{status, data: Lease}`; the spec says a flat `Lease`. Accept both.
pub(crate) fn decode_lease(body: &[u8]) -> Result<Lease> {
    #[derive(Deserialize)]
    struct Wrapped {
        data: serde_json::Value,
    }
    let value: serde_json::Value = decode(body)?;
    if value.get("data").is_some_and(serde_json::Value::is_object) {
        let wrapped: Wrapped = serde_path_to_error::deserialize(value).map_err(Error::decode)?;
        serde_path_to_error::deserialize(wrapped.data).map_err(|e| Error::Decode {
            path: format!("data.{}", e.path()),
            message: e.into_inner().to_string(),
        })
    } else {
        serde_path_to_error::deserialize(value).map_err(Error::decode)
    }
}
