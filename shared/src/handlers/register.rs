//! `POST /oauth/2.1/register`: RFC 7591 dynamic client registration. One store round trip for a new
//! client (one more when the `scope` names a non-base scope and this process's copy of the declared
//! scopes is older than a minute). Issue 12 item 8: the registration expires unless used within
//! `LATCHKEY_REGISTRATION_UNUSED_TTL`; a public client registering metadata identical to a live
//! registration gets that one back (one round trip if it was used, two if its window is extended).

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::Value;

use crate::crypto::secret::{self, CLIENT_ID_PREFIX, CLIENT_SECRET_PREFIX};
use crate::domain::client::ClientRecord;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::http::{request, response};
use crate::oauth::client::{dedup_key, unused_until, validate_registration};
use crate::state::AppState;
use crate::store::Context;

const METHODS: &str = "POST, OPTIONS";

/// `POST /oauth/2.1/register` (RFC 7591 §3.1), CORS-open.
pub async fn handle(state: &AppState, req: Request) -> Response<Body> {
    if let Some(res) = response::cors_gate(req.method(), &[Method::POST], METHODS) {
        return res;
    }
    let res = register(state, &req).await.unwrap_or_else(|e| e.response());
    response::cors(res, METHODS)
}

async fn register(state: &AppState, req: &Request) -> Result<Response<Body>, OAuthError> {
    let body = request::json_object(req).map_err(|bad| {
        if bad.status == StatusCode::BAD_REQUEST {
            OAuthError::new(OAuthErrorCode::InvalidClientMetadata, bad.message)
        } else {
            OAuthError::new(OAuthErrorCode::InvalidRequest, bad.message).with_status(bad.status)
        }
    })?;
    let mut meta = validate_registration(&body, &state.config.redirect_policy)?;
    let now = state.clock.now();
    meta.scope = crate::authz::client::registered_scope(state, meta.scope.take(), now).await?;
    let client_id = secret::random_token(CLIENT_ID_PREFIX, 16);
    let client_secret = meta.is_confidential().then(|| secret::new_secret(CLIENT_SECRET_PREFIX));
    let record = ClientRecord {
        client_id,
        secret_hash: client_secret.as_deref().map(secret::hash),
        dedup: dedup_key(&meta),
        metadata: meta,
        created_at: now,
        fresh_until: None,
        unused_until: unused_until(now, state.config.registration_unused_ttl),
    };
    let record = crate::authz::client::register(state, record, now)
        .await
        .context("register: storing the client")?;
    tracing::info!(client_id = %record.client_id, confidential = client_secret.is_some(), "client registered");
    let mut out = record.metadata.to_json();
    out.insert("client_id".into(), record.client_id.into());
    out.insert("client_id_issued_at".into(), record.created_at.into());
    if let Some(s) = client_secret {
        out.insert("client_secret".into(), s.into());
        out.insert("client_secret_expires_at".into(), 0.into());
    }
    Ok(response::json(StatusCode::CREATED, &Value::Object(out)))
}
