//! Workspace passwords: generated from the OS CSPRNG, shown once, and only their
//! argon2id hash (code-server's `HASHED_PASSWORD`) ever leaves this process.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use secrecy::SecretString;

use crate::model::OneTimePassword;

/// Letters and digits: safe to paste anywhere, 5.95 bits per character.
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// 24 characters ≈ 143 bits.
pub const PASSWORD_LENGTH: usize = 24;

/// Failures of the OS random source or of hashing.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    #[error("hashing the password failed: {0}")]
    Hash(String),
}

/// A new random password of [`PASSWORD_LENGTH`] characters.
pub fn generate() -> Result<OneTimePassword, PasswordError> {
    let mut password = String::with_capacity(PASSWORD_LENGTH);
    // Rejection sampling keeps the distribution uniform (248 = 4 × 62).
    let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    let mut buffer = [0u8; 64];
    while password.len() < PASSWORD_LENGTH {
        getrandom::fill(&mut buffer).map_err(|error| PasswordError::Random(error.to_string()))?;
        for byte in buffer {
            if byte < limit && password.len() < PASSWORD_LENGTH {
                password.push(char::from(ALPHABET[usize::from(byte) % ALPHABET.len()]));
            }
        }
    }
    Ok(OneTimePassword(SecretString::from(password)))
}

/// argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) with default parameters.
pub fn hash(password: &OneTimePassword) -> Result<String, PasswordError> {
    Argon2::default()
        .hash_password(password.expose().as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| PasswordError::Hash(error.to_string()))
}

/// True when `password` matches the PHC string `hash`.
pub fn verify(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_long_random_and_alphanumeric() {
        let first = generate().expect("password");
        let second = generate().expect("password");
        assert_eq!(first.expose().len(), PASSWORD_LENGTH);
        assert!(first.expose().bytes().all(|b| ALPHABET.contains(&b)));
        assert_ne!(first.expose(), second.expose());
        assert_eq!(format!("{first:?}"), "OneTimePassword([redacted])");
    }

    #[test]
    fn hash_is_argon2id_and_verifies() {
        let password = generate().expect("password");
        let phc = hash(&password).expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(!phc.contains(password.expose()));
        assert!(verify(password.expose(), &phc));
        assert!(!verify("wrong", &phc));
        assert!(!verify(password.expose(), "not a hash"));
    }
}
