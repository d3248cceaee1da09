//! Re-authorizing a tool without bookkeeping in the app, end to end over real HTTP against the
//! loopback MCP server: which scopes initiate-oauth asks for (MCP Scope Selection Strategy, SEP-2350
//! unions, `replace_scopes`), and a server that moves to another authorization server (SEP-2352),
//! here a second latchkey, taking the tool — same `tool_id` — with it. Each test checks what was
//! stored, not only the status.

use crate::common;

use std::collections::HashMap;

use common::mcp_server::McpServer;
use common::{Project, TestApp};
use latchkey::domain::tool::ToolRecord;
use latchkey::domain::tool::ToolTokens;
use latchkey::store::FromItem;
use serde_json::{json, Value};

const REDIRECT: &str = "http://127.0.0.1:7777/callback";

struct Setup {
    app: TestApp,
    mcp: McpServer,
    project: Project,
}

async fn setup() -> Setup {
    let app = TestApp::start().await;
    let (listener, url) = McpServer::bind().await;
    let (rs_id, rs_secret) = app.resource_server(&url).await;
    let mcp = McpServer::serve(listener, &app.url("/oauth/2.1"), &rs_id, &rs_secret).await;
    let project = app.project("reauth").await;
    Setup { app, mcp, project }
}

fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url).unwrap().query_pairs().into_owned().collect()
}

impl Setup {
    async fn register_with(&self, extra: Value) -> String {
        let mut body = json!({"name": "Reauth MCP", "server_url": self.mcp.url, "redirect_uris": [REDIRECT]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, body) = self
            .app
            .vault("POST", "/tools", Some(&self.project.api_key), Some(body))
            .await;
        assert_eq!(status, 201, "{body}");
        body["item_id"].as_str().unwrap().to_string()
    }

    async fn register(&self) -> String {
        self.register_with(json!({})).await
    }

    async fn initiate(&self, tool_id: &str, extra: Value) -> (u16, Value) {
        let mut body = json!({"redirect_uri": REDIRECT});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.app
            .vault(
                "POST",
                &format!("/tools/{tool_id}/initiate-oauth"),
                Some(&self.project.api_key),
                Some(body),
            )
            .await
    }

    /// Initiate and return the authorization URL's query (200 asserted).
    async fn initiate_ok(&self, tool_id: &str, extra: Value) -> (Value, HashMap<String, String>) {
        let (status, init) = self.initiate(tool_id, extra).await;
        assert_eq!(status, 200, "{init}");
        let q = query(init["authorization_url"].as_str().unwrap());
        (init, q)
    }

    /// Approve `init`'s authorization URL at `at` (an authorization server) and complete.
    async fn approve_and_complete(&self, at: &TestApp, tool_id: &str, init: &Value) {
        let location = at
            .approve_in_browser(init["authorization_url"].as_str().unwrap(), "tool-user@example.com")
            .await;
        let q = query(&location);
        assert!(q.contains_key("code"), "{location}");
        let (status, body) = self
            .app
            .vault(
                "POST",
                &format!("/tools/{tool_id}/complete-oauth"),
                Some(&self.project.api_key),
                Some(json!({"code": q["code"], "state": q["state"], "iss": q["iss"]})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    async fn connect(&self, tool_id: &str) {
        let (init, _) = self.initiate_ok(tool_id, json!({})).await;
        self.approve_and_complete(&self.app, tool_id, &init).await;
    }

    async fn rpc(&self, tool_id: &str, method: &str, params: Value) -> (u16, reqwest::header::HeaderMap, String) {
        let res = self
            .app
            .http
            .post(self.app.url(&format!("/tools/{tool_id}/mcp")))
            .header("x-api-key", &self.project.api_key)
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        (status, headers, res.text().await.unwrap())
    }

    async fn stored_tool(&self, tool_id: &str) -> ToolRecord {
        let item = self
            .app
            .server
            .state
            .store
            .get(&latchkey::store::tools::tool_key(tool_id), 0)
            .await
            .unwrap()
            .expect("the tool is stored");
        ToolRecord::from_item(&item).unwrap()
    }

    async fn stored_tokens(&self, tool_id: &str) -> Option<ToolTokens> {
        self.app.server.state.store.get_tool_tokens(tool_id, 0).await.unwrap()
    }

    /// The scopes of every stored (in-flight) OAuth state, raw.
    async fn stored_state_scopes(&self) -> Vec<Vec<String>> {
        self.app
            .all_items()
            .await
            .into_iter()
            .filter(|i| i.get("type").and_then(|t| t.as_s().ok()).map(String::as_str) == Some("tool_state"))
            .map(|i| latchkey::store::Item::from(i).list("scopes"))
            .collect()
    }
}

fn scope_of(q: &HashMap<String, String>) -> Option<&str> {
    q.get("scope").map(String::as_str)
}

#[tokio::test]
async fn mcp_scope_selection_the_challenge_then_the_apps_scopes_then_scopes_supported_then_none() {
    let s = setup().await;
    // 1. The server's challenge names a scope: initiate (no scopes) asks for it, with
    //    offline_access because latchkey's authorization server offers it.
    s.mcp.state.lock().unwrap().challenge_scope = Some("files:read".into());
    let tool = s.register().await;
    let (_, q) = s.initiate_ok(&tool, json!({})).await;
    assert_eq!(scope_of(&q), Some("files:read offline_access"));
    assert_eq!(
        s.stored_state_scopes().await,
        vec![vec!["files:read".to_string(), "offline_access".into()]]
    );
    assert_eq!(
        s.stored_tool(&tool).await.challenge_scope,
        None,
        "a probe is not recorded"
    );

    // Forwarding records the challenge it relays: one write the first time, none after.
    let before = s.app.calls();
    let (status, headers, _) = s.rpc(&tool, "tools/list", json!({})).await;
    assert_eq!(status, 401);
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("scope=\"files:read\""));
    assert_eq!(s.app.calls().0 - before.0, 2, "the batch read and one UpdateItem");
    assert_eq!(
        s.stored_tool(&tool).await.challenge_scope.as_deref(),
        Some("files:read")
    );
    let mid = s.app.calls();
    s.rpc(&tool, "tools/list", json!({})).await;
    assert_eq!(s.app.calls().0 - mid.0, 1, "unchanged: the batch read only");

    // The recorded challenge comes first, before the one latchkey probes for.
    s.mcp.state.lock().unwrap().challenge_scope = Some("files:write".into());
    let (_, q) = s.initiate_ok(&tool, json!({})).await;
    assert_eq!(scope_of(&q), Some("files:read offline_access"));
    // A new tool has recorded nothing: the probe's challenge.
    let fresh = s.register().await;
    let (_, q) = s.initiate_ok(&fresh, json!({})).await;
    assert_eq!(scope_of(&q), Some("files:write offline_access"));

    // 2. No scope in the challenge: the app's configured scopes, else scopes_supported.
    s.mcp.state.lock().unwrap().challenge_scope = None;
    let configured = s.register_with(json!({"scopes": ["app:read"]})).await;
    let (_, q) = s.initiate_ok(&configured, json!({})).await;
    assert_eq!(scope_of(&q), Some("app:read offline_access"));
    let plain = s.register().await;
    let (_, q) = s.initiate_ok(&plain, json!({})).await;
    assert_eq!(
        scope_of(&q),
        Some("mcp:tools mcp:admin offline_access"),
        "the resource's scopes_supported"
    );

    // 3. Neither: no scope parameter at all (not even offline_access).
    s.mcp.state.lock().unwrap().scopes_supported = None;
    let bare = s.register().await;
    let (_, q) = s.initiate_ok(&bare, json!({})).await;
    assert_eq!(scope_of(&q), None, "{q:?}");
    assert!(s.stored_state_scopes().await.contains(&Vec::new()));
}

#[tokio::test]
async fn sep_2350_after_a_403_insufficient_scope_initiate_asks_for_the_union_and_replace_scopes_does_not() {
    let s = setup().await;
    let tool = s.register().await;
    s.connect(&tool).await;
    let granted = s.stored_tokens(&tool).await.unwrap().scopes;
    assert_eq!(granted, vec!["mcp:tools", "offline_access"]);

    // The server wants more for this call: 403 insufficient_scope, passed through and recorded.
    let (status, headers, _) = s.rpc(&tool, "tools/call", json!({"name": "admin"})).await;
    assert_eq!(status, 403);
    assert!(headers.get("x-latchkey-error").is_none());
    assert_eq!(s.stored_tool(&tool).await.challenge_scope.as_deref(), Some("mcp:admin"));

    // Initiate without scopes: what the tool holds plus what the server asked for.
    let (init, q) = s.initiate_ok(&tool, json!({})).await;
    assert_eq!(scope_of(&q), Some("mcp:tools offline_access mcp:admin"));
    s.approve_and_complete(&s.app, &tool, &init).await;
    let tokens = s.stored_tokens(&tool).await.unwrap();
    for want in ["mcp:tools", "offline_access", "mcp:admin"] {
        assert!(tokens.scopes.iter().any(|g| g == want), "{want} in {:?}", tokens.scopes);
    }
    let (status, _, text) = s.rpc(&tool, "tools/call", json!({"name": "admin"})).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("you are tool-user@example.com"), "{text}");

    // Warm forwarding still costs 1 round trip of latchkey's own (the server's introspection at
    // latchkey adds its 1) and no KMS call.
    let before = s.app.calls();
    let (status, _, _) = s.rpc(&tool, "tools/call", json!({"name": "whoami"})).await;
    assert_eq!(status, 200);
    let after = s.app.calls();
    assert_eq!((after.0 - before.0, after.1 - before.1), (1 + 1, 0));

    // Scopes given: joined with what the tool holds ...
    let (_, q) = s.initiate_ok(&tool, json!({"scopes": ["extra"]})).await;
    assert_eq!(scope_of(&q), Some("mcp:tools offline_access mcp:admin extra"));
    // ... unless the app replaces them.
    let (_, q) = s
        .initiate_ok(&tool, json!({"scopes": ["openid"], "replace_scopes": true}))
        .await;
    assert_eq!(scope_of(&q), Some("openid"));
    let (_, q) = s.initiate_ok(&tool, json!({"replace_scopes": false})).await;
    assert_eq!(scope_of(&q), Some("mcp:tools offline_access mcp:admin"));
    let states = s.stored_state_scopes().await;
    assert!(states.contains(&vec!["openid".to_string()]), "{states:?}");
}

#[tokio::test]
async fn replace_scopes_must_be_a_boolean_and_bad_input_stores_nothing_and_calls_nothing() {
    let s = setup().await;
    let tool = s.register().await;
    let requests = s.mcp.state.lock().unwrap().requests;
    let items = s.app.all_items().await.len();
    for bad in [json!("yes"), json!(1), json!(["true"])] {
        let (status, body) = s.initiate(&tool, json!({"replace_scopes": bad})).await;
        assert_eq!(
            (status, body),
            (
                422,
                json!({"detail": [{"loc": ["body", "replace_scopes"], "msg": "value is not a valid boolean", "type": "value_error.strictbool"}]})
            ),
            "{bad}"
        );
    }
    // Every problem at once, in the reference's shape.
    let (status, body) = s
        .app
        .vault(
            "POST",
            &format!("/tools/{tool}/initiate-oauth"),
            Some(&s.project.api_key),
            Some(json!({"replace_scopes": "yes", "scopes": 7})),
        )
        .await;
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
            json!(["body", "redirect_uri"]),
            json!(["body", "scopes"]),
            json!(["body", "replace_scopes"])
        ]
    );
    assert_eq!(s.app.all_items().await.len(), items, "nothing stored");
    assert!(s.stored_state_scopes().await.is_empty());
    assert_eq!(
        s.mcp.state.lock().unwrap().requests,
        requests,
        "the server was not probed"
    );
}

/// A second latchkey as the authorization server the MCP server moves to, with the server
/// registered there as a resource server.
async fn second_authorization_server(s: &Setup) -> (TestApp, String, String) {
    let as2 = TestApp::start().await;
    let (rs_id, rs_secret) = as2.resource_server(&s.mcp.url).await;
    (as2, rs_id, rs_secret)
}

#[tokio::test]
async fn sep_2352_initiate_follows_the_server_to_its_new_authorization_server_keeping_the_tool_id() {
    let s = setup().await;
    let as1 = s.app.url("/oauth/2.1");
    // The operator's client at the first authorization server (pre-registered credentials).
    let (operator_id, _) = s.app.client("none").await;
    let tool = s.register_with(json!({"client_id": operator_id})).await;
    s.connect(&tool).await;
    assert_eq!(s.rpc(&tool, "tools/list", json!({})).await.0, 200);

    let (rs1_id, rs1_secret) = {
        let st = s.mcp.state.lock().unwrap();
        (st.rs_id.clone(), st.rs_secret.clone())
    };
    let (as2_app, rs_id, rs_secret) = second_authorization_server(&s).await;
    let as2 = as2_app.url("/oauth/2.1");
    s.mcp.move_to(&as2, &rs_id, &rs_secret);
    // The first authorization server's token is no good at the server now (a refresh there
    // succeeds, and its new token is refused too): the server's 401 reaches the app.
    let (status, headers, _) = s.rpc(&tool, "tools/list", json!({})).await;
    assert_eq!(status, 401);
    assert!(headers.get("x-latchkey-error").is_none());

    // The app initiates as always; latchkey finds the new authorization server and becomes its
    // client (it supports metadata documents), never presenting the operator's client_id there.
    let (init, q) = s.initiate_ok(&tool, json!({})).await;
    assert!(
        init["authorization_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{as2}/authorize?")),
        "{init}"
    );
    let document = s.app.url(&format!("/tools/{tool}/client-metadata.json"));
    assert_eq!(q["client_id"], document);
    assert_eq!(init["item_id"], tool, "same tool");
    let moved = s.stored_tool(&tool).await;
    assert_eq!(moved.issuer, as2);
    assert_eq!(moved.client_id, document);
    assert_eq!(moved.registration, "client_metadata_document");
    assert_eq!(moved.metadata["issuer"], as2);
    assert_eq!(
        moved.other_clients[&as1].client_id, operator_id,
        "kept under its own issuer"
    );
    assert_eq!(moved.other_clients[&as1].registration, "preregistered");
    assert!(
        s.stored_tokens(&tool).await.is_none(),
        "the first authorization server's tokens are deleted, never sent to the new one"
    );
    let (_, shown) = s
        .app
        .vault("GET", &format!("/tools/{tool}"), Some(&s.project.api_key), None)
        .await;
    assert_eq!(shown["authorization_server"], as2);
    assert_eq!(shown["connection"]["status"], "not_connected");
    assert_eq!(shown["previous_authorization_servers"], json!([as1]));

    s.approve_and_complete(&as2_app, &tool, &init).await;
    let (status, _, text) = s.rpc(&tool, "tools/call", json!({"name": "whoami"})).await;
    assert_eq!(status, 200, "{text}");
    // The new authorization server never saw the first one's client.
    let as2_items = format!("{:?}", as2_app.all_items().await);
    assert!(!as2_items.contains(&operator_id));
    assert!(as2_items.contains(&document));

    // The server moves back: the operator's credentials apply again, at their own issuer only.
    s.mcp.move_to(&as1, &rs1_id, &rs1_secret);
    let (init, q) = s.initiate_ok(&tool, json!({})).await;
    assert!(init["authorization_url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{as1}/authorize?")));
    assert_eq!(q["client_id"], operator_id);
    let back = s.stored_tool(&tool).await;
    assert_eq!(
        (back.issuer.as_str(), back.registration.as_str()),
        (as1.as_str(), "preregistered")
    );
    assert_eq!(back.other_clients[&as2].client_id, document);
    // A state started before a move cannot complete after it (its code would go to the wrong
    // authorization server).
    let location = s
        .app
        .approve_in_browser(init["authorization_url"].as_str().unwrap(), "tool-user@example.com")
        .await;
    s.mcp.move_to(&as2, &rs_id, &rs_secret);
    s.initiate_ok(&tool, json!({})).await;
    let q = query(&location);
    let (status, body) = s
        .app
        .vault(
            "POST",
            &format!("/tools/{tool}/complete-oauth"),
            Some(&s.project.api_key),
            Some(json!({"code": q["code"], "state": q["state"]})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("moved"), "{body}");
    assert!(s.stored_tokens(&tool).await.is_none());
}

#[tokio::test]
async fn sep_2352_a_refresh_that_fails_at_forwarding_follows_the_server_and_the_app_just_initiates_again() {
    let s = setup().await;
    let tool = s.register().await;
    s.connect(&tool).await;
    let before = s.stored_tool(&tool).await;
    let (as2_app, rs_id, rs_secret) = second_authorization_server(&s).await;
    let as2 = as2_app.url("/oauth/2.1");
    s.mcp.move_to(&as2, &rs_id, &rs_secret);
    // The first authorization server no longer honours the grant: the refresh fails.
    let state = &s.app.server.state;
    for (g, _) in state.store.list_grants(None, state.clock.now()).await.unwrap() {
        state.store.revoke_grant(&g.grant_id, state.clock.now()).await.unwrap();
    }
    let (status, headers, text) = s.rpc(&tool, "tools/list", json!({})).await;
    assert_eq!(status, 401, "{text}");
    assert_eq!(headers["x-latchkey-error"], "1");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v["detail"].as_str().unwrap().contains(&as2), "{v}");
    let moved = s.stored_tool(&tool).await;
    assert_eq!(moved.tool_id, before.tool_id);
    assert_eq!(moved.issuer, as2);
    assert_eq!(moved.created_at, before.created_at);
    assert!(s.stored_tokens(&tool).await.is_none(), "the old tokens are gone");

    let (init, _) = s.initiate_ok(&tool, json!({})).await;
    assert!(init["authorization_url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{as2}/authorize?")));
    s.approve_and_complete(&as2_app, &tool, &init).await;
    let (status, _, text) = s.rpc(&tool, "tools/list", json!({})).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(s.stored_tool(&tool).await.issuer, as2);
}
