//! `POST /oauth/2.1/revoke` (RFC 7009): client-authenticated. Revoking a refresh token revokes its
//! grant and every token issued from it; revoking an access token removes that token. A client can
//! never revoke another client's tokens; unknown tokens get 200 (RFC 7009 §2.2).

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

use crate::domain::client::ClientRecord;
use crate::domain::grant;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::http::{request, response};
use crate::oauth::client_auth;
use crate::state::AppState;
use crate::store::{grants, keys, Context, FromItem};

const METHODS: &str = "POST, OPTIONS";

/// `POST /oauth/2.1/revoke` (RFC 7009 §2.1), with client authentication (RFC 6749 §2.3).
pub async fn handle(state: &AppState, req: Request) -> Response<Body> {
    if let Some(res) = response::cors_gate(req.method(), &[Method::POST], METHODS) {
        return res;
    }
    let res = revoke(state, &req).await.unwrap_or_else(|e| e.response());
    response::cors(res, METHODS)
}

async fn revoke(state: &AppState, req: &Request) -> Result<Response<Body>, OAuthError> {
    let params = request::form(req)
        .map_err(|bad| OAuthError::new(OAuthErrorCode::InvalidRequest, bad.message).with_status(bad.status))?;
    let client = client_auth::presented(request::basic_auth(req), &params)?;
    let token = params
        .require("token")
        .map_err(|m| OAuthError::new(OAuthErrorCode::InvalidRequest, m))?;
    let now = state.clock.now();
    // Which kind of token is it? The prefix says; `token_type_hint` is only a hint (RFC 7009 §2.1).
    let (grant_id, token_key, is_refresh) = if let Some(g) = grant::grant_of(grant::REFRESH_PREFIX, token) {
        (Some(g), grants::refresh_key(g, token), true)
    } else if let Some(g) = grant::grant_of(grant::ACCESS_PREFIX, token) {
        (Some(g), grants::access_key(g, token), false)
    } else {
        (None, grants::access_key("-", token), false)
    };
    let mut found = state
        .store
        .get_many(&[keys::client(&client.client_id), token_key.clone()], now)
        .await
        .context("revoke")?
        .into_iter();
    let record = found
        .next()
        .flatten()
        .as_ref()
        .map(ClientRecord::from_item)
        .transpose()
        .context("revoke")?;
    client_auth::authenticate(&client, record.as_ref())?;
    let token_item = found.next().flatten();
    if let (Some(grant_id), Some(item)) = (grant_id, token_item) {
        if item.s("client_id") == Some(client.client_id.as_str()) {
            if is_refresh {
                state.store.revoke_grant(grant_id, now).await.context("revoke")?;
            } else {
                state.store.delete(&token_key).await.context("revoke")?;
            }
            tracing::info!(grant_id = %grant_id, refresh = is_refresh, "token revoked");
        }
    }
    Ok(response::json(StatusCode::OK, &serde_json::json!({})))
}
