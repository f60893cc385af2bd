//! API tokens: made once by an admin (`swarm token create`), shown once, kept only as
//! a SHA-256. A request names its caller with `Authorization: Bearer <token>`.

use sha2::{Digest, Sha256};

use swarm_store::{ApiTokenRecord, Store, StoreError};

/// Every token starts so, which makes a leaked one easy to spot (and to scan for).
pub const TOKEN_PREFIX: &str = "swt_";

/// A token just made: the only moment its text exists.
pub struct NewToken {
    pub id: String,
    pub user: String,
    pub admin: bool,
    token: String,
}

impl NewToken {
    /// The token itself, to show the user once.
    pub fn expose(&self) -> &str {
        &self.token
    }
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("id", &self.id)
            .field("user", &self.user)
            .field("admin", &self.admin)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user: String,
    pub admin: bool,
    /// The id of the token used, for the event history.
    pub token_id: String,
}

impl Caller {
    /// Whether the caller may see and act on a workspace of `owner`.
    pub fn may_use(&self, owner: Option<&str>) -> bool {
        self.admin || owner == Some(self.user.as_str())
    }
}

/// Why a token could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("invalid user {0:?}: 1 to 64 characters of a-z, 0-9, '-', '_', '.' and '@'")]
    InvalidUser(String),
    #[error("cannot draw a random token: {0}")]
    Random(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A user name: what an admin types, so kept plain.
pub fn validate_user(user: &str) -> Result<(), TokenError> {
    let valid = (1..=64).contains(&user.len())
        && user
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.@".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(TokenError::InvalidUser(user.to_owned()))
    }
}

/// Makes a token for `user` and stores its hash.
pub async fn create_token<S: Store>(
    store: &S,
    user: &str,
    admin: bool,
) -> Result<NewToken, TokenError> {
    validate_user(user)?;
    let token = format!("{TOKEN_PREFIX}{}", random_hex(32)?);
    let id = format!("tok_{}", random_hex(8)?);
    store
        .insert_api_token(&ApiTokenRecord {
            id: id.clone(),
            user: user.to_owned(),
            admin,
            hash: hash_token(&token),
            created_at: time::OffsetDateTime::now_utc(),
        })
        .await?;
    Ok(NewToken {
        id,
        user: user.to_owned(),
        admin,
        token,
    })
}

/// The caller a bearer token stands for, if it is one of ours.
pub async fn authenticate<S: Store>(store: &S, token: &str) -> Result<Option<Caller>, StoreError> {
    if !token.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    Ok(store
        .api_token_by_hash(&hash_token(token))
        .await?
        .map(|record| Caller {
            user: record.user,
            admin: record.admin,
            token_id: record.id,
        }))
}

pub(crate) fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

pub(super) fn random_hex(bytes: usize) -> Result<String, TokenError> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|error| TokenError::Random(error.to_string()))?;
    Ok(hex(&buffer))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_plain_names() {
        for good in ["alice", "a", "bob.smith@example.com", "ci-bot_2"] {
            assert!(validate_user(good).is_ok(), "{good}");
        }
        for bad in ["", "Alice", "a b", "a/b", "é", &"a".repeat(65), "a\nb"] {
            assert!(validate_user(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_token_is_hashed_and_never_in_debug() {
        let token = NewToken {
            id: "tok_1".into(),
            user: "alice".into(),
            admin: false,
            token: "swt_secret".into(),
        };
        assert!(!format!("{token:?}").contains("swt_secret"));
        assert_eq!(hash_token("swt_secret").len(), 64);
        assert_ne!(hash_token("swt_secret"), hash_token("swt_secreu"));
    }
}
