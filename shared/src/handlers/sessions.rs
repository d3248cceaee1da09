//! `POST /v1/identity/sessions` (create a just-in-time auth session),
//! `GET /v1/identity/sessions/{session_id}` (its status) and
//! `POST /v1/identity/sessions/{session_id}/confirm` (the app's confirmation of a `return_url`
//! session's connection). All authenticate with `X-API-Key`.
//!
//! Create: 1 batch read (API key + provider) and 1 transaction (session + state). Status: 1 batch
//! read (API key + session). Confirm: 1 batch read (API key + session) and 1 transaction
//! (connection + session); no KMS call (the parked tokens are already sealed for the connection).

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Map, Value};

use crate::clock::iso8601;
use crate::crypto::secret;
use crate::domain::auth_session::{check_return_url, SessionStatus, VaultSession, VaultState, SESSION_TTL};
use crate::domain::context::vault_state_context;
use crate::error::VaultError;
use crate::http::path::path_params;
use crate::http::{request, response};
use crate::oauth::pkce;
use crate::state::AppState;
use crate::store::{auth_sessions, providers, FromItem};
use crate::vault::{self, PresentedKey};

/// Most scopes a session may ask for.
const MAX_SCOPES: usize = 50;

fn bad(message: impl Into<String>) -> VaultError {
    VaultError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
}

/// `POST /v1/identity/sessions`: a new auth session and its `auth_url` (201).
pub async fn create(state: &AppState, req: Request) -> Response<Body> {
    if req.method() != Method::POST {
        return vault::not_allowed("POST").response();
    }
    create_session(state, &req).await.unwrap_or_else(|e| e.response())
}

struct CreateRequest {
    user_id: String,
    provider: String,
    scopes: Option<Vec<String>>,
    return_url: Option<String>,
}

fn parse_create(body: &Map<String, Value>) -> Result<CreateRequest, VaultError> {
    if let Some(unknown) = body
        .keys()
        .find(|k| !matches!(k.as_str(), "user_id" | "provider" | "scopes" | "return_url"))
    {
        return Err(bad(format!(
            "unknown field {:?}; the fields are user_id, provider, scopes and return_url",
            crate::domain::shown(unknown, 40)
        )));
    }
    let user_id = match body.get("user_id") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(bad("user_id must be a string")),
        None => return Err(bad("user_id is required")),
    };
    vault::check_user_id(&user_id)?;
    let provider = match body.get("provider") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(bad("provider must be a string")),
        None => return Err(bad("provider is required")),
    };
    vault::check_provider_name(&provider)?;
    let scopes = match body.get("scopes") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            if items.len() > MAX_SCOPES {
                return Err(bad(format!("at most {MAX_SCOPES} scopes")));
            }
            let mut out: Vec<String> = Vec::new();
            for v in items {
                let Some(s) = v.as_str().filter(|s| crate::domain::scope::is_scope_token(s)) else {
                    return Err(bad(
                        "scopes must be strings of printable characters without spaces, commas, quotes or backslashes",
                    ));
                };
                if s.contains(',') {
                    return Err(bad("a scope must not contain a comma"));
                }
                if !out.iter().any(|x| x == s) {
                    out.push(s.to_string());
                }
            }
            Some(out)
        }
        Some(_) => return Err(bad("scopes must be an array of strings")),
    };
    let return_url = match body.get("return_url") {
        None | Some(Value::Null) => None,
        Some(Value::String(u)) => Some(check_return_url(u).map_err(bad)?.to_string()),
        Some(_) => return Err(bad("return_url must be a string")),
    };
    Ok(CreateRequest {
        user_id,
        provider,
        scopes,
        return_url,
    })
}

async fn create_session(state: &AppState, req: &Request) -> Result<Response<Body>, VaultError> {
    let key = PresentedKey::from_request(req)?;
    let body = vault::json_body(req)?;
    let input = parse_create(&body)?;
    let now = state.clock.now();
    let items = state
        .store
        .get_many(
            &[
                key.store_key(),
                providers::provider_key(&key.project_id, &input.provider),
            ],
            now,
        )
        .await
        .map_err(|e| vault::store_error("reading the API key and provider", e))?;
    key.verify(items[0].as_ref())?;
    let provider = vault::resolve_provider(state, &key.project_id, &input.provider, items[1].as_ref())?;
    let spec = &provider.spec;
    let scopes = input.scopes.unwrap_or_else(|| spec.default_scopes.clone());

    let session_id = secret::random_token("vs_", 16);
    let state_value = secret::random_token("", 32);
    let base = request::public_base(&state.config, req);
    let redirect_uri = format!("{base}/v1/identity/callback");
    let expires_at = now + SESSION_TTL;
    let (verifier, sealed_verifier) = if spec.pkce {
        let v = secret::random_token("", 48);
        let sealed = vault::keyring(state)?
            .encrypt(&vault_state_context(&state_value), v.as_bytes())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "vault: sealing a verifier failed");
                vault::internal()
            })?;
        (Some(v), Some(sealed))
    } else {
        (None, None)
    };

    let Ok(mut auth_url) = url::Url::parse(&spec.authorize_url) else {
        return Err(vault::internal());
    };
    {
        let mut q = auth_url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &provider.config.client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("state", &state_value);
        if !scopes.is_empty() {
            q.append_pair(&spec.scope_param, &spec.join_scopes(&scopes));
        }
        if let Some(v) = &verifier {
            q.append_pair("code_challenge", &pkce::challenge_for(v))
                .append_pair("code_challenge_method", "S256");
        }
        for (k, v) in &spec.authorize_params {
            q.append_pair(k, v);
        }
    }

    let session = VaultSession {
        session_id: session_id.clone(),
        project_id: key.project_id.clone(),
        user_id: input.user_id.clone(),
        provider: input.provider.clone(),
        scopes: scopes.clone(),
        status: SessionStatus::Pending,
        error_code: None,
        error_message: None,
        expires_at,
        created_at: now,
        return_url: input.return_url.clone(),
        confirm_by: None,
    };
    let st = VaultState {
        session_id: session_id.clone(),
        project_id: key.project_id.clone(),
        user_id: input.user_id.clone(),
        provider: input.provider.clone(),
        scopes: scopes.clone(),
        sealed_verifier,
        redirect_uri,
        expires_at,
        return_url: input.return_url.clone(),
    };
    state
        .store
        .put_session(&session, &state_value, &st)
        .await
        .map_err(|e| vault::store_error("storing a session", e))?;
    tracing::info!(project = %key.project_id, provider = %input.provider, "vault: session created");
    let mut body = json!({
        "session_id": session_id,
        "auth_url": auth_url.as_str(),
        "expires_at": iso8601(expires_at),
        "status": SessionStatus::Pending.as_str(),
        "provider": input.provider,
        "user_id": input.user_id,
        "scopes": scopes,
    });
    if let Some(u) = &input.return_url {
        body["return_url"] = json!(u);
    }
    Ok(response::json(StatusCode::CREATED, &body))
}

/// `GET /v1/identity/sessions/{session_id}`: the session's status (`expired` derived at read).
pub async fn status(state: &AppState, req: Request) -> Response<Body> {
    if req.method() != Method::GET {
        return vault::not_allowed("GET").response();
    }
    session_status(state, &req).await.unwrap_or_else(|e| e.response())
}

fn not_found() -> VaultError {
    VaultError::new(StatusCode::NOT_FOUND, "not_found", "no such session")
}

async fn session_status(state: &AppState, req: &Request) -> Result<Response<Body>, VaultError> {
    let key = PresentedKey::from_request(req)?;
    let path = crate::http::request::raw_path(req);
    let session_id = path_params("/v1/identity/sessions/{session_id}", path)
        .and_then(|p| p.first().copied())
        .ok_or_else(not_found)?;
    let now = state.clock.now();
    let (session, _) = read_session(state, &key, session_id, now).await?;
    Ok(response::json(StatusCode::OK, &session_body(session, now)))
}

fn well_formed_session_id(session_id: &str) -> bool {
    session_id.len() <= 64
        && session_id.starts_with("vs_")
        && session_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One batch read: the API key (verified) and the project's session with its raw item (another
/// project's session is indistinguishable from none).
async fn read_session(
    state: &AppState,
    key: &PresentedKey,
    session_id: &str,
    now: i64,
) -> Result<(VaultSession, crate::store::Item), VaultError> {
    let keys = if well_formed_session_id(session_id) {
        vec![key.store_key(), auth_sessions::session_key(session_id)]
    } else {
        vec![key.store_key()]
    };
    let mut items = state
        .store
        .get_many(&keys, now)
        .await
        .map_err(|e| vault::store_error("reading the API key and session", e))?;
    key.verify(items[0].as_ref())?;
    let item = items.get_mut(1).and_then(Option::take).ok_or_else(not_found)?;
    let session = VaultSession::from_item(&item).map_err(|e| vault::store_error("reading a session", e))?;
    if session.project_id != key.project_id {
        return Err(not_found());
    }
    Ok((session, item))
}

fn session_body(session: VaultSession, now: i64) -> Value {
    let mut body = json!({
        "session_id": session.session_id,
        "status": session.status_at(now).as_str(),
        "provider": session.provider,
        "user_id": session.user_id,
        "scopes": session.scopes,
        "expires_at": iso8601(session.expires_at),
        "created_at": iso8601(session.created_at),
    });
    if let Some(u) = &session.return_url {
        body["return_url"] = json!(u);
    }
    if session.status_at(now) == SessionStatus::AwaitingConfirmation {
        if let Some(by) = session.confirm_by {
            body["confirm_by"] = json!(iso8601(by));
        }
    }
    if session.status == SessionStatus::Error {
        body["error"] = json!({
            "code": session.error_code.unwrap_or_else(|| "error".into()),
            "message": session.error_message.unwrap_or_default(),
        });
    }
    body
}

/// `POST /v1/identity/sessions/{session_id}/confirm` `{"connect_token": "…"}`: the app confirms the
/// connection its `return_url` received a one-time token for, from its own signed-in session for
/// that `user_id` (RFC 6749 §10.12). Only then is the connection stored and usable.
pub async fn confirm(state: &AppState, req: Request) -> Response<Body> {
    if req.method() != Method::POST {
        return vault::not_allowed("POST").response();
    }
    confirm_session(state, &req).await.unwrap_or_else(|e| e.response())
}

async fn confirm_session(state: &AppState, req: &Request) -> Result<Response<Body>, VaultError> {
    let key = PresentedKey::from_request(req)?;
    let path = crate::http::request::raw_path(req);
    let session_id = path_params("/v1/identity/sessions/{session_id}/confirm", path)
        .and_then(|p| p.first().copied())
        .ok_or_else(not_found)?;
    let body = vault::json_body(req)?;
    if let Some(unknown) = body.keys().find(|k| k.as_str() != "connect_token") {
        return Err(bad(format!(
            "unknown field {:?}; the field is connect_token",
            crate::domain::shown(unknown, 40)
        )));
    }
    let token = match body.get("connect_token") {
        Some(Value::String(t)) if !t.is_empty() && t.len() <= 128 => t.as_str(),
        Some(Value::String(_)) => return Err(bad("connect_token is malformed")),
        Some(_) => return Err(bad("connect_token must be a string")),
        None => return Err(bad("connect_token is required")),
    };
    let now = state.clock.now();
    let (session, item) = read_session(state, &key, session_id, now).await?;
    let conflict = |message: &str| VaultError::new(StatusCode::CONFLICT, "not_awaiting_confirmation", message);
    match session.status_at(now) {
        SessionStatus::AwaitingConfirmation => {}
        SessionStatus::Complete if session.return_url.is_some() => {
            return Err(conflict("this session's connection is already confirmed"))
        }
        SessionStatus::Expired => {
            return Err(VaultError::new(
                StatusCode::GONE,
                "expired",
                "the session expired before it was confirmed; start a new one",
            ))
        }
        _ => {
            return Err(conflict(
                "this session is not awaiting confirmation (no return_url, or the user has not come back yet)",
            ))
        }
    }
    let Some((conn, stored_hash)) = auth_sessions::pending_connection(&item) else {
        return Err(vault::internal());
    };
    if !secret::verify(token, &stored_hash) {
        return Err(VaultError::new(
            StatusCode::BAD_REQUEST,
            "invalid_connect_token",
            "connect_token is not this session's token",
        ));
    }
    let conn = crate::domain::connection::Connection {
        created_at: now,
        updated_at: now,
        ..conn
    };
    let done = state
        .store
        .confirm_session(&session.session_id, &conn, &stored_hash, now)
        .await
        .map_err(|e| vault::store_error("confirming a session", e))?;
    if !done {
        return Err(conflict("this session was confirmed or expired meanwhile"));
    }
    tracing::info!(project = %key.project_id, provider = %session.provider, "vault: connection confirmed");
    let recovers = item.s("pending_recovers") == Some("true");
    vault::emit_connected(state, &key.project_id, &conn.user_id, &conn.provider, recovers, now).await;
    let session = VaultSession {
        status: SessionStatus::Complete,
        confirm_by: None,
        ..session
    };
    Ok(response::json(StatusCode::OK, &session_body(session, now)))
}
