//! Method + path → handler: the same table `template.yaml` routes, mounted by `latchkey serve`.

use std::future::Future;

use lambda_http::{Body, Request, Response};

use crate::handlers;
use crate::http::path::path_params;
use crate::http::response;
use crate::state::{AppState, Needs};

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
    /// `functions/account`: "Your connected apps" (list, revoke, sign out).
    Account,
    /// `functions/session-create`: the vault's just-in-time auth sessions.
    SessionCreate,
    /// `functions/session-status`: an auth session's status.
    SessionStatus,
    /// `functions/session-confirm`: the app confirms a `return_url` session's connection.
    SessionConfirm,
    /// `functions/identity-callback`: where providers send users back to the vault.
    IdentityCallback,
    /// `functions/connections`: a user's provider connections (list, delete).
    Connections,
    /// `functions/proxy`: provider API calls with the user's token attached.
    Proxy,
    /// `functions/tool-create`: register a remote MCP server.
    ToolCreate,
    /// `functions/tool`: show or delete a tool.
    Tool,
    /// `functions/tool-client-metadata`: the Client ID Metadata Document latchkey serves per tool.
    ToolClientMetadata,
    /// `functions/tool-initiate`: start a tool's OAuth flow.
    ToolInitiate,
    /// `functions/tool-complete`: finish it.
    ToolComplete,
    /// `functions/tool-mcp`: MCP requests forwarded with the tool's token.
    ToolMcp,
    /// `functions/webhooks`: a project's webhooks (create, list, show, delete).
    Webhooks,
}

impl Route {
    /// Every route, one per Lambda function.
    pub const ALL: [Route; 22] = [
        Route::Discovery,
        Route::Register,
        Route::Token,
        Route::Revoke,
        Route::Introspect,
        Route::Authorize,
        Route::Callback,
        Route::Consent,
        Route::Account,
        Route::SessionCreate,
        Route::SessionStatus,
        Route::SessionConfirm,
        Route::IdentityCallback,
        Route::Connections,
        Route::Proxy,
        Route::ToolCreate,
        Route::Tool,
        Route::ToolClientMetadata,
        Route::ToolInitiate,
        Route::ToolComplete,
        Route::ToolMcp,
        Route::Webhooks,
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
            Route::Account => "account",
            Route::SessionCreate => "session-create",
            Route::SessionStatus => "session-status",
            Route::SessionConfirm => "session-confirm",
            Route::IdentityCallback => "identity-callback",
            Route::Connections => "connections",
            Route::Proxy => "proxy",
            Route::ToolCreate => "tool-create",
            Route::Tool => "tool",
            Route::ToolClientMetadata => "tool-client-metadata",
            Route::ToolInitiate => "tool-initiate",
            Route::ToolComplete => "tool-complete",
            Route::ToolMcp => "tool-mcp",
            Route::Webhooks => "webhooks",
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
            Route::Account => &[("GET", "/oauth/2.1/account"), ("POST", "/oauth/2.1/account")],
            Route::SessionCreate => &[("POST", "/v1/identity/sessions")],
            Route::SessionStatus => &[("GET", "/v1/identity/sessions/{session_id}")],
            Route::SessionConfirm => &[("POST", "/v1/identity/sessions/{session_id}/confirm")],
            Route::IdentityCallback => &[("GET", "/v1/identity/callback")],
            Route::Connections => &[
                ("GET", "/v1/identity/users/{user_id}/connections"),
                ("DELETE", "/v1/identity/users/{user_id}/connections/{provider}"),
            ],
            Route::Proxy => &[("ANY", "/v1/proxy/{provider}/{path+}")],
            Route::ToolCreate => &[("POST", "/tools")],
            Route::Tool => &[("GET", "/tools/{tool_id}"), ("DELETE", "/tools/{tool_id}")],
            Route::ToolClientMetadata => &[("GET", "/tools/{tool_id}/client-metadata.json")],
            Route::ToolInitiate => &[("POST", "/tools/{tool_id}/initiate-oauth")],
            Route::ToolComplete => &[("POST", "/tools/{tool_id}/complete-oauth")],
            Route::ToolMcp => &[
                ("POST", "/tools/{tool_id}/mcp"),
                ("GET", "/tools/{tool_id}/mcp"),
                ("DELETE", "/tools/{tool_id}/mcp"),
            ],
            Route::Webhooks => &[
                ("POST", "/v1/webhooks"),
                ("GET", "/v1/webhooks"),
                ("GET", "/v1/webhooks/{webhook_id}"),
                ("DELETE", "/v1/webhooks/{webhook_id}"),
            ],
        }
    }

    /// Which route serves `path`, if any.
    pub fn for_path(path: &str) -> Option<Route> {
        Route::ALL
            .into_iter()
            .find(|r| r.paths().iter().any(|(_, p)| path_params(p, path).is_some()))
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
        Route::Account => handlers::account::handle(state, req).await,
        Route::SessionCreate => handlers::sessions::create(state, req).await,
        Route::SessionStatus => handlers::sessions::status(state, req).await,
        Route::SessionConfirm => handlers::sessions::confirm(state, req).await,
        Route::IdentityCallback => handlers::identity_callback::handle(state, req).await,
        Route::Connections => handlers::connections::handle(state, req).await,
        Route::Proxy => handlers::proxy::handle(state, req).await,
        Route::ToolCreate => handlers::tools::create(state, req).await,
        Route::Tool => handlers::tools::handle(state, req).await,
        Route::ToolClientMetadata => handlers::tools::client_metadata(state, req).await,
        Route::ToolInitiate => handlers::tool_oauth::initiate(state, req).await,
        Route::ToolComplete => handlers::tool_oauth::complete(state, req).await,
        Route::ToolMcp => handlers::tool_mcp::handle(state, req).await,
        Route::Webhooks => handlers::webhooks::handle(state, req).await,
    }
}

/// One Lambda function, chosen at compile time: `functions/<name>/src/main.rs` calls
/// `latchkey::lambda::run::<latchkey::router::Name>()`, so its binary links that handler and the
/// clients its `Needs` name, and nothing else (no run-time route match, no other handler).
pub trait Endpoint: Needs {
    /// The route this function serves (its paths, its package name).
    const ROUTE: Route;
    /// Signs end users in at the upstream OpenID Connect provider: refuses to start without one.
    const SIGN_IN: bool = false;
    /// The handler.
    fn handle(state: &AppState, req: Request) -> impl Future<Output = Response<Body>> + Send + '_;
}

macro_rules! endpoints {
    ($($(#[$doc:meta])* $ty:ident => $handler:path, [$($need:ident),*] $(, sign_in $si:literal)?;)*) => {$(
        $(#[$doc])*
        pub struct $ty;

        impl Needs for $ty {
            const STORE: bool = endpoints!(@has STORE [$($need),*]);
            const KMS: bool = endpoints!(@has KMS [$($need),*]);
            const OUTBOUND: bool = endpoints!(@has OUTBOUND [$($need),*]);
            const EVENTS: bool = endpoints!(@has EVENTS [$($need),*]);
        }

        impl Endpoint for $ty {
            const ROUTE: Route = Route::$ty;
            $(const SIGN_IN: bool = $si;)?
            fn handle(state: &AppState, req: Request) -> impl Future<Output = Response<Body>> + Send + '_ {
                $handler(state, req)
            }
        }
    )*};
    (@has STORE [$($need:ident),*]) => { false $(|| endpoints!(@is STORE $need))* };
    (@has KMS [$($need:ident),*]) => { false $(|| endpoints!(@is KMS $need))* };
    (@has OUTBOUND [$($need:ident),*]) => { false $(|| endpoints!(@is OUTBOUND $need))* };
    (@has EVENTS [$($need:ident),*]) => { false $(|| endpoints!(@is EVENTS $need))* };
    (@is STORE STORE) => { true };
    (@is KMS KMS) => { true };
    (@is OUTBOUND OUTBOUND) => { true };
    (@is EVENTS EVENTS) => { true };
    (@is $a:ident $b:ident) => { false };
}

// What each function builds at cold start. No KMS client where nothing sealed is opened or written,
// no outbound HTTP client where no request goes out, no store (and so no AWS SDK) for discovery.
endpoints! {
    /// `functions/discovery`: configuration only.
    Discovery => handlers::discovery::handle, [];
    /// `functions/register`.
    Register => handlers::register::handle, [STORE];
    /// `functions/token`.
    Token => handlers::token::handle, [STORE];
    /// `functions/revoke`.
    Revoke => handlers::revoke::handle, [STORE];
    /// `functions/introspect`.
    Introspect => handlers::introspect::handle, [STORE];
    /// `functions/authorize`: fetches Client ID Metadata Documents and the login provider's metadata.
    Authorize => handlers::authorize::handle, [STORE, KMS, OUTBOUND], sign_in true;
    /// `functions/callback`: exchanges the login provider's code, seals its tokens.
    Callback => handlers::callback::handle, [STORE, KMS, OUTBOUND, EVENTS], sign_in true;
    /// `functions/consent`.
    Consent => handlers::consent::handle, [STORE, KMS, OUTBOUND], sign_in true;
    /// `functions/account`: signs the browser in through the login provider, lists and revokes grants.
    Account => handlers::account::handle, [STORE, KMS, OUTBOUND];
    /// `functions/session-create`: seals the session's PKCE verifier.
    SessionCreate => handlers::sessions::create, [STORE, KMS, OUTBOUND];
    /// `functions/session-status`.
    SessionStatus => handlers::sessions::status, [STORE];
    /// `functions/session-confirm`: moves the parked (already sealed) connection; no KMS.
    SessionConfirm => handlers::sessions::confirm, [STORE, EVENTS];
    /// `functions/identity-callback`: exchanges the provider's code, seals its tokens.
    IdentityCallback => handlers::identity_callback::handle, [STORE, KMS, OUTBOUND, EVENTS];
    /// `functions/connections`.
    Connections => handlers::connections::handle, [STORE, KMS, OUTBOUND, EVENTS];
    /// `functions/proxy`: opens the held token, calls the provider, refreshes.
    Proxy => handlers::proxy::handle, [STORE, KMS, OUTBOUND, EVENTS];
    /// `functions/tool-create`: discovers the MCP server's authorization server.
    ToolCreate => handlers::tools::create, [STORE, KMS, OUTBOUND];
    /// `functions/tool`.
    Tool => handlers::tools::handle, [STORE, KMS, OUTBOUND];
    /// `functions/tool-client-metadata`: reads the tool, renders its document.
    ToolClientMetadata => handlers::tools::client_metadata, [STORE];
    /// `functions/tool-initiate`.
    ToolInitiate => handlers::tool_oauth::initiate, [STORE, KMS, OUTBOUND];
    /// `functions/tool-complete`.
    ToolComplete => handlers::tool_oauth::complete, [STORE, KMS, OUTBOUND, EVENTS];
    /// `functions/tool-mcp`: opens the held token, forwards, refreshes.
    ToolMcp => handlers::tool_mcp::handle, [STORE, KMS, OUTBOUND, EVENTS];
    /// `functions/webhooks`: seals each new webhook's signing secret; resolves its URL's host.
    Webhooks => handlers::webhooks::handle, [STORE, KMS];
}

/// The functions API Gateway does not call: `webhook-deliver` (the events queue and its schedule)
/// and `health` (its schedule). Their entry points are `lambda::run_deliver` and `lambda::run_health`.
pub const BACKGROUND: [&str; 2] = ["webhook-deliver", "health"];

/// The front door, `GET /`: mounted by `latchkey serve` only (no Lambda, no `template.yaml` route).
pub const FRONT_DOOR: &str = "/";

/// Route a request by its path (the local server): the endpoints, and the front door at `/`; 404
/// when no endpoint serves it.
pub async fn dispatch(state: &AppState, req: Request) -> Response<Body> {
    let path = crate::http::request::raw_path(&req);
    if path == FRONT_DOOR {
        return handlers::home::handle(state, req).await;
    }
    match Route::for_path(path) {
        Some(route) => call(route, state, req).await,
        None => response::not_found(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_pick_their_route() {
        assert_eq!(Route::for_path("/oauth/2.1/token"), Some(Route::Token));
        assert_eq!(
            Route::for_path("/v1/identity/users/u/connections"),
            Some(Route::Connections)
        );
        assert_eq!(Route::for_path("/v1/identity/users/u/connections/x/y"), None);
        assert_eq!(Route::for_path("/v1/nope"), None);
    }
}
