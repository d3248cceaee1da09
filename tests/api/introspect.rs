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

/// Introspect `token` as `(id, secret)`: (active, DynamoDB round trips it took).
async fn introspect_counted(app: &TestApp, token: &str, id: &str, secret: &str) -> (bool, u64) {
    let before = app.calls().0;
    let (status, body) = app
        .post_form("/oauth/2.1/introspect", &[("token", token)], Some((id, secret)))
        .await;
    assert_eq!(status, 200, "{body}");
    (body["active"] == true, app.calls().0 - before)
}

#[tokio::test]
async fn issue13_serve_reuses_an_introspection_read_until_anything_is_written() {
    let app = TestApp::start_read_cached(None).await;
    let (rs_id, rs_secret) = app.resource_server(RESOURCE).await;
    let (client_id, _, at) = access_token(&app).await;
    let ask = |token: String| {
        let (app, id, secret) = (&app, rs_id.clone(), rs_secret.clone());
        async move { introspect_counted(app, &token, &id, &secret).await }
    };
    assert_eq!(ask(at.clone()).await, (true, 1), "a miss is the one round trip");
    assert_eq!(ask(at.clone()).await, (true, 0), "the same read again, reused");
    assert_eq!(ask(at.clone()).await, (true, 0));

    // Revocation is immediate: the revoke is a write, so the next introspection reads again.
    let (status, _) = app
        .post_form("/oauth/2.1/revoke", &[("token", &at), ("client_id", &client_id)], None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(ask(at.clone()).await, (false, 1), "revoked, seen at once");

    // Any write ends every reuse, however unrelated (exact, not per key).
    let (_, grant2, at2) = access_token(&app).await;
    assert_eq!(ask(at2.clone()).await, (true, 1));
    assert_eq!(ask(at2.clone()).await, (true, 0));
    let (status, _) = app.register(json!({"redirect_uris": ["http://127.0.0.1:9/cb"]})).await;
    assert_eq!(status, 201);
    assert_eq!(
        ask(at2.clone()).await,
        (true, 1),
        "a registration elsewhere is a write too"
    );

    // Another process writing through the emulator's port (a function's bootstrap under
    // scripts/invoke does this): its revocation is seen at once.
    let metrics = latchkey::metrics::Metrics::default();
    let other = latchkey::store::Store::new(
        latchkey::state::Aws::local_or_chain(Some(&app.server.dynamodb_endpoint))
            .await
            .dynamodb(&metrics),
        app.server.state.config.table.clone(),
    );
    let now = app.server.state.clock.now();
    assert_eq!(ask(at2.clone()).await, (true, 0));
    other.revoke_grant(&grant2, now).await.unwrap();
    assert_eq!(
        ask(at2.clone()).await,
        (false, 1),
        "a write through the port ends the reuse"
    );

    // Expiry is applied to a reused read as to a fresh one.
    let (_, _, at3) = access_token(&app).await;
    assert_eq!(ask(at3.clone()).await, (true, 1));
    assert_eq!(ask(at3.clone()).await, (true, 0));
    app.server.state.clock.advance(3601);
    assert_eq!(ask(at3.clone()).await, (false, 0), "expired, without a round trip");
}

#[tokio::test]
async fn issue13_serve_read_cache_sees_the_admin_commands_writes_to_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start_read_cached(Some(dir.path().to_path_buf())).await;
    let (rs_id, rs_secret) = app.resource_server(RESOURCE).await;
    let (_, grant_id, at) = access_token(&app).await;
    assert_eq!(introspect_counted(&app, &at, &rs_id, &rs_secret).await, (true, 1));
    assert_eq!(introspect_counted(&app, &at, &rs_id, &rs_secret).await, (true, 0));
    // `latchkey grant revoke` while serve runs: another connection to the same SQLite file, as the
    // admin commands open it from their own process.
    let admin = latchkey::local::open_store(Some(dir.path()), &app.server.state.config)
        .await
        .unwrap();
    let now = app.server.state.clock.now();
    admin.backends.store.revoke_grant(&grant_id, now).await.unwrap();
    drop(admin);
    assert_eq!(
        introspect_counted(&app, &at, &rs_id, &rs_secret).await,
        (false, 1),
        "the file changed under serve: read again"
    );
}
