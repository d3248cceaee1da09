//! Scope tokens (RFC 6749 §3.3): the syntax every scope we accept, configure or store must have.
//! The scope model (base and declared scopes, `offline_access`) is `oauth::scope`'s.

/// `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )` (RFC 6749 §3.3).
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}
