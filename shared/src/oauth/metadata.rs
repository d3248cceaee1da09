//! Authorization server metadata (RFC 8414 §2), as served at the well-known URLs.

use serde_json::{json, Value};

use crate::config::Config;

/// Token endpoint client authentication methods we support (RFC 7591 §2).
pub const AUTH_METHODS: &[&str] = &["client_secret_basic", "client_secret_post", "none"];
/// Grant types we support.
pub const GRANT_TYPES: &[&str] = &["authorization_code", "refresh_token"];

/// The metadata document for an issuer at `base_url`.
pub fn authorization_server_metadata(config: &Config, base_url: &str) -> Value {
    let issuer = config.issuer_for(base_url);
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "registration_endpoint": format!("{issuer}/register"),
        "introspection_endpoint": format!("{issuer}/introspect"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GRANT_TYPES,
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
        "scopes_supported": config.scopes_supported,
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8414_2_required_fields_and_issuer_path() {
        let cfg = Config::embedded("https://auth.example.com", &[]).unwrap();
        let m = authorization_server_metadata(&cfg, "https://auth.example.com");
        assert_eq!(m["issuer"], "https://auth.example.com/oauth/2.1");
        assert_eq!(m["token_endpoint"], "https://auth.example.com/oauth/2.1/token");
        assert_eq!(m["response_types_supported"], json!(["code"]));
        assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    }
}
