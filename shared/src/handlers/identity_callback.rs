//! `GET /v1/identity/callback`: where a provider sends the user back. The `state` is consumed
//! (single use) before anything else; the code is exchanged with the stored PKCE verifier; the
//! tokens are sealed into the user's connection and the session is marked complete in one
//! transaction. A provider error marks the session `error`. The user sees a small page either way —
//! unless the session has a `return_url`: then the connection is parked in the session until the
//! app confirms it, and the browser goes back to the app with `session_id` and a one-time
//! `connect_token` (or `session_id` and `error`).

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

use crate::crypto::secret;
use crate::domain::auth_session::{VaultState, CONFIRM_TTL};
use crate::domain::connection::{Connection, ConnectionStatus};
use crate::domain::context::{connection_context, vault_state_context};
use crate::domain::webhook::{Event, EventType};
use crate::error::VaultError;
use crate::http::{html, request};
use crate::state::AppState;
use crate::vault::{self, upstream, Tokens};

fn page(status: StatusCode, title: &str, message: &str) -> Response<Body> {
    html::page(
        status,
        title,
        &format!(
            "<h1>{}</h1><p>{}</p><p class=\"muted\">You can close this window.</p>",
            html::escape(title),
            html::escape(message)
        ),
    )
}

/// `303` to the app's `return_url` with `params` appended to its query.
fn back_to_app(return_url: &str, params: &[(&str, &str)]) -> Response<Body> {
    let Ok(mut url) = url::Url::parse(return_url) else {
        return failed();
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    let mut res = html::page(
        StatusCode::SEE_OTHER,
        "Back to the app",
        "<h1>Back to the app</h1><p>Returning you to the app.</p>",
    );
    if let Ok(v) = http::HeaderValue::from_str(url.as_str()) {
        res.headers_mut().insert(http::header::LOCATION, v);
    }
    res
}

fn refused(message: &str) -> Response<Body> {
    page(StatusCode::BAD_REQUEST, "This link can't be used", message)
}

fn failed() -> Response<Body> {
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The connection could not be completed. Go back to the app and try again.",
    )
}

/// Text from the provider (error codes, descriptions), clipped and without control characters.
/// `GET /v1/identity/callback`: the provider's authorization response (RFC 6749 §4.1.2) for an auth session.
pub async fn handle(state: &AppState, req: Request) -> Response<Body> {
    if req.method() != Method::GET {
        return page(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed", "Use GET.");
    }
    let params = match request::query(&req) {
        Ok(p) => p,
        Err(m) => return refused(&m),
    };
    let Some(state_value) = params.get("state").filter(|s| !s.is_empty() && s.len() <= 256) else {
        return refused("The link has no valid state parameter.");
    };
    let now = state.clock.now();
    // Single use whatever happens next: a replay, or a second tab, finds nothing.
    let st = match state.store.take_state(state_value, now).await {
        Ok(Some(st)) => st,
        Ok(None) => return refused("This sign-in link is unknown, expired or already used. Start again from the app."),
        Err(e) => {
            tracing::error!(error = %e, "vault callback: consuming the state failed");
            return failed();
        }
    };
    if let Some(err) = params.get("error") {
        let code = crate::domain::shown(err, 64);
        let description = params
            .get("error_description")
            .map(|d| crate::domain::shown(d, 300))
            .unwrap_or_else(|| "the provider did not complete the sign-in".into());
        if let Err(e) = state.store.fail_session(&st.session_id, &code, &description).await {
            tracing::error!(error = %e, "vault callback: recording a provider error failed");
            return failed();
        }
        tracing::info!(provider = %st.provider, %code, "vault callback: the provider returned an error");
        emit_session_failed(state, &st, &code, now).await;
        if let Some(ret) = &st.return_url {
            return back_to_app(ret, &[("session_id", &st.session_id), ("error", &code)]);
        }
        return page(
            StatusCode::OK,
            "Not connected",
            &format!("The sign-in with {} was not completed ({code}).", st.provider),
        );
    }
    let Some(code) = params.get("code").filter(|c| !c.is_empty() && c.len() <= 4096) else {
        let _ = state
            .store
            .fail_session(
                &st.session_id,
                "invalid_request",
                "the provider sent no authorization code",
            )
            .await;
        return refused("The provider sent no authorization code.");
    };
    match complete(state, &st, state_value, code, now).await {
        Ok(Completed::Connected(display)) => page(
            StatusCode::OK,
            &format!("Connected to {display}"),
            &format!("Your {display} account is connected."),
        ),
        Ok(Completed::AwaitingConfirmation {
            return_url,
            connect_token,
        }) => back_to_app(
            &return_url,
            &[("session_id", &st.session_id), ("connect_token", &connect_token)],
        ),
        Err((code, message)) => {
            if let Err(e) = state.store.fail_session(&st.session_id, code, &message).await {
                tracing::error!(error = %e, "vault callback: recording a failure failed");
            }
            emit_session_failed(state, &st, code, now).await;
            if let Some(ret) = &st.return_url {
                return back_to_app(ret, &[("session_id", &st.session_id), ("error", code)]);
            }
            // The detail (which may name the project and the operator's command) is for the app,
            // through the session's status; the user sees what happened in general terms.
            page(
                StatusCode::BAD_GATEWAY,
                "Not connected",
                &format!("The connection could not be completed ({code}). Go back to the app and try again."),
            )
        }
    }
}

/// `session.failed`: the user denied, or the provider (or the exchange) failed, at the callback.
async fn emit_session_failed(state: &AppState, st: &VaultState, reason: &str, now: i64) {
    let event = Event::new(
        EventType::SessionFailed,
        &st.project_id,
        now,
        &[
            ("user_id", &st.user_id),
            ("provider", &st.provider),
            ("session_id", &st.session_id),
            ("reason", reason),
        ],
    );
    state.events.emit(&state.store, event, now).await;
}

/// How a callback ended well.
enum Completed {
    /// Stored: the provider's display name.
    Connected(String),
    /// Parked until the app confirms it with this token.
    AwaitingConfirmation { return_url: String, connect_token: String },
}

/// Exchange the code and store the connection (or park it for the app's confirmation); else the
/// session error to record.
async fn complete(
    state: &AppState,
    st: &VaultState,
    state_value: &str,
    code: &str,
    now: i64,
) -> Result<Completed, (&'static str, String)> {
    let internal = |what: &str| {
        (
            "internal_error",
            format!("latchkey could not complete the connection ({what})"),
        )
    };
    // The provider, and the connection this one replaces (a failed one recovering is an event).
    let items = state
        .store
        .get_many(
            &[
                crate::store::providers::provider_key(&st.project_id, &st.provider),
                crate::store::connections::connection_key(&st.project_id, &st.user_id, &st.provider),
            ],
            now,
        )
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "vault callback: reading the provider failed");
            internal("store")
        })?;
    let was_failed = items[1]
        .as_ref()
        .and_then(|i| i.status::<ConnectionStatus>())
        .is_some_and(|s| s != ConnectionStatus::Active);
    let provider = vault::resolve_provider(state, &st.project_id, &st.provider, items[0].as_ref())
        .map_err(|e: VaultError| ("provider_not_configured", e.message))?;
    let client = provider.token_client();
    let creds = vault::credentials(state, &client)
        .await
        .map_err(|_| internal("credentials"))?;
    let verifier = match &st.sealed_verifier {
        Some(sealed) => {
            let keyring = vault::keyring(state).map_err(|_| internal("keyring"))?;
            let v = keyring
                .decrypt(&vault_state_context(state_value), sealed)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "vault callback: opening the verifier failed");
                    internal("verifier")
                })?;
            Some(String::from_utf8(v).map_err(|_| internal("verifier"))?)
        }
        None => None,
    };
    let allow = state.config.allow_loopback_outbound;
    let tokens = upstream::exchange_code(
        &state.upstream,
        &client,
        &creds,
        code,
        &st.redirect_uri,
        verifier.as_deref(),
        allow,
    )
    .await
    .map_err(|e| {
        tracing::info!(provider = %st.provider, error = %e, "vault callback: code exchange failed");
        match e {
            upstream::UpstreamError::Rejected { code, .. } => (
                "token_exchange_failed",
                format!("the provider refused the authorization code ({code})"),
            ),
            upstream::UpstreamError::Timeout => ("upstream_timeout", "the provider did not answer in time".into()),
            upstream::UpstreamError::Refused(r) => (
                "upstream_refused",
                format!("the provider's address is not allowed: {r}"),
            ),
            _ => ("upstream_error", "the provider could not be reached".into()),
        }
    })?;
    let (account_id, email) = upstream::account(&state.upstream, &provider.spec, &tokens, allow).await;
    let api_base_url = provider
        .spec
        .api_base_url_from_token
        .as_deref()
        .and_then(|f| tokens.raw.get(f))
        .and_then(|v| v.as_str())
        .and_then(|u| crate::vault::providers::check_url("instance_url", u, allow).ok())
        .map(|u| {
            let s = u.to_string();
            if s.ends_with('/') {
                s
            } else {
                format!("{s}/")
            }
        });
    let ctx = connection_context(&st.project_id, &st.user_id, &st.provider);
    let sealed = vault::seal_tokens(
        state,
        &ctx,
        &Tokens {
            access_token: tokens.access_token.clone(),
            refresh_token: tokens.refresh_token.clone(),
        },
    )
    .await
    .map_err(|_| internal("sealing"))?;
    let conn = Connection {
        account_id,
        email,
        api_base_url,
        ..Connection::new(
            &st.project_id,
            &st.user_id,
            &st.provider,
            vault::granted_scopes(tokens.scope.as_deref(), &st.scopes),
            sealed,
            tokens.expires_in.map(|s| now + s),
            now,
        )
    };
    if let Some(return_url) = &st.return_url {
        let connect_token = secret::random_token("lk_ct_", 32);
        let parked = state
            .store
            .await_confirmation(
                &st.session_id,
                &conn,
                &secret::hash(&connect_token),
                now + CONFIRM_TTL,
                was_failed,
                now,
            )
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "vault callback: parking the connection failed");
                internal("store")
            })?;
        if !parked {
            return Err(("expired", "the session expired before the sign-in finished".into()));
        }
        tracing::info!(project = %st.project_id, provider = %st.provider, "vault callback: awaiting the app's confirmation");
        return Ok(Completed::AwaitingConfirmation {
            return_url: return_url.clone(),
            connect_token,
        });
    }
    let done = state
        .store
        .complete_session(&st.session_id, &conn, now)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "vault callback: storing the connection failed");
            internal("store")
        })?;
    if !done {
        return Err(("expired", "the session expired before the sign-in finished".into()));
    }
    tracing::info!(project = %st.project_id, provider = %st.provider, "vault callback: connected");
    vault::emit_connected(state, &st.project_id, &st.user_id, &st.provider, was_failed, now).await;
    Ok(Completed::Connected(provider.spec.display_name.clone()))
}
