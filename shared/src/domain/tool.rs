//! Remote MCP servers ("tools") a project registered: what discovery found, latchkey's client at
//! the authorization server the tool uses now (and at the ones it used before, by issuer), and an
//! OAuth flow in flight; and the tokens latchkey holds for it.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::connection::{ConnectionStatus, HeldTokens};
use super::context::tool_connection_context;
use crate::crypto::{secret, EncryptionContext};

/// Most clients at previous authorization servers a tool keeps.
pub const MAX_OTHER_CLIENTS: usize = 4;

/// How long an initiated OAuth flow can be completed.
pub const STATE_TTL: i64 = 600;

/// A new tool id: `tl_` and 16 base64url characters.
pub fn new_tool_id() -> String {
    secret::random_token("tl_", 12)
}

/// Is this a well-formed tool id (so a lookup is worth a read)?
pub fn is_tool_id(s: &str) -> bool {
    s.len() <= 40 && s.starts_with("tl_") && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// latchkey's client registration at one authorization server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolClient {
    pub client_id: String,
    /// Sealed client secret (context [`super::context::tool_secret_context`]); empty for a public
    /// client.
    pub sealed_secret: Vec<u8>,
    /// `client_secret_basic`, `client_secret_post` or `none`.
    pub token_auth_method: String,
    /// `preregistered`, `client_metadata_document` or `dynamic`.
    pub registration: String,
}

/// A registered remote MCP server.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolRecord {
    pub tool_id: String,
    pub project_id: String,
    pub name: String,
    pub server_url: String,
    /// The resource tokens are requested for (RFC 8707).
    pub resource: String,
    pub issuer: String,
    /// The authorization server's metadata as discovered.
    pub metadata: Map<String, Value>,
    /// The protected resource metadata, if the server publishes it.
    pub resource_metadata: Option<Map<String, Value>>,
    pub client_id: String,
    /// Sealed client secret (context [`super::context::tool_secret_context`]); empty for a public
    /// client.
    pub sealed_secret: Vec<u8>,
    /// `client_secret_basic`, `client_secret_post` or `none`.
    pub token_auth_method: String,
    /// How latchkey became a client: `preregistered`, `client_metadata_document` or `dynamic`.
    pub registration: String,
    pub redirect_uris: Vec<String>,
    /// The scopes the app configured at registration (empty: the server's choice).
    pub scopes: Vec<String>,
    /// The `scope` of the latest `Bearer` challenge the server sent through forwarding that named one.
    pub challenge_scope: Option<String>,
    /// latchkey's clients at the authorization servers the tool used before, by issuer.
    pub other_clients: BTreeMap<String, ToolClient>,
    pub created_at: i64,
}

impl ToolRecord {
    /// Does the tool's authorization server identify its authorization responses (RFC 9207:
    /// `authorization_response_iss_parameter_supported`)?
    pub fn advertises_iss(&self) -> bool {
        self.metadata.get("authorization_response_iss_parameter_supported") == Some(&Value::Bool(true))
    }

    /// latchkey's client at the tool's current authorization server.
    pub fn client(&self) -> ToolClient {
        ToolClient {
            client_id: self.client_id.clone(),
            sealed_secret: self.sealed_secret.clone(),
            token_auth_method: self.token_auth_method.clone(),
            registration: self.registration.clone(),
        }
    }

    /// Use `client` as latchkey's client at the current issuer.
    pub fn set_client(&mut self, client: ToolClient) {
        self.client_id = client.client_id;
        self.sealed_secret = client.sealed_secret;
        self.token_auth_method = client.token_auth_method;
        self.registration = client.registration;
    }
}

/// An initiated OAuth flow, stored under the hash of its `state`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolState {
    pub tool_id: String,
    pub project_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    /// The authorization server the flow was started at (absent in states written before it was
    /// kept).
    pub issuer: Option<String>,
    /// The PKCE verifier, sealed (context [`super::context::tool_state_context`]).
    pub sealed_verifier: Vec<u8>,
    pub expires_at: i64,
}

/// The provider name tool tokens carry (in their item, and in refresh messages).
pub const TOOL_TOKENS_PROVIDER: &str = "mcp";

/// A project's tokens at a tool's authorization server, sealed together (context
/// [`ToolTokens::context`]); refreshed single-flight like a user's connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolTokens {
    pub tool_id: String,
    pub project_id: String,
    /// The scopes granted (as the authorization server reported them, else as asked).
    pub scopes: Vec<String>,
    pub status: ConnectionStatus,
    pub sealed_tokens: Vec<u8>,
    /// When the access token expires (epoch seconds), if the authorization server said.
    pub expires_at: Option<i64>,
    /// Bumped by every token write: refreshes are conditional on it.
    pub version: i64,
    /// A refresher's lease (epoch seconds) while a refresh is in flight.
    pub refresh_lock: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ToolTokens {
    /// New active tokens of `tool_id` holding `sealed_tokens` (sealed under
    /// [`tool_connection_context`]), created at `now`.
    pub fn new(
        project_id: &str,
        tool_id: &str,
        scopes: Vec<String>,
        sealed_tokens: Vec<u8>,
        expires_at: Option<i64>,
        now: i64,
    ) -> Self {
        ToolTokens {
            tool_id: tool_id.to_string(),
            project_id: project_id.to_string(),
            scopes,
            status: ConnectionStatus::Active,
            sealed_tokens,
            expires_at,
            version: 0,
            refresh_lock: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// The encryption context of its sealed tokens: the project and the tool.
    pub fn context(&self) -> EncryptionContext {
        tool_connection_context(&self.project_id, &self.tool_id)
    }

    /// Its token-holding state.
    pub fn held(&self) -> HeldTokens {
        HeldTokens {
            status: self.status,
            scopes: self.scopes.clone(),
            sealed_tokens: self.sealed_tokens.clone(),
            expires_at: self.expires_at,
            version: self.version,
            refresh_lock: self.refresh_lock,
        }
    }
}
