//! `POST /oauth/2.1/register`: RFC 7591 dynamic client registration. One store round trip (two when
//! the `scope` names a non-base scope and this process's copy of the declared scopes is older than
//! a minute).

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::Value;

use crate::crypto::secret::{self, CLIENT_ID_PREFIX, CLIENT_SECRET_PREFIX};
use crate::domain::client::ClientRecord;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::http::{request, response};
use crate::oauth::client::validate_registration;
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
        client_id: client_id.clone(),
        secret_hash: client_secret.as_deref().map(secret::hash),
        metadata: meta,
        created_at: now,
        fresh_until: None,
    };
    state
        .store
        .put_client(&record)
        .await
        .context("register: storing the client")?;
    tracing::info!(client_id = %client_id, confidential = client_secret.is_some(), "client registered");
    let mut out = record.metadata.to_json();
    out.insert("client_id".into(), client_id.into());
    out.insert("client_id_issued_at".into(), now.into());
    if let Some(s) = client_secret {
        out.insert("client_secret".into(), s.into());
        out.insert("client_secret_expires_at".into(), 0.into());
    }
    Ok(response::json(StatusCode::CREATED, &Value::Object(out)))
}
