//! Encryption contexts of the records we seal (KMS encryption context and AES-GCM additional data):
//! each names the record's identity, so a sealed value moved to another record does not open.
//!
//! | sealed value | context |
//! |---|---|
//! | provider client secret | `kind=provider_secret, project, provider` |
//! | tool client secret | `kind=provider_secret, project, provider=tool:<tool_id>` |
//! | connection tokens | `kind=connection, project, user, provider` |
//! | tool tokens | `kind=tool_connection, project, tool` |
//! | auth session PKCE verifier | `kind=vault_state, state=<sha256(state)>` |
//! | tool OAuth PKCE verifier | `kind=tool_state, state=<sha256(state)>` |
//! | upstream sign-in PKCE verifier | `kind=login, state=<sha256(state)>` |
//! | webhook signing secret | `kind=webhook, project, webhook` (`domain::webhook::secret_context`) |

use crate::crypto::envelope::context;
use crate::crypto::{secret, EncryptionContext};

/// A project's client secret at a provider.
pub fn provider_context(project_id: &str, provider: &str) -> EncryptionContext {
    context([
        ("kind", "provider_secret"),
        ("project", project_id),
        ("provider", provider),
    ])
}

/// latchkey's client secret at a tool's authorization server: a provider secret under the provider
/// name `tool:<tool_id>`.
pub fn tool_secret_context(project_id: &str, tool_id: &str) -> EncryptionContext {
    provider_context(project_id, &format!("tool:{tool_id}"))
}

/// A user's tokens at a provider.
pub fn connection_context(project_id: &str, user_id: &str, provider: &str) -> EncryptionContext {
    context([
        ("kind", "connection"),
        ("project", project_id),
        ("user", user_id),
        ("provider", provider),
    ])
}

/// A project's tokens at a tool (remote MCP server).
pub fn tool_connection_context(project_id: &str, tool_id: &str) -> EncryptionContext {
    context([("kind", "tool_connection"), ("project", project_id), ("tool", tool_id)])
}

/// The PKCE verifier of an auth session, by its `state`.
pub fn vault_state_context(state_value: &str) -> EncryptionContext {
    context([("kind", "vault_state"), ("state", &secret::hash(state_value))])
}

/// The PKCE verifier of a tool's OAuth flow, by its `state`.
pub fn tool_state_context(state_value: &str) -> EncryptionContext {
    context([("kind", "tool_state"), ("state", &secret::hash(state_value))])
}

/// The PKCE verifier of an upstream sign-in, by its `state`.
pub fn login_context(state_value: &str) -> EncryptionContext {
    context([("kind", "login"), ("state", &secret::hash(state_value))])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_context_names_its_record() {
        assert_eq!(
            tool_secret_context("prj_a", "tl_b"),
            provider_context("prj_a", "tool:tl_b")
        );
        assert_ne!(
            connection_context("prj_a", "u", "google"),
            connection_context("prj_a", "v", "google")
        );
        assert_ne!(vault_state_context("s"), tool_state_context("s"));
        assert_ne!(tool_state_context("s"), login_context("s"));
        assert_eq!(
            tool_connection_context("prj_a", "tl_b").get("kind").map(String::as_str),
            Some("tool_connection")
        );
    }
}
