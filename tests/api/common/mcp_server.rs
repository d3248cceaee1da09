//! A minimal MCP server (Streamable HTTP) on loopback that requires OAuth and trusts latchkey's own
//! authorization server: it publishes protected resource metadata naming latchkey's issuer,
//! introspects every bearer token at latchkey (RFC 7662, resource-server credentials), and answers
//! `initialize`, `notifications/initialized`, `tools/list` and `tools/call`. Its 401 challenge's
//! `scope`, its metadata's `scopes_supported` and the authorization server it names (with the
//! resource-server credentials it introspects with) can be changed while it runs.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde_json::{json, Value};

#[derive(Default)]
pub struct McpState {
    pub issuer: String,
    pub resource: String,
    pub rs_id: String,
    pub rs_secret: String,
    pub introspections: u64,
    pub requests: u64,
    /// Scope `tools/call` of the `admin` tool needs (403 insufficient_scope without it).
    pub admin_scope: String,
    /// `scope` of the 401 challenge, if any.
    pub challenge_scope: Option<String>,
    /// The resource metadata's `scopes_supported` (omitted when `None`).
    pub scopes_supported: Option<Vec<String>>,
    /// Answer with `text/event-stream` when the client accepts it.
    pub sse: bool,
    /// GET opens an event stream that sends one event and stays open.
    pub sse_get: bool,
    /// Answer the next authenticated request 401 even though its token is valid (the server
    /// revoked it early).
    pub reject_next: bool,
    /// Requests by method.
    pub deletes: u64,
    /// Last `Mcp-Session-Id` and `MCP-Protocol-Version` headers seen.
    pub last_session: Option<String>,
    pub last_protocol: Option<String>,
}

#[derive(Clone)]
pub struct McpServer {
    pub url: String,
    pub state: Arc<Mutex<McpState>>,
}

impl McpServer {
    /// Bind first (the resource URL is needed to register the resource server), then serve.
    pub async fn bind() -> (tokio::net::TcpListener, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        (listener, url)
    }

    pub async fn serve(listener: tokio::net::TcpListener, issuer: &str, rs_id: &str, rs_secret: &str) -> McpServer {
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(McpState {
            issuer: issuer.into(),
            resource: url.clone(),
            rs_id: rs_id.into(),
            rs_secret: rs_secret.into(),
            // What a real MCP server declares (as the example servers do): its own scopes, the
            // everyday one named in its 401 challenge (MCP 2025-11-25 scope selection), the admin
            // one asked for by step-up after a 403.
            admin_scope: "mcp:admin".into(),
            challenge_scope: Some("mcp:tools".into()),
            scopes_supported: Some(vec!["mcp:tools".into(), "mcp:admin".into()]),
            ..Default::default()
        }));
        let app = Router::new()
            .route("/.well-known/oauth-protected-resource/mcp", get(prm))
            .route("/mcp", any(mcp))
            .with_state(Arc::clone(&state));
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        McpServer { url, state }
    }

    /// Name another authorization server in the resource metadata, and introspect there with
    /// these resource-server credentials from now on (the server moved).
    pub fn move_to(&self, issuer: &str, rs_id: &str, rs_secret: &str) {
        let mut st = self.state.lock().unwrap();
        st.issuer = issuer.into();
        st.rs_id = rs_id.into();
        st.rs_secret = rs_secret.into();
    }
}

async fn prm(State(s): State<Arc<Mutex<McpState>>>) -> Json<Value> {
    let st = s.lock().unwrap();
    let mut doc = json!({
        "resource": st.resource,
        "authorization_servers": [st.issuer],
        "bearer_methods_supported": ["header"],
    });
    if let Some(supported) = &st.scopes_supported {
        doc["scopes_supported"] = json!(supported);
    }
    Json(doc)
}

fn challenge(s: &McpState) -> String {
    let base = s.resource.trim_end_matches("/mcp");
    let mut www = format!("Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\"");
    if let Some(scope) = &s.challenge_scope {
        www.push_str(&format!(", scope=\"{scope}\""));
    }
    www
}

async fn mcp(
    State(s): State<Arc<Mutex<McpState>>>,
    method: axum::http::Method,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (issuer, rs_id, rs_secret, www) = {
        let mut st = s.lock().unwrap();
        st.requests += 1;
        st.last_session = headers
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        st.last_protocol = headers
            .get("mcp-protocol-version")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        (
            st.issuer.clone(),
            st.rs_id.clone(),
            st.rs_secret.clone(),
            challenge(&st),
        )
    };
    let unauthorized = || (StatusCode::UNAUTHORIZED, [("www-authenticate", www.clone())], "").into_response();
    let Some(token) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return unauthorized();
    };
    // Introspect at latchkey.
    let res = reqwest::Client::new()
        .post(format!("{issuer}/introspect"))
        .basic_auth(&rs_id, Some(&rs_secret))
        .form(&[("token", token)])
        .send()
        .await;
    s.lock().unwrap().introspections += 1;
    let info: Value = match res {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    if info["active"] != true {
        return unauthorized();
    }
    {
        let mut st = s.lock().unwrap();
        if st.reject_next {
            st.reject_next = false;
            drop(st);
            return unauthorized();
        }
    }
    if method == axum::http::Method::GET {
        if s.lock().unwrap().sse_get {
            let body = axum::body::Body::new(OpenStream {
                first: Some(axum::body::Bytes::from_static(
                    b"id: 1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n",
                )),
            });
            return ([("content-type", "text/event-stream")], body).into_response();
        }
        return (StatusCode::METHOD_NOT_ALLOWED, "no SSE stream here").into_response();
    }
    if method == axum::http::Method::DELETE {
        s.lock().unwrap().deletes += 1;
        return StatusCode::OK.into_response();
    }
    let Ok(msg) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    let id = msg["id"].clone();
    let scope = info["scope"].as_str().unwrap_or("").to_string();
    let result = match msg["method"].as_str() {
        Some("initialize") => json!({
            "protocolVersion": msg["params"]["protocolVersion"].as_str().unwrap_or("2025-11-25"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "latchkey-test-mcp", "version": "1.0.0"},
        }),
        Some("notifications/initialized") => return StatusCode::ACCEPTED.into_response(),
        Some("tools/list") => json!({"tools": [
            {"name": "whoami", "description": "Who the token belongs to", "inputSchema": {"type": "object"}},
            {"name": "admin", "description": "Needs the admin scope", "inputSchema": {"type": "object"}},
        ]}),
        Some("tools/call") => {
            let admin_scope = s.lock().unwrap().admin_scope.clone();
            if msg["params"]["name"] == "admin" && !scope.split(' ').any(|x| x == admin_scope) {
                let www = format!("Bearer error=\"insufficient_scope\", scope=\"{admin_scope}\"");
                return (StatusCode::FORBIDDEN, [("www-authenticate", www)], "").into_response();
            }
            json!({"content": [{"type": "text", "text": format!("you are {}", info["username"].as_str().unwrap_or(""))}]})
        }
        _ => {
            return Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "method not found"}}))
                .into_response()
        }
    };
    let reply = json!({"jsonrpc": "2.0", "id": id, "result": result});
    let sse = s.lock().unwrap().sse
        && headers
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/event-stream"));
    let mut res = if sse {
        (
            [("content-type", "text/event-stream")],
            format!("event: message\ndata: {reply}\n\n"),
        )
            .into_response()
    } else {
        Json(reply).into_response()
    };
    if msg["method"] == "initialize" {
        res.headers_mut()
            .insert("mcp-session-id", "session-123".parse().unwrap());
    }
    res
}

/// An event stream that sends one event and then stays open.
struct OpenStream {
    first: Option<axum::body::Bytes>,
}

impl http_body::Body for OpenStream {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        match self.first.take() {
            Some(b) => std::task::Poll::Ready(Some(Ok(http_body::Frame::data(b)))),
            None => std::task::Poll::Pending,
        }
    }
}
