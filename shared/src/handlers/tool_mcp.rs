//! `POST`/`GET`/`DELETE /tools/{tool_id}/mcp`: MCP Streamable HTTP forwarded to the tool's server
//! with its bearer token (`tools::forward`). The JSON-RPC body and the `Mcp-Session-Id`,
//! `MCP-Protocol-Version`, `Accept`, `Content-Type` and `Last-Event-ID` headers go through; the
//! response (JSON or `text/event-stream`, read whole; a GET's long-lived stream for a window a
//! little shorter than the time limit, then ended so the client reconnects) comes back with
//! `Mcp-Session-Id`. An expired token, or one 401 from the server, refreshes (single-flight) and
//! retries once; a 403 `insufficient_scope` comes back as is with its `WWW-Authenticate`, so the app
//! can initiate again with more scopes.

use http::{HeaderMap, Method, StatusCode};
use lambda_http::{Body, Request, Response};

use crate::error::ToolError;
use crate::state::AppState;
use crate::tools::forward::McpRequest;
use crate::tools::{self, detail};
use crate::vault::forward::MAX_PROXY_BODY;

/// The request headers an MCP client's request keeps.
const FORWARDED: &[&str] = &[
    "mcp-session-id",
    "mcp-protocol-version",
    "accept",
    "content-type",
    "last-event-id",
];

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
    if body.len() > MAX_PROXY_BODY {
        return Err(detail(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The request body is larger than 4 MiB",
        ));
    }
    let request = McpRequest {
        method: req.method().clone(),
        headers,
        body,
    };
    let base = crate::http::request::public_base(&state.config, req);
    tools::forward::forward(state, &key, &tool_id, request, &base).await
}
