//! Connections: a user's tokens at a provider, sealed together, with what the proxy and refresh need
//! beside them; and the token-holding state every record that holds tokens shares.

use super::context::connection_context;
use super::status_enum;
use crate::crypto::EncryptionContext;

status_enum! {
    /// A connection's status.
    pub enum ConnectionStatus {
        /// The tokens are usable (refreshed when they expire).
        Active => "active",
        /// The provider refused the refresh token: the user must connect again.
        ReauthorizationRequired => "reauthorization_required",
    }
}

/// What every record holding tokens for someone shares (a user's [`Connection`], a tool's
/// [`super::tool::ToolTokens`]): the state single-flight refresh reads and writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldTokens {
    pub status: ConnectionStatus,
    pub scopes: Vec<String>,
    /// The access and refresh tokens, sealed together.
    pub sealed_tokens: Vec<u8>,
    /// When the access token expires (epoch seconds), if the issuer said.
    pub expires_at: Option<i64>,
    /// Bumped by every token write: refreshes are conditional on it.
    pub version: i64,
    /// A refresher's lease (epoch seconds) while a refresh is in flight.
    pub refresh_lock: Option<i64>,
}

/// A user's connection to a provider. Tokens are sealed together (`sealed_tokens`, context
/// [`Connection::context`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub project_id: String,
    pub user_id: String,
    pub provider: String,
    pub scopes: Vec<String>,
    pub account_id: Option<String>,
    pub email: Option<String>,
    pub status: ConnectionStatus,
    pub sealed_tokens: Vec<u8>,
    /// When the access token expires (epoch seconds), if the provider said.
    pub expires_at: Option<i64>,
    /// A per-connection API base (Salesforce's `instance_url`).
    pub api_base_url: Option<String>,
    /// Bumped by every token write: refreshes are conditional on it.
    pub version: i64,
    /// A refresher's lease (epoch seconds) while a refresh is in flight.
    pub refresh_lock: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Connection {
    /// A new active connection of `user_id` to `provider` holding `sealed_tokens` (sealed under
    /// [`connection_context`]), created at `now`; who connected and a per-connection API base are
    /// set by the caller when known.
    pub fn new(
        project_id: &str,
        user_id: &str,
        provider: &str,
        scopes: Vec<String>,
        sealed_tokens: Vec<u8>,
        expires_at: Option<i64>,
        now: i64,
    ) -> Self {
        Connection {
            project_id: project_id.to_string(),
            user_id: user_id.to_string(),
            provider: provider.to_string(),
            scopes,
            account_id: None,
            email: None,
            status: ConnectionStatus::Active,
            sealed_tokens,
            expires_at,
            api_base_url: None,
            version: 0,
            refresh_lock: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// The encryption context of its sealed tokens: the record's identity.
    pub fn context(&self) -> EncryptionContext {
        connection_context(&self.project_id, &self.user_id, &self.provider)
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
