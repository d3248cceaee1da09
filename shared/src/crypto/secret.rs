//! Values we issue (tokens, codes, client secrets, API keys): random, prefixed for secret scanners,
//! stored only as a SHA-256, compared in constant time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of client secrets.
pub const CLIENT_SECRET_PREFIX: &str = "lk_cs_";
/// Prefix of client ids (not secret, but recognisable).
pub const CLIENT_ID_PREFIX: &str = "lkc_";

/// `prefix` followed by `bytes` random bytes, base64url without padding.
pub fn random_token(prefix: &str, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(&buf))
}

/// A new secret with 256 bits of entropy.
pub fn new_secret(prefix: &str) -> String {
    random_token(prefix, 32)
}

/// Lowercase hex SHA-256 of a secret: what the store keeps instead of the value.
pub fn hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// Constant-time comparison of a presented secret with a stored hash.
pub fn verify(presented: &str, stored_hash: &str) -> bool {
    hash(presented).as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

/// HMAC-SHA256 (RFC 2104) of `message` under `key`: what signs webhook deliveries.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_hmac_sha256_test_cases_1_2_and_6() {
        let t1 = hmac_sha256(&[0x0b; 20], b"Hi There");
        assert_eq!(
            hex::encode(t1),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        let t2 = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(t2),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // A key longer than the block is hashed first.
        let t6 = hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(
            hex::encode(t6),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn secrets_are_prefixed_random_and_verified_by_hash() {
        let a = new_secret(CLIENT_SECRET_PREFIX);
        let b = new_secret(CLIENT_SECRET_PREFIX);
        assert!(a.starts_with("lk_cs_"));
        assert_eq!(a.len(), 6 + 43);
        assert_ne!(a, b);
        let h = hash(&a);
        assert_eq!(h.len(), 64);
        assert!(!h.contains(&a));
        assert!(verify(&a, &h));
        assert!(!verify(&b, &h));
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
