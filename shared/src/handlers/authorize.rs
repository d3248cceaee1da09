//! `GET`/`POST /oauth/2.1/authorize` (RFC 6749 §4.1.1, OAuth 2.1 §4.1.1, RFC 7636, RFC 8707,
//! RFC 9207). Until the client and redirect URI are validated, errors are an HTML page, never a
//! redirect; after, they go back to the client with `error`, `error_description`, `state` and `iss`.
//! A signed-in browser whose user already approved the same scopes gets a code at once; otherwise
//! the request is stored and the browser goes to sign-in, then consent.

use http::{HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use url::Url;

use crate::crypto::secret;
use crate::error::OAuthErrorCode;
use crate::http::html::{error_page, redirect};
use crate::http::request::{self, Params};
use crate::oauth::redirect::RedirectUri;
use crate::oauth::{cimd, pkce, scope};
use crate::state::AppState;
use crate::store::authz::{AuthRequest, Session, SESSION_TTL};
use crate::store::clients::ClientRecord;
use crate::store::grants::{self, CodeRecord, Grant};
use crate::store::resource_servers::Resource;
use crate::store::StoreError;

pub async fn handle(state: &AppState, req: Request) -> Response<Body> {
    let params = match *req.method() {
        Method::GET => request::query(&req).map_err(|m| (StatusCode::BAD_REQUEST, m)),
        Method::POST => request::form(&req).map_err(|b| (b.status, b.message)),
        _ => Err((StatusCode::METHOD_NOT_ALLOWED, "use GET or POST".to_string())),
    };
    match params {
        Ok(p) => authorize(state, &req, &p).await,
        Err((status, msg)) => error_page(status, &msg),
    }
}

/// Where an authorization response goes: the validated redirect URI, with `state` and `iss`.
pub(crate) struct ClientRedirect {
    pub redirect_uri: String,
    pub state: Option<String>,
    pub issuer: String,
}

impl ClientRedirect {
    fn with(&self, pairs: &[(&str, &str)]) -> Response<Body> {
        let mut url = match Url::parse(&self.redirect_uri) {
            Ok(u) => u,
            Err(_) => return error_page(StatusCode::BAD_REQUEST, "the redirect URI is not valid"),
        };
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
            if let Some(s) = &self.state {
                q.append_pair("state", s);
            }
            q.append_pair("iss", &self.issuer);
        }
        redirect(url.as_str())
    }

    /// An error response to the client (RFC 6749 §4.1.2.1, RFC 9207 `iss`).
    pub fn error(&self, code: OAuthErrorCode, description: &str) -> Response<Body> {
        self.with(&[("error", code.as_str()), ("error_description", description)])
    }

    /// A successful response carrying the code.
    pub fn code(&self, code: &str) -> Response<Body> {
        self.with(&[("code", code)])
    }
}

pub(crate) fn server_error(context: &str, e: StoreError) -> Response<Body> {
    tracing::error!(error = %e, "{context}");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong on our side. Please try again.",
    )
}

/// A cookie's name: `__Host-` prefixed (and `Secure`) on https.
pub(crate) fn cookie_name(base: &str, name: &str) -> String {
    if base.starts_with("https://") {
        format!("__Host-{name}")
    } else {
        name.to_string()
    }
}

/// The browser session id from the `Cookie` header, if any.
pub(crate) fn session_cookie(req: &Request, base: &str) -> Option<String> {
    read_cookie(req, base, "lk_session")
}

/// A cookie of ours from the `Cookie` header, if any.
pub(crate) fn read_cookie(req: &Request, base: &str, name: &str) -> Option<String> {
    let name = cookie_name(base, name);
    req.headers()
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name.as_str())
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// `Set-Cookie` for a new session: HttpOnly, SameSite=Lax, Path=/, Secure on https.
pub(crate) fn set_session_cookie(res: &mut Response<Body>, base: &str, session_id: &str) {
    set_cookie(res, base, "lk_session", session_id, SESSION_TTL);
}

/// `Set-Cookie` for one of ours (`max_age` 0 deletes it).
pub(crate) fn set_cookie(res: &mut Response<Body>, base: &str, name: &str, value: &str, max_age: i64) {
    let secure = if base.starts_with("https://") { "; Secure" } else { "" };
    let cookie = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        cookie_name(base, name)
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(http::header::SET_COOKIE, v);
    }
}

/// The CSRF token for a pending request in a browser session: bound to both, stored nowhere.
pub(crate) fn csrf_token(session_id: &str, request_id: &str) -> String {
    secret::hash(&format!("latchkey-csrf\n{session_id}\n{request_id}"))
}

/// Create the grant and its code, then send the browser back to the client with it.
pub(crate) async fn issue_code(
    state: &AppState,
    authreq: &AuthRequest,
    session: &Session,
    to: &ClientRedirect,
    now: i64,
) -> Response<Body> {
    let grant_id = secret::random_token("", 16);
    let grant = Grant {
        grant_id: grant_id.clone(),
        client_id: authreq.client_id.clone(),
        sub: session.sub.clone(),
        username: session.username.clone(),
        resource: authreq.resource.clone(),
        scope: authreq.scope.clone(),
        created_at: now,
    };
    let code = grants::new_token(grants::CODE_PREFIX, &grant_id);
    let record = CodeRecord {
        redirect_uri: authreq.redirect_uri.clone(),
        code_challenge: authreq.code_challenge.clone(),
        expires_at: now + state.config.code_ttl,
        used: false,
    };
    if let Err(e) = state
        .store
        .put_grant_with_code(&grant, &code, &record, now + 3600)
        .await
    {
        return server_error("authorize: storing the grant failed", e);
    }
    tracing::info!(grant_id = %grant_id, client_id = %authreq.client_id, "authorization code issued");
    to.code(&code)
}

/// Fetch, check and store a client named by its metadata document URL.
async fn document_client(state: &AppState, client_id: &str, now: i64) -> Result<ClientRecord, String> {
    let allow_loopback = state.config.allow_loopback_outbound;
    let url = cimd::parse_client_id_url(client_id, allow_loopback)?;
    let (doc, max_age) = cimd::fetch(&url, allow_loopback).await?;
    let mut metadata = cimd::metadata_from_document(doc, client_id, &state.config.redirect_policy)?;
    metadata.scope = super::registered_scope(state, metadata.scope.take(), now)
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

async fn authorize(state: &AppState, req: &Request, p: &Params) -> Response<Body> {
    let now = state.clock.now();
    let base = request::public_base(&state.config, req);
    let issuer = state.config.issuer_for(&base);

    // 1. The client.
    let Some(client_id) = p.get("client_id").filter(|c| !c.is_empty()) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "The request does not name a client (client_id is missing).",
        );
    };
    if client_id.len() > 512 {
        return error_page(
            StatusCode::BAD_REQUEST,
            "The client is not registered with this server.",
        );
    }
    let stored = match state.store.get_client(client_id, now).await {
        Ok(c) => c,
        Err(e) => return server_error("authorize: loading the client failed", e),
    };
    let client = match stored {
        Some(c) if c.fresh_until.is_none_or(|f| f > now) => c,
        _ if cimd::is_document_client_id(client_id) => match document_client(state, client_id, now).await {
            Ok(c) => c,
            Err(msg) => {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    &format!("The client's metadata document can't be used: {msg}."),
                )
            }
        },
        _ => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "The client is not registered with this server.",
            )
        }
    };

    // 2. The redirect URI: exactly as registered (loopback: any port).
    let registered: Vec<RedirectUri> = client
        .metadata
        .redirect_uris
        .iter()
        .filter_map(|r| RedirectUri::parse(r).ok())
        .collect();
    let redirect_uri = match p.get("redirect_uri").filter(|r| !r.is_empty()) {
        Some(presented) if registered.iter().any(|r| r.matches(presented)) => presented.to_string(),
        Some(_) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "The redirect URI does not match any URI registered for this client.",
            )
        }
        None if registered.len() == 1 => registered[0].as_str().to_string(),
        None => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "The request must include redirect_uri (the client registered several).",
            )
        }
    };
    let to = ClientRedirect {
        redirect_uri: redirect_uri.clone(),
        state: p.get("state").filter(|s| !s.is_empty()).map(str::to_string),
        issuer,
    };

    // 3. From here on, errors go back to the client.
    if p.get("response_type") != Some("code") {
        return to.error(OAuthErrorCode::UnsupportedResponseType, "response_type must be code");
    }
    let Some(st) = to.state.as_deref() else {
        return to.error(OAuthErrorCode::InvalidRequest, "state is required");
    };
    if st.len() > 1024 {
        return to.error(OAuthErrorCode::InvalidRequest, "state is too long");
    }
    match p.get("code_challenge_method") {
        Some("S256") => {}
        Some("plain") => {
            return to.error(
                OAuthErrorCode::InvalidRequest,
                "code_challenge_method plain is not supported; use S256",
            )
        }
        _ => return to.error(OAuthErrorCode::InvalidRequest, "code_challenge_method must be S256"),
    }
    let Some(challenge) = p.get("code_challenge").filter(|c| pkce::is_valid_challenge(c)) else {
        return to.error(
            OAuthErrorCode::InvalidRequest,
            "code_challenge must be a base64url S256 challenge (43 characters)",
        );
    };
    if !client.metadata.grant_types.iter().any(|g| g == "authorization_code") {
        return to.error(
            OAuthErrorCode::UnauthorizedClient,
            "client may not use the authorization code grant",
        );
    }
    let resource_raw = p
        .get("resource")
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .or_else(|| state.config.default_resource.clone());
    let Some(resource_raw) = resource_raw else {
        return to.error(OAuthErrorCode::InvalidTarget, "resource is required (RFC 8707)");
    };
    let Ok(resource) = Resource::normalize(&resource_raw) else {
        return to.error(OAuthErrorCode::InvalidTarget, "resource is not a valid resource URI");
    };
    let rs = match state.store.resource_server_for(resource.as_str(), now).await {
        Ok(Some(rs)) => rs,
        Ok(None) => {
            return to.error(
                OAuthErrorCode::InvalidTarget,
                "resource is not a resource server registered with this authorization server",
            )
        }
        Err(e) => return server_error("authorize: loading the resource server failed", e),
    };
    let scope_ctx = scope::ScopeContext {
        base: &state.config.scopes_supported,
        resource: &rs.scopes,
        client: client.metadata.scope.as_deref(),
        refresh_grant: client.metadata.grant_types.iter().any(|g| g == "refresh_token"),
    };
    let scope = match scope::decide(p.get("scope"), &scope_ctx) {
        Ok(s) => s,
        Err(m) => return to.error(OAuthErrorCode::InvalidScope, &m),
    };

    let authreq = AuthRequest {
        id: secret::random_token("", 24),
        client_id: client.client_id.clone(),
        client_name: client.metadata.client_name.clone(),
        redirect_uri,
        state: st.to_string(),
        code_challenge: challenge.to_string(),
        resource: rs.resource.clone(),
        scope,
    };

    // 4. A signed-in browser whose user already approved these scopes gets a code now.
    let session = match session_cookie(req, &base) {
        Some(sid) => match state.store.get_session(&sid, now).await {
            Ok(s) => s,
            Err(e) => return server_error("authorize: loading the session failed", e),
        },
        None => None,
    };
    if let Some(session) = &session {
        match state
            .store
            .remembered_consent(&session.sub, &authreq.client_id, &authreq.resource, now)
            .await
        {
            Ok(approved) if authreq.scope.split(' ').all(|s| approved.iter().any(|a| a == s)) => {
                return issue_code(state, &authreq, session, &to, now).await;
            }
            Ok(_) => {}
            Err(e) => return server_error("authorize: loading consent failed", e),
        }
    }
    if let Err(e) = state.store.put_authreq(&authreq, now).await {
        return server_error("authorize: storing the request failed", e);
    }
    let id = &authreq.id;
    if session.is_some() {
        return redirect(&format!("{base}/oauth/2.1/consent?request={id}"));
    }
    if state.config.local_login {
        return redirect(&format!("{base}/oauth/2.1/callback?request={id}"));
    }
    super::callback::start_upstream(state, &base, id, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_is_bound_to_session_and_request() {
        assert_ne!(csrf_token("s1", "r1"), csrf_token("s2", "r1"));
        assert_ne!(csrf_token("s1", "r1"), csrf_token("s1", "r2"));
    }
}
