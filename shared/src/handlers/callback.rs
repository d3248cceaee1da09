//! `GET`/`POST /oauth/2.1/callback`: where sign-in completes. With an upstream login issuer, the
//! provider sends the browser back here with `code` and `state` (OpenID Connect code flow with PKCE
//! and nonce). With none (`latchkey serve` only), `GET` shows the local development sign-in page and
//! `POST` signs the browser in with the email it names. Either way the browser continues to consent.

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

use crate::http::html::{error_page, escape, redirect};
use crate::http::request::{self, Params};
use crate::state::AppState;
use crate::store::authz::Session;

use super::authorize::{read_cookie, server_error, set_cookie, set_session_cookie, ClientRedirect};
use crate::crypto::envelope::context;
use crate::crypto::secret;
use crate::error::OAuthErrorCode;
use crate::oauth::login::{validate_id_token, ProviderMetadata};
use crate::oauth::pkce;
use crate::store::authz::LoginState;
use crate::store::authz::AUTHREQ_TTL;
use subtle::ConstantTimeEq;

fn login_unavailable() -> Response<Body> {
    error_page(
        StatusCode::BAD_GATEWAY,
        "The sign-in provider could not be reached. Please try again.",
    )
}

async fn provider_metadata(state: &AppState) -> Result<&ProviderMetadata, Response<Body>> {
    let issuer = state.config.login_issuer.clone().ok_or_else(login_unavailable)?;
    state
        .login_metadata
        .get_or_try_init(|| async {
            let url = format!("{issuer}/.well-known/openid-configuration");
            let res = state
                .http
                .get(&url)
                .send()
                .await
                .map_err(|e| format!("discovery: {e}"))?;
            if !res.status().is_success() {
                return Err(format!("discovery: status {}", res.status()));
            }
            let bytes = res.bytes().await.map_err(|e| format!("discovery: {e}"))?;
            if bytes.len() > 256 * 1024 {
                return Err("discovery: document too large".to_string());
            }
            let meta: ProviderMetadata = serde_json::from_slice(&bytes).map_err(|e| format!("discovery: {e}"))?;
            if meta.issuer.trim_end_matches('/') != issuer {
                return Err("discovery: issuer does not match LATCHKEY_LOGIN_ISSUER".to_string());
            }
            Ok(meta)
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "login provider metadata");
            login_unavailable()
        })
}

fn login_context(state_value: &str) -> crate::crypto::EncryptionContext {
    context([("kind", "login"), ("state", &secret::hash(state_value))])
}

/// Send the browser to the upstream provider to sign in for pending request `request_id`.
pub(crate) async fn start_upstream(state: &AppState, base: &str, request_id: &str, now: i64) -> Response<Body> {
    let meta = match provider_metadata(state).await {
        Ok(m) => m,
        Err(page) => return page,
    };
    let (Some(client_id), Some(keyring)) = (state.config.login_client_id.as_deref(), state.keyring.as_ref()) else {
        tracing::error!("login: LATCHKEY_LOGIN_CLIENT_ID or the keyring is missing");
        return login_unavailable();
    };
    let upstream_state = secret::random_token("", 32);
    let nonce = secret::random_token("", 32);
    let verifier = secret::random_token("", 48);
    let sealed = match keyring
        .encrypt(&login_context(&upstream_state), verifier.as_bytes())
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "login: sealing the verifier failed");
            return login_unavailable();
        }
    };
    // Bind the sign-in to this browser: the provider's redirect is only accepted from a browser that
    // holds this cookie (a link to someone else's callback cannot sign a victim in).
    let browser = secret::random_token("", 32);
    let login = LoginState {
        request_id: request_id.to_string(),
        nonce: nonce.clone(),
        sealed_verifier: sealed,
        browser_hash: secret::hash(&browser),
    };
    if let Err(e) = state.store.put_login(&upstream_state, &login, now).await {
        return server_error("login: storing the sign-in state failed", e);
    }
    let Ok(mut url) = url::Url::parse(&meta.authorization_endpoint) else {
        return login_unavailable();
    };
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", &format!("{base}/oauth/2.1/callback"))
        .append_pair("scope", &state.config.login_scopes)
        .append_pair("state", &upstream_state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &pkce::challenge_for(&verifier))
        .append_pair("code_challenge_method", "S256");
    // Keeping the sign-in tokens as a vault connection: ask for what the catalogue says the provider
    // needs to hand out a refresh token (Google: access_type=offline, prompt=consent).
    if state.config.login_vault_project.is_some() {
        if let Some(spec) = crate::vault::providers::catalogue()
            .get(&state.config.login_vault_provider)
            .and_then(|v| serde_json::from_value::<crate::vault::providers::ProviderSpec>(v.clone()).ok())
        {
            for (k, v) in &spec.authorize_params {
                url.query_pairs_mut().append_pair(k, v);
            }
        }
    }
    let mut res = redirect(url.as_str());
    set_cookie(&mut res, base, "lk_login", &browser, AUTHREQ_TTL);
    res
}

#[derive(serde::Deserialize)]
struct UpstreamTokens {
    id_token: Option<String>,
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<i64>,
    scope: Option<String>,
}

/// With `LATCHKEY_LOGIN_VAULT_PROJECT`, keep the sign-in's provider tokens as the user's vault
/// connection (sealed like any other), so an MCP server can call the provider for that user through
/// the proxy (`X-User-Id` = the user's `sub`). Best effort: sign-in does not fail on it.
async fn keep_as_connection(state: &AppState, tokens: &UpstreamTokens, sub: &str, email: Option<&str>, now: i64) {
    let (Some(project), Some(access)) = (
        state.config.login_vault_project.as_deref(),
        tokens.access_token.as_deref(),
    ) else {
        return;
    };
    let provider = state.config.login_vault_provider.as_str();
    if crate::vault::check_user_id(sub).is_err() {
        tracing::warn!("login: the user id cannot name a vault connection");
        return;
    }
    let ctx = crate::vault::connection_context(project, sub, provider);
    let sealed = match crate::vault::seal_tokens(
        state,
        &ctx,
        &crate::vault::Tokens {
            access_token: access.to_string(),
            refresh_token: tokens.refresh_token.clone(),
        },
    )
    .await
    {
        Ok(s) => s,
        Err(_) => return,
    };
    let conn = crate::store::vault::Connection {
        tool_id: None,
        project_id: project.to_string(),
        user_id: sub.to_string(),
        provider: provider.to_string(),
        scopes: crate::vault::granted_scopes(
            tokens.scope.as_deref(),
            &state
                .config
                .login_scopes
                .split(' ')
                .map(str::to_string)
                .collect::<Vec<_>>(),
        ),
        account_id: Some(sub.rsplit('|').next().unwrap_or(sub).to_string()),
        email: email.map(str::to_string),
        status: "active".into(),
        sealed_tokens: sealed,
        expires_at: tokens
            .expires_in
            .filter(|e| *e > 0)
            .map(|e| now.saturating_add(e.min(crate::vault::upstream::MAX_EXPIRES_IN))),
        api_base_url: None,
        version: 0,
        refresh_lock: None,
        created_at: now,
        updated_at: now,
    };
    match state.store.put_connection(&conn, now).await {
        Ok(()) => tracing::info!(provider, "login: sign-in tokens kept as the user's vault connection"),
        Err(e) => tracing::error!(error = %e, "login: storing the vault connection failed"),
    }
}

/// The provider sent the browser back: check state, exchange the code, validate the ID token,
/// start a session and continue to consent.
async fn upstream_return(state: &AppState, req: &Request, p: &Params) -> Response<Body> {
    let now = state.clock.now();
    let base = request::public_base(&state.config, req);
    let Some(upstream_state) = p.get("state").filter(|s| !s.is_empty() && s.len() <= 128) else {
        return error_page(StatusCode::BAD_REQUEST, "The sign-in response is missing its state.");
    };
    let login = match state.store.take_login(upstream_state, now).await {
        Ok(Some(l)) => l,
        Ok(None) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "This sign-in has expired or was already completed. Start again from the app.",
            )
        }
        Err(e) => return server_error("callback: loading the sign-in state failed", e),
    };
    let same_browser = read_cookie(req, &base, "lk_login")
        .is_some_and(|c| bool::from(secret::hash(&c).as_bytes().ct_eq(login.browser_hash.as_bytes())));
    if !same_browser {
        return error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in was started in another browser. Start again from the app.",
        );
    }
    if p.get("error").is_some() {
        // The user declined (or the provider refused): tell the client, once.
        return match state.store.take_authreq(&login.request_id, now).await {
            Ok(Some(authreq)) => ClientRedirect {
                redirect_uri: authreq.redirect_uri,
                state: Some(authreq.state),
                issuer: state.config.issuer_for(&base),
            }
            .error(OAuthErrorCode::AccessDenied, "the user did not sign in"),
            Ok(None) => error_page(StatusCode::BAD_REQUEST, "This sign-in request has expired."),
            Err(e) => server_error("callback: loading the request failed", e),
        };
    }
    let Some(code) = p.get("code").filter(|c| !c.is_empty()) else {
        return error_page(StatusCode::BAD_REQUEST, "The sign-in response is missing its code.");
    };
    let meta = match provider_metadata(state).await {
        Ok(m) => m,
        Err(page) => return page,
    };
    let (Some(client_id), Some(keyring)) = (state.config.login_client_id.as_deref(), state.keyring.as_ref()) else {
        return login_unavailable();
    };
    let verifier = match keyring
        .decrypt(&login_context(upstream_state), &login.sealed_verifier)
        .await
    {
        Ok(v) => String::from_utf8(v).unwrap_or_default(),
        Err(e) => {
            tracing::error!(error = %e, "login: opening the verifier failed");
            return login_unavailable();
        }
    };
    let mut token_req = state.http.post(&meta.token_endpoint).form(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", &format!("{base}/oauth/2.1/callback")),
        ("code_verifier", &verifier),
    ]);
    token_req = token_req.basic_auth(client_id, state.config.login_client_secret.as_deref());
    let tokens: UpstreamTokens = match token_req.send().await {
        Ok(res) if res.status().is_success() => match res.json().await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "login: token response unreadable");
                return login_unavailable();
            }
        },
        Ok(res) => {
            tracing::warn!(status = %res.status(), "login: the provider refused the code");
            return error_page(
                StatusCode::BAD_REQUEST,
                "The sign-in provider did not accept the sign-in. Start again from the app.",
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "login: token request failed");
            return login_unavailable();
        }
    };
    let issuer = state.config.login_issuer.as_deref().unwrap_or_default();
    let identity = match tokens
        .id_token
        .as_deref()
        .map(|t| validate_id_token(t, issuer, client_id, &login.nonce, now))
    {
        Some(Ok(id)) => id,
        Some(Err(why)) => {
            tracing::warn!("login: {why}");
            return error_page(
                StatusCode::BAD_REQUEST,
                "The sign-in could not be verified. Start again from the app.",
            );
        }
        None => return error_page(StatusCode::BAD_REQUEST, "The sign-in provider returned no ID token."),
    };
    let email = Some(identity.username.as_str()).filter(|u| u.contains('@'));
    keep_as_connection(state, &tokens, &identity.sub, email, now).await;
    let session = Session {
        sub: identity.sub,
        username: identity.username,
    };
    let sid = match state.store.create_session(&session, now).await {
        Ok(s) => s,
        Err(e) => return server_error("callback: creating the session failed", e),
    };
    tracing::info!("upstream sign-in completed");
    let mut res = redirect(&format!(
        "{base}/oauth/2.1/consent?request={}",
        url::form_urlencoded::byte_serialize(login.request_id.as_bytes()).collect::<String>()
    ));
    set_session_cookie(&mut res, &base, &sid);
    set_cookie(&mut res, &base, "lk_login", "", 0);
    res
}

pub async fn handle(state: &AppState, req: Request) -> Response<Body> {
    if !state.config.local_login {
        if req.method() != Method::GET {
            return error_page(StatusCode::METHOD_NOT_ALLOWED, "use GET");
        }
        return match request::query(&req) {
            Ok(p) => upstream_return(state, &req, &p).await,
            Err(m) => error_page(StatusCode::BAD_REQUEST, &m),
        };
    }
    match *req.method() {
        Method::GET => match request::query(&req) {
            Ok(p) => sign_in_page(state, &p).await,
            Err(m) => error_page(StatusCode::BAD_REQUEST, &m),
        },
        Method::POST => match request::form(&req) {
            Ok(p) => sign_in(state, &req, &p).await,
            Err(b) => error_page(b.status, &b.message),
        },
        _ => error_page(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST"),
    }
}

fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    e.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | '\''))
        && !domain.contains('@')
}

async fn sign_in_page(state: &AppState, p: &Params) -> Response<Body> {
    let now = state.clock.now();
    let Some(id) = p.get("request").filter(|r| !r.is_empty() && r.len() <= 64) else {
        return error_page(StatusCode::BAD_REQUEST, "The sign-in link is incomplete.");
    };
    let authreq = match state.store.get_authreq(id, now).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "This sign-in request has expired or was already used.",
            )
        }
        Err(e) => return server_error("callback: loading the request failed", e),
    };
    let app = authreq.client_name.as_deref().unwrap_or(&authreq.client_id);
    // Signing in may end in a redirect straight to the client (consent already given).
    let form_target = crate::http::html::form_target_source(&authreq.redirect_uri);
    crate::http::html::page_with_form_target(
        StatusCode::OK,
        "Sign in",
        &format!(
            "<span class=\"badge\">Local development sign-in</span><h1>Sign in to continue to {}</h1>\
<p class=\"muted\">This server has no identity provider configured, so you can sign in as any email address. Never use this mode in production.</p>\
<form method=\"post\" action=\"/oauth/2.1/callback\"><input type=\"hidden\" name=\"request\" value=\"{}\">\
<label for=\"email\">Email</label><input id=\"email\" type=\"email\" name=\"email\" required autocomplete=\"email\" placeholder=\"you@example.com\">\
<div class=\"row\"><button class=\"primary\" type=\"submit\">Sign in</button></div></form>",
            escape(app),
            escape(id)
        ),
        form_target.as_deref(),
    )
}

async fn sign_in(state: &AppState, req: &Request, p: &Params) -> Response<Body> {
    let now = state.clock.now();
    let base = request::public_base(&state.config, req);
    let (Some(id), Some(email)) = (p.get("request"), p.get("email")) else {
        return error_page(StatusCode::BAD_REQUEST, "The sign-in form is incomplete.");
    };
    let email = email.trim().to_ascii_lowercase();
    if !valid_email(&email) {
        return error_page(StatusCode::BAD_REQUEST, "Enter a valid email address.");
    }
    match state.store.get_authreq(id, now).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "This sign-in request has expired or was already used.",
            )
        }
        Err(e) => return server_error("callback: loading the request failed", e),
    }
    let session = Session {
        sub: format!("local:{email}"),
        username: email,
    };
    let sid = match state.store.create_session(&session, now).await {
        Ok(s) => s,
        Err(e) => return server_error("callback: creating the session failed", e),
    };
    tracing::info!("local development sign-in");
    let mut res = redirect(&format!(
        "{base}/oauth/2.1/consent?request={}",
        url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
    ));
    set_session_cookie(&mut res, &base, &sid);
    set_cookie(&mut res, &base, "lk_login", "", 0);
    res
}

#[cfg(test)]
mod tests {
    #[test]
    fn email_shape() {
        assert!(super::valid_email("a@example.com"));
        for bad in [
            "",
            "a",
            "a@b",
            "@example.com",
            "a@.com",
            "a b@example.com",
            "a@example.com.",
            "<a>@example.com",
            "a@b@c.com",
        ] {
            assert!(!super::valid_email(bad), "{bad}");
        }
    }
}
