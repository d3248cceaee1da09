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

/// What `functions/webhook-deliver` builds: the store, the keyring (signing secrets), guarded
/// outbound HTTP, the queue (retries) and the operator's bus.
pub struct Deliver;

impl crate::state::Needs for Deliver {
    const STORE: bool = true;
    const KMS: bool = true;
    const OUTBOUND: bool = true;
    const EVENTS: bool = true;
    const DELIVERS: bool = true;
}

/// What `functions/health` builds: the store, the keyring (held tokens), guarded outbound HTTP
/// (token endpoints) and the queue (the events a refused refresh is).
pub struct Health;

impl crate::state::Needs for Health {
    const STORE: bool = true;
    const KMS: bool = true;
    const OUTBOUND: bool = true;
    const EVENTS: bool = true;
}

/// One invocation of `functions/webhook-deliver`: an SQS batch (`Records`: deliver each message,
/// answering the ones to redeliver as `batchItemFailures`), or its schedule (anything else: move the
/// outbox's due messages to the queue).
pub async fn deliver_invocation(state: &AppState, event: &serde_json::Value) -> serde_json::Value {
    if event.get("Records").is_some() {
        let failed = crate::webhooks::deliver::handle_sqs_event(state, event).await;
        let items: Vec<_> = failed
            .into_iter()
            .map(|id| serde_json::json!({"itemIdentifier": id}))
            .collect();
        return serde_json::json!({"batchItemFailures": items});
    }
    match crate::webhooks::deliver::drain_outbox(state).await {
        Ok(moved) => serde_json::json!({"outbox_moved": moved}),
        Err(e) => {
            tracing::error!(error = %e, "webhooks: draining the outbox failed");
            serde_json::json!({"outbox_moved": 0, "error": "the outbox could not be read"})
        }
    }
}

/// One invocation of `functions/health` (its schedule): one health run, and what it did.
pub async fn health_invocation(state: &AppState) -> serde_json::Value {
    match crate::webhooks::health::run(state).await {
        Ok(r) => serde_json::json!({
            "due": r.due, "refreshed": r.refreshed, "refused": r.refused, "failed": r.failed, "skipped": r.skipped,
        }),
        Err(e) => {
            tracing::error!(error = %e, "health: the run failed");
            serde_json::json!({"error": "the health index could not be read"})
        }
    }
}

/// The Lambda entry point of `functions/webhook-deliver`.
pub async fn run_deliver() -> Result<(), lambda_http::Error> {
    crate::telemetry::init_json();
    let state = Arc::new(AppState::from_env_for::<Deliver>().await?);
    lambda_http::lambda_runtime::run(lambda_http::lambda_runtime::service_fn(
        move |event: lambda_http::lambda_runtime::LambdaEvent<serde_json::Value>| {
            let state = Arc::clone(&state);
            async move { Ok::<_, Infallible>(deliver_invocation(&state, &event.payload).await) }
        },
    ))
    .await
}

/// The Lambda entry point of `functions/health`.
pub async fn run_health() -> Result<(), lambda_http::Error> {
    crate::telemetry::init_json();
    let state = Arc::new(AppState::from_env_for::<Health>().await?);
    lambda_http::lambda_runtime::run(lambda_http::lambda_runtime::service_fn(
        move |_event: lambda_http::lambda_runtime::LambdaEvent<serde_json::Value>| {
            let state = Arc::clone(&state);
            async move { Ok::<_, Infallible>(health_invocation(&state).await) }
        },
    ))
    .await
}
