//! The HTTP hop, behind a trait so tests (and embedders) can answer in-process.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use http::{HeaderMap, Method};
use url::Url;

use crate::{Error, Result};

/// A request ready to go on the wire. Its `Authorization` header is marked sensitive.
pub struct TransportRequest {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Vec<u8>>,
    /// Give up after this long (maps to [`Error::Timeout`]).
    pub timeout: Duration,
}

impl fmt::Debug for TransportRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // HeaderMap's Debug prints sensitive values as `Sensitive`; list names only anyway.
        f.debug_struct("TransportRequest")
            .field("method", &self.method)
            .field("url", &self.url.as_str())
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.as_ref().map(Vec::len))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A response as received.
#[derive(Debug, Clone)]
pub struct TransportResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Sends one request. Must map failures to [`Error::Transport`] (with `sent` telling
/// whether the request may have reached the server) or [`Error::Timeout`].
pub trait Transport: Send + Sync + fmt::Debug + 'static {
    fn send(&self, request: TransportRequest) -> BoxFuture<'static, Result<TransportResponse>>;
}

/// The real transport: reqwest over rustls.
///
/// The reqwest client is built on the first request, not up front: building it loads
/// the system's CA certificates (several ms), which a command that makes no HTTP call
/// (`swarm list`, `swarm show`) should not pay.
#[derive(Debug, Clone, Default)]
pub struct ReqwestTransport {
    client: Arc<OnceLock<reqwest::Client>>,
}

impl ReqwestTransport {
    pub fn new() -> Result<Self> {
        Ok(ReqwestTransport::default())
    }

    /// Uses a caller-configured reqwest client (proxies, custom roots, …).
    pub fn with_client(client: reqwest::Client) -> Self {
        ReqwestTransport {
            client: Arc::new(OnceLock::from(client)),
        }
    }

    fn client(&self) -> Result<&reqwest::Client> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(self.client.get_or_init(|| client))
    }
}

fn map_reqwest_error(err: reqwest::Error) -> Error {
    if err.is_timeout() {
        return Error::Timeout;
    }
    // A connect failure means nothing reached the server.
    let sent = !err.is_connect();
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    Error::Transport { message, sent }
}

impl Transport for ReqwestTransport {
    fn send(&self, request: TransportRequest) -> BoxFuture<'static, Result<TransportResponse>> {
        let client = match self.client() {
            Ok(client) => client,
            Err(error) => return Box::pin(async move { Err(error) }),
        };
        let mut builder = client
            .request(request.method, request.url)
            .headers(request.headers)
            .timeout(request.timeout);
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        Box::pin(async move {
            let response = builder.send().await.map_err(map_reqwest_error)?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response
                .bytes()
                .await
                .map_err(|e| match map_reqwest_error(e) {
                    // The request was answered, so it certainly was sent.
                    Error::Transport { message, .. } => Error::Transport {
                        message,
                        sent: true,
                    },
                    other => other,
                })?;
            Ok(TransportResponse {
                status,
                headers,
                body: body.to_vec(),
            })
        })
    }
}
