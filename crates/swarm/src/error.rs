//! The one error type of the crate. [`Error::exit_code`] tells the CLI whether the
//! input was at fault and nothing changed (2) or an operation failed (1).

use crate::provider::{ProviderError, ProviderErrorKind};
use swarm_core::model::WorkspaceStatus;
use swarm_core::password::PasswordError;
use swarm_core::quota::QuotaExceeded;
use swarm_core::validate::ValidationError;
use swarm_store::StoreError;
use swarm_store::lock::LockError;

/// Not `non_exhaustive`: the controller maps every variant to an HTTP answer, and a
/// new one must be mapped there too.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input broke one or more rules; nothing was changed.
    #[error("{}", invalid_message(.0))]
    Invalid(Vec<ValidationError>),
    #[error(
        "a workspace named {name} already exists (status {status}); choose another name, or remove it first with `swarm delete {name}`"
    )]
    AlreadyExists {
        name: String,
        status: WorkspaceStatus,
    },
    #[error("no workspace named {name}; `swarm list` shows the workspaces you have")]
    NotFound { name: String },
    #[error(
        "the name {name} is already taken on Fly.io by an app that is not one of your workspaces (app names are global across all of Fly.io); choose another name"
    )]
    NameTaken { name: String },
    #[error("cannot {operation} workspace {name} while it is {status}; {hint}")]
    InvalidState {
        name: String,
        status: WorkspaceStatus,
        operation: &'static str,
        hint: String,
    },
    #[error(
        "no Fly.io API token found: run `fly auth login`, or set FLY_API_TOKEN (or FLY_ACCESS_TOKEN)"
    )]
    NoToken,
    #[error(
        "Fly.io refused the API token ({message}): run `fly auth login` again or set a valid FLY_API_TOKEN"
    )]
    Unauthorized { message: String },
    #[error(
        "Fly.io has no capacity for this workspace in region {region} right now ({message}); try another region with --region, e.g. {suggestion}"
    )]
    Capacity {
        region: String,
        message: String,
        suggestion: String,
    },
    #[error(
        "workspace {name} is busy: {operation} by pid {pid} since {since}; wait for it to finish and retry"
    )]
    Busy {
        name: String,
        operation: String,
        pid: u32,
        since: String,
    },
    #[error("creating workspace {name} failed at {step}: {source}; {cleanup}")]
    CreateFailed {
        name: String,
        step: &'static str,
        #[source]
        source: Box<Error>,
        cleanup: String,
    },
    #[error("pool slot {app} failed at {step}: {source}; {cleanup}")]
    PoolFailed {
        app: String,
        step: &'static str,
        #[source]
        source: Box<Error>,
        cleanup: String,
    },
    #[error(
        "timed out after {after_secs} s waiting for workspace {name} to be {waiting_for}; run `swarm reconcile` later to settle it"
    )]
    Timeout {
        name: String,
        waiting_for: String,
        after_secs: u64,
    },
    /// `exec` on a workspace whose machine is not running; nothing was run.
    #[error(
        "workspace {name} is not running (its machine is {machine_state}): start it first with `swarm start {name}`, or pass --start to start it and then run the command"
    )]
    NotRunning { name: String, machine_state: String },
    /// The command ran past its `--timeout` and Fly stopped it.
    #[error(
        "the command in workspace {name} ran past its timeout of {after_secs} s and was stopped; give a longer --timeout"
    )]
    ExecTimedOut { name: String, after_secs: u64 },
    #[error(
        "workspace {name} has no secret named {key}; `swarm secret list {name}` shows the ones it has"
    )]
    SecretNotFound { name: String, key: String },
    #[error("Fly.io: {0}")]
    Provider(ProviderError),
    /// A user's quota would be passed; nothing was changed.
    #[error(transparent)]
    QuotaExceeded(#[from] QuotaExceeded),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
}

fn invalid_message(errors: &[ValidationError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    lines.join("; ")
}

impl Error {
    /// 2: invalid input or request, nothing changed; 1: the operation failed.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Invalid(_)
            | Self::AlreadyExists { .. }
            | Self::NotFound { .. }
            | Self::NameTaken { .. }
            | Self::InvalidState { .. }
            | Self::QuotaExceeded(_)
            | Self::NotRunning { .. }
            | Self::SecretNotFound { .. }
            | Self::NoToken => 2,
            // As coreutils' `timeout` exits when it stops a command.
            Self::ExecTimedOut { .. } => 124,
            Self::CreateFailed { source, .. } | Self::PoolFailed { source, .. } => {
                source.exit_code()
            }
            Self::Store(error) if error.is_refused_unchanged() => 2,
            Self::Unauthorized { .. }
            | Self::Capacity { .. }
            | Self::Busy { .. }
            | Self::Timeout { .. }
            | Self::Provider(_)
            | Self::Store(_)
            | Self::Password(_) => 1,
        }
    }

    /// True when the input was at fault and nothing changed.
    pub fn is_invalid_input(&self) -> bool {
        self.exit_code() == 2
    }

    pub(crate) fn from_provider(
        error: ProviderError,
        name: &str,
        region: &str,
        regions: &[String],
    ) -> Self {
        match error.kind {
            ProviderErrorKind::NameTaken => Self::NameTaken {
                name: name.to_owned(),
            },
            ProviderErrorKind::Unauthorized => Self::Unauthorized {
                message: error.message,
            },
            ProviderErrorKind::Capacity => Self::Capacity {
                region: region.to_owned(),
                message: error.message,
                suggestion: regions
                    .iter()
                    .find(|other| *other != region)
                    .cloned()
                    .unwrap_or_default(),
            },
            _ => Self::Provider(error),
        }
    }
}

/// A quota the store refused is the domain's refusal, not a store failure.
impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::QuotaExceeded(exceeded) => Self::QuotaExceeded(exceeded),
            other => Self::Store(other),
        }
    }
}

impl From<LockError> for Error {
    fn from(error: LockError) -> Self {
        match error {
            LockError::Busy { name, holder } => Self::Busy {
                name,
                operation: holder.operation,
                pid: holder.pid,
                since: swarm_store::lock::since(&holder.acquired_at),
            },
            LockError::Store(store) => Self::Store(store),
        }
    }
}

/// For callers that use `fly-api` directly (e.g. building the client): a missing
/// token becomes [`Error::NoToken`], the rest maps like provider failures.
impl From<fly_api::Error> for Error {
    fn from(error: fly_api::Error) -> Self {
        if let fly_api::Error::Config(message) = &error
            && message.to_ascii_lowercase().contains("token")
        {
            return Self::NoToken;
        }
        let error = crate::provider::fly_convert::map_error(error);
        match error.kind {
            ProviderErrorKind::Unauthorized => Self::Unauthorized {
                message: error.message,
            },
            _ => Self::Provider(error),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_separate_bad_input_from_failure() {
        let invalid = Error::Invalid(vec![ValidationError {
            field: "name",
            value: "A".to_owned(),
            rule: "lowercase".to_owned(),
        }]);
        assert_eq!(invalid.exit_code(), 2);
        assert_eq!(invalid.to_string(), "invalid name \"A\": lowercase");
        assert_eq!(
            Error::NameTaken {
                name: "a".to_owned()
            }
            .exit_code(),
            2
        );
        let capacity = Error::from_provider(
            ProviderError::new(ProviderErrorKind::Capacity, "insufficient resources"),
            "alice",
            "ams",
            &["ams".to_owned(), "fra".to_owned()],
        );
        assert_eq!(capacity.exit_code(), 1);
        assert!(
            capacity.to_string().contains("--region, e.g. fra"),
            "{capacity}"
        );
        let wrapped = Error::CreateFailed {
            name: "a".to_owned(),
            step: "app",
            source: Box::new(Error::NameTaken {
                name: "a".to_owned(),
            }),
            cleanup: "nothing was left behind".to_owned(),
        };
        assert_eq!(wrapped.exit_code(), 2);
        assert!(Error::NoToken.to_string().contains("fly auth login"));
        let missing = Error::from(fly_api::Error::Config("no Fly API token found".to_owned()));
        assert!(matches!(missing, Error::NoToken), "{missing}");
        let refused = Error::from(fly_api::Error::Api(fly_api::ApiError {
            status: 401,
            code: None,
            message: "unauthorized".to_owned(),
            request_id: None,
            retry_after: None,
        }));
        assert!(matches!(refused, Error::Unauthorized { .. }), "{refused}");
        assert_eq!(refused.exit_code(), 1);
    }
}
