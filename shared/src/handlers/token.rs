//! `POST /oauth/2.1/token` (RFC 6749 §3.2, §4.1.3, §6): `authorization_code` with PKCE and
//! `refresh_token` with rotation. At most two DynamoDB round trips (one BatchGetItem, one
//! TransactWriteItems) and no KMS call on success. A dynamically registered client's first code
//! redemption also ends its unused-registration expiry, inside that one transaction.

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::domain::client::ClientRecord;
use crate::domain::grant::{self, CodeRecord, FirstUse, Grant, GrantStatus, Issue, TokenRecord};
use crate::domain::resource::Resource;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::http::{request, response};
use crate::oauth::client_auth::{self, PresentedClient};
use crate::oauth::pkce;
use crate::oauth::token::{check_code, check_refresh, CodeDecision, RefreshDecision};
use crate::state::AppState;
use crate::store::grants::{self, Rotation, WriteRefused};
use crate::store::{keys, Context, FromItem, Item};

const METHODS: &str = "POST, OPTIONS";

/// `POST /oauth/2.1/token` (RFC 6749 §3.2), CORS-open; errors in RFC 6749 §5.2's shape.
pub async fn handle(state: &AppState, req: Request) -> Response<Body> {
    if let Some(res) = response::cors_gate(req.method(), &[Method::POST], METHODS) {
        return res;
    }
    let res = token(state, &req).await.unwrap_or_else(|e| e.response());
    response::cors(res, METHODS)
}

fn invalid_request(msg: impl Into<String>) -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidRequest, msg)
}

fn invalid_grant(msg: &str) -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidGrant, msg)
}

/// The `resource` parameter in canonical form (RFC 8707 §2), so `https://x.example/` and
/// `https://x.example` name the same resource server.
fn resource_param(params: &request::Params) -> Result<Option<String>, OAuthError> {
    match params.get("resource").filter(|r| !r.is_empty()) {
        None => Ok(None),
        Some(r) => Resource::normalize(r)
            .map(|r| Some(r.into_string()))
            .map_err(|_| OAuthError::new(OAuthErrorCode::InvalidTarget, "resource is not a valid resource URI")),
    }
}

async fn token(state: &AppState, req: &Request) -> Result<Response<Body>, OAuthError> {
    let params = request::form(req).map_err(|bad| invalid_request(bad.message).with_status(bad.status))?;
    let client = client_auth::presented(request::basic_auth(req), &params)?;
    match params.get("grant_type") {
        None | Some("") => Err(invalid_request("missing required parameter \"grant_type\"")),
        Some("authorization_code") => authorization_code(state, &params, &client).await,
        Some("refresh_token") => refresh(state, &params, &client).await,
        Some(_) => Err(OAuthError::new(
            OAuthErrorCode::UnsupportedGrantType,
            "grant_type must be authorization_code or refresh_token",
        )),
    }
}

/// Load the client and the grant's items in one BatchGetItem, then authenticate the client.
async fn load(
    state: &AppState,
    client: &PresentedClient,
    grant_id: &str,
    item_key: keys::Key,
    now: i64,
) -> Result<(ClientRecord, Option<Item>, Option<Item>), OAuthError> {
    let mut found = state
        .store
        .get_many(
            &[keys::client(&client.client_id), grants::grant_key(grant_id), item_key],
            now,
        )
        .await
        .context("token: loading")?
        .into_iter();
    let client_item = found.next().flatten();
    let record = client_item
        .as_ref()
        .map(ClientRecord::from_item)
        .transpose()
        .context("token: client record")?;
    client_auth::authenticate(client, record.as_ref())?;
    let record = record.ok_or_else(OAuthError::server_error)?;
    Ok((record, found.next().flatten(), found.next().flatten()))
}

fn active_grant(item: Option<Item>) -> Result<Grant, OAuthError> {
    let item = item.ok_or_else(|| invalid_grant("the grant is invalid, expired or revoked"))?;
    if item.status() != Some(GrantStatus::Active) {
        return Err(invalid_grant("the grant is invalid, expired or revoked"));
    }
    Grant::from_item(&item)
        .context("token: grant record")
        .map_err(Into::into)
}

async fn authorization_code(
    state: &AppState,
    params: &request::Params,
    client: &PresentedClient,
) -> Result<Response<Body>, OAuthError> {
    let code = params.require("code").map_err(invalid_request)?;
    let verifier = params.require("code_verifier").map_err(invalid_request)?;
    pkce::check_verifier(verifier).map_err(invalid_request)?;
    let now = state.clock.now();
    let grant_id = grant::grant_of(grant::CODE_PREFIX, code);
    let (record, grant_item, code_item) = load(
        state,
        client,
        grant_id.unwrap_or("-"),
        grants::code_key(grant_id.unwrap_or("-"), code),
        now,
    )
    .await?;
    if !record.metadata.grant_types.iter().any(|g| g == "authorization_code") {
        return Err(OAuthError::new(
            OAuthErrorCode::UnauthorizedClient,
            "client may not use authorization_code",
        ));
    }
    let (Some(grant_id), Some(code_item)) = (grant_id, code_item) else {
        return Err(invalid_grant("the code is invalid or expired"));
    };
    let grant = active_grant(grant_item)?;
    let code_rec = CodeRecord::from_item(&code_item).context("token: code record")?;
    let decision = check_code(
        &record.client_id,
        &grant,
        &code_rec,
        params.get("redirect_uri"),
        verifier,
        resource_param(params)?.as_deref(),
        now,
    )?;
    if decision == CodeDecision::ReplayRevoke {
        return replay_revoke(state, grant_id, now, "authorization code replayed").await;
    }
    let issue = new_issue(state, &record, &grant, &grant.scope, &grant.scope, now);
    match state
        .store
        .redeem_code(grant_id, code, &issue, now)
        .await
        .context("token: redeem")?
    {
        Ok(()) => Ok(token_response(state, &issue)),
        Err(WriteRefused::Consumed) => replay_revoke(state, grant_id, now, "authorization code replayed").await,
        Err(WriteRefused::GrantRevoked | WriteRefused::SuccessorGone) => {
            Err(invalid_grant("the grant is invalid, expired or revoked"))
        }
        Err(WriteRefused::ClientGone) => Err(client_gone()),
    }
}

/// The client expired or was deleted between this request's read and its write.
fn client_gone() -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidClient, "client authentication failed")
}

/// How many times a refresh is read and decided again when a concurrent refresh of the same token
/// changed it between the read and the write (only within the grace window).
const REFRESH_ATTEMPTS: u32 = 8;

async fn refresh(
    state: &AppState,
    params: &request::Params,
    client: &PresentedClient,
) -> Result<Response<Body>, OAuthError> {
    let token = params.require("refresh_token").map_err(invalid_request)?;
    let grace = state.config.refresh_grace_seconds;
    for attempt in 0..REFRESH_ATTEMPTS {
        let now = state.clock.now();
        match refresh_once(state, params, client, token, now).await? {
            Ok(res) => return Ok(res),
            // Another request rotated this token (or superseded its successor) between our read and
            // our write: within the grace window, read again and supersede the new successor.
            Err(Raced(grant_id)) if grace > 0 => {
                if attempt + 1 < REFRESH_ATTEMPTS {
                    tokio::time::sleep(std::time::Duration::from_millis(
                        2 + u64::from(rand::random::<u8>() % 8),
                    ))
                    .await;
                } else {
                    tracing::warn!(grant_id = %grant_id, "refresh: concurrent rotations kept racing");
                }
            }
            Err(Raced(grant_id)) => return replay_revoke(state, &grant_id, now, "rotated refresh token reused").await,
        }
    }
    Err(OAuthError::new(
        OAuthErrorCode::TemporarilyUnavailable,
        "concurrent refreshes of this token kept conflicting; try again",
    ))
}

/// The presented refresh token changed between the read and the write (the grant id).
struct Raced(String);

/// One read, decision and write of a refresh: two round trips.
async fn refresh_once(
    state: &AppState,
    params: &request::Params,
    client: &PresentedClient,
    token: &str,
    now: i64,
) -> Result<Result<Response<Body>, Raced>, OAuthError> {
    let grant_id = grant::grant_of(grant::REFRESH_PREFIX, token);
    let (record, grant_item, rt_item) = load(
        state,
        client,
        grant_id.unwrap_or("-"),
        grants::refresh_key(grant_id.unwrap_or("-"), token),
        now,
    )
    .await?;
    if !record.metadata.grant_types.iter().any(|g| g == "refresh_token") {
        return Err(OAuthError::new(
            OAuthErrorCode::UnauthorizedClient,
            "client may not use refresh_token",
        ));
    }
    let (Some(grant_id), Some(rt_item)) = (grant_id, rt_item) else {
        return Err(invalid_grant("the refresh token is invalid, expired or revoked"));
    };
    let rt = TokenRecord::from_item(&rt_item).context("token: refresh record")?;
    let grace = state.config.refresh_grace_seconds;
    let decision = check_refresh(
        &record.client_id,
        &rt,
        params.get("scope"),
        resource_param(params)?.as_deref(),
        grace,
        now,
    )?;
    let (supersede, scope) = match decision {
        RefreshDecision::ReuseRevoke => {
            return replay_revoke(state, grant_id, now, "rotated refresh token reused")
                .await
                .map(Ok)
        }
        RefreshDecision::Rotate { supersede, scope } => (supersede, scope),
    };
    let grant = active_grant(grant_item)?;
    // RFC 6749 §6: a narrower scope applies to the new access token; the new refresh token keeps the
    // scope of the one presented.
    let issue = new_issue(state, &record, &grant, &scope, &rt.scope, now);
    let rotation = match supersede.as_deref() {
        None => Rotation::First,
        Some(successor) => Rotation::Supersede {
            successor,
            cutoff: now - grace,
        },
    };
    match state
        .store
        .rotate_refresh(grant_id, token, rotation, &issue, now)
        .await
        .context("token: rotate")?
    {
        Ok(()) => {
            if supersede.is_some() {
                tracing::info!(grant_id = %grant_id, "refresh retried within the grace window: earlier successor superseded");
            }
            Ok(Ok(token_response(state, &issue)))
        }
        Err(WriteRefused::Consumed) => Ok(Err(Raced(grant_id.to_string()))),
        Err(WriteRefused::SuccessorGone) => replay_revoke(
            state,
            grant_id,
            now,
            "rotated refresh token presented after its successor was used",
        )
        .await
        .map(Ok),
        Err(WriteRefused::GrantRevoked) => Err(invalid_grant("the grant is invalid, expired or revoked")),
        Err(WriteRefused::ClientGone) => Err(client_gone()),
    }
}

/// A replayed code or reused refresh token: revoke the grant and every token from it.
async fn replay_revoke(state: &AppState, grant_id: &str, now: i64, why: &str) -> Result<Response<Body>, OAuthError> {
    tracing::warn!(grant_id = %grant_id, "{why}: revoking the grant");
    state.store.revoke_grant(grant_id, now).await.context("token: revoke")?;
    Err(invalid_grant("the grant is invalid, expired or revoked"))
}

fn new_issue(
    state: &AppState,
    client: &ClientRecord,
    grant: &Grant,
    access_scope: &str,
    refresh_scope: &str,
    now: i64,
) -> Issue {
    let cfg = &state.config;
    let record = |ttl: i64, scope: &str| TokenRecord {
        grant_id: grant.grant_id.clone(),
        client_id: client.client_id.clone(),
        sub: grant.sub.clone(),
        username: grant.username.clone(),
        resource: grant.resource.clone(),
        scope: scope.to_string(),
        issued_at: now,
        expires_at: now + ttl,
        rotated_at: None,
        successor: None,
    };
    let refresh = client.metadata.grant_types.iter().any(|g| g == "refresh_token");
    Issue {
        access_token: grant::new_token(grant::ACCESS_PREFIX, &grant.grant_id),
        access: record(cfg.access_token_ttl, access_scope),
        refresh_token: refresh.then(|| grant::new_token(grant::REFRESH_PREFIX, &grant.grant_id)),
        refresh: refresh.then(|| record(cfg.refresh_token_ttl, refresh_scope)),
        grant_ttl: now + cfg.refresh_token_ttl.max(cfg.access_token_ttl) + 60,
        // "Last used" for the account page, written in the same transaction at most once an hour.
        record_use: grant::use_due(grant.last_used, now).then(|| grant.clone()),
        // A registration not used before stops expiring now (issue 12 item 8), in the same
        // transaction; the client read in this request says so, so later requests add nothing.
        first_use: client.unused_until.map(|_| FirstUse {
            client_id: client.client_id.clone(),
            dedup: client.dedup.clone(),
        }),
    }
}

fn token_response(state: &AppState, issue: &Issue) -> Response<Body> {
    let mut body = json!({
        "access_token": issue.access_token,
        "token_type": "Bearer",
        "expires_in": state.config.access_token_ttl,
        "scope": issue.access.scope,
    });
    if let Some(rt) = &issue.refresh_token {
        body["refresh_token"] = json!(rt);
    }
    response::json(StatusCode::OK, &body)
}
