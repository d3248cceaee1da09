//! The client an authorization request names: a registered one (RFC 7591), or one named by the URL
//! of its metadata document (draft-ietf-oauth-client-id-metadata-document), fetched, checked and
//! stored while `Cache-Control` lets us trust it. Also the registered `scope` rule shared with
//! dynamic registration.

use crate::domain::client::ClientRecord;
use crate::error::OAuthError;
use crate::oauth::{cimd, scope};
use crate::state::AppState;
use crate::store::{keys, Context, Store, StoreError};

/// Why no client could be used.
#[derive(Debug)]
pub enum ClientError {
    /// Neither registered nor a metadata-document URL.
    Unknown,
    /// A metadata document that could not be used (a public description).
    Document(String),
    /// The store failed.
    Store(StoreError),
}

/// The client named `client_id` at `now`: the stored record while fresh, else (for a URL) its
/// metadata document fetched again. Registered clients: one round trip.
pub async fn resolve(state: &AppState, client_id: &str, now: i64) -> Result<ClientRecord, ClientError> {
    let stored = state
        .store
        .get_client(client_id, now)
        .await
        .map_err(ClientError::Store)?;
    match stored {
        Some(c) if c.fresh_until.is_none_or(|f| f > now) => Ok(c),
        _ if cimd::is_document_client_id(client_id) => document_client(state, client_id, now)
            .await
            .map_err(ClientError::Document),
        _ => Err(ClientError::Unknown),
    }
}

/// Fetch, check and store a client named by its metadata document URL.
async fn document_client(state: &AppState, client_id: &str, now: i64) -> Result<ClientRecord, String> {
    let allow_loopback = state.config.allow_loopback_outbound;
    let url = cimd::parse_client_id_url(client_id, allow_loopback)?;
    let (doc, max_age) = super::cimd::fetch(&url, allow_loopback).await?;
    let mut metadata = cimd::metadata_from_document(doc, client_id, &state.config.redirect_policy)?;
    metadata.scope = registered_scope(state, metadata.scope.take(), now)
        .await
        .map_err(|_| "its scopes could not be checked".to_string())?;
    let record = ClientRecord {
        client_id: client_id.to_string(),
        secret_hash: None,
        metadata,
        created_at: now,
        fresh_until: Some(now + max_age),
    };
    let ttl = now + state.config.refresh_token_ttl + 3600;
    state.store.put_document_client(&record, ttl).await.map_err(|e| {
        tracing::error!(error = %e, "authorize: storing a document client failed");
        "it could not be stored".to_string()
    })?;
    tracing::info!(client_id = %client_id, max_age, "client metadata document fetched");
    Ok(record)
}

/// RFC 7591 §2: the registered `scope` keeps the requested values that are base scopes or declared
/// by some resource server (read only when a value is not a base scope); the response shows it.
pub async fn registered_scope(
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
    let declared = state
        .store
        .declared_scopes(now)
        .await
        .context("register: loading the declared scopes")?;
    Ok(scope::registrable(&requested, base, &declared))
}

/// Delete a client and revoke every grant it holds, with every code and token issued from them
/// (`latchkey client delete`). The client goes first, so no token can be issued for it while its
/// grants are found (the token endpoint reads the client on every request); then a consistent scan
/// finds every grant it was given, whatever the grant's status, and each is revoked. `None` when there
/// is no such client; else how many grants were revoked.
pub async fn delete(store: &Store, client_id: &str, now: i64) -> Result<Option<usize>, StoreError> {
    if store.get_client(client_id, now).await?.is_none() {
        return Ok(None);
    }
    store.delete(&keys::client(client_id)).await?;
    let grants = store.grants_of_client(client_id, now).await?;
    for grant in &grants {
        store.revoke_grant(&grant.grant_id, now).await?;
    }
    tracing::info!(client_id = %client_id, grants = grants.len(), "client deleted and its grants revoked");
    Ok(Some(grants.len()))
}
