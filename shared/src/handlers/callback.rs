//! `GET`/`POST /oauth/2.1/callback`: where sign-in completes. With an upstream login issuer, the
//! provider sends the browser back here with `code` and `state` (`authz::signin::upstream`). With
//! none (`latchkey serve` only), `GET` shows the local development sign-in page and `POST` signs
//! the browser in with the email it names (`authz::signin::local`). Either way the browser
//! continues to consent.

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

use super::{sign_in_failure, signed_in};
use crate::authz::signin::{local, upstream};
use crate::domain::authz::ACCOUNT_SIGN_IN;
use crate::http::cookie::{read_cookie, LOGIN_COOKIE};
use crate::http::html::{error_page, escape};
use crate::http::request::{self, Params};
use crate::oauth::presentation::host_of;
use crate::state::AppState;

/// `/oauth/2.1/callback`: the upstream provider's return (`GET`), or the local sign-in page and form.
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
            Ok(p) => sign_in_page(state, &req, &p).await,
            Err(m) => error_page(StatusCode::BAD_REQUEST, &m),
        },
        Method::POST => match request::form(&req) {
            Ok(p) => sign_in(state, &req, &p).await,
            Err(b) => error_page(b.status, &b.message),
        },
        _ => error_page(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST"),
    }
}

/// The provider sent the browser back.
async fn upstream_return(state: &AppState, req: &Request, p: &Params) -> Response<Body> {
    let now = state.clock.now();
    let base = request::public_base(&state.config, req);
    let Some(upstream_state) = p.get("state").filter(|s| !s.is_empty() && s.len() <= 128) else {
        return error_page(StatusCode::BAD_REQUEST, "The sign-in response is missing its state.");
    };
    let browser = read_cookie(req, &base, LOGIN_COOKIE);
    let response = upstream::ProviderResponse {
        state: upstream_state,
        browser: browser.as_deref(),
        declined: p.get("error").is_some(),
        code: p.get("code"),
    };
    match upstream::finish(state, &base, response, now).await {
        Ok(done) => signed_in(&base, &done),
        Err(e) => sign_in_failure(state, &base, e),
    }
}

/// The local development sign-in page.
async fn sign_in_page(state: &AppState, req: &Request, p: &Params) -> Response<Body> {
    let now = state.clock.now();
    let Some(id) = p.get("request").filter(|r| !r.is_empty() && r.len() <= 64) else {
        return error_page(StatusCode::BAD_REQUEST, "The sign-in link is incomplete.");
    };
    let (app, form_target) = if id == ACCOUNT_SIGN_IN {
        ("your connected apps".to_string(), None)
    } else {
        let authreq = match local::pending(state, id, now).await {
            Ok(r) => r,
            Err(e) => return sign_in_failure(state, &request::public_base(&state.config, req), e),
        };
        // Signing in may end in a redirect straight to the client (consent already given).
        let target = crate::http::html::form_target_source(&authreq.redirect_uri);
        // Names are claims: only an https metadata document's host vouches for one (the consent
        // page says more, `oauth::presentation`).
        let app = match (
            authreq.client_name.as_deref(),
            authreq.client_id.starts_with("https://"),
        ) {
            (Some(name), true) => format!("{name} ({})", host_of(&authreq.client_id)),
            (None, true) => format!("an app from {}", host_of(&authreq.client_id)),
            (Some(name), false) => format!("the unverified app \u{201c}{name}\u{201d}"),
            (None, false) => "an unverified app".to_string(),
        };
        (app, target)
    };
    let app = app.as_str();
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

/// The local development sign-in form was posted.
async fn sign_in(state: &AppState, req: &Request, p: &Params) -> Response<Body> {
    let now = state.clock.now();
    let base = request::public_base(&state.config, req);
    let (Some(id), Some(email)) = (p.get("request"), p.get("email")) else {
        return error_page(StatusCode::BAD_REQUEST, "The sign-in form is incomplete.");
    };
    match local::sign_in(state, id, email, now).await {
        Ok(done) => signed_in(&base, &done),
        Err(e) => sign_in_failure(state, &base, e),
    }
}
