//! RFC 8414 authorization server metadata, over HTTP against the embedded server.

use crate::common;

use common::TestApp;
use serde_json::json;

#[tokio::test]
async fn rfc8414_3_metadata_at_path_suffixed_and_root_well_known_with_zero_store_calls() {
    let app = TestApp::start().await;
    let before = app.calls();
    for path in [
        "/.well-known/oauth-authorization-server/oauth/2.1",
        "/.well-known/oauth-authorization-server",
    ] {
        let res = app
            .http
            .get(app.url(path))
            .header("mcp-protocol-version", "2025-06-18")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["access-control-allow-origin"], "*");
        assert_eq!(res.headers()["cache-control"], "public, max-age=3600");
        assert_eq!(res.headers()["content-type"], "application/json");
        let doc: serde_json::Value = res.json().await.unwrap();
        // RFC 8414 §3.3: the issuer must equal the issuer the client derived the URL from.
        assert_eq!(doc["issuer"], format!("{}/oauth/2.1", app.base));
        assert_eq!(doc["registration_endpoint"], format!("{}/oauth/2.1/register", app.base));
        assert_eq!(
            doc["authorization_endpoint"],
            format!("{}/oauth/2.1/authorize", app.base)
        );
        assert_eq!(doc["token_endpoint"], format!("{}/oauth/2.1/token", app.base));
        assert_eq!(
            doc["introspection_endpoint"],
            format!("{}/oauth/2.1/introspect", app.base)
        );
        assert_eq!(doc["revocation_endpoint"], format!("{}/oauth/2.1/revoke", app.base));
        assert_eq!(doc["response_types_supported"], json!(["code"]));
        assert_eq!(
            doc["grant_types_supported"],
            json!(["authorization_code", "refresh_token"])
        );
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(
            doc["token_endpoint_auth_methods_supported"],
            json!(["client_secret_basic", "client_secret_post", "none"])
        );
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        assert!(doc["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("offline_access")));
    }
    assert_eq!(app.calls(), before, "discovery makes no DynamoDB or KMS call");
}

#[tokio::test]
async fn cors_preflight_allows_mcp_protocol_version_header() {
    let app = TestApp::start().await;
    let res = app
        .http
        .request(
            reqwest::Method::OPTIONS,
            app.url("/.well-known/oauth-authorization-server/oauth/2.1"),
        )
        .header("origin", "http://localhost:6274")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "mcp-protocol-version")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let allowed = res.headers()["access-control-allow-headers"].to_str().unwrap();
    assert!(allowed.contains("mcp-protocol-version"));
}

#[tokio::test]
async fn rfc9110_15_5_6_wrong_method_is_405_with_allow_and_changes_nothing() {
    let app = TestApp::start().await;
    let before = app.calls();
    for method in [reqwest::Method::POST, reqwest::Method::PUT, reqwest::Method::DELETE] {
        let res = app
            .http
            .request(method.clone(), app.url("/.well-known/oauth-authorization-server"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "{method}");
        assert_eq!(res.headers()["allow"], "GET, OPTIONS");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
    }
    assert_eq!(app.calls(), before);
    assert!(app.all_items().await.is_empty());
}

#[tokio::test]
async fn unknown_path_is_404_json() {
    let app = TestApp::start().await;
    let res = app.http.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
}
