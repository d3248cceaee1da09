//! `GET`/`POST /oauth/2.1/consent`: the page that names the client, where it will send the user, the
//! resource and each scope, with Approve and Deny. The form carries a CSRF token bound to the browser
//! session and the pending request; the page cannot be framed. Approval is remembered per user,
//! client, resource and scope set, for clients whose identity is verified (confidential, or an https
//! metadata document; RFC 8252 §8.6); Deny sends `access_denied` back to the client (the user
//! interacted, so this error may go to any validated redirect URI).

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

use super::server_error;
use crate::authz::code;
use crate::domain::authz::Session;
use crate::error::OAuthErrorCode;
use crate::http::cookie::session_cookie;
use crate::http::csrf::{csrf_matches, csrf_token};
use crate::http::html::{error_page, escape};
use crate::http::request::{self, Params};
use crate::oauth::authorize::ClientRedirect;
use crate::state::AppState;

/// `GET` the consent page, `POST` the decision (CSRF-checked); a browser session is required.
pub async fn handle(state: &AppState, req: Request) -> Response<Body> {
    let base = request::public_base(&state.config, &req);
    let now = state.clock.now();
    let session = match session_cookie(&req, &base) {
        Some(sid) => match state.store.get_session(&sid, now).await {
            Ok(Some(s)) => Some((sid, s)),
            Ok(None) => None,
            Err(e) => return server_error("consent: loading the session failed", e),
        },
        None => None,
    };
    let Some((sid, session)) = session else {
        return error_page(
            StatusCode::UNAUTHORIZED,
            "Your sign-in session has ended. Start again from the app.",
        );
    };
    match *req.method() {
        Method::GET => match request::query(&req) {
            Ok(p) => show(state, &p, &sid, &session, now).await,
            Err(m) => error_page(StatusCode::BAD_REQUEST, &m),
        },
        Method::POST => match request::form(&req) {
            Ok(p) => decide(state, &base, &p, &sid, &session, now).await,
            Err(b) => error_page(b.status, &b.message),
        },
        _ => error_page(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST"),
    }
}

fn host_of(uri: &str) -> String {
    url::Url::parse(uri)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(str::to_string)
                .or_else(|| Some(format!("{}:", u.scheme())))
        })
        .unwrap_or_default()
}

fn describe(scope: &str) -> &'static str {
    match scope {
        "openid" => "Know who you are",
        "profile" => "See your name and profile",
        "email" => "See your email address",
        "offline_access" => "Stay connected when you are not using it",
        _ => "",
    }
}

async fn show(state: &AppState, p: &Params, sid: &str, session: &Session, now: i64) -> Response<Body> {
    let Some(id) = p.get("request").filter(|r| !r.is_empty() && r.len() <= 64) else {
        return error_page(StatusCode::BAD_REQUEST, "The consent link is incomplete.");
    };
    let authreq = match state.store.get_authreq(id, now).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "This request has expired or was already answered.",
            )
        }
        Err(e) => return server_error("consent: loading the request failed", e),
    };
    // A metadata-document client names itself; show where that name comes from.
    let app = match (
        authreq.client_name.as_deref(),
        crate::oauth::cimd::is_document_client_id(&authreq.client_id),
    ) {
        (Some(name), true) => format!("{name} ({})", host_of(&authreq.client_id)),
        (Some(name), false) => name.to_string(),
        (None, _) => authreq.client_id.clone(),
    };
    let app = app.as_str();
    let scopes: String = authreq
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let d = describe(s);
            if d.is_empty() {
                format!("<li><code>{}</code></li>", escape(s))
            } else {
                format!("<li>{d} <span class=\"muted\">(<code>{}</code>)</span></li>", escape(s))
            }
        })
        .collect();
    let form_target = crate::http::html::form_target_source(&authreq.redirect_uri);
    crate::http::html::page_with_form_target(
        StatusCode::OK,
        &format!("Allow {app} access?"),
        &format!(
            "<h1>{app} wants to access</h1><p class=\"resource\">{resource}</p>\
<p>Signed in as <strong>{user}</strong>.</p>\
<p>If you allow it, <strong>{app}</strong> will be able to:</p><ul>{scopes}</ul>\
<p class=\"muted\">After you decide you will be sent to <strong>{host}</strong>. Client ID: <code class=\"id\">{client_id}</code></p>\
<form method=\"post\" action=\"/oauth/2.1/consent\"><input type=\"hidden\" name=\"request\" value=\"{id}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<div class=\"row\"><button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button><button class=\"primary\" type=\"submit\" name=\"decision\" value=\"approve\">Allow</button></div></form>",
            app = escape(app),
            resource = escape(&authreq.resource),
            user = escape(&session.username),
            host = escape(&host_of(&authreq.redirect_uri)),
            client_id = escape(&authreq.client_id),
            id = escape(id),
            csrf = csrf_token(sid, id),
        ),
        form_target.as_deref(),
    )
}

async fn decide(state: &AppState, base: &str, p: &Params, sid: &str, session: &Session, now: i64) -> Response<Body> {
    let (Some(id), Some(csrf)) = (p.get("request"), p.get("csrf")) else {
        return error_page(
            StatusCode::FORBIDDEN,
            "The form is missing its security token. Start again from the app.",
        );
    };
    if !csrf_matches(sid, id, csrf) {
        return error_page(
            StatusCode::FORBIDDEN,
            "The form's security token is not valid. Start again from the app.",
        );
    }
    let decision = p.get("decision");
    if decision != Some("approve") && decision != Some("deny") {
        return error_page(StatusCode::BAD_REQUEST, "Choose Allow or Deny.");
    }
    // Single use: the pending request is consumed whatever the decision.
    let authreq = match state.store.take_authreq(id, now).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "This request has expired or was already answered.",
            )
        }
        Err(e) => return server_error("consent: consuming the request failed", e),
    };
    let to = ClientRedirect {
        redirect_uri: authreq.redirect_uri.clone(),
        state: Some(authreq.state.clone()),
        issuer: state.config.issuer_for(base),
    };
    if decision == Some("deny") {
        return to.error(OAuthErrorCode::AccessDenied, "the user denied the request");
    }
    // RFC 8252 §8.6: remembered only for a client whose identity is verified (decided at authorize).
    if authreq.remember_consent {
        if let Err(e) = state
            .store
            .remember_consent(&session.sub, &authreq.client_id, &authreq.resource, &authreq.scope, now)
            .await
        {
            return server_error("consent: remembering consent failed", e);
        }
    }
    match code::issue(state, &authreq, session, now).await {
        Ok(issued) => to.code(&issued.code),
        Err(e) => server_error("authorize: storing the grant failed", e),
    }
}
