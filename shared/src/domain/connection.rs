//! Connections: a user's tokens at a provider — or, with `tool_id`, a project's tokens at a remote
//! MCP server ("tool") — sealed together, with what the proxy and refresh need beside them.

use super::context::{connection_context, tool_connection_context};
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

/// A user's connection to a provider — or, with `tool_id`, a project's tokens for a remote MCP
/// server ("tool"). Tokens are sealed together (`sealed_tokens`, context [`Connection::context`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// Set for a tool's tokens; `user_id` is then empty and `provider` is `mcp`.
    pub tool_id: Option<String>,
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
    /// The encryption context of its sealed tokens: the record's identity.
    pub fn context(&self) -> EncryptionContext {
        match &self.tool_id {
            Some(t) => tool_connection_context(&self.project_id, t),
            None => connection_context(&self.project_id, &self.user_id, &self.provider),
        }
    }
}
