//! Providers a project configured: the catalogue entry it builds on (or a custom provider), the
//! overrides laid over it, and latchkey's client at the provider (the secret sealed).

use serde_json::{Map, Value};

/// Is `name` a valid provider name: 1–40 of `a-z 0-9 -`, starting with a letter?
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name.as_bytes()[0].is_ascii_lowercase()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A project's configuration of one provider.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderConfig {
    pub project_id: String,
    pub provider: String,
    /// The catalogue entry it builds on; `None` for a custom provider.
    pub base: Option<String>,
    /// Spec fields laid over the catalogue entry (or every field of a custom provider).
    pub overrides: Map<String, Value>,
    pub client_id: String,
    /// The client secret, sealed by the keyring (context [`super::context::provider_context`]).
    pub sealed_secret: Vec<u8>,
    pub updated_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names() {
        assert!(is_valid_name("google"));
        assert!(is_valid_name("my-idp2"));
        for bad in ["", "Google", "a/b", "a b", "-x", "1x", &"x".repeat(41)] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}
