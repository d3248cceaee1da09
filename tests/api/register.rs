//! RFC 7591 dynamic client registration over HTTP: success shapes, storage, budgets, bad input.

use crate::common;

use common::{assert_oauth_error, TestApp};
use latchkey::crypto::secret;
use serde_json::{json, Value};

#[tokio::test]
async fn rfc7591_3_2_1_confidential_client_gets_secret_and_only_its_hash_is_stored() {
    let app = TestApp::start().await;
    let before = app.calls();
    let (status, body) = app
        .register(json!({
            "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
            "client_name": "Claude",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "scope": "openid email offline_access",
            "unknown_field": "ignored"
        }))
        .await;
    assert_eq!(status, 201, "{body}");
    let after = app.calls();
    assert_eq!(after.0 - before.0, 1, "register makes exactly one DynamoDB call");
    assert_eq!(after.1 - before.1, 0, "register makes no KMS call");

    let client_id = body["client_id"].as_str().unwrap();
    let client_secret = body["client_secret"].as_str().unwrap();
    assert!(client_id.starts_with("lkc_"));
    assert!(client_secret.starts_with("lk_cs_"));
    assert_eq!(body["client_secret_expires_at"], 0);
    assert!(body["client_id_issued_at"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(
        body["redirect_uris"],
        json!(["https://claude.ai/api/mcp/auth_callback"])
    );
    assert_eq!(body["client_name"], "Claude");
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(body["scope"], "openid email offline_access");
    assert!(body.get("unknown_field").is_none());

    let items = app.all_items().await;
    assert_eq!(items.len(), 1);
    let raw = format!("{:?}", items[0]);
    assert!(!raw.contains(client_secret), "the secret itself is not stored");
    assert!(raw.contains(&secret::hash(client_secret)), "its SHA-256 is");

    let now = app.server.state.clock.now();
    let stored = app
        .server
        .state
        .store
        .get_client(client_id, now)
        .await
        .unwrap()
        .unwrap();
    assert!(secret::verify(client_secret, stored.secret_hash.as_deref().unwrap()));
    assert_eq!(
        stored.metadata.redirect_uris,
        vec!["https://claude.ai/api/mcp/auth_callback"]
    );
}

#[tokio::test]
async fn rfc7591_2_public_client_with_none_gets_no_secret() {
    let app = TestApp::start().await;
    let (status, body) = app
        .register(json!({
            "redirect_uris": ["http://localhost:6274/oauth/callback", "http://127.0.0.1:33418/"],
            "token_endpoint_auth_method": "none",
            "client_name": "MCP Inspector"
        }))
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(body.get("client_secret").is_none());
    assert!(body.get("client_secret_expires_at").is_none());
    assert_eq!(body["token_endpoint_auth_method"], "none");
    let items = app.all_items().await;
    // The client, and its dedup item (issue 12 item 8), which holds no secret either.
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| !i.contains_key("secret_hash")));
}

#[tokio::test]
async fn registration_response_is_cors_open_and_no_store() {
    let app = TestApp::start().await;
    let res = app
        .http
        .post(app.url("/oauth/2.1/register"))
        .json(&json!({"redirect_uris": ["http://127.0.0.1/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let pre = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/oauth/2.1/register"))
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert_eq!(pre.headers()["access-control-allow-methods"], "POST, OPTIONS");
}

/// Each bad request: expected status, error code, and (the point) nothing stored.
#[tokio::test]
async fn rfc7591_3_2_2_bad_input_gets_a_clear_error_and_stores_nothing() {
    let app = TestApp::start().await;
    let r = json!(["https://app.example.com/cb"]);
    let cases: Vec<(&str, &str, String, u16, &str)> = vec![
        (
            "no body",
            "application/json",
            String::new(),
            400,
            "invalid_client_metadata",
        ),
        (
            "non-JSON",
            "application/json",
            "redirect_uris=x".into(),
            400,
            "invalid_client_metadata",
        ),
        (
            "JSON array",
            "application/json",
            "[]".into(),
            400,
            "invalid_client_metadata",
        ),
        (
            "JSON string",
            "application/json",
            "\"x\"".into(),
            400,
            "invalid_client_metadata",
        ),
        (
            "duplicate keys",
            "application/json",
            r#"{"redirect_uris":["https://a.example/cb"],"redirect_uris":["https://b.example/cb"]}"#.into(),
            400,
            "invalid_client_metadata",
        ),
        (
            "over the cap",
            "application/json",
            json!({"redirect_uris": r, "client_name": "x".repeat(70 * 1024)}).to_string(),
            413,
            "invalid_request",
        ),
        (
            "wrong content type",
            "text/plain",
            json!({"redirect_uris": r}).to_string(),
            415,
            "invalid_request",
        ),
        (
            "form content type",
            "application/x-www-form-urlencoded",
            "redirect_uris=https%3A%2F%2Fa.example%2Fcb".into(),
            415,
            "invalid_request",
        ),
        (
            "missing redirect_uris",
            "application/json",
            json!({"client_name": "x"}).to_string(),
            400,
            "invalid_redirect_uri",
        ),
        (
            "empty list",
            "application/json",
            json!({"redirect_uris": []}).to_string(),
            400,
            "invalid_redirect_uri",
        ),
        (
            "not a list",
            "application/json",
            json!({"redirect_uris": "https://a.example/cb"}).to_string(),
            400,
            "invalid_redirect_uri",
        ),
        (
            "non-URL",
            "application/json",
            json!({"redirect_uris": ["not a url"]}).to_string(),
            400,
            "invalid_redirect_uri",
        ),
        (
            "relative",
            "application/json",
            json!({"redirect_uris": ["/callback"]}).to_string(),
            400,
            "invalid_redirect_uri",
        ),
        (
            "plain http",
            "application/json",
            json!({"redirect_uris": ["http://example.com/cb"]}).to_string(),
            400,
            "invalid_redirect_uri",
        ),
        (
            "fragment",
            "application/json",
            json!({"redirect_uris": ["https://a.example/cb#x"]}).to_string(),
            400,
            "invalid_redirect_uri",
        ),
        (
            "javascript",
            "application/json",
            json!({"redirect_uris": ["javascript:alert(document.cookie)"]}).to_string(),
            400,
            "invalid_redirect_uri",
        ),
        (
            "data URI",
            "application/json",
            json!({"redirect_uris": ["data:text/html,<script>x</script>"]}).to_string(),
            400,
            "invalid_redirect_uri",
        ),
        (
            "user info",
            "application/json",
            json!({"redirect_uris": ["https://u:p@a.example/cb"]}).to_string(),
            400,
            "invalid_redirect_uri",
        ),
        (
            "too many",
            "application/json",
            json!({"redirect_uris": vec!["https://a.example/cb"; 21]}).to_string(),
            400,
            "invalid_redirect_uri",
        ),
        (
            "unknown grant type",
            "application/json",
            json!({"redirect_uris": r, "grant_types": ["password"]}).to_string(),
            400,
            "invalid_client_metadata",
        ),
        (
            "client_credentials",
            "application/json",
            json!({"redirect_uris": r, "grant_types": ["client_credentials"]}).to_string(),
            400,
            "invalid_client_metadata",
        ),
        (
            "implicit",
            "application/json",
            json!({"redirect_uris": r, "grant_types": ["implicit"]}).to_string(),
            400,
            "invalid_client_metadata",
        ),
        (
            "token response type",
            "application/json",
            json!({"redirect_uris": r, "response_types": ["token"]}).to_string(),
            400,
            "invalid_client_metadata",
        ),
        (
            "unknown auth method",
            "application/json",
            json!({"redirect_uris": r, "token_endpoint_auth_method": "private_key_jwt"}).to_string(),
            400,
            "invalid_client_metadata",
        ),
        (
            "malformed scope",
            "application/json",
            json!({"redirect_uris": r, "scope": "openid  admin"}).to_string(),
            400,
            "invalid_client_metadata",
        ),
        (
            "ill-typed name",
            "application/json",
            json!({"redirect_uris": r, "client_name": ["x"]}).to_string(),
            400,
            "invalid_client_metadata",
        ),
        (
            "bad application_type",
            "application/json",
            json!({"redirect_uris": r, "application_type": "desktop"}).to_string(),
            400,
            "invalid_client_metadata",
        ),
        (
            "hostile logo_uri",
            "application/json",
            json!({"redirect_uris": r, "logo_uri": "javascript:alert(1)"}).to_string(),
            400,
            "invalid_client_metadata",
        ),
    ];
    let before = app.calls();
    for (name, ct, body, status, code) in cases {
        let got = app.register_raw(ct, body).await;
        assert_eq!(got.0, status, "{name}: {:?}", got.1);
        assert_oauth_error(&got, status, code);
    }
    // Non-UTF-8 body.
    let got = app.register_raw("application/json", vec![0x7b, 0xff, 0x7d]).await;
    assert_oauth_error(&got, 400, "invalid_client_metadata");
    assert_eq!(app.calls().0, before.0, "no bad request reached DynamoDB");
    assert!(app.all_items().await.is_empty(), "nothing stored");
}

#[tokio::test]
async fn redirect_uri_outside_the_operator_policy_is_refused_and_nothing_is_stored() {
    let app = TestApp::start_configured(
        None,
        &[(
            "LATCHKEY_ALLOWED_REDIRECT_URIS",
            "loopback,https://app.example.com/oauth/*",
        )],
    )
    .await;
    for uri in [
        "https://evil.example/oauth/cb",
        "https://app.example.com/other/cb",
        "https://app.example.com.evil.example/oauth/cb",
        "https://app.example.com/oauth/../admin",
        "https://app.example.com/oauth/%2e%2e/admin",
        "cursor://anysphere.cursor-retrieval/oauth/callback",
    ] {
        let got = app.register(json!({ "redirect_uris": [uri] })).await;
        assert_oauth_error(&got, 400, "invalid_redirect_uri");
    }
    assert!(app.all_items().await.is_empty());
    let (status, body) = app
        .register(json!({"redirect_uris": ["https://app.example.com/oauth/cb"]}))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = app
        .register(json!({"redirect_uris": ["http://127.0.0.1:5555/cb"]}))
        .await;
    assert_eq!(status, 201);
    assert_eq!(app.all_items().await.len(), 2);
}

#[tokio::test]
async fn rfc7591_2_scope_values_declared_nowhere_are_left_out_of_the_registered_scope() {
    let app = TestApp::start_configured(None, &[("LATCHKEY_SCOPES", "mcp:tools mcp:read")]).await;
    let (status, body) = app
        .register(json!({"redirect_uris": ["http://127.0.0.1/cb"], "scope": "openid"}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(body.get("scope").is_none(), "nothing left to register: {body}");
    let (status, body) = app
        .register(json!({"redirect_uris": ["http://127.0.0.1/cb"], "scope": "mcp:tools admin"}))
        .await;
    assert_eq!(status, 201);
    assert_eq!(body["scope"], "mcp:tools");
    let stored = app
        .server
        .state
        .store
        .get_client(body["client_id"].as_str().unwrap(), app.server.state.clock.now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.metadata.scope.as_deref(), Some("mcp:tools"));
}

#[tokio::test]
async fn rfc7591_2_a_resource_servers_declared_scopes_are_registrable() {
    // What the official TypeScript SDK sends for a server whose challenge says scope="mcp:tools".
    let app = TestApp::start().await;
    let state = &app.server.state;
    let now = state.clock.now();
    let resource = latchkey::domain::resource::Resource::parse("https://mcp.example.com/mcp").unwrap();
    let (rs, _) = state
        .store
        .create_resource_server(&resource, &["mcp:tools".into(), "mcp:admin".into()], now)
        .await
        .unwrap();
    let register = |scope: &str| {
        app.register(json!({
            "redirect_uris": ["http://localhost:3000/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "client_name": "MCP client",
            "scope": scope,
        }))
    };
    let before = app.calls();
    let (status, body) = register("mcp:tools").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["scope"], "mcp:tools");
    assert_eq!(
        app.calls().0 - before.0,
        2,
        "a cold copy of the declared scopes costs one GetItem"
    );
    let before = app.calls();
    let (status, body) = register("mcp:tools offline_access undeclared:scope").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["scope"], "mcp:tools offline_access",
        "undeclared values are left out"
    );
    assert_eq!(app.calls().0 - before.0, 1, "a warm copy: one round trip, the put");

    // Updating the resource server's scopes in place changes what registration accepts at once in
    // this process; deleting it withdraws them.
    state
        .store
        .update_resource_server_scopes(&rs.rs_id, &["files:read".into()], now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(register("mcp:tools files:read").await.1["scope"], "files:read");
    assert!(state.store.delete_resource_server(&rs.rs_id, now).await.unwrap());
    assert!(register("files:read").await.1.get("scope").is_none());
}

#[tokio::test]
async fn each_registration_gets_a_distinct_client() {
    let app = TestApp::start().await;
    let a: Value = app.register(json!({"redirect_uris": ["http://127.0.0.1/cb"]})).await.1;
    let b: Value = app.register(json!({"redirect_uris": ["http://127.0.0.1/cb"]})).await.1;
    assert_ne!(a["client_id"], b["client_id"]);
    assert_ne!(a["client_secret"], b["client_secret"]);
    assert_eq!(app.all_items().await.len(), 2);
}
