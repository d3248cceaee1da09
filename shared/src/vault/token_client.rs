//! latchkey as an OAuth client at someone's token endpoint: which endpoint, how it authenticates
//! (RFC 6749 §2.3.1, or a public client), what every token request adds (a tool's RFC 8707
//! `resource`), and how to revoke (RFC 7009, or a provider's own way). A vault provider and a tool
//! each produce one; code exchange, refresh and revocation (`upstream`) take nothing else.

use std::collections::BTreeMap;

use crate::crypto::EncryptionContext;

use super::providers::{RevokeSpec, TokenAuthMethod, TokenFormat};

/// How latchkey talks to one token endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenClient {
    /// latchkey's client id there.
    pub client_id: String,
    /// latchkey's client secret there, sealed; empty for a public client.
    pub sealed_secret: Vec<u8>,
    /// The encryption context the secret is sealed under.
    pub secret_context: EncryptionContext,
    pub token_url: String,
    /// Client authentication at the token (and RFC 7009 revocation) endpoint.
    pub auth_method: TokenAuthMethod,
    /// Body format of token requests (form, or JSON for a few providers).
    pub request_format: TokenFormat,
    /// Where in the token response the tokens are (Slack's `authed_user`); `None`: at the top.
    pub response_path: Option<String>,
    /// Parameters added to every token request (a tool's RFC 8707 `resource`).
    pub extra_params: BTreeMap<String, String>,
    /// How to revoke tokens there, if it says.
    pub revoke: Option<RevokeSpec>,
}
