//! Forwarding an MCP request (Streamable HTTP) to a tool's server with the token latchkey holds for
//! it (`vault::forward`: expired or answered 401 → refresh once, single-flight, and retry). A tool
//! not connected yet is called without a token, so the server's own 401 challenge (with the scopes
//! it wants) reaches the app.
//!
//! The `scope` of a 401 or 403 `Bearer` challenge that comes back (RFC 6750 §3) is recorded on the
//! tool (one UpdateItem, only when it changed) for the next initiate-oauth to ask for (`scopes`). A
//! refresh that fails makes latchkey read the server's resource metadata again: a server that moved
//! to another authorization server takes the tool with it (`migration`; the old tokens are deleted)
//! and the app is told to initiate again.
//!
//! Budget with a valid token: 1 DynamoDB round trip (project key, tool and tokens in one batch
//! read) and no KMS call once the data key is cached.

use http::{HeaderMap, Method, StatusCode};
use lambda_http::{Body, Response};

use super::{detail, discovery, internal, migration, owned_tool, store_error, token_client, verify_key};
use crate::domain::connection::ConnectionStatus;
use crate::domain::tool::{ToolRecord, ToolTokens};
use crate::error::{ToolError, VaultError};
use crate::state::AppState;
use crate::store::connections::tool_tokens_key;
use crate::store::tools as tstore;
use crate::store::FromItem;
use crate::vault::forward::{relay, send_with_held_token, ForwardError};
use crate::vault::refresh::{upstream_failure, Holder};
use crate::vault::upstream::{precheck, UpstreamError};
use crate::vault::PresentedKey;

/// The MCP request as the app sent it: method, the headers that go through, the body.
#[derive(Clone, Debug)]
pub struct McpRequest {
    pub method: Method,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

fn vault_to_tool(e: VaultError) -> ToolError {
    detail(e.status, e.message)
}

/// Record the scope of the server's challenge when it is new, then relay the response (with
/// `Mcp-Session-Id`).
async fn relay_recording_challenge(
    state: &AppState,
    tool: &ToolRecord,
    res: reqwest::Response,
    sse_window: Option<std::time::Duration>,
) -> Result<Response<Body>, ToolError> {
    let www: Vec<String> = res
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    if let Some(scope) = discovery::challenge_scope(res.status().as_u16(), &www) {
        if tool.challenge_scope.as_deref() != Some(scope.as_str()) {
            if let Err(e) = state.store.record_challenge_scope(&tool.tool_id, &scope).await {
                tracing::warn!(tool = %tool.tool_id, error = %e, "tools: recording a challenge's scope failed");
            }
        }
    }
    relay(res, &["mcp-session-id"], sse_window).await.map_err(vault_to_tool)
}

/// A refresh failed: if the server moved to another authorization server, follow it and say so;
/// otherwise the refresh's own error.
async fn refresh_failed(state: &AppState, base: &str, tool: &ToolRecord, e: VaultError) -> ToolError {
    if matches!(
        e.status,
        StatusCode::UNAUTHORIZED | StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT
    ) {
        if let Some(moved) = migration::follow_after_refresh_failure(state, tool, base).await {
            return detail(
                StatusCode::UNAUTHORIZED,
                format!(
                    "The server moved to the authorization server {}; latchkey is its client there now. Run initiate-oauth again",
                    moved.issuer
                ),
            );
        }
    }
    vault_to_tool(e)
}

/// Forward `request` to tool `tool_id` of the key's project and relay the server's answer. `base` is
/// latchkey's public URL (for its metadata document, should the tool move).
pub async fn forward(
    state: &AppState,
    key: &PresentedKey,
    tool_id: &str,
    request: McpRequest,
    base: &str,
) -> Result<Response<Body>, ToolError> {
    let McpRequest { method, headers, body } = request;
    let now = state.clock.now();
    let items = state
        .store
        .get_many(
            &[key.store_key(), tstore::tool_key(tool_id), tool_tokens_key(tool_id)],
            now,
        )
        .await
        .map_err(|e| store_error("reading a tool", e))?;
    verify_key(key, items[0].as_ref())?;
    let tool = owned_tool(key, items[1].as_ref())?;
    let target = url::Url::parse(&tool.server_url).map_err(|_| internal())?;
    precheck(&target, state.config.allow_loopback_outbound).map_err(|e| vault_to_tool(upstream_failure(&e)))?;
    let timeout = std::time::Duration::from_secs(state.config.upstream_timeout_seconds as u64);
    // A GET opens the server's event stream: relay what arrives within a window shorter than the
    // request's time limit, then end the response (the client reconnects with Last-Event-ID).
    let sse_window = (method == Method::GET).then(|| {
        std::time::Duration::from_secs((state.config.upstream_timeout_seconds as u64).saturating_sub(3).max(1))
    });
    let Some(held) = items[2]
        .as_ref()
        .map(ToolTokens::from_item)
        .transpose()
        .map_err(|e| store_error("reading tool tokens", e))?
    else {
        // Not connected yet: forward without a token. A server that allows it answers; one that
        // does not answers 401 with its challenge (and the scopes it wants), for the app to
        // initiate OAuth with.
        let mut out = state.upstream.request(method, target).timeout(timeout).headers(headers);
        if !body.is_empty() {
            out = out.body(body);
        }
        let res = out
            .send()
            .await
            .map_err(|e| vault_to_tool(upstream_failure(&UpstreamError::from_reqwest(e))))?;
        return relay_recording_challenge(state, &tool, res, sse_window).await;
    };
    if held.status != ConnectionStatus::Active {
        return Err(detail(
            StatusCode::UNAUTHORIZED,
            "The tool's authorization can no longer be refreshed; run initiate-oauth again",
        ));
    }
    let client = token_client(&tool);
    let holder = Holder::tool(&held);
    let sent = send_with_held_token(state, &client, &holder, held.held(), now, tool_id, |access_token| {
        let mut out = state
            .upstream
            .request(method.clone(), target.clone())
            .timeout(timeout)
            .headers(headers.clone())
            .bearer_auth(access_token);
        if !body.is_empty() {
            out = out.body(body.clone());
        }
        out
    })
    .await;
    match sent {
        Ok(res) => relay_recording_challenge(state, &tool, res, sse_window).await,
        Err(ForwardError::Refresh(e)) => Err(refresh_failed(state, base, &tool, e).await),
        Err(ForwardError::Send(e)) => Err(vault_to_tool(e)),
    }
}
