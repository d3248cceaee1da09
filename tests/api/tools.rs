//! Remote MCP servers ("tools") end to end over real HTTP: an MCP server on loopback that trusts
//! latchkey's own authorization server is registered as a tool (discovery, a Client ID Metadata
//! Document client), initiated, signed in and approved in a browser-like client, completed, and
//! called through forwarding; then expiry and refresh, revocation and the 401 path, 403
//! insufficient_scope, and the reference's error shapes for bad input.

use crate::common;

use common::mcp_server::McpServer;
use common::{Project, TestApp};
use serde_json::{json, Value};

const REDIRECT: &str = "http://127.0.0.1:7777/callback";

struct Setup {
    app: TestApp,
    mcp: McpServer,
    project: Project,
}

async fn setup_with(config: &[(&str, &str)]) -> Setup {
    let app = TestApp::start_configured(None, config).await;
    let (listener, url) = McpServer::bind().await;
    let (rs_id, rs_secret) = app.resource_server(&url).await;
    let mcp = McpServer::serve(listener, &app.url("/oauth/2.1"), &rs_id, &rs_secret).await;
    let project = app.project("tools").await;
    Setup { app, mcp, project }
}

async fn setup() -> Setup {
    setup_with(&[]).await
}

impl Setup {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.app.vault(method, path, Some(&self.project.api_key), body).await
    }

    async fn register(&self) -> String {
        let (status, body) = self
            .call(
                "POST",
                "/tools",
                Some(json!({"name": "Test MCP", "server_url": self.mcp.url, "redirect_uris": [REDIRECT]})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["is_success"], true);
        body["item_id"].as_str().unwrap().to_string()
    }

    /// initiate → browser → (code, state).
    async fn authorize(&self, tool_id: &str, scopes: Option<&[&str]>) -> (String, String) {
        let mut body = json!({"project_key": self.project.api_key, "redirect_uri": REDIRECT});
        if let Some(s) = scopes {
            body["scopes"] = json!(s);
        }
        let (status, init) = self
            .app
            .vault("POST", &format!("/tools/{tool_id}/initiate-oauth"), None, Some(body))
            .await;
        assert_eq!(status, 200, "{init}");
        let location = self
            .app
            .approve_in_browser(init["authorization_url"].as_str().unwrap(), "tool-user@example.com")
            .await;
        assert!(location.starts_with(REDIRECT), "{location}");
        let q: std::collections::HashMap<String, String> =
            url::Url::parse(&location).unwrap().query_pairs().into_owned().collect();
        assert_eq!(q["state"], init["state"].as_str().unwrap());
        assert_eq!(q["iss"], self.app.url("/oauth/2.1"));
        (q["code"].clone(), q["state"].clone())
    }

    /// complete-oauth with the `iss` latchkey's authorization server puts on its redirects (RFC
    /// 9207) added when the body names a state and no iss.
    async fn complete(&self, tool_id: &str, mut body: Value) -> (u16, Value) {
        if body.get("state").is_some() && body.get("iss").is_none() {
            body["iss"] = json!(self.app.url("/oauth/2.1"));
        }
        self.app
            .vault("POST", &format!("/tools/{tool_id}/complete-oauth"), None, Some(body))
            .await
    }

    async fn connected(&self) -> String {
        let tool_id = self.register().await;
        let (code, state) = self.authorize(&tool_id, None).await;
        let (status, body) = self
            .complete(
                &tool_id,
                json!({"code": code, "state": state, "project_key": self.project.api_key}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        tool_id
    }

    /// One JSON-RPC call through forwarding: (status, headers, body).
    async fn rpc(&self, tool_id: &str, method: &str, params: Value) -> (u16, reqwest::header::HeaderMap, String) {
        let res = self
            .app
            .http
            .post(self.app.url(&format!("/tools/{tool_id}/mcp")))
            .header("x-api-key", &self.project.api_key)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .header("mcp-session-id", "session-123")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        (status, headers, res.text().await.unwrap())
    }
}

#[tokio::test]
async fn register_initiate_complete_and_forward_to_an_oauth_protected_mcp_server() {
    let s = setup().await;
    let (status, body) = s
        .call(
            "POST",
            "/tools",
            Some(json!({"name": "Test MCP", "server_url": s.mcp.url, "redirect_uris": [REDIRECT]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let tool_id = body["item_id"].as_str().unwrap().to_string();
    let tool = &body["tool"];
    // Discovery: the 401 challenge named the resource metadata, which named latchkey's issuer.
    assert_eq!(tool["authorization_server"], s.app.url("/oauth/2.1"));
    assert_eq!(tool["resource"], s.mcp.url);
    assert_eq!(tool["authorization_server_metadata"]["issuer"], s.app.url("/oauth/2.1"));
    // latchkey's authorization server supports metadata documents: latchkey is that client.
    assert_eq!(tool["client_registration"], "client_metadata_document");
    let cimd_url = s.app.url(&format!("/tools/{tool_id}/client-metadata.json"));
    assert_eq!(tool["client_id"], cimd_url);
    // No scopes configured: each initiate asks for what the server then declares.
    assert_eq!(tool["scopes"], json!([]));
    assert_eq!(tool["connection"]["status"], "not_connected");
    let doc: Value = reqwest::get(&cimd_url).await.unwrap().json().await.unwrap();
    assert_eq!(doc["client_id"], cimd_url);
    assert_eq!(doc["redirect_uris"], json!([REDIRECT]));
    assert_eq!(doc["token_endpoint_auth_method"], "none");

    let (status, init) = s
        .app
        .vault(
            "POST",
            &format!("/tools/{tool_id}/initiate-oauth"),
            None,
            Some(json!({"project_key": s.project.api_key, "redirect_uri": REDIRECT})),
        )
        .await;
    assert_eq!(status, 200, "{init}");
    let auth_url = init["authorization_url"].as_str().unwrap();
    let q: std::collections::HashMap<String, String> =
        url::Url::parse(auth_url).unwrap().query_pairs().into_owned().collect();
    assert!(auth_url.starts_with(&s.app.url("/oauth/2.1/authorize?")));
    assert_eq!(q["resource"], s.mcp.url);
    assert_eq!(q["code_challenge_method"], "S256");
    // The scope the server's 401 challenge named, and offline_access (latchkey offers it).
    assert_eq!(q["scope"], "mcp:tools offline_access");
    assert_eq!(q["client_id"], cimd_url);
    assert_eq!(q["state"], init["state"].as_str().unwrap());
    assert!(init["expires_at"].as_str().unwrap().ends_with('Z'));

    // Not connected yet: forwarded without a token, the server's challenge comes back.
    let (status, headers, _) = s.rpc(&tool_id, "tools/list", json!({})).await;
    assert_eq!(status, 401);
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("resource_metadata="));
    assert!(
        headers.get("x-latchkey-error").is_none(),
        "the server's answer, not latchkey's"
    );

    let (code, state) = s.authorize(&tool_id, None).await;
    // RFC 9207: latchkey's authorization server advertises iss, so a missing or wrong iss is
    // refused before the code is used (and the state is spent).
    let (status, body) = s
        .app
        .vault(
            "POST",
            &format!("/tools/{tool_id}/complete-oauth"),
            None,
            Some(json!({"code": code, "state": state, "project_key": s.project.api_key})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("RFC 9207"));
    let (code, state) = s.authorize(&tool_id, None).await;
    let (status, body) = s
        .complete(
            &tool_id,
            json!({"code": code, "state": state, "project_key": s.project.api_key, "iss": "https://evil.invalid"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (code, state) = s.authorize(&tool_id, None).await;
    let before = s.app.calls();
    let (status, body) = s
        .complete(
            &tool_id,
            json!({"code": code, "state": state, "project_key": s.project.api_key}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"is_success": true, "item_id": tool_id, "detail": "OAuth flow completed successfully", "error": {}})
    );
    // Complete: ≤ 3 round trips of its own; the token endpoint it calls (latchkey itself here)
    // makes its own ≤ 2, and the metadata-document client lookup 1.
    let after = s.app.calls();
    assert!(
        after.0 - before.0 <= 3 + 2 + 1,
        "complete-oauth used {} round trips",
        after.0 - before.0
    );

    let (status, shown) = s.call("GET", &format!("/tools/{tool_id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(shown["connection"]["status"], "connected");
    assert!(!shown.to_string().contains("lk_at_") && !shown.to_string().contains("lk_rt_"));

    let (status, headers, text) = s
        .rpc(
            &tool_id,
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers["mcp-session-id"], "session-123");
    let (status, _, text) = s.rpc(&tool_id, "tools/list", json!({})).await;
    assert_eq!(status, 200, "{text}");
    let list: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(list["result"]["tools"][0]["name"], "whoami");
    assert_eq!(s.mcp.state.lock().unwrap().last_session.as_deref(), Some("session-123"));
    assert_eq!(s.mcp.state.lock().unwrap().last_protocol.as_deref(), Some("2025-11-25"));

    // Warm forwarding: 1 round trip of latchkey's own (the MCP server's introspection at latchkey
    // adds its 1), no KMS.
    let before = s.app.calls();
    let (status, _, text) = s.rpc(&tool_id, "tools/call", json!({"name": "whoami"})).await;
    assert_eq!(status, 200);
    assert!(text.contains("you are tool-user@example.com"), "{text}");
    let after = s.app.calls();
    assert_eq!((after.0 - before.0, after.1 - before.1), (1 + 1, 0));

    // SSE responses come back as they are.
    s.mcp.state.lock().unwrap().sse = true;
    let (status, headers, text) = s.rpc(&tool_id, "tools/list", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    assert!(text.starts_with("event: message\ndata: {"), "{text}");
}

#[tokio::test]
async fn expiry_refreshes_and_a_revoked_grant_takes_the_401_path() {
    let s = setup().await;
    let tool_id = s.connected().await;
    // Past the access token's lifetime: latchkey refreshes (with the resource) before forwarding.
    s.app.server.state.clock.advance(3700);
    let (status, _, text) = s.rpc(&tool_id, "tools/list", json!({})).await;
    assert_eq!(status, 200, "{text}");
    let (_, shown) = s.call("GET", &format!("/tools/{tool_id}"), None).await;
    assert_eq!(shown["connection"]["status"], "connected");

    // The user's grant is revoked at the authorization server: the server answers 401, the refresh
    // is refused, and the app is told to authorize again.
    let state = &s.app.server.state;
    for (g, _) in state.store.list_grants(None, state.clock.now()).await.unwrap() {
        state.store.revoke_grant(&g.grant_id, state.clock.now()).await.unwrap();
    }
    let (status, _, text) = s.rpc(&tool_id, "tools/list", json!({})).await;
    assert_eq!(status, 401, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(
        v["detail"].as_str().unwrap().contains("can no longer be refreshed"),
        "{v}"
    );
    let (_, shown) = s.call("GET", &format!("/tools/{tool_id}"), None).await;
    assert_eq!(shown["connection"]["status"], "reauthorization_required");
    // Authorizing again restores it.
    let (code, st) = s.authorize(&tool_id, None).await;
    let (status, _) = s
        .complete(
            &tool_id,
            json!({"code": code, "state": st, "project_key": s.project.api_key}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = s.rpc(&tool_id, "tools/list", json!({})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn rfc6750_3_1_insufficient_scope_is_passed_through_for_step_up() {
    let s = setup().await;
    let tool_id = s.connected().await;
    let (status, headers, _) = s.rpc(&tool_id, "tools/call", json!({"name": "admin"})).await;
    assert_eq!(status, 403);
    let www = headers["www-authenticate"].to_str().unwrap();
    assert!(
        www.contains("insufficient_scope") && www.contains("scope=\"mcp:admin\""),
        "{www}"
    );
}

#[tokio::test]
async fn delete_removes_the_tool_and_its_tokens() {
    let s = setup().await;
    let tool_id = s.connected().await;
    let (status, body) = s.call("DELETE", &format!("/tools/{tool_id}"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["item_id"], tool_id);
    let items = s
        .app
        .server
        .state
        .store
        .query_partition(&format!("TOOL#{tool_id}"), 0)
        .await
        .unwrap();
    assert!(items.is_empty());
    let (status, body) = s.call("GET", &format!("/tools/{tool_id}"), None).await;
    assert_eq!((status, body), (404, json!({"detail": "Tool not found"})));
    let (status, _, _) = s.rpc(&tool_id, "tools/list", json!({})).await;
    assert_eq!(status, 404);
}

fn csrf_error() -> Value {
    json!({"detail": [{"loc": ["body", "state"], "msg": "State parameter does not match. Possible CSRF attack.", "type": "value_error.csrf"}]})
}

async fn tool_tokens(s: &Setup, tool_id: &str) -> Option<latchkey::domain::tool::ToolTokens> {
    s.app.server.state.store.get_tool_tokens(tool_id, 0).await.unwrap()
}

#[tokio::test]
async fn complete_oauth_refuses_bad_states_codes_tools_and_keys_in_the_reference_shapes() {
    let s = setup().await;
    let tool_id = s.register().await;
    let key = s.project.api_key.clone();

    // Missing and ill-typed fields: one FastAPI entry each, nothing consumed.
    let (status, body) = s.complete(&tool_id, json!({})).await;
    assert_eq!(status, 422);
    let locs: Vec<Value> = body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["loc"].clone())
        .collect();
    assert_eq!(
        locs,
        vec![
            json!(["body", "code"]),
            json!(["body", "state"]),
            json!(["body", "project_key"])
        ]
    );
    assert!(body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["type"] == "value_error.missing" && d["msg"] == "field required"));
    let (status, body) = s
        .complete(&tool_id, json!({"code": 12345, "state": "x", "project_key": key}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"detail": [{"loc": ["body", "code"], "msg": "str type expected", "type": "type_error.str"}]})
    );
    let (status, body) = s
        .complete(&tool_id, json!({"code": "", "state": "x", "project_key": key}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "code"]));
    let res = s
        .app
        .http
        .post(s.app.url(&format!("/tools/{tool_id}/complete-oauth")))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);

    // Unknown state.
    let (status, body) = s
        .complete(&tool_id, json!({"code": "c", "state": "unknown", "project_key": key}))
        .await;
    assert_eq!((status, body), (422, csrf_error()));

    // A real code and state: wrong project key and unknown tool change nothing.
    let (code, state) = s.authorize(&tool_id, None).await;
    let (status, body) = s
        .complete(
            &tool_id,
            json!({"code": code, "state": state, "project_key": "lk_ak_prj_x.nope"}),
        )
        .await;
    assert_eq!((status, body), (401, json!({"detail": "Invalid project key"})));
    let (status, body) = s
        .complete("tl_unknown", json!({"code": code, "state": state, "project_key": key}))
        .await;
    assert_eq!((status, body), (404, json!({"detail": "Tool not found"})));
    // Another project's key cannot complete this project's tool.
    let other = s.app.project("other").await;
    let (status, _) = s
        .complete(
            &tool_id,
            json!({"code": code, "state": state, "project_key": other.api_key}),
        )
        .await;
    assert_eq!(status, 404);
    // Still usable: completes once.
    let (status, _) = s
        .complete(&tool_id, json!({"code": code, "state": state, "project_key": key}))
        .await;
    assert_eq!(status, 200);
    let version = tool_tokens(&s, &tool_id).await.unwrap().version;
    // Reused state (single use whatever the outcome).
    let (status, body) = s
        .complete(&tool_id, json!({"code": code, "state": state, "project_key": key}))
        .await;
    assert_eq!((status, body), (422, csrf_error()));
    assert_eq!(
        tool_tokens(&s, &tool_id).await.unwrap().version,
        version,
        "nothing changed"
    );

    // A reused code with a fresh state: the authorization server refuses it (400), and the state
    // is spent.
    let (_, st2) = s.authorize(&tool_id, None).await;
    let (status, body) = s
        .complete(&tool_id, json!({"code": code, "state": st2, "project_key": key}))
        .await;
    assert_eq!(
        (status, body),
        (400, json!({"detail": "Invalid or expired authorization code"}))
    );
    let (status, _) = s
        .complete(&tool_id, json!({"code": code, "state": st2, "project_key": key}))
        .await;
    assert_eq!(status, 422);

    // A state from another tool of the same project.
    let other_tool = s.register().await;
    let (code3, st3) = s.authorize(&other_tool, None).await;
    let (status, body) = s
        .complete(&tool_id, json!({"code": code3, "state": st3, "project_key": key}))
        .await;
    assert_eq!((status, body), (422, csrf_error()));
    assert!(tool_tokens(&s, &other_tool).await.is_none());
    // Presenting it to the wrong tool did not spend it: its own tool completes with it.
    let (status, body) = s
        .complete(&other_tool, json!({"code": code3, "state": st3, "project_key": key}))
        .await;
    assert_eq!(status, 200, "{body}");

    // An expired state (10 minutes).
    let (code4, st4) = s.authorize(&tool_id, None).await;
    s.app.server.state.clock.advance(601);
    let (status, body) = s
        .complete(&tool_id, json!({"code": code4, "state": st4, "project_key": key}))
        .await;
    assert_eq!((status, body), (422, csrf_error()));
}

#[tokio::test]
async fn a_state_from_another_project_is_refused() {
    let s = setup().await;
    let tool_a = s.register().await;
    let other = s.app.project("other").await;
    let (status, body) = s
        .app
        .vault(
            "POST",
            "/tools",
            Some(&other.api_key),
            Some(json!({"name": "B", "server_url": s.mcp.url, "redirect_uris": [REDIRECT]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let tool_b = body["item_id"].as_str().unwrap().to_string();
    let (status, init) = s
        .app
        .vault(
            "POST",
            &format!("/tools/{tool_b}/initiate-oauth"),
            None,
            Some(json!({"project_key": other.api_key, "redirect_uri": REDIRECT})),
        )
        .await;
    assert_eq!(status, 200);
    let loc = s
        .app
        .approve_in_browser(init["authorization_url"].as_str().unwrap(), "b@example.com")
        .await;
    let q: std::collections::HashMap<String, String> =
        url::Url::parse(&loc).unwrap().query_pairs().into_owned().collect();
    // Project A completes its own tool with project B's state.
    let (status, body) = s
        .complete(
            &tool_a,
            json!({"code": q["code"], "state": q["state"], "project_key": s.project.api_key}),
        )
        .await;
    assert_eq!((status, body), (422, csrf_error()));
    assert!(tool_tokens(&s, &tool_a).await.is_none());
    assert!(tool_tokens(&s, &tool_b).await.is_none());
}

#[tokio::test]
async fn initiate_and_register_validate_their_input() {
    let s = setup().await;
    let tool_id = s.register().await;
    let key = s.project.api_key.clone();
    let (status, body) = s
        .app
        .vault(
            "POST",
            &format!("/tools/{tool_id}/initiate-oauth"),
            None,
            Some(json!({"project_key": key})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "redirect_uri"]));
    let (status, body) = s
        .app
        .vault(
            "POST",
            &format!("/tools/{tool_id}/initiate-oauth"),
            None,
            Some(json!({"project_key": key, "redirect_uri": "https://elsewhere.invalid/cb"})),
        )
        .await;
    assert_eq!(status, 422, "not one of the tool's redirect URIs: {body}");
    let (status, _) = s
        .app
        .vault(
            "POST",
            &format!("/tools/{tool_id}/initiate-oauth"),
            None,
            Some(json!({"project_key": key, "redirect_uri": "javascript:alert(1)"})),
        )
        .await;
    assert_eq!(status, 422);
    let (status, body) = s
        .app
        .vault(
            "POST",
            &format!("/tools/{tool_id}/initiate-oauth"),
            None,
            Some(json!({"project_key": "wrong", "redirect_uri": REDIRECT})),
        )
        .await;
    assert_eq!((status, body), (401, json!({"detail": "Invalid project key"})));
    let (status, body) = s.call("POST", "/tools", Some(json!({"name": 3}))).await;
    assert_eq!(status, 422);
    assert_eq!(
        body["detail"],
        json!([
            {"loc": ["body", "name"], "msg": "str type expected", "type": "type_error.str"},
            {"loc": ["body", "server_url"], "msg": "field required", "type": "value_error.missing"},
        ])
    );
    let items: Vec<_> = s
        .app
        .all_items()
        .await
        .into_iter()
        .filter(|i| i.get("type").and_then(|t| t.as_s().ok()).map(String::as_str) == Some("tool"))
        .collect();
    assert_eq!(items.len(), 1, "only the one registered tool");
}

/// Refresh tokens issued for the tool's grant (rotated ones included) at latchkey's own
/// authorization server.
async fn refresh_tokens_issued(s: &Setup) -> usize {
    let state = &s.app.server.state;
    let mut n = 0;
    for (g, _) in state.store.list_grants(None, state.clock.now()).await.unwrap() {
        n += s
            .app
            .grant_items(&g.grant_id)
            .await
            .iter()
            .filter(|i| i.s("type") == Some("refresh_token"))
            .count();
    }
    n
}

#[tokio::test]
async fn a_401_from_the_server_refreshes_once_and_retries() {
    let s = setup().await;
    let tool_id = s.connected().await;
    assert_eq!(refresh_tokens_issued(&s).await, 1);
    s.mcp.state.lock().unwrap().reject_next = true;
    let (status, _, text) = s.rpc(&tool_id, "tools/list", json!({})).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(refresh_tokens_issued(&s).await, 2, "one refresh");
}

#[tokio::test]
async fn twenty_concurrent_forwards_on_an_expired_token_cause_one_refresh() {
    let s = std::sync::Arc::new(setup().await);
    let tool_id = s.connected().await;
    s.app.server.state.clock.advance(3700);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let s = std::sync::Arc::clone(&s);
        let tool_id = tool_id.clone();
        tasks.push(tokio::spawn(
            async move { s.rpc(&tool_id, "tools/list", json!({})).await.0 },
        ));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(
        refresh_tokens_issued(&s).await,
        2,
        "exactly one refresh at the authorization server"
    );
}

#[tokio::test]
async fn get_relays_the_event_stream_for_a_window_and_delete_ends_the_session() {
    let s = setup_with(&[("LATCHKEY_UPSTREAM_TIMEOUT_SECONDS", "2")]).await;
    let tool_id = s.connected().await;
    s.mcp.state.lock().unwrap().sse_get = true;
    let res = s
        .app
        .http
        .get(s.app.url(&format!("/tools/{tool_id}/mcp")))
        .header("x-api-key", &s.project.api_key)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", "session-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let text = res.text().await.unwrap();
    assert!(
        text.starts_with("id: 1\nevent: message\ndata: {") && text.ends_with("\n\n"),
        "{text:?}"
    );
    let res = s
        .app
        .http
        .delete(s.app.url(&format!("/tools/{tool_id}/mcp")))
        .header("x-api-key", &s.project.api_key)
        .header("mcp-session-id", "session-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(s.mcp.state.lock().unwrap().deletes, 1);
    assert_eq!(s.mcp.state.lock().unwrap().last_session.as_deref(), Some("session-123"));
}

#[tokio::test]
async fn the_project_key_may_come_in_the_body_and_other_projects_see_nothing() {
    let s = setup().await;
    let (status, body) = s
        .app
        .vault(
            "POST",
            "/tools",
            None,
            Some(json!({"name": "ref", "server_url": s.mcp.url, "redirect_uris": [REDIRECT], "project_key": s.project.api_key})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let tool_id = body["item_id"].as_str().unwrap().to_string();
    let (status, body) = s
        .app
        .vault(
            "POST",
            "/tools",
            None,
            Some(json!({"name": "ref", "server_url": s.mcp.url, "project_key": "lk_ak_prj_nope.x"})),
        )
        .await;
    assert_eq!((status, body), (401, json!({"detail": "Invalid project key"})));
    let other = s.app.project("other").await;
    for method in ["GET", "DELETE"] {
        let (status, body) = s
            .app
            .vault(method, &format!("/tools/{tool_id}"), Some(&other.api_key), None)
            .await;
        assert_eq!((status, body), (404, json!({"detail": "Tool not found"})), "{method}");
    }
    let (status, _) = s.call("GET", &format!("/tools/{tool_id}"), None).await;
    assert_eq!(status, 200, "still there for its own project");
    let res = s
        .app
        .http
        .post(s.app.url(&format!("/tools/{tool_id}/mcp")))
        .header("x-api-key", &other.api_key)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn stored_tool_items_hold_no_token_verifier_or_secret() {
    let s = setup().await;
    let tool_id = s.register().await;
    let (status, init) = s
        .app
        .vault(
            "POST",
            &format!("/tools/{tool_id}/initiate-oauth"),
            Some(&s.project.api_key),
            Some(json!({"redirect_uri": REDIRECT})),
        )
        .await;
    assert_eq!(status, 200);
    let loc = s
        .app
        .approve_in_browser(init["authorization_url"].as_str().unwrap(), "x@example.com")
        .await;
    let q: std::collections::HashMap<String, String> =
        url::Url::parse(&loc).unwrap().query_pairs().into_owned().collect();
    // While the flow is in flight the state item holds the verifier sealed: the raw item must not
    // contain the state either (only its hash keys it).
    let raw = format!("{:?}", s.app.all_items().await);
    assert!(!raw.contains(init["state"].as_str().unwrap()));
    let (status, _) = s
        .complete(
            &tool_id,
            json!({"code": q["code"], "state": q["state"], "project_key": s.project.api_key}),
        )
        .await;
    assert_eq!(status, 200);
    let conn = tool_tokens(&s, &tool_id).await.unwrap();
    let tokens = latchkey::vault::open_tokens(&s.app.server.state, &conn.context(), &conn.sealed_tokens)
        .await
        .unwrap();
    let raw = format!("{:?}", s.app.all_items().await);
    assert!(!raw.contains(&tokens.access_token));
    assert!(!raw.contains(tokens.refresh_token.as_deref().unwrap()));
    assert!(!raw.contains(&q["code"]));
}

/// complete-oauth for `tool_id`, leaving `iss` out when the body's is null.
async fn complete_without_null_iss(s: &Setup, tool_id: &str, mut body: Value) -> (u16, Value) {
    if body["iss"].is_null() {
        body.as_object_mut().unwrap().remove("iss");
    }
    s.app
        .vault("POST", &format!("/tools/{tool_id}/complete-oauth"), None, Some(body))
        .await
}

/// Issue 12 item 10, mix-up (RFC 9700 §4.4, RFC 9207): a tool whose own authorization server
/// does not send `iss` completes without it only while no tool of the project on the same redirect
/// URI has a server that does; then `iss` is required (the code unused), and once that tool is
/// gone it is not.
#[tokio::test]
async fn rfc9207_iss_is_required_when_any_tool_sharing_the_redirect_uri_has_a_server_that_sends_it() {
    use latchkey::domain::tool::ToolRecord;
    use latchkey::store::{tools as tstore, FromItem};
    let s = setup().await;
    let store = &s.app.server.state.store;
    // Tool B: its server's metadata says it does not identify its responses (as many don't).
    let b = s.register().await;
    let item = store.get(&tstore::tool_key(&b), 0).await.unwrap().unwrap();
    let mut tool_b = ToolRecord::from_item(&item).unwrap();
    tool_b.metadata.remove("authorization_response_iss_parameter_supported");
    assert!(store.migrate_tool(&tool_b.issuer.clone(), &tool_b).await.unwrap());
    let without_iss = |code: String, state: String| json!({"code": code, "state": state, "project_key": s.project.api_key, "iss": null});
    // Alone on its redirect URI: no iss needed (and one Query is all it costs).
    let (code, state) = s.authorize(&b, None).await;
    let (status, body) = complete_without_null_iss(&s, &b, without_iss(code, state)).await;
    assert_eq!(status, 200, "{body}");

    // Tool A on the same redirect URI, with a server that sends iss (latchkey's).
    let a = s.register().await;
    let tokens_before = store.get_tool_tokens(&b, 0).await.unwrap();
    let (code, state) = s.authorize(&b, None).await;
    let (status, body) = complete_without_null_iss(&s, &b, without_iss(code.clone(), state.clone())).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("own redirect URI"), "{body}");
    assert_eq!(
        store.get_tool_tokens(&b, 0).await.unwrap(),
        tokens_before,
        "nothing stored"
    );
    // The state was spent: a retry with the same state is refused too.
    let (status, _) = complete_without_null_iss(
        &s,
        &b,
        json!({"code": code, "state": state, "project_key": s.project.api_key, "iss": s.app.url("/oauth/2.1")}),
    )
    .await;
    assert_eq!(status, 422, "a spent state (the reference's CSRF answer)");
    // With the iss the redirect carried, it completes.
    let (code, state) = s.authorize(&b, None).await;
    let (status, body) = complete_without_null_iss(
        &s,
        &b,
        json!({"code": code, "state": state, "project_key": s.project.api_key, "iss": s.app.url("/oauth/2.1")}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Deleting A removes its markers: B completes without iss again.
    let (status, _) = s.call("DELETE", &format!("/tools/{a}"), None).await;
    assert!(status == 200 || status == 204, "{status}");
    assert!(s
        .app
        .all_items()
        .await
        .iter()
        .all(|i| !matches!(i.get("type"), Some(aws_sdk_dynamodb::types::AttributeValue::S(t)) if t == "iss_redirect")));
    let (code, state) = s.authorize(&b, None).await;
    let (status, body) = complete_without_null_iss(&s, &b, without_iss(code, state)).await;
    assert_eq!(status, 200, "{body}");
}
