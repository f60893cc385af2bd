#![doc = include_str!("../README.md")]

pub mod apps;
pub mod auth;
pub mod client;
pub mod error;
mod exec;
pub mod ips;
pub mod logs;
pub mod machines;
pub mod metrics;
pub mod models;
pub mod retry;
pub mod secrets;
pub mod throttle;
pub mod transport;
pub mod volumes;

pub use apps::Apps;
pub use auth::{Token, TokenSource, discover_token, discover_token_with};
pub use client::{FlyClient, FlyClientBuilder};
pub use error::{ApiError, Error, GraphQlError, Result};
pub use ips::Ips;
pub use logs::Logs;
pub use machines::Machines;
pub use metrics::{CallCounters, CallCounts};
pub use retry::RetryPolicy;
pub use secrecy::SecretString;
pub use secrets::Secrets;
pub use transport::{ReqwestTransport, Transport, TransportRequest, TransportResponse};
pub use volumes::Volumes;
