//! The client and its one request pipeline: auth, User-Agent, throttling, retries,
//! `fly-request-id` capture, error mapping and decoding with JSON paths.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;
use url::Url;

use crate::auth::{Token, discover_token};
use crate::metrics::{CallCounters, route_template};
use crate::retry::{Idempotency, RetryPolicy, should_retry};
use crate::throttle::{Quota, Throttle, ThrottleKey};
use crate::transport::{ReqwestTransport, Transport, TransportRequest, TransportResponse};
use crate::{ApiError, Error, Result};

/// Default Machines API base (flyctl `FLY_FLAPS_BASE_URL`).
pub const DEFAULT_MACHINES_BASE_URL: &str = "https://api.machines.dev";
/// Default GraphQL and logs base (flyctl `FLY_API_BASE_URL`).
pub const DEFAULT_API_BASE_URL: &str = "https://api.fly.io";
/// Header carrying a lease nonce.
pub const LEASE_NONCE_HEADER: &str = "fly-machine-lease-nonce";
/// Header carrying Fly's request id.
pub const REQUEST_ID_HEADER: &str = "fly-request-id";

/// Async client for Fly.io. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct FlyClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    transport: Arc<dyn Transport>,
    auth_header: HeaderValue,
    user_agent: HeaderValue,
    machines_base: Url,
    api_base: Url,
    retry: RetryPolicy,
    throttle: Option<Throttle>,
    request_timeout: Duration,
    counters: Arc<CallCounters>,
}

impl fmt::Debug for FlyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlyClient")
            .field("machines_base_url", &self.inner.machines_base.as_str())
            .field("api_base_url", &self.inner.api_base.as_str())
            .field("token", &"[REDACTED]")
            .field("retry", &self.inner.retry)
            .field("throttle", &self.inner.throttle.is_some())
            .field("request_timeout", &self.inner.request_timeout)
            .finish()
    }
}

/// Builds a [`FlyClient`].
pub struct FlyClientBuilder {
    token: Option<Token>,
    machines_base_url: String,
    api_base_url: String,
    retry: RetryPolicy,
    throttle: bool,
    request_timeout: Duration,
    user_agent: String,
    transport: Option<Arc<dyn Transport>>,
    counters: Option<Arc<CallCounters>>,
}

impl fmt::Debug for FlyClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlyClientBuilder")
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("machines_base_url", &self.machines_base_url)
            .field("api_base_url", &self.api_base_url)
            .field("retry", &self.retry)
            .field("throttle", &self.throttle)
            .field("request_timeout", &self.request_timeout)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

impl Default for FlyClientBuilder {
    fn default() -> Self {
        FlyClientBuilder {
            token: None,
            machines_base_url: DEFAULT_MACHINES_BASE_URL.to_string(),
            api_base_url: DEFAULT_API_BASE_URL.to_string(),
            retry: RetryPolicy::default(),
            throttle: true,
            request_timeout: Duration::from_secs(30),
            user_agent: concat!("fly-api-rs/", env!("CARGO_PKG_VERSION")).to_string(),
            transport: None,
            counters: None,
        }
    }
}

impl FlyClientBuilder {
    /// The API token (required).
    pub fn token(mut self, token: Token) -> Self {
        self.token = Some(token);
        self
    }

    /// Machines REST base, default `https://api.machines.dev` (`/v1` is appended per call).
    pub fn machines_base_url(mut self, url: impl AsRef<str>) -> Self {
        self.machines_base_url = url.as_ref().to_string();
        self
    }

    /// GraphQL and logs base, default `https://api.fly.io`.
    pub fn api_base_url(mut self, url: impl AsRef<str>) -> Self {
        self.api_base_url = url.as_ref().to_string();
        self
    }

    /// Retry policy for transient failures (default: 3 retries, 1 s → 10 s, jitter).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Client-side rate limiting to Fly's published limits (default on).
    pub fn throttle(mut self, enabled: bool) -> Self {
        self.throttle = enabled;
        self
    }

    /// Per-request timeout (default 30 s; `/wait` calls get their wait time on top).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, user_agent: &str) -> Self {
        self.user_agent = user_agent.to_string();
        self
    }

    /// Replaces the HTTP transport (tests, or an in-process server).
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Counts calls into `counters` (shared with, say, a metrics endpoint); by default
    /// the client has counters of its own ([`FlyClient::call_counters`]).
    pub fn call_counters(mut self, counters: Arc<CallCounters>) -> Self {
        self.counters = Some(counters);
        self
    }

    /// Validates the settings and builds the client.
    pub fn build(self) -> Result<FlyClient> {
        let token = self
            .token
            .ok_or_else(|| Error::Config("no Fly API token given".into()))?;
        let auth_header = token.header_value()?;
        let user_agent = HeaderValue::from_str(&self.user_agent).map_err(|_| {
            Error::Config(format!(
                "user_agent {:?} is not a valid HTTP header value",
                self.user_agent
            ))
        })?;
        let machines_base = parse_base("machines_base_url", &self.machines_base_url)?;
        let api_base = parse_base("api_base_url", &self.api_base_url)?;
        if self.request_timeout.is_zero() {
            return Err(Error::Config(
                "request_timeout must be greater than zero".into(),
            ));
        }
        let transport = match self.transport {
            Some(t) => t,
            None => Arc::new(ReqwestTransport::new()?),
        };
        Ok(FlyClient {
            inner: Arc::new(Inner {
                transport,
                auth_header,
                user_agent,
                machines_base,
                api_base,
                retry: self.retry,
                throttle: self.throttle.then(Throttle::default),
                request_timeout: self.request_timeout,
                counters: self.counters.unwrap_or_default(),
            }),
        })
    }
}

fn parse_base(field: &str, raw: &str) -> Result<Url> {
    let url = Url::parse(raw.trim())
        .map_err(|e| Error::Config(format!("{field} {raw:?} is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(Error::Config(format!(
            "{field} {raw:?} must be an http:// or https:// URL"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Config(format!(
            "{field} {raw:?} must not have a query or fragment"
        )));
    }
    Ok(url)
}

impl FlyClient {
    /// A builder with Fly's default endpoints.
    pub fn builder() -> FlyClientBuilder {
        FlyClientBuilder::default()
    }

    /// Configured like flyctl: token from `FLY_ACCESS_TOKEN`, `FLY_API_TOKEN` or
    /// `~/.fly/config.yml`; bases from `FLY_FLAPS_BASE_URL` and `FLY_API_BASE_URL`.
    pub fn from_env() -> Result<FlyClient> {
        let (token, _source) = discover_token(None).ok_or_else(|| {
            Error::Config(
                "no Fly API token: set FLY_ACCESS_TOKEN or FLY_API_TOKEN, or run `fly auth login`"
                    .into(),
            )
        })?;
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut builder = FlyClient::builder().token(token);
        if let Some(url) = env("FLY_FLAPS_BASE_URL") {
            builder = builder.machines_base_url(url);
        }
        if let Some(url) = env("FLY_API_BASE_URL") {
            builder = builder.api_base_url(url);
        }
        builder.build()
    }

    /// The Machines API base URL in use.
    pub fn machines_base_url(&self) -> &Url {
        &self.inner.machines_base
    }

    /// The GraphQL/logs base URL in use.
    pub fn api_base_url(&self) -> &Url {
        &self.inner.api_base
    }

    /// The retry policy in use.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// The counters of this client's calls (attempts by endpoint and status, retries, 429s).
    pub fn call_counters(&self) -> &Arc<CallCounters> {
        &self.inner.counters
    }

    /// Runs one logical call through the pipeline, retrying as its kind allows.
    pub(crate) async fn execute(&self, call: Call) -> Result<TransportResponse> {
        let url = self.url_for(&call)?;
        let span = tracing::debug_span!(
            "fly_api",
            action = call.action,
            method = %call.method,
            path = url.path(),
        );
        self.execute_inner(call, url).instrument(span).await
    }

    async fn execute_inner(&self, call: Call, url: Url) -> Result<TransportResponse> {
        let policy = &self.inner.retry;
        let counters = &self.inner.counters;
        let endpoint = format!("{} {}", call.method, route_template(&call.segments));
        let mut retry = 0u32;
        loop {
            if let (Some(throttle), Some((key, quota))) = (&self.inner.throttle, &call.throttle) {
                throttle.acquire(key.clone(), *quota).await;
            }
            let started = tokio::time::Instant::now();
            let result = self.send_once(&call, url.clone()).await;
            counters.attempt(&endpoint, &outcome_label(&result));
            let err = match result {
                Ok(response) => {
                    tracing::debug!(
                        status = response.status,
                        fly_request_id = request_id(&response.headers).as_deref(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "Fly answered"
                    );
                    return Ok(response);
                }
                Err(err) => err,
            };
            if retry >= policy.max_retries || !should_retry(&err, call.idempotency) {
                tracing::debug!(error = %err, "Fly call failed");
                return Err(err);
            }
            let delay = policy.delay_for(retry, &err);
            retry += 1;
            counters.retry(&endpoint);
            tracing::warn!(
                action = call.action,
                retry,
                max_retries = policy.max_retries,
                delay_ms = delay.as_millis() as u64,
                status = err.status(),
                fly_request_id = err.request_id(),
                error = %err,
                "retrying Fly API call"
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn send_once(&self, call: &Call, url: Url) -> Result<TransportResponse> {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, self.inner.auth_header.clone());
        headers.insert(header::USER_AGENT, self.inner.user_agent.clone());
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        if call.body.is_some() {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        if let Some(nonce) = &call.nonce {
            let value = HeaderValue::from_str(nonce).map_err(|_| {
                Error::InvalidInput(format!(
                    "lease nonce {nonce:?} contains characters not allowed in a header"
                ))
            })?;
            headers.insert(LEASE_NONCE_HEADER, value);
        }
        let timeout = self.inner.request_timeout + call.extra_timeout;
        let request = TransportRequest {
            method: call.method.clone(),
            url,
            headers,
            body: call.body.clone(),
            timeout,
        };
        let send = self.inner.transport.send(request);
        // The transport enforces the timeout; this bounds a transport that does not.
        let response = match tokio::time::timeout(timeout + Duration::from_secs(1), send).await {
            Ok(result) => result?,
            Err(_) => return Err(Error::Timeout),
        };
        if (200..300).contains(&response.status) {
            Ok(response)
        } else {
            Err(Error::Api(ApiError::from_response(
                response.status,
                &response.body,
                request_id(&response.headers),
                retry_after(&response.headers),
            )))
        }
    }

    fn url_for(&self, call: &Call) -> Result<Url> {
        let mut url = match call.base {
            Base::Machines => self.inner.machines_base.clone(),
            Base::Api => self.inner.api_base.clone(),
        };
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| Error::Config("base URL cannot take a path".into()))?;
            segments.pop_if_empty();
            for segment in &call.segments {
                segments.push(segment);
            }
        }
        if !call.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &call.query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// Runs a call and decodes its JSON body into `T`, naming the JSON path on failure.
    pub(crate) async fn json<T: DeserializeOwned>(&self, call: Call) -> Result<T> {
        let response = self.execute(call).await?;
        decode(&response.body)
    }

    /// Runs a call whose answer body does not matter.
    pub(crate) async fn unit(&self, call: Call) -> Result<()> {
        self.execute(call).await.map(|_| ())
    }

    /// Sends a GraphQL operation to `{api_base}/graphql` and decodes `data` into `R`.
    /// Queries are retried like reads; mutations only when certainly not applied.
    pub async fn graphql<V: Serialize, R: DeserializeOwned>(
        &self,
        query: &'static str,
        vars: V,
    ) -> Result<R> {
        let idempotency = if query.trim_start().starts_with("mutation") {
            Idempotency::Create
        } else {
            Idempotency::Safe
        };
        self.graphql_with(query, vars, idempotency).await
    }

    pub(crate) async fn graphql_with<V: Serialize, R: DeserializeOwned>(
        &self,
        query: &'static str,
        vars: V,
        idempotency: Idempotency,
    ) -> Result<R> {
        #[derive(Serialize)]
        struct Body<'a, V> {
            query: &'a str,
            variables: V,
        }
        let call = Call::new(Method::POST, Base::Api, "graphql", ["graphql"])
            .json_body(&Body {
                query,
                variables: vars,
            })?
            .idempotency(idempotency);
        let response = self.execute(call).await?;
        let mut value: serde_json::Value = decode(&response.body)?;
        if let Some(errors) = value.get("errors").filter(|e| !e.is_null()) {
            let errors: Vec<crate::GraphQlError> = serde_path_to_error::deserialize(errors.clone())
                .map_err(|e| {
                    let path = format!("errors.{}", e.path());
                    Error::Decode {
                        path,
                        message: e.into_inner().to_string(),
                    }
                })?;
            if !errors.is_empty() {
                return Err(Error::GraphQl(errors));
            }
        }
        let data = value
            .get_mut("data")
            .map(serde_json::Value::take)
            .unwrap_or(serde_json::Value::Null);
        serde_path_to_error::deserialize(data).map_err(|e| {
            let path = format!("data.{}", e.path());
            Error::Decode {
                path,
                message: e.into_inner().to_string(),
            }
        })
    }
}

/// Decodes a JSON answer as the client does, reporting the path of the first mismatch.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(Error::decode)
}

/// The outcome of one attempt as a metrics label.
fn outcome_label(result: &Result<TransportResponse>) -> String {
    match result {
        Ok(response) => response.status.to_string(),
        Err(Error::Api(error)) => error.status.to_string(),
        Err(Error::Timeout) => "timeout".to_owned(),
        Err(Error::Transport { .. }) => "transport_error".to_owned(),
        // Refused before sending (an invalid header, say).
        Err(_) => "not_sent".to_owned(),
    }
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    let secs: f64 = raw.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

/// Which base URL a call goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base {
    Machines,
    Api,
}

/// One logical API call, before retries.
pub(crate) struct Call {
    method: Method,
    base: Base,
    /// Names the call in traces and throttle keys.
    action: &'static str,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    nonce: Option<String>,
    idempotency: Idempotency,
    throttle: Option<(ThrottleKey, Quota)>,
    extra_timeout: Duration,
}

impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The body may hold secret values: never printed.
        f.debug_struct("Call")
            .field("method", &self.method)
            .field("action", &self.action)
            .field("segments", &self.segments)
            .field("body_len", &self.body.as_ref().map(Vec::len))
            .field("idempotency", &self.idempotency)
            .finish_non_exhaustive()
    }
}

impl Call {
    pub(crate) fn new<I, S>(method: Method, base: Base, action: &'static str, segments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let idempotency = if method == Method::POST {
            Idempotency::Create
        } else {
            Idempotency::Safe
        };
        Call {
            method,
            base,
            action,
            segments: segments.into_iter().map(Into::into).collect(),
            query: Vec::new(),
            body: None,
            nonce: None,
            idempotency,
            throttle: None,
            extra_timeout: Duration::ZERO,
        }
    }

    /// `{machines_base}/v1/…`.
    pub(crate) fn v1<I, S>(method: Method, action: &'static str, segments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut call = Call::new(method, Base::Machines, action, ["v1".to_string()]);
        call.segments.extend(segments.into_iter().map(Into::into));
        call
    }

    pub(crate) fn query(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((key.into(), value.into()));
        self
    }

    pub(crate) fn json_body<B: Serialize + ?Sized>(mut self, body: &B) -> Result<Self> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| Error::InvalidInput(format!("cannot encode request body: {e}")))?;
        self.body = Some(bytes);
        Ok(self)
    }

    pub(crate) fn nonce(mut self, nonce: Option<&str>) -> Self {
        self.nonce = nonce.map(str::to_string);
        self
    }

    pub(crate) fn idempotency(mut self, idempotency: Idempotency) -> Self {
        self.idempotency = idempotency;
        self
    }

    /// Counts against Fly's per-action limit for `scope` (a machine id or app name).
    pub(crate) fn throttled(mut self, scope: &str, quota: Quota) -> Self {
        self.throttle = Some((
            ThrottleKey {
                action: self.action,
                scope: scope.to_string(),
            },
            quota,
        ));
        self
    }

    pub(crate) fn extra_timeout(mut self, extra: Duration) -> Self {
        self.extra_timeout = extra;
        self
    }
}

/// Rejects empty path arguments, which would silently address a different endpoint.
pub(crate) fn require(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        Err(Error::InvalidInput(format!("{field} must not be empty")))
    } else {
        Ok(())
    }
}
