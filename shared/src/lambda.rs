//! The Lambda entry point every `functions/<name>/src/main.rs` calls, with its endpoint as a type.

use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::{service_fn, Request};

use crate::router::{Endpoint, Route};
use crate::state::AppState;

/// Build the state `E` needs once (cold start) and serve `E`'s handler until the runtime stops us.
/// Only `E`'s handler and clients are linked: nothing here names another endpoint.
pub async fn run<E: Endpoint>() -> Result<(), lambda_http::Error> {
    crate::telemetry::init_json();
    let state = Arc::new(AppState::from_env_for::<E>().await?);
    // End users sign in at an upstream OpenID Connect provider; without one these cannot work, so
    // they refuse to start rather than fail each request. Only the callback exchanges the sign-in
    // code, so only it holds the client secret (from SSM, resolved by `from_env`).
    let login = &state.config;
    if E::SIGN_IN && (login.login_issuer.is_none() || login.login_client_id.is_none()) {
        return Err(
            "LATCHKEY_LOGIN_ISSUER and LATCHKEY_LOGIN_CLIENT_ID are required for the authorize, callback and \
             consent functions"
                .into(),
        );
    }
    if matches!(E::ROUTE, Route::Callback) && login.login_client_secret.is_none() {
        return Err("LATCHKEY_LOGIN_CLIENT_SECRET_PARAM (an SSM SecureString) is required by the callback".into());
    }
    lambda_http::run(service_fn(move |req: Request| {
        let state = Arc::clone(&state);
        async move { Ok::<_, Infallible>(E::handle(&state, req).await) }
    }))
    .await
}
