//! PKCE (RFC 7636) with the S256 method only (OAuth 2.1 §4.1.1: `plain` is not allowed).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// An S256 challenge is BASE64URL(SHA-256(verifier)) without padding: exactly 43 characters.
pub fn is_valid_challenge(s: &str) -> bool {
    s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 7636 §4.1: `code-verifier = 43*128unreserved`, unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~".
pub fn check_verifier(verifier: &str) -> Result<(), &'static str> {
    if !(43..=128).contains(&verifier.len()) {
        return Err("code_verifier must be 43 to 128 characters");
    }
    if !verifier
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    {
        return Err("code_verifier may only contain A-Z a-z 0-9 - . _ ~");
    }
    Ok(())
}

/// The S256 challenge of a verifier (RFC 7636 §4.2).
pub fn challenge_for(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// RFC 7636 §4.6: does the verifier match the stored challenge? Constant-time comparison.
pub fn verify(verifier: &str, challenge: &str) -> bool {
    check_verifier(verifier).is_ok() && challenge_for(verifier).as_bytes().ct_eq(challenge.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b_test_vector() {
        assert_eq!(challenge_for(VERIFIER), CHALLENGE);
        assert!(check_verifier(VERIFIER).is_ok());
        assert!(is_valid_challenge(CHALLENGE));
        assert!(verify(VERIFIER, CHALLENGE));
    }

    #[test]
    fn rfc7636_4_1_verifier_too_short() {
        assert!(check_verifier("").is_err());
        assert!(check_verifier(&"a".repeat(42)).is_err());
        assert!(check_verifier(&"a".repeat(43)).is_ok());
        // A matching hash does not rescue a malformed verifier.
        let short = "a".repeat(42);
        assert!(!verify(&short, &challenge_for(&short)));
    }

    #[test]
    fn rfc7636_4_1_verifier_too_long() {
        assert!(check_verifier(&"a".repeat(128)).is_ok());
        assert!(check_verifier(&"a".repeat(129)).is_err());
        let long = "a".repeat(129);
        assert!(!verify(&long, &challenge_for(&long)));
    }

    #[test]
    fn rfc7636_4_1_verifier_unreserved_charset_only() {
        let base = "a".repeat(43);
        assert!(check_verifier(&format!("{base}-._~AZaz09")).is_ok());
        for bad in ["+", "/", "=", " ", "%41", "é", "\n"] {
            let v = format!("{base}{bad}");
            assert!(check_verifier(&v).is_err(), "{v:?}");
            assert!(!verify(&v, &challenge_for(&v)), "{v:?}");
        }
    }

    #[test]
    fn rfc7636_4_2_s256_challenge_shape() {
        assert!(is_valid_challenge(CHALLENGE));
        assert!(!is_valid_challenge("short"));
        assert!(!is_valid_challenge(&CHALLENGE[..42]));
        assert!(!is_valid_challenge(&format!("{CHALLENGE}A")));
        assert!(!is_valid_challenge(&format!("{}=", &CHALLENGE[..42])));
        assert!(!is_valid_challenge(&format!("{}+", &CHALLENGE[..42])));
        // `plain` is not supported: a verifier sent as its own challenge never verifies.
        assert!(!verify(VERIFIER, VERIFIER));
    }

    #[test]
    fn rfc7636_4_6_wrong_verifier_fails() {
        assert!(!verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX", CHALLENGE));
        assert!(!verify(VERIFIER, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"));
        assert!(!verify(VERIFIER, ""));
        assert!(!verify(VERIFIER, &CHALLENGE[..42]));
    }
}
