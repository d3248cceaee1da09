//! `GET`/`POST /oauth/2.1/authorize` (RFC 6749 §4.1.1, OAuth 2.1 §4.1.1, RFC 7636, RFC 8707,
//! RFC 9207). The decisions are `oauth::authorize`'s; this handler loads what they need between
//! stages (the client, possibly from its metadata document; the resource server; the browser
//! session and remembered consent) and renders them. A signed-in browser whose user already
//! approved the same scopes for a client whose identity is verified (confidential, or an https
//! metadata document) gets a code at once; otherwise the request is stored and the browser
//! goes to sign-in, then consent.

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

use super::{server_error, sign_in_failure};
use crate::authz::client::{self, ClientError};
use crate::authz::{code, signin};
use crate::crypto::secret;
use crate::domain::authz::AUTHREQ_TTL;
use crate::http::cookie::{session_cookie, set_cookie, LOGIN_COOKIE};
use crate::http::html::{error_page, redirect};
use crate::http::request::{self, Params};
use crate::oauth::authorize::{self as decide, ValidRequest};
use crate::state::AppState;

/// `GET` (query) or `POST` (form) `/oauth/2.1/authorize`: RFC 6749 §4.1.1; other methods get an error page.
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

async fn authorize(state: &AppState, req: &Request, p: &Params) -> Response<Body> {
    let now = state.clock.now();
    let base = request::public_base(&state.config, req);
    let issuer = state.config.issuer_for(&base);

    // 1. The client: registered, or named by its metadata document.
    let client_id = match decide::client_id(p) {
        Ok(c) => c,
        Err(refusal) => return refusal.response(),
    };
    let client = match client::resolve(state, client_id, now).await {
        Ok(c) => c,
        Err(ClientError::Unknown) => return decide::unknown_client().response(),
        Err(ClientError::Document(why)) => return decide::unusable_document(&why).response(),
        Err(ClientError::Store(e)) => return server_error("authorize: loading the client failed", e),
    };

    // 2. Everything the request and the client decide; then the resource server it names.
    let checked = match decide::check_request(p, &client, &issuer, &state.config) {
        Ok(c) => c,
        Err(refusal) => return refusal.response(),
    };
    let rs = match state.store.resource_server_for(checked.resource.as_str(), now).await {
        Ok(rs) => rs,
        Err(e) => return server_error("authorize: loading the resource server failed", e),
    };
    let request_id = secret::random_token("", 24);
    let ValidRequest { to, request: authreq } =
        match decide::decide(checked, p, &client, rs.as_ref(), &state.config, request_id) {
            Ok(v) => v,
            Err(refusal) => return refusal.response(),
        };

    // 3. A signed-in browser whose user already approved these scopes gets a code now — only for a
    //    client whose identity is verified (RFC 8252 §8.6); the rest see the consent page every time.
    let session = match session_cookie(req, &base) {
        Some(sid) => match state.store.get_session(&sid, now).await {
            Ok(s) => s,
            Err(e) => return server_error("authorize: loading the session failed", e),
        },
        None => None,
    };
    if let Some(session) = session.as_ref().filter(|_| authreq.remember_consent) {
        match state
            .store
            .remembered_consent(&session.sub, &authreq.client_id, &authreq.resource, now)
            .await
        {
            Ok(approved) if decide::already_approved(&authreq, &approved) => {
                return match code::issue(state, &authreq, session, now).await {
                    Ok(issued) => to.code(&issued.code),
                    Err(e) => server_error("authorize: storing the grant failed", e),
                };
            }
            Ok(_) => {}
            Err(e) => return server_error("authorize: loading consent failed", e),
        }
    }

    // 4. Otherwise keep the request, and send the browser to consent or to sign-in first.
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
    match signin::upstream::start(state, &base, id, now).await {
        Ok(started) => {
            let mut res = redirect(&started.url);
            set_cookie(&mut res, &base, LOGIN_COOKIE, &started.browser, AUTHREQ_TTL);
            res
        }
        Err(e) => sign_in_failure(state, &base, e),
    }
}
