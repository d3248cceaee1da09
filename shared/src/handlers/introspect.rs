//! `POST /oauth/2.1/introspect` (RFC 7662): a resource server (Basic auth with the credentials
//! `latchkey resource-server create` printed) asks whether an access token is active for it.
//! Exactly one DynamoDB round trip (the resource server and the token in one BatchGetItem), no KMS.
//! A token for another audience, or expired, revoked or unknown, is `{"active": false}` and nothing else.

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::domain::grant::{self, GrantStatus, TokenRecord, TokenStatus};
use crate::domain::resource::ResourceServerRecord;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::http::{request, response};
use crate::state::AppState;
use crate::store::grants;
use crate::store::resource_servers::rs_key;
use crate::store::{Context, FromItem};

const METHODS: &str = "POST";

/// `POST /oauth/2.1/introspect` (RFC 7662 §2), authenticated with a resource server's credentials.
pub async fn handle(state: &AppState, req: Request) -> Response<Body> {
    if req.method() != Method::POST {
        return response::method_not_allowed(METHODS);
    }
    introspect(state, &req).await.unwrap_or_else(|e| e.response())
}

fn unauthorized() -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidClient, "resource server authentication failed")
}

async fn introspect(state: &AppState, req: &Request) -> Result<Response<Body>, OAuthError> {
    let params = request::form(req)
        .map_err(|bad| OAuthError::new(OAuthErrorCode::InvalidRequest, bad.message).with_status(bad.status))?;
    let (rs_id, secret) = request::basic_auth(req)
        .map_err(|_| unauthorized())?
        .ok_or_else(unauthorized)?;
    let token = params
        .require("token")
        .map_err(|m| OAuthError::new(OAuthErrorCode::InvalidRequest, m))?;
    if rs_id.len() > 128 || rs_id.chars().any(char::is_control) {
        return Err(unauthorized());
    }
    let now = state.clock.now();
    let grant_id = grant::grant_of(grant::ACCESS_PREFIX, token);
    let gid = grant_id.unwrap_or("-");
    // One round trip: the caller, the token and its grant (a revoked grant makes its tokens inactive
    // even before their items are deleted).
    let mut found = state
        .store
        .get_many(
            &[rs_key(&rs_id), grants::access_key(gid, token), grants::grant_key(gid)],
            now,
        )
        .await
        .context("introspect: loading")?
        .into_iter();
    let rs = found
        .next()
        .flatten()
        .and_then(|i| ResourceServerRecord::from_item(&i).ok())
        .filter(|rs| rs.verify_secret(&secret))
        .ok_or_else(unauthorized)?;
    let inactive = || response::json(StatusCode::OK, &json!({"active": false}));
    let token_item = found.next().flatten().filter(|_| grant_id.is_some());
    let grant_active = found
        .next()
        .flatten()
        .is_some_and(|g| g.status() == Some(GrantStatus::Active));
    let Some(item) = token_item.filter(|_| grant_active) else {
        return Ok(inactive());
    };
    let Ok(t) = TokenRecord::from_item(&item) else {
        return Ok(inactive());
    };
    if t.resource != rs.resource || t.expires_at <= now || item.status() != Some(TokenStatus::Active) {
        return Ok(inactive());
    }
    let issuer = state.config.issuer_for(&request::public_base(&state.config, req));
    Ok(response::json(
        StatusCode::OK,
        &json!({
            "active": true,
            "client_id": t.client_id,
            "username": t.username,
            "scope": t.scope,
            "sub": t.sub,
            "aud": t.resource,
            "iss": issuer,
            "exp": t.expires_at,
            "iat": t.issued_at,
            "token_type": "Bearer",
        }),
    ))
}
