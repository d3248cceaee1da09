//! `POST /tools/{tool_id}/initiate-oauth` and `POST /tools/{tool_id}/complete-oauth`: the
//! authorization code flow with PKCE S256 and the RFC 8707 `resource`, in the Selise Blocks
//! reference's shapes.
//!
//! Initiate takes the reference's `{redirect_uri, scopes?, project_key}` and `replace_scopes`. It
//! probes the server unauthenticated and reads its resource metadata each time: the challenge's
//! scope feeds the scope choice (`tools::scopes`: without `scopes`, the latest challenge, the
//! probe's, the app's configured scopes, `scopes_supported`; always joined with what the tool
//! holds unless `replace_scopes`), and a server that moved to another authorization server takes
//! the tool with it first (`tools::migration`). Initiate: 2 DynamoDB round trips (project key, tool
//! and tokens in one batch read; the state) plus the probe, and a transaction when the tool moves.
//!
//! Complete takes the reference's `{code, state, project_key}` and, per RFC 9207, the `iss` of the
//! authorization response (required when the authorization server advertises it). A state started
//! at another authorization server than the tool's (it moved meanwhile) is refused before the code
//! is used.
//!
//! Complete: ≤ 3 DynamoDB round trips (project key + tool in one batch read; consume the state;
//! store the tokens) plus the token exchange.

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

use crate::clock::iso8601;
use crate::crypto::{envelope::context, secret, EncryptionContext};
use crate::error::{FieldError, ToolError};
use crate::http::{request, response};
use crate::oauth::pkce;
use crate::state::AppState;
use crate::store::tools::{self as tstore, ToolState, STATE_TTL};
use crate::store::vault::{tool_tokens_key, Connection};
use crate::tools::scopes::{self, ScopeInputs};
use crate::tools::{self, detail, discovery, migration, Fields};
use crate::vault::upstream::{self, UpstreamError};

fn state_context(state_value: &str) -> EncryptionContext {
    context([("kind", "tool_state"), ("state", &secret::hash(state_value))])
}

fn csrf() -> ToolError {
    ToolError::Validation(vec![FieldError {
        loc: vec!["body".into(), "state".into()],
        msg: "State parameter does not match. Possible CSRF attack.".into(),
        kind: "value_error.csrf".into(),
    }])
}

pub async fn initiate(state: &AppState, req: Request) -> Response<Body> {
    if req.method() != Method::POST {
        return detail(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed; use POST").response();
    }
    initiate_flow(state, &req).await.unwrap_or_else(|e| e.response())
}

async fn initiate_flow(state: &AppState, req: &Request) -> Result<Response<Body>, ToolError> {
    let tool_id = tools::tool_id_from("/tools/{tool_id}/initiate-oauth", req)?;
    let body = tools::json_body(req)?;
    let mut f = Fields::new(&body);
    let project_key = f.optional("project_key");
    let redirect_uri = f.required("redirect_uri");
    let given = f.string_list("scopes");
    let replace = f.boolean("replace_scopes").unwrap_or(false);
    if let Some(r) = &redirect_uri {
        if let Err(why) = tools::check_redirect_uri(r) {
            f.invalid("redirect_uri", &why);
        }
    }
    if let Some(list) = &given {
        if list.len() > 50 || !list.iter().all(|s| crate::oauth::scope::is_scope_token(s)) {
            f.invalid("scopes", "scopes must be at most 50 valid scope tokens");
        }
    }
    let key = tools::presented_key(req, project_key.as_deref());
    if key.is_err() && project_key.is_none() {
        f.required("project_key");
    }
    f.finish()?;
    let key = key?;
    let redirect_uri = redirect_uri.unwrap_or_default();
    let now = state.clock.now();
    // Round trip 1: the project key, the tool and its tokens (what it holds).
    let items = state
        .store
        .get_many(
            &[key.store_key(), tstore::tool_key(&tool_id), tool_tokens_key(&tool_id)],
            now,
        )
        .await
        .map_err(|e| tools::store_error("reading a tool", e))?;
    tools::verify_key(&key, items[0].as_ref())?;
    let mut tool = tools::owned_tool(&key, items[1].as_ref())?;
    if !tool.redirect_uris.is_empty() && !tool.redirect_uris.contains(&redirect_uri) {
        return Err(ToolError::Validation(vec![FieldError {
            loc: vec!["body".into(), "redirect_uri".into()],
            msg: "redirect_uri is not one of the tool's redirect_uris".into(),
            kind: "value_error".into(),
        }]));
    }
    let granted = items[2]
        .as_ref()
        .map(Connection::from_item)
        .transpose()
        .map_err(|e| tools::store_error("reading tool tokens", e))?
        .map(|c| c.scopes)
        .unwrap_or_default();
    // The server as it is now: its challenge, and the authorization server it lists.
    let found = discovery::discover_resource(&state.upstream, &tool.server_url, state.config.allow_loopback_outbound)
        .await
        .map_err(|e| detail(StatusCode::BAD_GATEWAY, format!("Discovery failed: {e}")))?;
    if let Some(issuer) = migration::moved_to(&tool, &found) {
        let base = request::public_base(&state.config, req);
        tool = migration::move_tool(state, &tool, &found, &issuer, &base, Some(&redirect_uri)).await?;
    }
    let supported = found.scopes_supported();
    let scopes = scopes::scopes_to_request(&ScopeInputs {
        given: given.as_deref(),
        replace,
        granted: &granted,
        recorded_challenge: tool.challenge_scope.as_deref(),
        probed_challenge: found.challenge_scope.as_deref(),
        configured: &tool.scopes,
        scopes_supported: supported.as_deref(),
        offline_access: scopes::offline_access_allowed(&tool.metadata),
    });
    let state_value = secret::random_token("", 32);
    let verifier = secret::random_token("", 48);
    let sealed = crate::vault::keyring(state)
        .map_err(|_| tools::internal())?
        .encrypt(&state_context(&state_value), verifier.as_bytes())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "tools: sealing a verifier failed");
            tools::internal()
        })?;
    let expires_at = now + STATE_TTL;
    state
        .store
        .put_tool_state(
            &state_value,
            &ToolState {
                tool_id: tool_id.clone(),
                project_id: key.project_id.clone(),
                redirect_uri: redirect_uri.clone(),
                scopes: scopes.clone(),
                issuer: Some(tool.issuer.clone()),
                sealed_verifier: sealed,
                expires_at,
            },
            now,
        )
        .await
        .map_err(|e| tools::store_error("storing a state", e))?;
    let endpoint = tool
        .metadata
        .get("authorization_endpoint")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let mut url = url::Url::parse(endpoint).map_err(|_| tools::internal())?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &tool.client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("state", &state_value)
            .append_pair("code_challenge", &pkce::challenge_for(&verifier))
            .append_pair("code_challenge_method", "S256")
            .append_pair("resource", &tool.resource);
        if !scopes.is_empty() {
            q.append_pair("scope", &scopes.join(" "));
        }
    }
    Ok(response::json(
        StatusCode::OK,
        &json!({
            "authorization_url": url.as_str(),
            "state": state_value,
            "expires_at": iso8601(expires_at),
            "item_id": tool_id,
        }),
    ))
}

pub async fn complete(state: &AppState, req: Request) -> Response<Body> {
    if req.method() != Method::POST {
        return detail(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed; use POST").response();
    }
    complete_flow(state, &req).await.unwrap_or_else(|e| e.response())
}

async fn complete_flow(state: &AppState, req: &Request) -> Result<Response<Body>, ToolError> {
    let tool_id = tools::tool_id_from("/tools/{tool_id}/complete-oauth", req)?;
    let body = tools::json_body(req)?;
    let mut f = Fields::new(&body);
    let code = f.required("code");
    let state_value = f.required("state");
    // RFC 9207: the `iss` the authorization response carried (not in the reference's body; required
    // when the authorization server advertises it, compared exactly when given).
    let iss = f.optional("iss");
    let project_key = if req.headers().contains_key("x-api-key") {
        f.optional("project_key")
    } else {
        f.required("project_key")
    };
    if code.as_ref().is_some_and(|c| c.len() > 4096) {
        f.invalid("code", "code is longer than 4096 characters");
    }
    if state_value.as_ref().is_some_and(|s| s.len() > 512) {
        f.invalid("state", "state is longer than 512 characters");
    }
    f.finish()?;
    let (code, state_value) = (code.unwrap_or_default(), state_value.unwrap_or_default());
    let key = tools::presented_key(req, project_key.as_deref())?;
    let now = state.clock.now();
    // Round trip 1: the project key and the tool.
    let items = state
        .store
        .get_many(&[key.store_key(), tstore::tool_key(&tool_id)], now)
        .await
        .map_err(|e| tools::store_error("reading a tool", e))?;
    tools::verify_key(&key, items[0].as_ref())?;
    let tool = tools::owned_tool(&key, items[1].as_ref())?;
    // Round trip 2: consume the state, whatever happens next.
    let st = state
        .store
        .take_tool_state(&state_value, &tool.tool_id, &key.project_id, now)
        .await
        .map_err(|e| tools::store_error("consuming a state", e))?
        .ok_or_else(csrf)?;
    // SEP-2352: a code from the authorization server the tool left is never sent to its new one.
    if st.issuer.as_deref().is_some_and(|i| i != tool.issuer) {
        return Err(detail(
            StatusCode::BAD_REQUEST,
            "The server moved to another authorization server after this flow started; run initiate-oauth again (the code was not used)",
        ));
    }
    let advertised = tool.metadata.get("authorization_response_iss_parameter_supported") == Some(&Value::Bool(true));
    match iss.as_deref() {
        Some(i) if i != tool.issuer => {
            return Err(detail(
                StatusCode::BAD_REQUEST,
                "The authorization response's iss is not the tool's authorization server (RFC 9207); the code was not used",
            ))
        }
        None if advertised => {
            return Err(detail(
                StatusCode::BAD_REQUEST,
                "The authorization server identifies its responses (RFC 9207): pass the iss parameter the redirect carried; the code was not used",
            ))
        }
        _ => {}
    }
    let verifier = crate::vault::keyring(state)
        .map_err(|_| tools::internal())?
        .decrypt(&state_context(&state_value), &st.sealed_verifier)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "tools: opening a verifier failed");
            tools::internal()
        })?;
    let verifier = String::from_utf8(verifier).map_err(|_| tools::internal())?;
    let provider = tools::as_provider(&tool);
    let creds = crate::vault::credentials(state, &provider)
        .await
        .map_err(|_| tools::internal())?;
    let tokens = upstream::exchange_code(
        &state.upstream,
        &provider.spec,
        &creds,
        &code,
        &st.redirect_uri,
        Some(&verifier),
        state.config.allow_loopback_outbound,
    )
    .await
    .map_err(|e| {
        tracing::info!(tool = %tool_id, error = %e, "tools: code exchange failed");
        match e {
            UpstreamError::Rejected { code, .. } if code == "invalid_grant" => {
                detail(StatusCode::BAD_REQUEST, "Invalid or expired authorization code")
            }
            UpstreamError::Rejected { code, status } => detail(
                StatusCode::UNAUTHORIZED,
                format!("The authorization server rejected the token exchange ({code}, HTTP {status})"),
            ),
            UpstreamError::Timeout => detail(
                StatusCode::GATEWAY_TIMEOUT,
                "The authorization server did not answer in time",
            ),
            UpstreamError::Refused(r) => detail(
                StatusCode::BAD_GATEWAY,
                format!("The authorization server's address is not allowed: {r}"),
            ),
            UpstreamError::Unavailable(_) => {
                detail(StatusCode::BAD_GATEWAY, "The authorization server could not be reached")
            }
        }
    })?;
    let conn = Connection {
        tool_id: Some(tool_id.clone()),
        project_id: key.project_id.clone(),
        user_id: String::new(),
        provider: "mcp".into(),
        scopes: crate::vault::granted_scopes(tokens.scope.as_deref(), &st.scopes),
        account_id: None,
        email: None,
        status: "active".into(),
        sealed_tokens: Vec::new(),
        expires_at: tokens.expires_in.map(|s| now + s),
        api_base_url: None,
        version: 0,
        refresh_lock: None,
        created_at: now,
        updated_at: now,
    };
    let sealed = crate::vault::seal_tokens(
        state,
        &conn.context(),
        &crate::vault::Tokens {
            access_token: tokens.access_token.clone(),
            refresh_token: tokens.refresh_token.clone(),
        },
    )
    .await
    .map_err(|_| tools::internal())?;
    // Round trip 3: store the tokens.
    state
        .store
        .put_connection(
            &Connection {
                sealed_tokens: sealed,
                ..conn
            },
            now,
        )
        .await
        .map_err(|e| tools::store_error("storing tool tokens", e))?;
    tracing::info!(tool = %tool_id, "tools: OAuth completed");
    Ok(response::json(
        StatusCode::OK,
        &tools::success(&tool_id, "OAuth flow completed successfully"),
    ))
}
