//! `GET`/`POST /oauth/2.1/consent`: the page that says who is asking (an unverified client marked so,
//! with the hosts it names; a fetched https metadata document's host as its verified domain), where it
//! will send the user, the resource and each scope in words (`oauth::presentation`), with Approve and
//! Deny. The form carries a CSRF token bound to the browser
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
use crate::oauth::presentation::{describe_scopes, present_client, ClientPresentation, ScopeLine};
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
    // Who is asking (the stored client: its URIs, and for a metadata document, that it was fetched)
    // and what the resource server says its scopes mean.
    let (client, rs) = tokio::join!(
        state.store.get_client(&authreq.client_id, now),
        state.store.resource_server_for(&authreq.resource, now),
    );
    let client = match client {
        Ok(c) => c,
        Err(e) => return server_error("consent: loading the client failed", e),
    };
    let descriptions = match rs {
        Ok(rs) => rs.map(|r| r.scope_descriptions).unwrap_or_default(),
        Err(e) => return server_error("consent: loading the resource server failed", e),
    };
    let who = present_client(
        &authreq.client_id,
        authreq.client_name.as_deref(),
        &authreq.redirect_uri,
        client.as_ref().map(|c| &c.metadata),
    );
    let scopes = describe_scopes(&authreq.scope, &descriptions);
    let form_target = crate::http::html::form_target_source(&authreq.redirect_uri);
    crate::http::html::page_with_form_target(
        StatusCode::OK,
        &title(&who),
        &consent_body(
            &who,
            &scopes,
            &authreq.resource,
            &authreq.client_id,
            &session.username,
            id,
            &csrf_token(sid, id),
        ),
        form_target.as_deref(),
    )
}

/// The page title: an unverified client's name only ever beside the word "unverified".
fn title(who: &ClientPresentation) -> String {
    match (&who.claimed_name, &who.verified_domain) {
        (Some(name), Some(domain)) => format!("Allow {name} ({domain}) access?"),
        (None, Some(domain)) => format!("Allow an app from {domain} access?"),
        (Some(name), None) => format!("Allow unverified app \u{201c}{name}\u{201d} access?"),
        (None, None) => "Allow an unverified app access?".to_string(),
    }
}

/// The consent page's body. Everything a client or operator supplied is escaped here.
#[allow(clippy::too_many_arguments)]
fn consent_body(
    who: &ClientPresentation,
    scopes: &[ScopeLine],
    resource: &str,
    client_id: &str,
    user: &str,
    id: &str,
    csrf: &str,
) -> String {
    let mut out = String::new();
    // Who is asking.
    match (&who.claimed_name, &who.verified_domain) {
        (Some(name), Some(domain)) => out.push_str(&format!(
            "<h1>{name} wants to access</h1><p class=\"resource\">{resource}</p>\
<p class=\"who\"><span class=\"badge ok\">Verified domain</span> <strong>{domain}</strong>: latchkey fetched this app's \
description from <code class=\"id\">{client_id}</code>, so it comes from {domain}. The name is the one that site gives.</p>",
            name = escape(name),
            domain = escape(domain),
            resource = escape(resource),
            client_id = escape(client_id),
        )),
        (None, Some(domain)) => out.push_str(&format!(
            "<h1>An app from {domain} wants to access</h1><p class=\"resource\">{resource}</p>\
<p class=\"who\"><span class=\"badge ok\">Verified domain</span> <strong>{domain}</strong></p>",
            domain = escape(domain),
            resource = escape(resource),
        )),
        (claimed, None) => {
            let heading = match claimed {
                Some(name) => format!(
                    "<span class=\"badge warn\">Unverified</span> An unverified app calling itself \u{201c}{}\u{201d} wants to access",
                    escape(name)
                ),
                None => "<span class=\"badge warn\">Unverified</span> An unverified app wants to access".to_string(),
            };
            out.push_str(&format!(
                "<h1>{heading}</h1><p class=\"resource\">{resource}</p>\
<p class=\"who warn\">Anyone can register an app under any name: latchkey has not verified who made this one. \
Continue only if you just started this from an app you trust.</p><ul class=\"facts\">\
<li>It will send you back to <strong>{redirect}</strong></li>{site}{logo}</ul>",
                resource = escape(resource),
                redirect = escape(&who.redirect_host),
                site = who
                    .client_uri_host
                    .as_deref()
                    .map(|h| format!("<li>Its website is on <strong>{}</strong></li>", escape(h)))
                    .unwrap_or_default(),
                logo = who
                    .logo_uri_host
                    .as_deref()
                    .map(|h| format!("<li>Its logo is hosted on <strong>{}</strong></li>", escape(h)))
                    .unwrap_or_default(),
            ));
        }
    }
    out.push_str(&format!("<p>Signed in as <strong>{}</strong>.</p>", escape(user)));
    // What it would get: never an empty promise.
    let subject = if who.is_verified() {
        "this app"
    } else {
        "the unverified app"
    };
    if scopes.is_empty() {
        out.push_str(&format!(
            "<p class=\"grant\">If you allow it, {subject} may use <strong>{resource}</strong> on your behalf, \
as you, with whatever access that server gives your account. It asked for no narrower permission.</p>",
            resource = escape(resource),
        ));
    } else {
        let items: String = scopes
            .iter()
            .map(|l| match &l.words {
                Some(w) => format!(
                    "<li>{} <span class=\"muted\">(<code>{}</code>)</span></li>",
                    escape(w),
                    escape(&l.scope)
                ),
                None => format!(
                    "<li><code>{}</code> <span class=\"muted\">(not described by this server's operator)</span></li>",
                    escape(&l.scope)
                ),
            })
            .collect();
        out.push_str(&format!(
            "<p class=\"grant\">If you allow it, {subject} may use <strong>{resource}</strong> on your behalf, to:</p><ul class=\"scopes\">{items}</ul>",
            resource = escape(resource),
        ));
    }
    out.push_str(&format!(
        "<p class=\"muted\">After you decide you will be sent to <strong>{host}</strong>. Client ID: <code class=\"id\">{client_id}</code></p>\
<form method=\"post\" action=\"/oauth/2.1/consent\"><input type=\"hidden\" name=\"request\" value=\"{id}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<div class=\"row\"><button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button><button class=\"primary\" type=\"submit\" name=\"decision\" value=\"approve\">Allow</button></div></form>\
<p class=\"muted\">You can review or revoke what you allow at any time on <a href=\"/oauth/2.1/account\">your connected apps</a>.</p>",
        host = escape(&who.redirect_host),
        client_id = escape(client_id),
        id = escape(id),
        csrf = escape(csrf),
    ));
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::presentation::present_client;

    #[test]
    fn mcp_security_an_empty_scope_says_plainly_the_app_may_use_the_resource_on_your_behalf() {
        let who = present_client("lkc_x", Some("Claude Desktop"), "http://127.0.0.1:7777/cb", None);
        let html = consent_body(
            &who,
            &[],
            "https://mcp.example.com/mcp",
            "lkc_x",
            "alice@example.com",
            "r",
            "c",
        );
        assert!(html.contains("the unverified app may use <strong>https://mcp.example.com/mcp</strong> on your behalf"));
        assert!(html.contains("It asked for no narrower permission"));
        assert!(!html.contains("<ul class=\"scopes\">"));
        assert_eq!(
            title(&who),
            "Allow unverified app \u{201c}Claude Desktop\u{201d} access?"
        );
    }
}
