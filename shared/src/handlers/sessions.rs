//! `POST /v1/identity/sessions` (create a just-in-time auth session) and
//! `GET /v1/identity/sessions/{session_id}` (its status). Both authenticate with `X-API-Key`.
//!
//! Create: 1 batch read (API key + provider) and 1 transaction (session + state). Status: 1 batch
//! read (API key + session).

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Map, Value};

use crate::clock::iso8601;
use crate::crypto::secret;
use crate::domain::auth_session::{SessionStatus, VaultSession, VaultState, SESSION_TTL};
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

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut res = VaultError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("use {allow}"),
    )
    .response();
    res.headers_mut()
        .insert(http::header::ALLOW, http::HeaderValue::from_static(allow));
    res
}

/// `POST /v1/identity/sessions`: a new auth session and its `auth_url` (201).
pub async fn create(state: &AppState, req: Request) -> Response<Body> {
    if req.method() != Method::POST {
        return method_not_allowed("POST");
    }
    create_session(state, &req).await.unwrap_or_else(|e| e.response())
}

struct CreateRequest {
    user_id: String,
    provider: String,
    scopes: Option<Vec<String>>,
}

fn parse_create(body: &Map<String, Value>) -> Result<CreateRequest, VaultError> {
    if let Some(unknown) = body
        .keys()
        .find(|k| !matches!(k.as_str(), "user_id" | "provider" | "scopes"))
    {
        return Err(bad(format!(
            "unknown field {:?}; the fields are user_id, provider and scopes",
            unknown.chars().take(40).collect::<String>()
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
    Ok(CreateRequest {
        user_id,
        provider,
        scopes,
    })
}

async fn create_session(state: &AppState, req: &Request) -> Result<Response<Body>, VaultError> {
    let key = PresentedKey::from_request(req)?;
    let body = request::json_object(req).map_err(|b| {
        let code = if b.status == StatusCode::PAYLOAD_TOO_LARGE {
            "body_too_large"
        } else {
            "invalid_request"
        };
        VaultError::new(b.status, code, b.message)
    })?;
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
    };
    state
        .store
        .put_session(&session, &state_value, &st)
        .await
        .map_err(|e| vault::store_error("storing a session", e))?;
    tracing::info!(project = %key.project_id, provider = %input.provider, "vault: session created");
    Ok(response::json(
        StatusCode::CREATED,
        &json!({
            "session_id": session_id,
            "auth_url": auth_url.as_str(),
            "expires_at": iso8601(expires_at),
            "status": SessionStatus::Pending.as_str(),
            "provider": input.provider,
            "user_id": input.user_id,
            "scopes": scopes,
        }),
    ))
}

/// `GET /v1/identity/sessions/{session_id}`: the session's status (`expired` derived at read).
pub async fn status(state: &AppState, req: Request) -> Response<Body> {
    if req.method() != Method::GET {
        return method_not_allowed("GET");
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
    let well_formed = session_id.len() <= 64
        && session_id.starts_with("vs_")
        && session_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let now = state.clock.now();
    let keys = if well_formed {
        vec![key.store_key(), auth_sessions::session_key(session_id)]
    } else {
        vec![key.store_key()]
    };
    let items = state
        .store
        .get_many(&keys, now)
        .await
        .map_err(|e| vault::store_error("reading the API key and session", e))?;
    key.verify(items[0].as_ref())?;
    let session = items
        .get(1)
        .and_then(Option::as_ref)
        .map(VaultSession::from_item)
        .transpose()
        .map_err(|e| vault::store_error("reading a session", e))?
        // Another project's session is indistinguishable from none.
        .filter(|s| s.project_id == key.project_id)
        .ok_or_else(not_found)?;
    let mut body = json!({
        "session_id": session.session_id,
        "status": session.status_at(now).as_str(),
        "provider": session.provider,
        "user_id": session.user_id,
        "scopes": session.scopes,
        "expires_at": iso8601(session.expires_at),
        "created_at": iso8601(session.created_at),
    });
    if session.status == SessionStatus::Error {
        body["error"] = json!({
            "code": session.error_code.unwrap_or_else(|| "error".into()),
            "message": session.error_message.unwrap_or_default(),
        });
    }
    Ok(response::json(StatusCode::OK, &body))
}
