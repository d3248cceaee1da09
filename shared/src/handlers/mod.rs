//! One module per endpoint: `handle(&AppState, Request) -> Response`, used by Lambda and `serve`.

pub mod authorize;
pub mod callback;
pub mod connections;
pub mod consent;
pub mod discovery;
pub mod identity_callback;
pub mod introspect;
pub mod proxy;
pub mod register;
pub mod revoke;
pub mod sessions;
pub mod token;
pub mod tool_mcp;
pub mod tool_oauth;
pub mod tools;

use crate::error::OAuthError;
use crate::oauth::scope;
use crate::state::AppState;

/// RFC 7591 §2: the registered `scope` keeps the requested values that are base scopes or declared
/// by some resource server (read only when a value is not a base scope); the response shows it.
pub(crate) async fn registered_scope(
    state: &AppState,
    requested: Option<String>,
    now: i64,
) -> Result<Option<String>, OAuthError> {
    let Some(requested) = requested else {
        return Ok(None);
    };
    let base = &state.config.scopes_supported;
    if !scope::names_beyond_base(&requested, base) {
        return Ok(Some(requested));
    }
    let declared = state.store.declared_scopes(now).await.map_err(|e| {
        tracing::error!(error = %e, "register: loading the declared scopes failed");
        OAuthError::server_error()
    })?;
    Ok(scope::registrable(&requested, base, &declared))
}
