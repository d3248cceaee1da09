//! Introspection (RFC 7662) over HTTP with resource-server credentials: active tokens for the caller's
//! resource, `{"active": false}` and nothing else otherwise, one DynamoDB call, no KMS.

use crate::common;

use common::{assert_oauth_error, TestApp, RESOURCE};
use serde_json::json;

async fn access_token(app: &TestApp) -> (String, String, String) {
    let (client_id, _) = app.client("none").await;
    let t = app.issue_tokens(&client_id, "openid email").await;
    (client_id, t.grant_id, t.access_token)
}

#[tokio::test]
async fn rfc7662_2_2_active_token_for_its_resource_in_one_call() {
    let app = TestApp::start().await;
    let (rs_id, rs_secret) = app.resource_server(RESOURCE).await;
    let (client_id, _, at) = access_token(&app).await;
    let before = app.calls();
    let (status, body) = app
        .post_form("/oauth/2.1/introspect", &[("token", &at)], Some((&rs_id, &rs_secret)))
        .await;
    let after = app.calls();
    assert_eq!(status, 200, "{body}");
    assert_eq!(after.0 - before.0, 1, "introspect makes exactly one DynamoDB call");
    assert_eq!(after.1, before.1, "no KMS call");
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], client_id.as_str());
    assert_eq!(body["username"], "alice@example.com");
    assert_eq!(body["sub"], "user-1");
    assert_eq!(body["scope"], "openid email");
    assert_eq!(body["aud"], RESOURCE);
    assert_eq!(body["iss"], format!("{}/oauth/2.1", app.base));
    assert!(body["exp"].as_i64().unwrap() > body["iat"].as_i64().unwrap());
}

#[tokio::test]
async fn rfc7662_2_2_other_audience_expired_revoked_and_unknown_are_inactive_and_nothing_else() {
    let app = TestApp::start().await;
    let (other_id, other_secret) = app.resource_server("https://other.example.com/mcp").await;
    let (rs_id, rs_secret) = app.resource_server(RESOURCE).await;
    let (client_id, _, at) = access_token(&app).await;
    let inactive = json!({"active": false});
    let ask = |token: String, id: String, secret: String| {
        let app = &app;
        async move {
            app.post_form("/oauth/2.1/introspect", &[("token", &token)], Some((&id, &secret)))
                .await
        }
    };
    assert_eq!(
        ask(at.clone(), other_id, other_secret).await,
        (200, inactive.clone()),
        "another audience"
    );
    for token in ["lk_at_nope.nope", "garbage", "lk_rt_x.y"] {
        assert_eq!(
            ask(token.into(), rs_id.clone(), rs_secret.clone()).await,
            (200, inactive.clone()),
            "{token}"
        );
    }
    // Revoked (RFC 7009) → inactive.
    let (status, _) = app
        .post_form("/oauth/2.1/revoke", &[("token", &at), ("client_id", &client_id)], None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        ask(at.clone(), rs_id.clone(), rs_secret.clone()).await,
        (200, inactive.clone()),
        "revoked"
    );
    // Expired → inactive.
    let (_, _, at2) = access_token(&app).await;
    assert_eq!(
        ask(at2.clone(), rs_id.clone(), rs_secret.clone()).await.1["active"],
        true
    );
    app.server.state.clock.advance(3601);
    assert_eq!(ask(at2, rs_id, rs_secret).await, (200, inactive), "expired");
}

#[tokio::test]
async fn rfc7662_2_1_introspection_needs_resource_server_credentials_not_client_credentials() {
    let app = TestApp::start().await;
    let (rs_id, rs_secret) = app.resource_server(RESOURCE).await;
    let (_, _, at) = access_token(&app).await;
    let (client_id, client_secret) = app.client("client_secret_basic").await;
    let client_secret = client_secret.unwrap();
    for (id, secret) in [
        (rs_id.as_str(), "lk_rss_wrong"),
        (client_id.as_str(), client_secret.as_str()),
        ("lkrs_nobody", "x"),
    ] {
        let got = app
            .post_form("/oauth/2.1/introspect", &[("token", &at)], Some((id, secret)))
            .await;
        assert_oauth_error(&got, 401, "invalid_client");
    }
    let got = app.post_form("/oauth/2.1/introspect", &[("token", &at)], None).await;
    assert_oauth_error(&got, 401, "invalid_client");
    let got = app
        .post_form("/oauth/2.1/introspect", &[], Some((&rs_id, &rs_secret)))
        .await;
    assert_oauth_error(&got, 400, "invalid_request");
    let got = app
        .post_form(
            "/oauth/2.1/introspect",
            &[("token", &at), ("token", &at)],
            Some((&rs_id, &rs_secret)),
        )
        .await;
    assert_oauth_error(&got, 400, "invalid_request");
    let res = app.http.get(app.url("/oauth/2.1/introspect")).send().await.unwrap();
    assert_eq!(res.status(), 405);
}

#[tokio::test]
async fn rfc7662_2_2_a_revoked_grant_makes_its_tokens_inactive_even_before_they_are_deleted() {
    let app = TestApp::start().await;
    let (rs_id, rs_secret) = app.resource_server(RESOURCE).await;
    let (_, grant_id, at) = access_token(&app).await;
    let store = &app.server.state.store;
    // Mark the grant revoked the way revoke_grant's first step does, leaving the token item in place.
    store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(latchkey::store::grants::grant_key(&grant_id).to_map()))
        .update_expression("SET #s = :r")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":r", aws_sdk_dynamodb::types::AttributeValue::S("revoked".into()))
        .send()
        .await
        .unwrap();
    let got = app
        .post_form("/oauth/2.1/introspect", &[("token", &at)], Some((&rs_id, &rs_secret)))
        .await;
    assert_eq!(got, (200, json!({"active": false})));
    let huge = "x".repeat(3000);
    let got = app
        .post_form("/oauth/2.1/introspect", &[("token", &at)], Some((&huge, "x")))
        .await;
    assert_oauth_error(&got, 401, "invalid_client");
}
