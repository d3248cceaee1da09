//! `GET`/`POST /oauth/2.1/account`: "Your connected apps". A signed-in user (the browser session of
//! authorize's sign-in; a browser without one is sent to sign in and comes back) sees each client
//! they approved, per resource, with its scopes in words, when it was approved and last used, and a
//! Revoke button; and can sign out. The forms carry a CSRF token bound to the browser session; the
//! page cannot be framed and has no script. Revoking is `authz::account`'s.

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

use super::{server_error, sign_in_failure};
use crate::authz::account::{self, ConnectedApp, RevokeError};
use crate::authz::signin;
use crate::domain::authz::{Session, ACCOUNT_SIGN_IN, AUTHREQ_TTL};
use crate::domain::scope;
use crate::http::cookie::{session_cookie, set_cookie, LOGIN_COOKIE, SESSION_COOKIE};
use crate::http::csrf::{csrf_matches, csrf_token};
use crate::http::html::{escape, page, redirect};
use crate::http::request::{self, Params};
use crate::state::AppState;

/// The page's path.
const PATH: &str = "/oauth/2.1/account";
/// What the account forms' CSRF token is bound to, besides the session.
const CSRF_PURPOSE: &str = "account";

/// `GET`/`POST /oauth/2.1/account`: the signed-in user's connected apps, and revoking one.
pub async fn handle(state: &AppState, req: Request) -> Response<Body> {
    let base = request::public_base(&state.config, &req);
    let now = state.clock.now();
    let session = match session_cookie(&req, &base) {
        Some(sid) => match state.store.get_session(&sid, now).await {
            Ok(Some(s)) => Some((sid, s)),
            Ok(None) => None,
            Err(e) => return server_error("account: loading the session failed", e),
        },
        None => None,
    };
    match *req.method() {
        Method::GET => {
            let p = match request::query(&req) {
                Ok(p) => p,
                Err(m) => return message(StatusCode::BAD_REQUEST, "Bad request", &m),
            };
            match session {
                Some((sid, session)) => show(state, &p, &sid, &session, now).await,
                None if p.get("signed_out").is_some() => signed_out(),
                None => sign_in(state, &base, now).await,
            }
        }
        Method::POST => {
            let Some((sid, session)) = session else {
                return message(
                    StatusCode::FORBIDDEN,
                    "Your session has ended",
                    "Nothing was changed. Sign in again to manage your connected apps.",
                );
            };
            match request::form(&req) {
                Ok(p) => act(state, &base, &p, &sid, &session, now).await,
                Err(b) => message(b.status, "Bad request", &b.message),
            }
        }
        _ => message(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed", "use GET or POST"),
    }
}

/// Not signed in: through the same sign-in as authorize, then back here.
async fn sign_in(state: &AppState, base: &str, now: i64) -> Response<Body> {
    if state.config.local_login {
        return redirect(&format!("{base}/oauth/2.1/callback?request={ACCOUNT_SIGN_IN}"));
    }
    match signin::upstream::start(state, base, ACCOUNT_SIGN_IN, now).await {
        Ok(started) => {
            let mut res = redirect(&started.url);
            set_cookie(&mut res, base, LOGIN_COOKIE, &started.browser, AUTHREQ_TTL);
            res
        }
        Err(e) => sign_in_failure(state, base, e),
    }
}

/// A page with one heading and one message, and a way back.
fn message(status: StatusCode, title: &str, text: &str) -> Response<Body> {
    page(
        status,
        title,
        &format!(
            "<h1>{}</h1><p>{}</p><p><a href=\"{PATH}\">Back to your connected apps</a></p>",
            escape(title),
            escape(text)
        ),
    )
}

fn signed_out() -> Response<Body> {
    page(
        StatusCode::OK,
        "Signed out",
        &format!(
            "<h1>You are signed out</h1><p>Apps you connected keep their access until you revoke it.</p>\
<p><a href=\"{PATH}\">Sign in to see your connected apps</a></p>"
        ),
    )
}

async fn show(state: &AppState, p: &Params, sid: &str, session: &Session, now: i64) -> Response<Body> {
    let apps = match account::connected_apps(&state.store, &session.sub, now).await {
        Ok(a) => a,
        Err(e) => return server_error("account: listing grants failed", e),
    };
    let csrf = csrf_token(sid, CSRF_PURPOSE);
    let notice = match p.get("notice") {
        Some("revoked") => {
            "<p class=\"notice\" role=\"status\">Access revoked. That app must ask you again before it can connect.</p>"
        }
        _ => "",
    };
    let cards: String = if apps.is_empty() {
        "<p class=\"muted\">No apps have access to your account.</p>".to_string()
    } else {
        apps.iter().map(|a| card(a, &csrf)).collect()
    };
    page(
        StatusCode::OK,
        "Your connected apps",
        &format!(
            "<h1>Your connected apps</h1><p class=\"muted\">Signed in as <strong>{user}</strong>. These apps can act on your behalf; revoke any you no longer use.</p>\
{notice}{cards}\
<form method=\"post\" action=\"{PATH}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<div class=\"row\"><button type=\"submit\" name=\"action\" value=\"signout\">Sign out</button></div></form>",
            user = escape(&session.username),
        ),
    )
}

fn card(app: &ConnectedApp, csrf: &str) -> String {
    let name = app.client_name.as_deref().unwrap_or(&app.client_id);
    let host = app
        .client_host
        .as_deref()
        .map(|h| format!(" <span class=\"muted\">({})</span>", escape(h)))
        .unwrap_or_default();
    let scopes: String = app
        .scopes
        .iter()
        .map(|s| match scope::in_words(s) {
            Some(words) => format!(
                "<li>{words} <span class=\"muted\">(<code>{}</code>)</span></li>",
                escape(s)
            ),
            None => format!("<li><code>{}</code></li>", escape(s)),
        })
        .collect();
    let last_used = app
        .last_used
        .map(|t| format!("around {}", date_time(t)))
        .unwrap_or_else(|| "not yet".to_string());
    format!(
        "<section class=\"card\"><h2>{name}{host}</h2>\
<p class=\"muted\">Can access</p><p class=\"resource\">{resource}</p><ul>{scopes}</ul>\
<p class=\"muted\">Approved {approved}.<br>Last used {last_used}.<br>Client ID: <code class=\"id\">{client_id}</code></p>\
<form method=\"post\" action=\"{PATH}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"grant\" value=\"{grant}\">\
<div class=\"row\"><button class=\"danger\" type=\"submit\" name=\"action\" value=\"revoke\" aria-label=\"Revoke access for {name}\">Revoke access</button></div></form></section>",
        name = escape(name),
        resource = escape(&app.resource),
        approved = date_time(app.approved_at),
        client_id = escape(&app.client_id),
        grant = escape(&app.grant_id),
    )
}

async fn act(state: &AppState, base: &str, p: &Params, sid: &str, session: &Session, now: i64) -> Response<Body> {
    let Some(csrf) = p.get("csrf") else {
        return message(
            StatusCode::FORBIDDEN,
            "This form can't be used",
            "The form is missing its security token. Nothing was changed.",
        );
    };
    if !csrf_matches(sid, CSRF_PURPOSE, csrf) {
        return message(
            StatusCode::FORBIDDEN,
            "This form can't be used",
            "The form's security token is not valid. Nothing was changed.",
        );
    }
    match p.get("action") {
        Some("signout") => {
            if let Err(e) = state.store.delete_session(sid).await {
                return server_error("account: ending the session failed", e);
            }
            let mut res = redirect(&format!("{base}{PATH}?signed_out=1"));
            set_cookie(&mut res, base, SESSION_COOKIE, "", 0);
            res
        }
        Some("revoke") => {
            let Some(grant_id) = p.get("grant").filter(|g| !g.is_empty() && g.len() <= 64) else {
                return message(StatusCode::BAD_REQUEST, "Bad request", "The form names no app.");
            };
            match account::revoke(&state.store, &session.sub, grant_id, now).await {
                Ok(_) => redirect(&format!("{base}{PATH}?notice=revoked")),
                Err(RevokeError::NotFound) => message(
                    StatusCode::NOT_FOUND,
                    "Not found",
                    "That app is not connected to your account. Nothing was changed.",
                ),
                Err(RevokeError::Store(e)) => server_error("account: revoking failed", e),
            }
        }
        _ => message(StatusCode::BAD_REQUEST, "Bad request", "Choose Revoke or Sign out."),
    }
}

/// `1 Dec 2026, 07:43 UTC` for epoch seconds `t` (proleptic Gregorian, UTC).
fn date_time(t: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{day} {} {year}, {:02}:{:02} UTC",
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_read_as_day_month_year_utc() {
        assert_eq!(super::date_time(0), "1 Jan 1970, 00:00 UTC");
        assert_eq!(super::date_time(1_796_111_014), "1 Dec 2026, 07:43 UTC");
        assert_eq!(super::date_time(951_782_400), "29 Feb 2000, 00:00 UTC");
    }
}
