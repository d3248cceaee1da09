//! Tool discovery against documents shaped like real servers' (a path issuer, a root issuer served
//! as OpenID configuration, no protected resource metadata, no metadata at all) and against
//! hostile ones (mismatched issuer or resource, a redirect to another host, an oversized document),
//! plus server URLs the outbound policy refuses. Every target is on loopback; public-looking hosts
//! use the reserved `.invalid` domain and are refused before any lookup.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use common::TestApp;
use serde_json::{json, Value};

/// A canned answer: status, headers, body.
type Canned = (u16, Vec<(String, String)>, Vec<u8>);

/// A server answering each path with a configured (status, headers, body); 404 otherwise. Records
/// every path it was asked for.
#[derive(Clone, Default)]
struct Docs {
    routes: Arc<Mutex<HashMap<String, Canned>>>,
    seen: Arc<Mutex<Vec<String>>>,
    /// Paths that answer only after 12 seconds.
    slow: Arc<Mutex<Vec<String>>>,
}

impl Docs {
    async fn start() -> (Docs, String) {
        let docs = Docs::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(any(serve)).with_state(docs.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        (docs, base)
    }

    fn json(&self, path: &str, v: Value) {
        self.routes.lock().unwrap().insert(
            path.into(),
            (
                200,
                vec![("content-type".into(), "application/json".into())],
                v.to_string().into_bytes(),
            ),
        );
    }

    fn raw(&self, path: &str, status: u16, headers: &[(&str, &str)], body: Vec<u8>) {
        self.routes.lock().unwrap().insert(
            path.into(),
            (
                status,
                headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                body,
            ),
        );
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve(State(d): State<Docs>, uri: Uri) -> Response {
    d.seen.lock().unwrap().push(uri.path().to_string());
    if d.slow.lock().unwrap().iter().any(|p| p == uri.path()) {
        tokio::time::sleep(std::time::Duration::from_secs(12)).await;
    }
    match d.routes.lock().unwrap().get(uri.path()) {
        Some((status, headers, body)) => {
            let mut res = (StatusCode::from_u16(*status).unwrap(), body.clone()).into_response();
            for (k, v) in headers {
                res.headers_mut().insert(
                    axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            res
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn as_metadata(issuer: &str, base: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "registration_endpoint": format!("{base}/oauth/register"),
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
    })
}

async fn register(app: &TestApp, key: &str, server_url: &str) -> (u16, Value) {
    app.vault(
        "POST",
        "/tools",
        Some(key),
        Some(json!({"name": "T", "server_url": server_url, "redirect_uris": ["http://127.0.0.1:7777/cb"]})),
    )
    .await
}

async fn initiate(app: &TestApp, key: &str, tool_id: &str) -> (u16, Value) {
    app.vault(
        "POST",
        &format!("/tools/{tool_id}/initiate-oauth"),
        Some(key),
        Some(json!({"redirect_uri": "http://127.0.0.1:7777/cb"})),
    )
    .await
}

/// The `scope` parameter of an initiate answer's authorization URL.
fn scope_param(init: &Value) -> Option<String> {
    url::Url::parse(init["authorization_url"].as_str()?)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.into_owned())
}

async fn tool_count(app: &TestApp) -> usize {
    app.all_items()
        .await
        .iter()
        .filter(|i| i.get("type").and_then(|t| t.as_s().ok()).map(String::as_str) == Some("tool"))
        .count()
}

async fn setup() -> (TestApp, String, Docs, String) {
    let app = TestApp::start().await;
    let project = app.project("d").await;
    let (docs, base) = Docs::start().await;
    // Dynamic registration succeeds with a confidential client.
    docs.json(
        "/oauth/register",
        json!({"client_id": "dcr-client", "client_secret": "dcr-secret", "token_endpoint_auth_method": "client_secret_post"}),
    );
    (app, project.api_key, docs, base)
}

#[tokio::test]
async fn a_path_issuer_named_by_the_401_challenge() {
    let (app, key, docs, base) = setup().await;
    docs.raw(
        "/mcp",
        401,
        &[(
            "www-authenticate",
            &format!("Bearer resource_metadata=\"{base}/custom/prm\", scope=\"read write\""),
        )],
        vec![],
    );
    docs.json(
        "/custom/prm",
        json!({"resource": format!("{base}/mcp"), "authorization_servers": [format!("{base}/tenant1")]}),
    );
    docs.json(
        "/.well-known/oauth-authorization-server/tenant1",
        as_metadata(&format!("{base}/tenant1"), &base),
    );
    let (status, body) = register(&app, &key, &format!("{base}/mcp")).await;
    assert_eq!(status, 201, "{body}");
    let tool = &body["tool"];
    assert_eq!(tool["authorization_server"], format!("{base}/tenant1"));
    assert_eq!(tool["client_registration"], "dynamic");
    assert_eq!(tool["client_id"], "dcr-client");
    assert_eq!(tool["token_endpoint_auth_method"], "client_secret_post");
    assert_eq!(tool["scopes"], json!([]), "none configured");
    // Initiate asks for the challenge's scope (the authorization server offers no offline_access).
    let (status, init) = initiate(&app, &key, tool["tool_id"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{init}");
    assert_eq!(scope_param(&init), Some("read write".into()));
    // The secret is stored sealed, never shown.
    assert!(!body.to_string().contains("dcr-secret"));
    let raw = format!("{:?}", app.all_items().await);
    assert!(!raw.contains("dcr-secret"));
}

#[tokio::test]
async fn a_root_issuer_with_only_openid_configuration_and_well_known_prm() {
    let (app, key, docs, base) = setup().await;
    docs.raw("/mcp", 401, &[("www-authenticate", "Bearer")], vec![]);
    docs.json(
        "/.well-known/oauth-protected-resource/mcp",
        json!({"resource": format!("{base}/mcp"), "authorization_servers": [base], "scopes_supported": ["mcp"]}),
    );
    docs.json("/.well-known/openid-configuration", as_metadata(&base, &base));
    let (status, body) = register(&app, &key, &format!("{base}/mcp")).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["tool"]["authorization_server"], base);
    let (status, init) = initiate(&app, &key, body["item_id"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{init}");
    assert_eq!(
        scope_param(&init),
        Some("mcp".into()),
        "the resource's scopes_supported"
    );
    let seen = docs.seen();
    let oauth = seen
        .iter()
        .position(|p| p == "/.well-known/oauth-authorization-server")
        .unwrap();
    let oidc = seen
        .iter()
        .position(|p| p == "/.well-known/openid-configuration")
        .unwrap();
    assert!(oauth < oidc, "RFC 8414 first, then OpenID Connect: {seen:?}");
}

#[tokio::test]
async fn without_resource_metadata_the_origin_is_the_authorization_server() {
    let (app, key, docs, base) = setup().await;
    docs.raw("/mcp", 401, &[], vec![]);
    docs.json("/.well-known/oauth-authorization-server", as_metadata(&base, &base));
    let (status, body) = register(&app, &key, &format!("{base}/mcp")).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["tool"]["resource"], format!("{base}/mcp"));
    assert_eq!(body["tool"]["authorization_server"], base);
    let seen = docs.seen();
    assert!(seen.contains(&"/.well-known/oauth-protected-resource/mcp".to_string()));
    assert!(seen.contains(&"/.well-known/oauth-protected-resource".to_string()));
}

#[tokio::test]
async fn a_2025_03_26_server_without_any_metadata_uses_the_default_endpoints() {
    let (app, key, docs, base) = setup().await;
    docs.raw("/mcp", 401, &[], vec![]);
    docs.json("/register", json!({"client_id": "legacy-client"}));
    let (status, body) = register(&app, &key, &format!("{base}/mcp")).await;
    assert_eq!(status, 201, "{body}");
    let meta = &body["tool"]["authorization_server_metadata"];
    assert_eq!(meta["authorization_endpoint"], format!("{base}/authorize"));
    assert_eq!(meta["token_endpoint"], format!("{base}/token"));
    assert_eq!(body["tool"]["client_id"], "legacy-client");
    assert_eq!(body["tool"]["token_endpoint_auth_method"], "none");
}

#[tokio::test]
async fn rfc8414_3_3_rfc9728_3_3_mismatched_issuer_or_resource_is_refused_and_nothing_stored() {
    let (app, key, docs, base) = setup().await;
    docs.raw("/mcp", 401, &[], vec![]);
    docs.json(
        "/.well-known/oauth-protected-resource/mcp",
        json!({"resource": format!("{base}/mcp"), "authorization_servers": [base]}),
    );
    docs.json(
        "/.well-known/oauth-authorization-server",
        as_metadata("https://evil.invalid", &base),
    );
    let (status, body) = register(&app, &key, &format!("{base}/mcp")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("names issuer"), "{body}");
    // The resource metadata describes another server.
    docs.json(
        "/.well-known/oauth-protected-resource/mcp",
        json!({"resource": "https://other.invalid/mcp", "authorization_servers": [base]}),
    );
    let (status, body) = register(&app, &key, &format!("{base}/mcp")).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("is for https://other.invalid/mcp"),
        "{body}"
    );
    assert_eq!(tool_count(&app).await, 0);
}

#[tokio::test]
async fn redirects_to_another_host_and_oversized_documents_are_refused() {
    let (app, key, docs, base) = setup().await;
    docs.raw("/mcp", 401, &[], vec![]);
    // Another host (localhost is not 127.0.0.1): not followed.
    let port = base.rsplit(':').next().unwrap();
    docs.raw(
        "/.well-known/oauth-protected-resource/mcp",
        302,
        &[("location", &format!("http://localhost:{port}/elsewhere"))],
        vec![],
    );
    docs.json(
        "/elsewhere",
        json!({"resource": format!("{base}/mcp"), "authorization_servers": [base]}),
    );
    let (status, body) = register(&app, &key, &format!("{base}/mcp")).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("redirected to another host"),
        "{body}"
    );
    assert!(!docs.seen().contains(&"/elsewhere".to_string()));
    // More than 1 MB of metadata.
    docs.raw(
        "/.well-known/oauth-protected-resource/mcp",
        200,
        &[("content-type", "application/json")],
        format!("{{\"pad\":\"{}\"}}", "x".repeat(1024 * 1024 + 10)).into_bytes(),
    );
    let (status, body) = register(&app, &key, &format!("{base}/mcp")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("larger than 1 MB"), "{body}");
    assert_eq!(tool_count(&app).await, 0);
}

#[tokio::test]
async fn server_urls_the_policy_refuses_make_no_request() {
    let (app, key, docs, base) = setup().await;
    for (url, needle) in [
        ("http://mcp.example.invalid/mcp", "must use https"),
        ("https://user:pw@mcp.example.invalid/mcp", "no user info"),
        ("ftp://mcp.example.invalid/mcp", "scheme is not allowed"),
        ("not a url", "is not a URL"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://10.1.2.3/mcp", "private"),
        ("https://[fd00::1]/mcp", "private"),
        ("https://100.64.0.7/mcp", "shared address space"),
    ] {
        let (status, body) = register(&app, &key, url).await;
        assert_eq!(status, 400, "{url}: {body}");
        assert!(body["detail"].as_str().unwrap().contains(needle), "{url}: {body}");
    }
    assert!(docs.seen().is_empty());
    let _ = base;
    assert_eq!(tool_count(&app).await, 0);
}

#[tokio::test]
async fn the_production_policy_refuses_loopback_servers_and_names_resolving_to_loopback() {
    let app = TestApp::start_configured(None, &[("LATCHKEY_ALLOW_LOOPBACK_OUTBOUND", "false")]).await;
    let project = app.project("p").await;
    let (docs, base) = Docs::start().await;
    docs.raw("/mcp", 401, &[], vec![]);
    let port = base.rsplit(':').next().unwrap();
    for (url, needle) in [
        (format!("{base}/mcp"), "must use https"),
        (format!("https://127.0.0.1:{port}/mcp"), "loopback"),
        (format!("https://[::1]:{port}/mcp"), "loopback"),
        // A host name that resolves to loopback: refused after resolution, before connecting.
        (format!("https://localhost:{port}/mcp"), "loopback"),
    ] {
        let (status, body) = register(&app, &project.api_key, &url).await;
        assert_eq!(status, 400, "{url}: {body}");
        assert!(body["detail"].as_str().unwrap().contains(needle), "{url}: {body}");
    }
    assert!(docs.seen().is_empty(), "no connection reached the server");
    assert_eq!(tool_count(&app).await, 0);
}

#[tokio::test]
async fn operator_credentials_are_used_as_given_and_stored_sealed() {
    let (app, key, docs, base) = setup().await;
    docs.raw("/mcp", 401, &[], vec![]);
    docs.json(
        "/.well-known/oauth-protected-resource/mcp",
        json!({"resource": format!("{base}/mcp"), "authorization_servers": [base]}),
    );
    let mut meta = as_metadata(&base, &base);
    meta.as_object_mut().unwrap().remove("registration_endpoint");
    meta["token_endpoint_auth_methods_supported"] = json!(["client_secret_basic"]);
    meta["client_id_metadata_document_supported"] = json!(true);
    docs.json("/.well-known/oauth-authorization-server", meta);
    let (status, body) = app
        .vault(
            "POST",
            "/tools",
            Some(&key),
            Some(json!({"name": "T", "server_url": format!("{base}/mcp"), "client_id": "operator-client", "client_secret": "operator-secret-value"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["tool"]["client_registration"], "preregistered");
    assert_eq!(body["tool"]["client_id"], "operator-client");
    assert_eq!(body["tool"]["token_endpoint_auth_method"], "client_secret_basic");
    assert!(!docs.seen().iter().any(|p| p.contains("register")), "no registration");
    assert!(!format!("{:?}", app.all_items().await).contains("operator-secret-value"));
    assert!(!body.to_string().contains("operator-secret-value"));
}

#[tokio::test]
async fn complete_oauth_is_401_when_the_authorization_server_refuses_the_client() {
    let (app, key, docs, base) = setup().await;
    docs.raw("/mcp", 401, &[], vec![]);
    docs.json(
        "/.well-known/oauth-protected-resource/mcp",
        json!({"resource": format!("{base}/mcp"), "authorization_servers": [base]}),
    );
    docs.json("/.well-known/oauth-authorization-server", as_metadata(&base, &base));
    docs.raw(
        "/oauth/token",
        401,
        &[("content-type", "application/json")],
        br#"{"error":"invalid_client"}"#.to_vec(),
    );
    let (status, body) = register(&app, &key, &format!("{base}/mcp")).await;
    assert_eq!(status, 201, "{body}");
    let tool_id = body["item_id"].as_str().unwrap().to_string();
    let (status, init) = app
        .vault(
            "POST",
            &format!("/tools/{tool_id}/initiate-oauth"),
            Some(&key),
            Some(json!({"redirect_uri": "http://127.0.0.1:7777/cb"})),
        )
        .await;
    assert_eq!(status, 200, "{init}");
    let before = app.calls();
    let (status, body) = app
        .vault(
            "POST",
            &format!("/tools/{tool_id}/complete-oauth"),
            Some(&key),
            Some(json!({"code": "some-code", "state": init["state"]})),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("invalid_client"), "{body}");
    let after = app.calls();
    assert!(
        after.0 - before.0 <= 3,
        "complete-oauth: {} round trips",
        after.0 - before.0
    );
    assert!(docs.seen().contains(&"/oauth/token".to_string()));
    // The state is spent and nothing was stored.
    let (status, _) = app
        .vault(
            "POST",
            &format!("/tools/{tool_id}/complete-oauth"),
            Some(&key),
            Some(json!({"code": "some-code", "state": init["state"]})),
        )
        .await;
    assert_eq!(status, 422);
    let tokens = app.server.state.store.get_tool_tokens(&tool_id, 0).await.unwrap();
    assert!(tokens.is_none());
}

#[tokio::test]
async fn a_discovery_document_slower_than_ten_seconds_is_given_up() {
    let (app, key, docs, base) = setup().await;
    docs.raw("/mcp", 401, &[], vec![]);
    docs.json(
        "/.well-known/oauth-protected-resource/mcp",
        json!({"resource": format!("{base}/mcp"), "authorization_servers": [base]}),
    );
    docs.slow
        .lock()
        .unwrap()
        .push("/.well-known/oauth-protected-resource/mcp".into());
    let started = std::time::Instant::now();
    let (status, body) = register(&app, &key, &format!("{base}/mcp")).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("did not answer within 10 s"),
        "{body}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(12));
    assert_eq!(tool_count(&app).await, 0);
}
