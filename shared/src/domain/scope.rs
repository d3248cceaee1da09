//! Scope tokens (RFC 6749 §3.3): the syntax every scope we accept, configure or store must have.
//! The scope model (base and declared scopes, `offline_access`) is `oauth::scope`'s.

/// A base scope in words, for the pages a user reads (consent, connected apps). A resource server's
/// declared scopes have the operator's words instead (`--scope "name=words"`).
pub fn in_words(scope: &str) -> Option<&'static str> {
    match scope {
        "openid" => Some("Know who you are"),
        "profile" => Some("See your name and profile"),
        "email" => Some("See your email address"),
        "offline_access" => Some("Stay connected when you are away"),
        _ => None,
    }
}

/// `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )` (RFC 6749 §3.3).
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}
