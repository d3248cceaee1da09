//! The Lambda entry point every `functions/<name>/src/main.rs` calls.

use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::{service_fn, Request};

use crate::router::{self, Route};
use crate::state::AppState;

/// Build the state once (cold start) and serve `route` until the runtime stops us.
pub async fn run(route: Route) -> Result<(), lambda_http::Error> {
    crate::telemetry::init_json();
    let state = Arc::new(AppState::from_env().await?);
    // End users sign in at an upstream OpenID Connect provider; without one these cannot work, so
    // they refuse to start rather than fail each request. Only the callback exchanges the sign-in
    // code, so only it holds the client secret (from SSM, resolved by `from_env`).
    let login = &state.config;
    if matches!(route, Route::Authorize | Route::Callback | Route::Consent)
        && (login.login_issuer.is_none() || login.login_client_id.is_none())
    {
        return Err(
            "LATCHKEY_LOGIN_ISSUER and LATCHKEY_LOGIN_CLIENT_ID are required for the authorize, callback and \
             consent functions"
                .into(),
        );
    }
    if matches!(route, Route::Callback) && login.login_client_secret.is_none() {
        return Err("LATCHKEY_LOGIN_CLIENT_SECRET_PARAM (an SSM SecureString) is required by the callback".into());
    }
    lambda_http::run(service_fn(move |req: Request| {
        let state = Arc::clone(&state);
        async move { Ok::<_, Infallible>(router::call(route, &state, req).await) }
    }))
    .await
}
