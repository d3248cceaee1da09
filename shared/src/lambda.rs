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
    lambda_http::run(service_fn(move |req: Request| {
        let state = Arc::clone(&state);
        async move { Ok::<_, Infallible>(router::call(route, &state, req).await) }
    }))
    .await
}
