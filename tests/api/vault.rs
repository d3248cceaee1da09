//! The token vault end to end over real HTTP: latchkey serve (embedded) and a fake OAuth provider on
//! loopback playing Google. Sessions, the callback, connections, the proxy with refresh, and every
//! kind of bad input, asserting status, body and what was stored.

use crate::common;

use std::time::Duration;

use common::fake_provider::FakeProvider;
use common::{connected, connections, items_of, setup_with, Project, TestApp};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn setup() -> (TestApp, FakeProvider, Project) {
    setup_with(&[]).await
}

/// `POST /v1/identity/sessions` for `user` and Google.
async fn start_session(app: &TestApp, project: &Project, user: &str) -> (u16, Value) {
    app.vault(
        "POST",
        "/v1/identity/sessions",
        Some(&project.api_key),
        Some(json!({"user_id": user, "provider": "google"})),
    )
    .await
}

fn assert_vault_error(got: &(u16, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "status for {}", got.1);
    assert_eq!(got.1["error"]["code"], code, "body {}", got.1);
    assert!(
        got.1["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message in {}",
        got.1
    );
}

fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url).unwrap().query_pairs().into_owned().collect()
}

/// Send an exact request target and headers (reqwest would normalise `..` and `%2e`).
async fn raw_request(app: &TestApp, head: &str, body: &[u8]) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(app.server.addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn session_connect_status_list_and_proxy_over_real_http() {
    let (app, fake, project) = setup().await;
    let asked = app.server.state.clock.now();
    let (status, body) = start_session(&app, &project, "user-1").await;
    let answered = app.server.state.clock.now();
    assert_eq!(status, 201, "{body}");
    let auth_url = body["auth_url"].as_str().unwrap();
    assert!(auth_url.starts_with(&fake.url("/authorize?")), "{auth_url}");
    let q = query_of(auth_url);
    assert_eq!(q["client_id"], common::fake_provider::CLIENT_ID);
    assert_eq!(q["redirect_uri"], app.url("/v1/identity/callback"));
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert!(q["state"].len() >= 43);
    assert_eq!(q["scope"], "openid email");
    // Google's quirks for a refresh token come from the catalogue.
    assert_eq!(q["access_type"], "offline");
    assert_eq!(q["prompt"], "consent");
    let expires_at = body["expires_at"].as_str().unwrap();
    // Five minutes from when the request was handled (the second may tick while it is).
    assert!(
        (asked..=answered).any(|t| expires_at == latchkey::clock::iso8601(t + 300)),
        "{expires_at} is not 300 s after {asked}..={answered}"
    );
    assert!(body["session_id"].as_str().unwrap().starts_with("vs_"));
    let session_id = body["session_id"].as_str().unwrap().to_string();

    let status_path = format!("/v1/identity/sessions/{session_id}");
    let before = app.calls();
    let got = app.vault("GET", &status_path, Some(&project.api_key), None).await;
    assert_eq!(got.0, 200);
    assert_eq!(got.1["status"], "pending");
    let after = app.calls();
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (1, 0),
        "session status: 1 DynamoDB round trip, no KMS"
    );

    // The browser: the provider approves and sends the user back to latchkey's callback.
    let browser = reqwest::Client::new();
    let page = browser.get(auth_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let text = page.text().await.unwrap();
    assert!(text.contains("Connected to Fake Google"), "{text}");

    let got = app.vault("GET", &status_path, Some(&project.api_key), None).await;
    assert_eq!(got.1["status"], "complete", "{}", got.1);
    assert_eq!(got.1["provider"], "google");
    assert_eq!(got.1["user_id"], "user-1");
    assert!(got.1.get("error").is_none());

    let list = connections(&app, &project, "user-1").await;
    let conns = list.as_array().unwrap();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0]["provider"], "google");
    assert_eq!(conns[0]["status"], "active");
    assert_eq!(conns[0]["account_id"], "fake-user-1");
    assert_eq!(conns[0]["email"], "fake-user-1@example.com");
    assert_eq!(conns[0]["scopes"], json!(["openid", "email"]));
    assert!(conns[0]["expires_at"].is_string());
    let listed = list.to_string();
    assert!(
        !listed.contains("fake-at-") && !listed.contains("fake-rt-") && !listed.contains("token"),
        "{listed}"
    );

    // The proxy attaches the user's token; the first call opens the data key, later ones do not.
    let (status, _, body) = app.proxy("GET", "google/me", &project.api_key, "user-1").await;
    assert_eq!(status, 200, "{body}");
    let me: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(me["id"], "fake-user-1");
    let before = app.calls();
    let (status, headers, _) = app.proxy("GET", "google/me", &project.api_key, "user-1").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json");
    let after = app.calls();
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (1, 0),
        "warm proxy: 1 DynamoDB round trip, no KMS"
    );
}

#[tokio::test]
async fn stored_items_hold_no_token_or_secret_bytes() {
    let (app, fake, project) = setup().await;
    connected(&app, &project, "user-1").await;
    let (access, refresh): (Vec<String>, Vec<String>) = {
        let st = fake.state.lock().unwrap();
        (
            st.access.keys().cloned().collect(),
            st.refresh.keys().cloned().collect(),
        )
    };
    assert!(!access.is_empty() && !refresh.is_empty());
    let needles: Vec<Vec<u8>> = access
        .iter()
        .chain(refresh.iter())
        .map(|s| s.as_bytes().to_vec())
        .chain([
            common::fake_provider::CLIENT_SECRET.as_bytes().to_vec(),
            project.api_key.as_bytes().to_vec(),
        ])
        .collect();
    for item in app.all_items().await {
        for (name, value) in &item {
            let bytes: Vec<u8> = match value {
                aws_sdk_dynamodb::types::AttributeValue::S(s) => s.as_bytes().to_vec(),
                aws_sdk_dynamodb::types::AttributeValue::B(b) => b.as_ref().to_vec(),
                other => format!("{other:?}").into_bytes(),
            };
            for n in &needles {
                assert!(
                    !bytes.windows(n.len()).any(|w| w == n.as_slice()),
                    "attribute {name} of {:?} holds a secret",
                    item.get("pk")
                );
            }
        }
    }
}

#[tokio::test]
async fn swapped_ciphertexts_between_users_fail_to_decrypt() {
    let (app, fake, project) = setup().await;
    connected(&app, &project, "alice").await;
    fake.state.lock().unwrap().next_user = "fake-user-2".into();
    connected(&app, &project, "bob").await;
    let store = &app.server.state.store;
    let key_a = latchkey::store::connections::connection_key(&project.project_id, "alice", "google");
    let key_b = latchkey::store::connections::connection_key(&project.project_id, "bob", "google");
    let a = store.get(&key_a, 0).await.unwrap().unwrap();
    let b = store.get(&key_b, 0).await.unwrap().unwrap();
    let (ta, tb) = (a.b("tokens").unwrap().to_vec(), b.b("tokens").unwrap().to_vec());
    store.put(a.clone().set_b("tokens", tb)).await.unwrap();
    store.put(b.clone().set_b("tokens", ta)).await.unwrap();
    for user in ["alice", "bob"] {
        let (status, _, body) = app.proxy("GET", "google/me", &project.api_key, user).await;
        assert_eq!(status, 500, "{user}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["code"], "internal_error");
        assert!(!body.contains("fake-"), "{body}");
    }
    store.put(a).await.unwrap();
    store.put(b).await.unwrap();
    let (status, _, body) = app.proxy("GET", "google/me", &project.api_key, "bob").await;
    assert_eq!(status, 200);
    assert!(body.contains("fake-user-2"));
}

#[tokio::test]
async fn proxy_forwards_method_query_and_body_and_filters_headers() {
    let (app, _fake, project) = setup().await;
    connected(&app, &project, "user-1").await;
    let res = app
        .http
        .post(app.url("/v1/proxy/google/echo/a/b?x=1&y=two%20words"))
        .header("x-api-key", &project.api_key)
        .header("x-user-id", "user-1")
        .header("content-type", "application/json")
        .header("x-custom", "kept")
        .header("cookie", "session=secret")
        .header("authorization", "Bearer caller-token")
        .header("x-forwarded-for", "198.51.100.7")
        .header("x-latchkey-debug", "1")
        .header("te", "trailers")
        .header("proxy-authorization", "Basic c2VjcmV0")
        .header("upgrade", "websocket")
        .header("forwarded", "for=198.51.100.7")
        .body(r#"{"hello":"world"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers().get("set-cookie").is_none(),
        "upstream cookies are not returned"
    );
    assert_eq!(res.headers()["x-ratelimit-remaining"], "42");
    assert_eq!(res.headers()["etag"], "\"v1\"");
    let echo: Value = res.json().await.unwrap();
    assert_eq!(
        echo["user"], "fake-user-1",
        "latchkey's token replaced the caller's Authorization"
    );
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/api/echo/a/b");
    assert_eq!(echo["query"], "x=1&y=two%20words");
    assert_eq!(echo["body"], r#"{"hello":"world"}"#);
    let sent: Vec<String> = serde_json::from_value(echo["headers"].clone()).unwrap();
    assert!(sent.contains(&"x-custom".to_string()) && sent.contains(&"content-type".to_string()));
    for dropped in [
        "cookie",
        "x-api-key",
        "x-user-id",
        "x-forwarded-for",
        "x-latchkey-debug",
    ] {
        assert!(
            !sent.contains(&dropped.to_string()),
            "{dropped} was forwarded: {sent:?}"
        );
    }
    // Binary bodies come back byte for byte.
    let res = app
        .http
        .get(app.url("/v1/proxy/google/binary"))
        .header("x-api-key", &project.api_key)
        .header("x-user-id", "user-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(
        res.bytes().await.unwrap().as_ref(),
        &[0x89, b'P', b'N', b'G', 0, 0xff, 0xfe]
    );
}

#[tokio::test]
async fn twenty_concurrent_calls_on_an_expired_token_cause_one_refresh() {
    let (app, fake, project) = setup().await;
    connected(&app, &project, "user-1").await;
    fake.set(|b| b.refresh_delay = Duration::from_millis(300));
    app.server.state.clock.advance(3600);
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let app = std::sync::Arc::clone(&app);
        let key = project.api_key.clone();
        tasks.push(tokio::spawn(async move {
            app.proxy("GET", "google/me", &key, "user-1").await
        }));
    }
    for t in tasks {
        let (status, _, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(fake.refreshes(), 1, "exactly one upstream refresh");
    // The rotated refresh token was stored: the next expiry refreshes again with it.
    app.server.state.clock.advance(3600);
    let (status, _, body) = app.proxy("GET", "google/me", &project.api_key, "user-1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fake.refreshes(), 2);
}

#[tokio::test]
async fn a_refresh_without_a_new_refresh_token_keeps_the_old_one() {
    let (app, fake, project) = setup().await;
    connected(&app, &project, "user-1").await;
    fake.set(|b| b.rotate_refresh = false);
    for round in 1..=2 {
        app.server.state.clock.advance(3600);
        let (status, _, body) = app.proxy("GET", "google/me", &project.api_key, "user-1").await;
        assert_eq!(status, 200, "round {round}: {body}");
        assert_eq!(fake.refreshes(), round);
    }
}

#[tokio::test]
async fn a_401_from_the_provider_refreshes_once_and_retries() {
    let (app, fake, project) = setup().await;
    connected(&app, &project, "user-1").await;
    fake.drop_access_tokens();
    let (status, _, body) = app.proxy("GET", "google/me", &project.api_key, "user-1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fake.refreshes(), 1);
    // A 401 that persists after the refresh is the provider's answer: passed through, after
    // exactly one refresh and one retry.
    fake.set(|b| b.reject_api = true);
    let calls_before = fake.state.lock().unwrap().api_calls;
    let (status, headers, body) = app.proxy("GET", "google/me", &project.api_key, "user-1").await;
    assert_eq!(status, 401, "{body}");
    assert!(
        headers.get("x-latchkey-error").is_none(),
        "the provider's 401, not latchkey's"
    );
    assert_eq!(headers["www-authenticate"], "Bearer error=\"invalid_token\"");
    assert_eq!(fake.refreshes(), 2);
    assert_eq!(
        fake.state.lock().unwrap().api_calls - calls_before,
        2,
        "the call and one retry"
    );
}

#[tokio::test]
async fn a_revoked_refresh_token_requires_reauthorization() {
    let (app, fake, project) = setup().await;
    connected(&app, &project, "user-1").await;
    fake.drop_refresh_tokens();
    app.server.state.clock.advance(3600);
    let (status, headers, body) = app.proxy("GET", "google/me", &project.api_key, "user-1").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(headers["x-latchkey-error"], "1");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "reauthorization_required");
    let list = connections(&app, &project, "user-1").await;
    assert_eq!(list[0]["status"], "reauthorization_required");
    // Later calls answer at once without asking the provider again.
    let (status, _, _) = app.proxy("GET", "google/me", &project.api_key, "user-1").await;
    assert_eq!(status, 401);
    assert_eq!(fake.refreshes(), 1);
    // Connecting again restores the connection.
    connected(&app, &project, "user-1").await;
    let (status, _, _) = app.proxy("GET", "google/me", &project.api_key, "user-1").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_user_may_hold_several_providers_and_delete_revokes_upstream() {
    let (app, fake, project) = setup().await;
    let mut other = fake.overrides();
    other.insert("display_name".into(), json!("Fake Hub"));
    app.set_provider(&project, "github", Some("github"), other).await;
    connected(&app, &project, "user-1").await;
    let (_, status, page) = app.connect(&project, "user-1", "github").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Connected to Fake Hub"));
    let list = connections(&app, &project, "user-1").await;
    let providers: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["provider"].as_str().unwrap())
        .collect();
    assert_eq!(providers, vec!["github", "google"]);

    let got = app
        .vault(
            "DELETE",
            "/v1/identity/users/user-1/connections/google",
            Some(&project.api_key),
            None,
        )
        .await;
    assert_eq!(got.0, 200, "{}", got.1);
    assert_eq!(
        got.1,
        json!({"deleted": true, "provider": "google", "revoked_upstream": true})
    );
    assert_eq!(fake.state.lock().unwrap().revocations.len(), 1);
    let (status, _, body) = app.proxy("GET", "google/me", &project.api_key, "user-1").await;
    assert_eq!(status, 404);
    assert!(body.contains("not_connected"));
    let got = app
        .vault(
            "DELETE",
            "/v1/identity/users/user-1/connections/google",
            Some(&project.api_key),
            None,
        )
        .await;
    assert_vault_error(&got, 404, "not_connected");
    let list = connections(&app, &project, "user-1").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn projects_cannot_see_or_use_each_others_sessions_or_users() {
    let (app, fake, a) = setup().await;
    let b = app.project("other").await;
    app.set_provider(&b, "google", Some("google"), fake.overrides()).await;
    let session_a = connected(&app, &a, "shared-user").await;
    let got = app
        .vault(
            "GET",
            &format!("/v1/identity/sessions/{session_a}"),
            Some(&b.api_key),
            None,
        )
        .await;
    assert_vault_error(&got, 404, "not_found");
    let (status, _, body) = app.proxy("GET", "google/me", &b.api_key, "shared-user").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("not_connected"));
    let (_, list) = app
        .vault(
            "GET",
            "/v1/identity/users/shared-user/connections",
            Some(&b.api_key),
            None,
        )
        .await;
    assert_eq!(list["connections"], json!([]));
    let got = app
        .vault(
            "DELETE",
            "/v1/identity/users/shared-user/connections/google",
            Some(&b.api_key),
            None,
        )
        .await;
    assert_vault_error(&got, 404, "not_connected");
    // A's connection is untouched.
    let (status, _, _) = app.proxy("GET", "google/me", &a.api_key, "shared-user").await;
    assert_eq!(status, 200);
    // Project B's key with A's project id in front of it is not A's key.
    let forged = b.api_key.replace(&b.project_id, &a.project_id);
    let (status, _, _) = app.proxy("GET", "google/me", &forged, "shared-user").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn api_keys_missing_malformed_unknown_or_revoked_are_refused() {
    let (app, _fake, project) = setup().await;
    let body = json!({"user_id": "u", "provider": "google"});
    let unknown = format!("lk_ak_{}.{}", project.project_id, "A".repeat(43));
    let store = &app.server.state.store;
    let now = app.server.state.clock.now();
    let (key_id, revoked) = store.create_api_key(&project.project_id, now).await.unwrap();
    assert!(store.revoke_api_key(&project.project_id, &key_id, now).await.unwrap());
    for key in [
        None,
        Some(""),
        Some("not-a-key"),
        Some("lk_ak_x.y"),
        Some(unknown.as_str()),
        Some(revoked.as_str()),
    ] {
        let got = app
            .vault("POST", "/v1/identity/sessions", key, Some(body.clone()))
            .await;
        assert_vault_error(&got, 401, "invalid_api_key");
        let got = app.vault("GET", "/v1/identity/sessions/vs_x", key, None).await;
        assert_vault_error(&got, 401, "invalid_api_key");
        let got = app.vault("GET", "/v1/identity/users/u/connections", key, None).await;
        assert_vault_error(&got, 401, "invalid_api_key");
    }
    assert!(items_of(&app, "vault_session").await.is_empty(), "nothing stored");
    // The project's first key still works.
    let got = app
        .vault("POST", "/v1/identity/sessions", Some(&project.api_key), Some(body))
        .await;
    assert_eq!(got.0, 201);
}

#[tokio::test]
async fn malformed_session_requests_are_refused_and_store_nothing() {
    let (app, _fake, project) = setup().await;
    let key = Some(project.api_key.as_str());
    let long_user = "u".repeat(1024);
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"user_id": "u", "provider": "nope"}), 404, "unknown_provider"),
        (json!({"user_id": "u", "provider": "Google"}), 404, "unknown_provider"),
        (
            json!({"user_id": "u", "provider": "github"}),
            409,
            "provider_not_configured",
        ),
        (json!({"user_id": "", "provider": "google"}), 400, "invalid_request"),
        (
            json!({"user_id": long_user, "provider": "google"}),
            400,
            "invalid_request",
        ),
        (json!({"user_id": "a\nb", "provider": "google"}), 400, "invalid_request"),
        (
            json!({"user_id": "a\u{0}b", "provider": "google"}),
            400,
            "invalid_request",
        ),
        (json!({"user_id": 7, "provider": "google"}), 400, "invalid_request"),
        (json!({"provider": "google"}), 400, "invalid_request"),
        (json!({"user_id": "u"}), 400, "invalid_request"),
        (
            json!({"user_id": "u", "provider": "google", "scopes": "email"}),
            400,
            "invalid_request",
        ),
        (
            json!({"user_id": "u", "provider": "google", "scopes": ["a b"]}),
            400,
            "invalid_request",
        ),
        (
            json!({"user_id": "u", "provider": "google", "scopes": [1]}),
            400,
            "invalid_request",
        ),
        (
            json!({"user_id": "u", "provider": "google", "scope": ["email"]}),
            400,
            "invalid_request",
        ),
    ];
    for (body, status, code) in cases {
        let got = app
            .vault("POST", "/v1/identity/sessions", key, Some(body.clone()))
            .await;
        assert_vault_error(&got, status, code);
        if code == "provider_not_configured" {
            let msg = got.1["error"]["message"].as_str().unwrap();
            assert!(
                msg.contains(&format!(
                    "latchkey provider set --project {} github",
                    project.project_id
                )),
                "{msg}"
            );
        }
    }
    let send = |ct: &'static str, body: Vec<u8>| {
        app.http
            .post(app.url("/v1/identity/sessions"))
            .header("x-api-key", &project.api_key)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    assert_eq!(
        send("application/json", b"{not json".to_vec()).await.unwrap().status(),
        400
    );
    assert_eq!(send("application/json", b"[]".to_vec()).await.unwrap().status(), 400);
    assert_eq!(
        send(
            "application/json",
            br#"{"user_id":"a","user_id":"b","provider":"google"}"#.to_vec()
        )
        .await
        .unwrap()
        .status(),
        400
    );
    assert_eq!(send("text/plain", b"{}".to_vec()).await.unwrap().status(), 415);
    let big = format!(
        r#"{{"user_id":"u","provider":"google","pad":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    let res = send("application/json", big.into_bytes()).await.unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "body_too_large");
    assert!(items_of(&app, "vault_session").await.is_empty());
    assert!(items_of(&app, "vault_state").await.is_empty());
}

#[tokio::test]
async fn expired_sessions_report_expired_and_their_callback_is_refused() {
    let (app, fake, project) = setup().await;
    let (_, body) = start_session(&app, &project, "u").await;
    let session_id = body["session_id"].as_str().unwrap();
    app.server.state.clock.advance(301);
    let got = app
        .vault(
            "GET",
            &format!("/v1/identity/sessions/{session_id}"),
            Some(&project.api_key),
            None,
        )
        .await;
    assert_eq!(got.1["status"], "expired");
    let page = reqwest::get(body["auth_url"].as_str().unwrap()).await.unwrap();
    assert_eq!(page.status(), 400);
    assert!(page.text().await.unwrap().contains("unknown, expired or already used"));
    assert_eq!(fake.state.lock().unwrap().code_exchanges, 0);
    assert!(items_of(&app, "connection").await.is_empty());
    let (_, list) = app
        .vault("GET", "/v1/identity/users/u/connections", Some(&project.api_key), None)
        .await;
    assert_eq!(list["connections"], json!([]));
    // Unknown and malformed session ids are 404.
    for id in ["vs_unknown", "not-a-session", "vs_%00"] {
        let got = app
            .vault(
                "GET",
                &format!("/v1/identity/sessions/{id}"),
                Some(&project.api_key),
                None,
            )
            .await;
        assert_vault_error(&got, 404, "not_found");
    }
}

/// Start a session and let the provider approve it, without following the redirect back: the
/// callback URL the browser would open.
async fn approved_callback(app: &TestApp, project: &Project, user: &str) -> (String, String) {
    let (_, body) = start_session(app, project, user).await;
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = no_redirect
        .get(body["auth_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    (
        body["session_id"].as_str().unwrap().to_string(),
        res.headers()["location"].to_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn a_replayed_callback_changes_nothing() {
    let (app, fake, project) = setup().await;
    let (session_id, callback) = approved_callback(&app, &project, "u").await;
    let first = reqwest::get(&callback).await.unwrap();
    assert_eq!(first.status(), 200);
    let conn_before = app
        .server
        .state
        .store
        .get_connection(&project.project_id, "u", "google", 0)
        .await
        .unwrap()
        .unwrap();
    let replay = reqwest::get(&callback).await.unwrap();
    assert_eq!(replay.status(), 400);
    assert!(replay.text().await.unwrap().contains("already used"));
    let conn_after = app
        .server
        .state
        .store
        .get_connection(&project.project_id, "u", "google", 0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conn_before, conn_after);
    assert_eq!(fake.state.lock().unwrap().code_exchanges, 1);
    let got = app
        .vault(
            "GET",
            &format!("/v1/identity/sessions/{session_id}"),
            Some(&project.api_key),
            None,
        )
        .await;
    assert_eq!(got.1["status"], "complete");
    // No state at all, or an unknown one: an error page, nothing stored.
    for q in ["", "?code=x", "?code=x&state=unknown", "?state=a&state=b"] {
        let res = reqwest::get(app.url(&format!("/v1/identity/callback{q}")))
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{q}");
    }
}

#[tokio::test]
async fn a_code_delivered_with_another_sessions_state_connects_nobody() {
    let (app, fake, project) = setup().await;
    let (s1, cb1) = approved_callback(&app, &project, "victim").await;
    let (s2, cb2) = approved_callback(&app, &project, "attacker").await;
    let code1 = query_of(&cb1)["code"].clone();
    let state2 = query_of(&cb2)["state"].clone();
    let mixed = format!("{}?code={}&state={}", app.url("/v1/identity/callback"), code1, state2);
    let res = reqwest::get(&mixed).await.unwrap();
    assert_eq!(res.status(), 502);
    // The provider refused: the code was bound to session 1's PKCE challenge.
    let got = app
        .vault(
            "GET",
            &format!("/v1/identity/sessions/{s2}"),
            Some(&project.api_key),
            None,
        )
        .await;
    assert_eq!(got.1["status"], "error");
    assert_eq!(got.1["error"]["code"], "token_exchange_failed");
    let got = app
        .vault(
            "GET",
            &format!("/v1/identity/sessions/{s1}"),
            Some(&project.api_key),
            None,
        )
        .await;
    assert_eq!(got.1["status"], "pending");
    for user in ["victim", "attacker"] {
        assert!(app
            .server
            .state
            .store
            .get_connection(&project.project_id, user, "google", 0)
            .await
            .unwrap()
            .is_none());
    }
    assert_eq!(fake.state.lock().unwrap().code_exchanges, 0);
}

#[tokio::test]
async fn a_provider_error_marks_the_session_error() {
    let (app, fake, project) = setup().await;
    fake.set(|b| b.deny = Some("access_denied".into()));
    let (session_id, status, page) = app.connect(&project, "u", "google").await;
    assert_eq!(status, 200);
    assert!(page.contains("was not completed (access_denied)"), "{page}");
    let got = app
        .vault(
            "GET",
            &format!("/v1/identity/sessions/{session_id}"),
            Some(&project.api_key),
            None,
        )
        .await;
    assert_eq!(got.1["status"], "error");
    assert_eq!(got.1["error"]["code"], "access_denied");
    assert_eq!(got.1["error"]["message"], "The user said no");
    assert!(items_of(&app, "connection").await.is_empty());
}

#[tokio::test]
async fn hostile_proxy_paths_are_refused_before_any_store_read_or_upstream_call() {
    let (app, fake, project) = setup().await;
    connected(&app, &project, "u").await;
    let calls_before = fake.state.lock().unwrap().api_calls;
    let ddb_before = app.calls().0;
    for target in [
        "/v1/proxy/google/../admin",
        "/v1/proxy/google/api/../../x",
        "/v1/proxy/google/%2e%2e/x",
        "/v1/proxy/google/%2E%2e/%2e%2e/x",
        "/v1/proxy/google/a%2Fb",
        "/v1/proxy/google/a%5cb",
        "/v1/proxy/google//evil.invalid/x",
        "/v1/proxy/google/https://evil.invalid/x",
        "/v1/proxy/google/user@evil.invalid/x",
        "/v1/proxy/google/a%00b",
        "/v1/proxy/google/me%0d%0aHost:%20evil.invalid",
    ] {
        let head = format!(
            "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {}\r\nX-User-Id: u\r\nConnection: close\r\n\r\n",
            project.api_key
        );
        let (status, text) = raw_request(&app, &head, b"").await;
        assert_eq!(status, 400, "{target}: {text}");
        assert!(
            text.contains("\"invalid_request\""),
            "{target}: refused by latchkey: {text}"
        );
    }
    // A backslash in the request target: refused (by the HTTP server or by latchkey).
    let head = format!(
        "GET /v1/proxy/google/a\\b HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {}\r\nX-User-Id: u\r\nConnection: close\r\n\r\n",
        project.api_key
    );
    let (status, _) = raw_request(&app, &head, b"").await;
    assert_eq!(status, 400);
    assert_eq!(
        fake.state.lock().unwrap().api_calls,
        calls_before,
        "nothing reached the provider"
    );
    assert_eq!(app.calls().0, ddb_before, "refused before any store read");
}

#[tokio::test]
async fn header_injection_and_oversized_bodies_are_refused() {
    let (app, fake, project) = setup().await;
    connected(&app, &project, "u").await;
    let calls_before = fake.state.lock().unwrap().api_calls;
    // CR/LF smuggled into a forwarded header (obs-fold and a bare CR).
    for injected in ["X-Custom: a\r\n b\r\n", "X-Custom: a\rInjected: 1\r\n"] {
        let head = format!(
            "GET /v1/proxy/google/echo/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {}\r\nX-User-Id: u\r\n{injected}Connection: close\r\n\r\n",
            project.api_key
        );
        let (status, text) = raw_request(&app, &head, b"").await;
        assert_eq!(status, 400, "{text}");
    }
    // Through API Gateway the header arrives in a JSON event, where CR/LF are just characters:
    // the event is refused before the handler or the handler refuses it; nothing goes upstream.
    let event = json!({
        "version": "2.0",
        "routeKey": "ANY /v1/proxy/{provider}/{path+}",
        "rawPath": "/v1/proxy/google/echo/x",
        "rawQueryString": "",
        "headers": {"x-api-key": project.api_key, "x-user-id": "u", "x-custom": "a\r\nX-Injected: 1"},
        "requestContext": {"http": {"method": "GET", "path": "/v1/proxy/google/echo/x", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.1", "userAgent": "t"},
            "domainName": "example.invalid", "requestId": "r", "routeKey": "ANY /v1/proxy/{provider}/{path+}", "stage": "$default", "accountId": "1", "apiId": "a", "time": "t", "timeEpoch": 0},
        "isBase64Encoded": false
    });
    match lambda_http::request::from_str(&event.to_string()) {
        Err(_) => {}
        Ok(req) => {
            let injected = req.headers().get("x-custom").map(|v| v.as_bytes().to_vec());
            let res = latchkey::router::call(latchkey::router::Route::Proxy, &app.server.state, req).await;
            if injected.is_some_and(|v| v.contains(&b'\n')) {
                assert_eq!(res.status(), 400, "a CR/LF header value is refused");
            } else {
                // lambda_http dropped the invalid header itself.
                assert!(!fake
                    .state
                    .lock()
                    .unwrap()
                    .last_echo_headers
                    .iter()
                    .any(|(k, _)| k == "x-injected"));
            }
        }
    }
    let res = app
        .http
        .post(app.url("/v1/proxy/google/echo/upload"))
        .header("x-api-key", &project.api_key)
        .header("x-user-id", "u")
        .body(vec![b'x'; 4 * 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "body_too_large");
    assert_eq!(fake.state.lock().unwrap().api_calls, calls_before);
    // Missing or bad X-User-Id.
    for (uid, code) in [(None, 400), (Some(""), 400), (Some("nobody"), 404)] {
        let mut req = app
            .http
            .get(app.url("/v1/proxy/google/me"))
            .header("x-api-key", &project.api_key);
        if let Some(u) = uid {
            req = req.header("x-user-id", u);
        }
        assert_eq!(req.send().await.unwrap().status(), code, "{uid:?}");
    }
    // Unknown and unconfigured providers.
    let (status, _, body) = app.proxy("GET", "nope/me", &project.api_key, "u").await;
    assert_eq!(status, 404, "{body}");
    let (status, _, body) = app.proxy("GET", "github/user", &project.api_key, "u").await;
    assert_eq!(status, 409, "{body}");
    // Picking a host outside the provider's list.
    let res = app
        .http
        .get(app.url("/v1/proxy/google/me"))
        .header("x-api-key", &project.api_key)
        .header("x-user-id", "u")
        .header("x-latchkey-api-host", "evil.invalid")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn upstream_timeouts_are_504_and_oversized_responses_502() {
    let (app, _fake, project) = setup_with(&[("LATCHKEY_UPSTREAM_TIMEOUT_SECONDS", "1")]).await;
    connected(&app, &project, "u").await;
    let (status, _, body) = app.proxy("GET", "google/slow", &project.api_key, "u").await;
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("upstream_timeout"));
    let (status, _, body) = app.proxy("GET", "google/big", &project.api_key, "u").await;
    assert_eq!(status, 502, "{}", &body[..body.len().min(200)]);
    assert!(body.contains("upstream_response_too_large"));
}

#[tokio::test]
async fn the_production_policy_refuses_providers_on_loopback() {
    let (app, fake, project) = setup_with(&[("LATCHKEY_ALLOW_LOOPBACK_OUTBOUND", "false")]).await;
    // http:// on loopback is not a usable configuration under the production policy.
    let got = start_session(&app, &project, "u").await;
    assert_vault_error(&got, 409, "provider_misconfigured");
    // An https provider whose host name resolves to loopback: refused after resolution, before
    // any connection.
    let port = fake.addr.port();
    let mut o = fake.overrides();
    for (k, path) in [
        ("authorize_url", "/authorize"),
        ("token_url", "/token"),
        ("api_base_url", "/api/"),
    ] {
        o.insert(k.into(), json!(format!("https://localhost:{port}{path}")));
    }
    o.remove("revoke");
    o.remove("account");
    app.set_provider(&project, "google", Some("google"), o).await;
    let (_, body) = start_session(&app, &project, "u").await;
    let state = query_of(body["auth_url"].as_str().unwrap())["state"].clone();
    let res = reqwest::get(app.url(&format!("/v1/identity/callback?code=c&state={state}")))
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    let got = app
        .vault(
            "GET",
            &format!("/v1/identity/sessions/{}", body["session_id"].as_str().unwrap()),
            Some(&project.api_key),
            None,
        )
        .await;
    assert_eq!(got.1["error"]["code"], "upstream_refused", "{}", got.1);
    assert!(got.1["error"]["message"].as_str().unwrap().contains("loopback"));
    assert_eq!(fake.state.lock().unwrap().code_exchanges, 0);
}

#[tokio::test]
async fn any_session_user_id_can_be_named_in_x_user_id_percent_encoded() {
    let (app, _fake, project) = setup().await;
    let user = "ユーザー 1/#%";
    connected(&app, &project, user).await;
    let encoded: String = url::form_urlencoded::byte_serialize(user.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    let (status, _, body) = app.proxy("GET", "google/me", &project.api_key, &encoded).await;
    assert_eq!(status, 200, "{body}");
    let path = format!("/v1/identity/users/{encoded}/connections");
    let (status, list) = app.vault("GET", &path, Some(&project.api_key), None).await;
    assert_eq!(status, 200);
    assert_eq!(list["user_id"], user);
    assert_eq!(list["connections"].as_array().unwrap().len(), 1);
    // Edge whitespace is refused when the session is created.
    let got = start_session(&app, &project, " padded").await;
    assert_vault_error(&got, 400, "invalid_request");
}

#[tokio::test]
async fn without_a_refresh_token_the_providers_401_is_passed_through_and_the_connection_kept() {
    let (app, fake, project) = setup().await;
    fake.set(|b| {
        b.no_refresh_token = true;
        b.expires_in = None;
    });
    connected(&app, &project, "u").await;
    fake.set(|b| b.reject_api = true);
    let (status, headers, body) = app.proxy("GET", "google/me", &project.api_key, "u").await;
    assert_eq!(status, 401, "{body}");
    assert!(headers.get("x-latchkey-error").is_none(), "the provider's answer");
    assert_eq!(headers["www-authenticate"], "Bearer error=\"invalid_token\"");
    assert_eq!(fake.refreshes(), 0);
    let (_, list) = app
        .vault("GET", "/v1/identity/users/u/connections", Some(&project.api_key), None)
        .await;
    assert_eq!(
        list["connections"][0]["status"], "active",
        "one 401 does not end the connection"
    );
    fake.set(|b| b.reject_api = false);
    let (status, _, _) = app.proxy("GET", "google/me", &project.api_key, "u").await;
    assert_eq!(status, 200);
}
