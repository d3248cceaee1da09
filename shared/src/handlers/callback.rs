//! `GET`/`POST /oauth/2.1/callback`: where sign-in completes. With no upstream login issuer
//! configured (`latchkey serve` only), `GET` shows the local development sign-in page and `POST`
//! signs the browser in with the email it names. Then the browser continues to consent.

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

use crate::http::html::{error_page, escape, page, redirect};
use crate::http::request::{self, Params};
use crate::state::AppState;
use crate::store::authz::Session;

use super::authorize::{server_error, set_session_cookie};

pub async fn handle(state: &AppState, req: Request) -> Response<Body> {
    if !state.config.local_login {
        return error_page(
            StatusCode::NOT_IMPLEMENTED,
            "Sign-in through an upstream identity provider is not available on this server yet.",
        );
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
    page(
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
