//! Single-flight refresh (RFC 6749 §6) of held tokens — a user's connection or a tool's tokens. The
//! first caller takes a lease with a conditional write on the item's `version`; it alone calls the
//! token endpoint and writes the new tokens (bumping the version). Everyone else re-reads until the
//! version moves, then uses what the winner stored. An issuer that refuses the refresh token marks
//! the tokens `reauthorization_required`.

use std::time::Duration;

use http::StatusCode;

use super::token_client::TokenClient;
use super::upstream::{self, UpstreamError};
use super::{credentials, open_tokens, seal_tokens, store_error, Tokens};
use crate::crypto::EncryptionContext;
use crate::domain::connection::{Connection, ConnectionStatus, HeldTokens};
use crate::domain::tool::{ToolTokens, TOOL_TOKENS_PROVIDER};
use crate::domain::webhook::{Event, EventType};
use crate::error::VaultError;
use crate::state::AppState;
use crate::store::connections::{self, tool_tokens_key};
use crate::store::keys::Key;

/// Refresh this long before the provider's stated expiry.
pub const EXPIRY_SKEW: i64 = 30;
/// How long a caller waits for another caller's refresh.
const WAIT: Duration = Duration::from_secs(12);
const POLL: Duration = Duration::from_millis(100);

/// Provider error codes that mean the refresh token is dead.
const DEAD_REFRESH_CODES: &[&str] = &[
    "invalid_grant",
    "invalid_refresh_token",
    "token_revoked",
    "token_expired",
    "invalid_token",
];

/// Whose tokens are held: the item they live in, the encryption context they are sealed under, and
/// the provider named in messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub key: Key,
    pub context: EncryptionContext,
    pub provider: String,
    /// Whose they are, as events name it.
    pub subject: Subject,
}

/// Who holds tokens, as an event names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    Connection { project_id: String, user_id: String },
    Tool { project_id: String, tool_id: String },
}

impl Holder {
    /// The event a provider's refusal to refresh these tokens is.
    pub fn refused_event(&self, reason: &str, now: i64) -> Event {
        match &self.subject {
            Subject::Connection { project_id, user_id } => Event::new(
                EventType::ConnectionRefreshFailed,
                project_id,
                now,
                &[("user_id", user_id), ("provider", &self.provider), ("reason", reason)],
            ),
            Subject::Tool { project_id, tool_id } => Event::new(
                EventType::ToolReauthorizationRequired,
                project_id,
                now,
                &[("tool_id", tool_id), ("reason", reason)],
            ),
        }
    }
}

impl Holder {
    /// A user's connection.
    pub fn connection(conn: &Connection) -> Self {
        Holder {
            key: connections::key_of(conn),
            context: conn.context(),
            provider: conn.provider.clone(),
            subject: Subject::Connection {
                project_id: conn.project_id.clone(),
                user_id: conn.user_id.clone(),
            },
        }
    }

    /// A tool's tokens.
    pub fn tool(tokens: &ToolTokens) -> Self {
        Holder {
            key: tool_tokens_key(&tokens.tool_id),
            context: tokens.context(),
            provider: TOOL_TOKENS_PROVIDER.to_string(),
            subject: Subject::Tool {
                project_id: tokens.project_id.clone(),
                tool_id: tokens.tool_id.clone(),
            },
        }
    }
}

/// Is the access token (about to be) expired at `now`?
pub fn needs_refresh(held: &HeldTokens, now: i64) -> bool {
    held.expires_at.is_some_and(|e| e <= now + EXPIRY_SKEW)
}

/// 401 `reauthorization_required`: the refresh token is dead; the user must connect again.
pub fn reauthorization_required(provider: &str) -> VaultError {
    VaultError::new(
        StatusCode::UNAUTHORIZED,
        "reauthorization_required",
        format!("the user's {provider} connection can no longer be refreshed; create a new auth session for this user"),
    )
}

/// A failed call to a provider as the vault's error (502/504; the detail goes to the log).
pub fn upstream_failure(e: &UpstreamError) -> VaultError {
    match e {
        UpstreamError::Timeout => VaultError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_timeout",
            "the provider did not answer in time",
        ),
        UpstreamError::Refused(r) => VaultError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_refused",
            format!("the provider's address is not allowed: {r}"),
        ),
        UpstreamError::Rejected { status, code } => VaultError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            format!("the provider refused the token request ({code}, HTTP {status})"),
        ),
        UpstreamError::Unavailable(_) => VaultError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "the provider could not be reached or answered unusably",
        ),
    }
}

/// Get fresh tokens for `holder`, whose state is `held` and current tokens `tokens`, refreshing at
/// most once across every concurrent caller. Returns the state as stored after the refresh.
pub async fn refresh(
    state: &AppState,
    client: &TokenClient,
    holder: &Holder,
    held: &HeldTokens,
    tokens: &Tokens,
) -> Result<(HeldTokens, Tokens), VaultError> {
    let provider = holder.provider.as_str();
    let mut held = held.clone();
    let mut tokens = tokens.clone();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if held.status != ConnectionStatus::Active {
            return Err(reauthorization_required(provider));
        }
        let Some(refresh_token) = tokens.refresh_token.clone() else {
            // Nothing to refresh with. Callers pass the provider's own answer through instead of
            // calling this; reaching here means the token is past its stated expiry.
            return Err(reauthorization_required(provider));
        };
        let now = state.clock.now();
        let claimed = state
            .store
            .claim_refresh(&holder.key, held.version, now)
            .await
            .map_err(|e| store_error("claiming a refresh", e))?;
        if let Some(owner) = claimed {
            let creds = credentials(state, client).await?;
            let allow = state.config.allow_loopback_outbound;
            let result = upstream::refresh(&state.upstream, client, &creds, &refresh_token, allow).await;
            let now = state.clock.now();
            return match result {
                Ok(ts) => {
                    let fresh = Tokens {
                        access_token: ts.access_token.clone(),
                        // A refresh response without a new refresh token keeps the old one.
                        refresh_token: ts.refresh_token.clone().or(Some(refresh_token)),
                    };
                    let sealed = seal_tokens(state, &holder.context, &fresh).await?;
                    let expires_at = ts.expires_in.map(|s| now + s);
                    let scopes = ts
                        .scope
                        .as_deref()
                        .map(|s| super::granted_scopes(Some(s), &held.scopes));
                    let stored = state
                        .store
                        .store_refreshed(
                            &holder.key,
                            held.version,
                            &owner,
                            sealed.clone(),
                            expires_at,
                            scopes.as_deref(),
                            now,
                        )
                        .await
                        .map_err(|e| store_error("storing refreshed tokens", e))?;
                    if !stored {
                        tracing::warn!("vault: a connection changed while this caller held the refresh lease");
                    }
                    tracing::info!(provider, "vault: refreshed a connection");
                    let mut next = held.clone();
                    next.version += 1;
                    next.sealed_tokens = sealed;
                    next.expires_at = expires_at;
                    next.refresh_lock = None;
                    if let Some(s) = scopes {
                        next.scopes = s;
                    }
                    Ok((next, fresh))
                }
                Err(UpstreamError::Rejected { code, status }) if DEAD_REFRESH_CODES.contains(&code.as_str()) => {
                    tracing::info!(provider, %code, status, "vault: the provider refused the refresh token");
                    let marked = state
                        .store
                        .mark_reauthorization_required(&holder.key, held.version, &owner, now)
                        .await
                        .map_err(|e| store_error("marking a connection", e))?;
                    if marked {
                        // Once per failure: only the lease holder that marked it tells anyone.
                        let event = holder.refused_event(&code, now);
                        state.events.emit(&state.store, event, now).await;
                    }
                    Err(reauthorization_required(provider))
                }
                Err(e) => {
                    tracing::warn!(provider, error = %e, "vault: refresh failed");
                    if let Err(e) = state.store.release_refresh(&holder.key, held.version, &owner).await {
                        tracing::error!(error = %e, "vault: releasing a refresh lease failed");
                    }
                    Err(upstream_failure(&e))
                }
            };
        }
        // Someone else holds the lease (or already refreshed): wait for the version to move.
        loop {
            if tokio::time::Instant::now() >= deadline {
                return Err(VaultError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "another request is refreshing this connection; retry shortly",
                ));
            }
            tokio::time::sleep(POLL).await;
            let now = state.clock.now();
            let Some(latest) = state
                .store
                .get_held(&holder.key, now)
                .await
                .map_err(|e| store_error("re-reading a connection", e))?
            else {
                return Err(VaultError::new(
                    StatusCode::NOT_FOUND,
                    "not_connected",
                    format!("the user has no {provider} connection"),
                ));
            };
            if latest.version != held.version {
                if latest.status != ConnectionStatus::Active {
                    return Err(reauthorization_required(provider));
                }
                let fresh = open_tokens(state, &holder.context, &latest.sealed_tokens).await?;
                if !needs_refresh(&latest, now) {
                    return Ok((latest, fresh));
                }
                held = latest;
                tokens = fresh;
                break;
            }
            if latest.refresh_lock.is_none_or(|until| until < now) {
                // The lease holder gave up or died: try to take it ourselves.
                held = latest;
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_names_the_item_the_context_and_the_provider() {
        let conn = Connection::new("prj_1", "u#1", "google", Vec::new(), vec![1], Some(10), 0);
        let h = Holder::connection(&conn);
        assert_eq!(h.key, connections::connection_key("prj_1", "u#1", "google"));
        assert_eq!(h.context, conn.context());
        assert_eq!(h.provider, "google");
        let tokens = ToolTokens::new("prj_1", "tl_1", Vec::new(), vec![1], None, 0);
        let h = Holder::tool(&tokens);
        assert_eq!(h.key, tool_tokens_key("tl_1"));
        assert_eq!(
            h.context,
            crate::domain::context::tool_connection_context("prj_1", "tl_1")
        );
        assert_eq!(h.provider, "mcp", "refresh messages name tool tokens as before");
    }

    #[test]
    fn rfc6749_6_refresh_ahead_of_the_stated_expiry() {
        let held = |expires_at| HeldTokens {
            expires_at,
            ..Connection::new("p", "u", "x", Vec::new(), Vec::new(), None, 0).held()
        };
        assert!(!needs_refresh(&held(None), 1_000), "no stated expiry: wait for a 401");
        assert!(!needs_refresh(&held(Some(1_000 + EXPIRY_SKEW + 1)), 1_000));
        assert!(needs_refresh(&held(Some(1_000 + EXPIRY_SKEW)), 1_000));
    }
}
