//! `POST`/`GET`/`DELETE /tools/{tool_id}/mcp`: MCP Streamable HTTP forwarded to the tool's server
//! with its bearer token. The JSON-RPC body and the `Mcp-Session-Id`, `MCP-Protocol-Version`,
//! `Accept`, `Content-Type` and `Last-Event-ID` headers go through; the response (JSON or
//! `text/event-stream`, read whole; a GET's long-lived stream for a window a little shorter than the
//! time limit, then ended so the client reconnects) comes back with `Mcp-Session-Id`. An expired token, or one 401
//! from the server, refreshes (single-flight) and retries once (`vault::forward`); a 403 `insufficient_scope` comes back
//! as is with its `WWW-Authenticate`, so the app can initiate again with more scopes.
//!
//! A tool not connected yet is called without a token, so the server's own 401 challenge (with the
//! scopes it wants) reaches the app.
//!
//! The `scope` of a 401 or 403 `Bearer` challenge that comes back is recorded on the tool (one
//! UpdateItem, only when it changed) for the next initiate-oauth to ask for (`tools::scopes`). A
//! refresh that fails makes latchkey read the server's resource metadata again: a server that moved
//! to another authorization server takes the tool with it (`tools::migration`; the old tokens are
//! deleted) and the app is told to initiate again.
//!
//! Budget with a valid token: 1 DynamoDB round trip (project key, tool and tokens in one batch
//! read) and no KMS call once the data key is cached.

use http::{HeaderMap, Method, StatusCode};
use lambda_http::{Body, Request, Response};

use crate::domain::connection::ConnectionStatus;
use crate::domain::tool::{ToolRecord, ToolTokens};
use crate::error::{ToolError, VaultError};
use crate::state::AppState;
use crate::store::connections::tool_tokens_key;
use crate::store::tools as tstore;
use crate::store::FromItem;
use crate::tools::{self, detail, discovery, migration};
use crate::vault::forward::{send_with_held_token, ForwardError};
use crate::vault::refresh::{self, Holder};
use crate::vault::upstream::{precheck, UpstreamError};

const FORWARDED: &[&str] = &[
    "mcp-session-id",
    "mcp-protocol-version",
    "accept",
    "content-type",
    "last-event-id",
];

fn vault_to_tool(e: VaultError) -> ToolError {
    detail(e.status, e.message)
}

/// Record the scope of the server's challenge when it is new, then relay the response.
async fn relay(
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
    crate::vault::forward::relay(res, &["mcp-session-id"], sse_window)
        .await
        .map_err(vault_to_tool)
}

/// A refresh failed: if the server moved to another authorization server, follow it and say so;
/// otherwise the refresh's own error.
async fn refresh_failed(state: &AppState, req: &Request, tool: &ToolRecord, e: VaultError) -> ToolError {
    if matches!(
        e.status,
        StatusCode::UNAUTHORIZED | StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT
    ) {
        let base = crate::http::request::public_base(&state.config, req);
        if let Some(moved) = migration::follow_after_refresh_failure(state, tool, &base).await {
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

/// `POST`/`GET`/`DELETE /tools/{tool_id}/mcp`: MCP Streamable HTTP forwarded with the tool's token.
pub async fn handle(state: &AppState, req: Request) -> Response<Body> {
    if !matches!(*req.method(), Method::POST | Method::GET | Method::DELETE) {
        return detail(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed; use POST, GET or DELETE",
        )
        .response();
    }
    forward(state, &req).await.unwrap_or_else(|e| e.response())
}

async fn forward(state: &AppState, req: &Request) -> Result<Response<Body>, ToolError> {
    let tool_id = tools::tool_id_from("/tools/{tool_id}/mcp", req)?;
    let key = tools::presented_key(req, None)?;
    let mut headers = HeaderMap::new();
    for name in FORWARDED {
        for v in req.headers().get_all(*name) {
            if v.as_bytes().iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                return Err(detail(
                    StatusCode::BAD_REQUEST,
                    format!("header {name} contains control characters"),
                ));
            }
            headers.append(*name, v.clone());
        }
    }
    let body: Vec<u8> = req.body().as_ref().to_vec();
    if body.len() > crate::vault::forward::MAX_PROXY_BODY {
        return Err(detail(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The request body is larger than 4 MiB",
        ));
    }
    let now = state.clock.now();
    let items = state
        .store
        .get_many(
            &[key.store_key(), tstore::tool_key(&tool_id), tool_tokens_key(&tool_id)],
            now,
        )
        .await
        .map_err(|e| tools::store_error("reading a tool", e))?;
    tools::verify_key(&key, items[0].as_ref())?;
    let tool = tools::owned_tool(&key, items[1].as_ref())?;
    let target = url::Url::parse(&tool.server_url).map_err(|_| tools::internal())?;
    precheck(&target, state.config.allow_loopback_outbound)
        .map_err(|e| vault_to_tool(refresh::upstream_failure(&e)))?;
    let timeout = std::time::Duration::from_secs(state.config.upstream_timeout_seconds as u64);
    // A GET opens the server's event stream: relay what arrives within a window shorter than the
    // request's time limit, then end the response (the client reconnects with Last-Event-ID).
    let sse_window = (*req.method() == Method::GET).then(|| {
        std::time::Duration::from_secs((state.config.upstream_timeout_seconds as u64).saturating_sub(3).max(1))
    });
    let Some(held) = items[2]
        .as_ref()
        .map(ToolTokens::from_item)
        .transpose()
        .map_err(|e| tools::store_error("reading tool tokens", e))?
    else {
        // Not connected yet: forward without a token. A server that allows it answers; one that
        // does not answers 401 with its challenge (and the scopes it wants), for the app to
        // initiate OAuth with.
        let mut out = state
            .upstream
            .request(req.method().clone(), target)
            .timeout(timeout)
            .headers(headers);
        if !body.is_empty() {
            out = out.body(body);
        }
        let res = out
            .send()
            .await
            .map_err(|e| vault_to_tool(refresh::upstream_failure(&UpstreamError::from_reqwest(e))))?;
        return relay(state, &tool, res, sse_window).await;
    };
    if held.status != ConnectionStatus::Active {
        return Err(detail(
            StatusCode::UNAUTHORIZED,
            "The tool's authorization can no longer be refreshed; run initiate-oauth again",
        ));
    }
    let client = tools::token_client(&tool);
    let holder = Holder::tool(&held);
    let sent = send_with_held_token(state, &client, &holder, held.held(), now, &tool_id, |access_token| {
        let mut out = state
            .upstream
            .request(req.method().clone(), target.clone())
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
        Ok(res) => relay(state, &tool, res, sse_window).await,
        Err(ForwardError::Refresh(e)) => Err(refresh_failed(state, req, &tool, e).await),
        Err(ForwardError::Send(e)) => Err(vault_to_tool(e)),
    }
}
