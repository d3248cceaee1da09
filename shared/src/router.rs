//! Method + path → handler: the same table `template.yaml` routes, mounted by `latchkey serve`.

use lambda_http::{Body, Request, Response};

use crate::handlers;
use crate::http::response;
use crate::state::AppState;

/// Every endpoint, one per Lambda function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `functions/discovery`: RFC 8414 metadata.
    Discovery,
    /// `functions/register`: RFC 7591 dynamic client registration.
    Register,
    /// `functions/token`: RFC 6749 token endpoint.
    Token,
    /// `functions/revoke`: RFC 7009 revocation.
    Revoke,
    /// `functions/introspect`: RFC 7662 introspection for resource servers.
    Introspect,
    /// `functions/authorize`: the authorization endpoint.
    Authorize,
    /// `functions/callback`: where sign-in completes.
    Callback,
    /// `functions/consent`: the consent page and decision.
    Consent,
}

impl Route {
    pub const ALL: [Route; 8] = [
        Route::Discovery,
        Route::Register,
        Route::Token,
        Route::Revoke,
        Route::Introspect,
        Route::Authorize,
        Route::Callback,
        Route::Consent,
    ];

    /// The function (package) name under `functions/`.
    pub fn function(self) -> &'static str {
        match self {
            Route::Discovery => "discovery",
            Route::Register => "register",
            Route::Token => "token",
            Route::Revoke => "revoke",
            Route::Introspect => "introspect",
            Route::Authorize => "authorize",
            Route::Callback => "callback",
            Route::Consent => "consent",
        }
    }

    /// The paths routed to this endpoint, with the methods it answers.
    pub fn paths(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Route::Discovery => &[
                ("GET", "/.well-known/oauth-authorization-server/oauth/2.1"),
                ("GET", "/.well-known/oauth-authorization-server"),
            ],
            Route::Register => &[("POST", "/oauth/2.1/register")],
            Route::Token => &[("POST", "/oauth/2.1/token")],
            Route::Revoke => &[("POST", "/oauth/2.1/revoke")],
            Route::Introspect => &[("POST", "/oauth/2.1/introspect")],
            Route::Authorize => &[("GET", "/oauth/2.1/authorize"), ("POST", "/oauth/2.1/authorize")],
            Route::Callback => &[("GET", "/oauth/2.1/callback"), ("POST", "/oauth/2.1/callback")],
            Route::Consent => &[("GET", "/oauth/2.1/consent"), ("POST", "/oauth/2.1/consent")],
        }
    }

    /// Which route serves `path`, if any.
    pub fn for_path(path: &str) -> Option<Route> {
        Route::ALL
            .into_iter()
            .find(|r| r.paths().iter().any(|(_, p)| *p == path))
    }
}

/// Run one endpoint's handler.
pub async fn call(route: Route, state: &AppState, req: Request) -> Response<Body> {
    match route {
        Route::Discovery => handlers::discovery::handle(state, req).await,
        Route::Register => handlers::register::handle(state, req).await,
        Route::Token => handlers::token::handle(state, req).await,
        Route::Revoke => handlers::revoke::handle(state, req).await,
        Route::Introspect => handlers::introspect::handle(state, req).await,
        Route::Authorize => handlers::authorize::handle(state, req).await,
        Route::Callback => handlers::callback::handle(state, req).await,
        Route::Consent => handlers::consent::handle(state, req).await,
    }
}

/// Route a request by its path (the local server); 404 when no endpoint serves it.
pub async fn dispatch(state: &AppState, req: Request) -> Response<Body> {
    match Route::for_path(req.uri().path()) {
        Some(route) => call(route, state, req).await,
        None => response::not_found(),
    }
}
