//! One module per endpoint: `handle(&AppState, Request) -> Response`, used by Lambda and `serve`.
//! A handler parses its request, calls the flows (`authz`, `oauth`, `vault`, `tools`) and renders
//! their answer; handlers never call each other. What several browser-facing handlers render the
//! same way lives here.

pub mod account;
pub mod authorize;
pub mod callback;
pub mod connections;
pub mod consent;
pub mod discovery;
pub mod home;
pub mod identity_callback;
pub mod introspect;
pub mod proxy;
pub mod register;
pub mod revoke;
pub mod sessions;
pub mod token;
pub mod tool_mcp;
pub mod tool_oauth;
pub mod tools;
pub mod webhooks;

use http::StatusCode;
use lambda_http::{Body, Response};

use crate::authz::signin::{SignInError, SignedIn};
use crate::domain::authz::{ACCOUNT_SIGN_IN, SESSION_TTL};
use crate::error::OAuthErrorCode;
use crate::http::cookie::{set_cookie, set_session_cookie, LOGIN_COOKIE};
use crate::http::html::{error_page, redirect};
use crate::oauth::authorize::ClientRedirect;
use crate::state::AppState;
use crate::store::StoreError;

/// A store failure on a browser page: 503 when the store stayed busy, else 500, with a generic page;
/// the cause goes to the log.
fn server_error(context: &str, e: StoreError) -> Response<Body> {
    if matches!(e, StoreError::Busy) {
        tracing::warn!("{context}: the store stayed busy");
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is busy. Please try again in a moment.",
        );
    }
    tracing::error!(error = %e, "{context}");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong on our side. Please try again.",
    )
}

/// A sign-in that cannot go on, as the browser sees it.
fn sign_in_failure(state: &AppState, base: &str, e: SignInError) -> Response<Body> {
    match e {
        SignInError::Refused(message) => error_page(StatusCode::BAD_REQUEST, message),
        SignInError::Unavailable => error_page(
            StatusCode::BAD_GATEWAY,
            "The sign-in provider could not be reached. Please try again.",
        ),
        SignInError::Store(context, e) => server_error(context, e),
        SignInError::Declined(authreq) => ClientRedirect {
            redirect_uri: authreq.redirect_uri,
            state: Some(authreq.state),
            issuer: state.config.issuer_for(base),
        }
        .error(OAuthErrorCode::AccessDenied, "the user did not sign in"),
    }
}

/// A browser just signed in: set its session cookie, drop the sign-in binding, go on to consent (or
/// back to the account page, when that is where the sign-in started).
fn signed_in(base: &str, done: &SignedIn) -> Response<Body> {
    let mut res = if done.request_id == ACCOUNT_SIGN_IN {
        redirect(&format!("{base}/oauth/2.1/account"))
    } else {
        redirect(&format!(
            "{base}/oauth/2.1/consent?request={}",
            url::form_urlencoded::byte_serialize(done.request_id.as_bytes()).collect::<String>()
        ))
    };
    set_session_cookie(&mut res, base, &done.session_id, SESSION_TTL);
    set_cookie(&mut res, base, LOGIN_COOKIE, "", 0);
    res
}
