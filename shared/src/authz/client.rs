//! The client an authorization request names: a registered one (RFC 7591), or one named by the URL
//! of its metadata document (draft-ietf-oauth-client-id-metadata-document), fetched, checked and
//! stored while `Cache-Control` lets us trust it. Also dynamic registration's storage (a new client,
//! or the live one with identical public metadata: issue 12 item 8) and the registered `scope` rule
//! it shares with metadata documents.

use crate::domain::client::ClientRecord;
use crate::error::OAuthError;
use crate::oauth::client::{on_duplicate, Duplicate};
use crate::oauth::{cimd, scope};
use crate::state::AppState;
use crate::store::clients::ExtendRefused;
use crate::store::{keys, Context, Store, StoreError};

/// How many times a public registration looks again when the live registration it found changed
/// under it (used, deleted or replaced meanwhile).
const REGISTER_ATTEMPTS: u32 = 4;

/// Store a dynamic registration (RFC 7591 §3.1) and return the client to answer with. A confidential
/// client is always new (one round trip). A public client with a dedup key is new unless a live
/// registration has identical metadata (one transaction: the client and its dedup item); then that
/// one is returned, with its `client_id` and `created_at`, and, while it is still unused, a fresh
/// window for it and its dedup item (a second round trip; none when it was used already).
pub async fn register(state: &AppState, record: ClientRecord, now: i64) -> Result<ClientRecord, StoreError> {
    let Some(dedup) = record.dedup.clone() else {
        state.store.put_client(&record).await?;
        return Ok(record);
    };
    let window = state.config.registration_unused_ttl;
    let mut stale: Option<String> = None;
    for _ in 0..REGISTER_ATTEMPTS {
        let found = match state
            .store
            .put_registration(&record, &dedup, stale.as_deref(), now)
            .await?
        {
            Ok(()) => return Ok(record),
            Err(found) => found,
        };
        let unused_until = match on_duplicate(found.unused_until, now, window) {
            Duplicate::AsIs => found.unused_until,
            Duplicate::Extend(until) => match state
                .store
                .extend_registration(&found.client_id, &dedup, until, now)
                .await?
            {
                Ok(()) => Some(until),
                // Used meanwhile: look again (its dedup item no longer expires either).
                Err(ExtendRefused::Used | ExtendRefused::Moved) => continue,
                // Gone: the dedup item may be replaced by this registration.
                Err(ExtendRefused::Gone) => {
                    stale = Some(found.client_id);
                    continue;
                }
            },
        };
        tracing::info!(client_id = %found.client_id, "identical public registration: the live client returned");
        return Ok(ClientRecord {
            client_id: found.client_id,
            created_at: found.issued_at,
            unused_until,
            ..record
        });
    }
    Err(StoreError::Busy)
}

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
        unused_until: None,
        dedup: None,
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
    let Some(record) = store.get_client(client_id, now).await? else {
        return Ok(None);
    };
    if let Some(dedup) = &record.dedup {
        // First, so identical registrations are never handed the deleted client.
        store.forget_registration(dedup, client_id).await?;
    }
    store.delete(&keys::client(client_id)).await?;
    let grants = store.grants_of_client(client_id, now).await?;
    for grant in &grants {
        store.revoke_grant(&grant.grant_id, now).await?;
    }
    tracing::info!(client_id = %client_id, grants = grants.len(), "client deleted and its grants revoked");
    Ok(Some(grants.len()))
}
