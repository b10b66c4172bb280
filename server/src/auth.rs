//! Secrets: organisation keys, session tokens, ids and join codes.
//!
//! Keys and tokens are 256 random bits from the operating system (`getrandom`), shown once and stored
//! only as their SHA-256 (`sha2`). A fast hash is the right one here: the secrets are random, not
//! passwords, so there is nothing to guess from the hash; lookups are by hash, so comparing is not
//! timing-sensitive.

use sha2::{Digest, Sha256};

/// Prefix of organisation keys.
pub const KEY_PREFIX: &str = "etk_";
/// Prefix of session tokens.
pub const TOKEN_PREFIX: &str = "ets_";

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).unwrap_or_else(|e| panic!("the operating system's random source failed: {e}"));
    b
}

/// A new organisation key.
pub fn new_key() -> String {
    format!("{KEY_PREFIX}{}", hex::encode(random_bytes::<32>()))
}

/// A new session token.
pub fn new_token() -> String {
    format!("{TOKEN_PREFIX}{}", hex::encode(random_bytes::<32>()))
}

/// A new session id (128 random bits).
pub fn new_id() -> String {
    hex::encode(random_bytes::<16>())
}

/// A random seed for a session that was given none (recorded with the session, so replays agree).
pub fn new_seed() -> u64 {
    u64::from_le_bytes(random_bytes::<8>())
}

/// A join code: 8 characters without look-alikes (no 0/O, 1/I/L).
pub fn new_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    random_bytes::<8>()
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// SHA-256 of a secret, hex.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_fresh_and_hashed() {
        let (a, b) = (new_key(), new_key());
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX) && a.len() == 68);
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(new_code().len(), 8);
        assert!(
            new_code()
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        );
    }
}
