//! Single-flight refresh of a connection's access token. The first caller takes a lease with a
//! conditional write on the connection's `version`; it alone calls the provider and writes the new
//! tokens (bumping the version). Everyone else re-reads until the version moves, then uses what the
//! winner stored. A provider that refuses the refresh token marks the connection
//! `reauthorization_required`.

use std::time::Duration;

use http::StatusCode;

use super::token_client::TokenClient;
use super::upstream::{self, UpstreamError};
use super::{credentials, open_tokens, seal_tokens, store_error, Tokens};
use crate::domain::connection::{Connection, ConnectionStatus};
use crate::error::VaultError;
use crate::state::AppState;
use crate::store::connections;

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

/// Is the access token (about to be) expired at `now`?
pub fn needs_refresh(conn: &Connection, now: i64) -> bool {
    conn.expires_at.is_some_and(|e| e <= now + EXPIRY_SKEW)
}

pub fn reauthorization_required(provider: &str) -> VaultError {
    VaultError::new(
        StatusCode::UNAUTHORIZED,
        "reauthorization_required",
        format!("the user's {provider} connection can no longer be refreshed; create a new auth session for this user"),
    )
}

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

/// Get fresh tokens for `conn` (whose current tokens are `tokens`), refreshing at most once
/// across every concurrent caller. Returns the connection as stored after the refresh.
pub async fn refresh(
    state: &AppState,
    client: &TokenClient,
    conn: &Connection,
    tokens: &Tokens,
) -> Result<(Connection, Tokens), VaultError> {
    let ctx = conn.context();
    let mut conn = conn.clone();
    let mut tokens = tokens.clone();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if conn.status != ConnectionStatus::Active {
            return Err(reauthorization_required(&conn.provider));
        }
        let Some(refresh_token) = tokens.refresh_token.clone() else {
            // Nothing to refresh with. Callers pass the provider's own answer through instead of
            // calling this; reaching here means the token is past its stated expiry.
            return Err(reauthorization_required(&conn.provider));
        };
        let now = state.clock.now();
        let claimed = state
            .store
            .claim_refresh(&conn, now)
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
                    let sealed = seal_tokens(state, &ctx, &fresh).await?;
                    let expires_at = ts.expires_in.map(|s| now + s);
                    let scopes = ts
                        .scope
                        .as_deref()
                        .map(|s| super::granted_scopes(Some(s), &conn.scopes));
                    let stored = state
                        .store
                        .store_refreshed(&conn, &owner, sealed.clone(), expires_at, scopes.as_deref(), now)
                        .await
                        .map_err(|e| store_error("storing refreshed tokens", e))?;
                    if !stored {
                        tracing::warn!("vault: a connection changed while this caller held the refresh lease");
                    }
                    tracing::info!(provider = %conn.provider, "vault: refreshed a connection");
                    let mut next = conn.clone();
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
                    tracing::info!(provider = %conn.provider, %code, status, "vault: the provider refused the refresh token");
                    state
                        .store
                        .mark_reauthorization_required(&conn, &owner, now)
                        .await
                        .map_err(|e| store_error("marking a connection", e))?;
                    Err(reauthorization_required(&conn.provider))
                }
                Err(e) => {
                    tracing::warn!(provider = %conn.provider, error = %e, "vault: refresh failed");
                    if let Err(e) = state.store.release_refresh(&conn, &owner).await {
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
                .get_connection_at(&connections::key_of(&conn), now)
                .await
                .map_err(|e| store_error("re-reading a connection", e))?
            else {
                return Err(VaultError::new(
                    StatusCode::NOT_FOUND,
                    "not_connected",
                    format!("the user has no {} connection", conn.provider),
                ));
            };
            if latest.version != conn.version {
                if latest.status != ConnectionStatus::Active {
                    return Err(reauthorization_required(&latest.provider));
                }
                let fresh = open_tokens(state, &ctx, &latest.sealed_tokens).await?;
                if !needs_refresh(&latest, now) {
                    return Ok((latest, fresh));
                }
                conn = latest;
                tokens = fresh;
                break;
            }
            if latest.refresh_lock.is_none_or(|until| until < now) {
                // The lease holder gave up or died: try to take it ourselves.
                conn = latest;
                break;
            }
        }
    }
}
