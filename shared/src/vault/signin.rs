//! Keeping the end user's sign-in tokens as a vault connection (`LATCHKEY_LOGIN_VAULT_PROJECT`):
//! the upstream sign-in asks for what the catalogue says the provider needs to hand out a refresh
//! token, and its tokens are sealed into the user's connection like any other, so an MCP server can
//! call the provider for that user through the proxy (`X-User-Id` = the user's `sub`).

use crate::config::Config;
use crate::domain::connection::Connection;
use crate::domain::context::connection_context;
use crate::state::AppState;

use super::providers::{self, ProviderSpec};

/// Extra authorization parameters for the upstream sign-in when its tokens are kept (Google:
/// `access_type=offline`, `prompt=consent`); none otherwise.
pub fn authorize_params(config: &Config) -> Vec<(String, String)> {
    if config.login_vault_project.is_none() {
        return Vec::new();
    }
    providers::catalogue()
        .get(&config.login_vault_provider)
        .and_then(|v| serde_json::from_value::<ProviderSpec>(v.clone()).ok())
        .map(|spec| spec.authorize_params.into_iter().collect())
        .unwrap_or_default()
}

/// The tokens a sign-in's token response carried. `Debug` is not derived: they are secrets.
pub struct SignInTokens<'a> {
    pub access_token: &'a str,
    pub refresh_token: Option<&'a str>,
    pub expires_in: Option<i64>,
    pub scope: Option<&'a str>,
}

/// Keep the sign-in's provider tokens as the connection of user `sub` in the configured project.
/// Best effort: sign-in does not fail on it (failures are logged).
pub async fn keep_as_connection(state: &AppState, tokens: &SignInTokens<'_>, sub: &str, email: Option<&str>, now: i64) {
    let Some(project) = state.config.login_vault_project.as_deref() else {
        return;
    };
    let provider = state.config.login_vault_provider.as_str();
    if super::check_user_id(sub).is_err() {
        tracing::warn!("login: the user id cannot name a vault connection");
        return;
    }
    let ctx = connection_context(project, sub, provider);
    let sealed = match super::seal_tokens(
        state,
        &ctx,
        &super::Tokens {
            access_token: tokens.access_token.to_string(),
            refresh_token: tokens.refresh_token.map(str::to_string),
        },
    )
    .await
    {
        Ok(s) => s,
        Err(_) => return,
    };
    let requested: Vec<String> = state.config.login_scopes.split(' ').map(str::to_string).collect();
    let expires_at = tokens
        .expires_in
        .filter(|e| *e > 0)
        .map(|e| now.saturating_add(e.min(super::upstream::MAX_EXPIRES_IN)));
    let conn = Connection {
        account_id: Some(sub.rsplit('|').next().unwrap_or(sub).to_string()),
        email: email.map(str::to_string),
        ..Connection::new(
            project,
            sub,
            provider,
            super::granted_scopes(tokens.scope, &requested),
            sealed,
            expires_at,
            now,
        )
    };
    match state.store.put_connection(&conn, now).await {
        Ok(was_failed) => {
            tracing::info!(provider, "login: sign-in tokens kept as the user's vault connection");
            super::emit_connected(state, project, sub, provider, was_failed, now).await;
        }
        Err(e) => tracing::error!(error = %e, "login: storing the vault connection failed"),
    }
}
