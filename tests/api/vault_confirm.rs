//! Issue 12 item 9, the vault's "connect account" CSRF (RFC 6749 §10.12): with a `return_url`, the
//! provider callback parks the connection and sends the browser back to the app with a one-time
//! `connect_token`; the connection exists only once the app confirms it with that token
//! (`POST /v1/identity/sessions/{id}/confirm`). Real HTTP: latchkey serve (embedded) and the fake
//! provider on loopback.

use crate::common;

use common::fake_provider::FakeProvider;
use common::{connections, Project, TestApp};
use serde_json::{json, Value};

const RETURN_URL: &str = "http://127.0.0.1:5173/connected?from=latchkey";

async fn setup() -> (TestApp, FakeProvider, Project) {
    common::setup_with(&[]).await
}

fn no_redirect() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Create a `return_url` session for `user`, let the provider approve it and follow the redirect
/// to latchkey's callback (not further): the session id and where the callback sent the browser.
async fn connect_with_return_url(app: &TestApp, project: &Project, user: &str) -> (String, url::Url) {
    let (status, body) = app
        .vault(
            "POST",
            "/v1/identity/sessions",
            Some(&project.api_key),
            Some(json!({"user_id": user, "provider": "google", "return_url": RETURN_URL})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["return_url"], RETURN_URL);
    let session_id = body["session_id"].as_str().unwrap().to_string();
    let browser = no_redirect();
    let res = browser.get(body["auth_url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let callback = res.headers()["location"].to_str().unwrap().to_string();
    let res = browser.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), 303, "the callback sends the browser back to the app");
    let back = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    (session_id, back)
}

fn param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

async fn confirm(app: &TestApp, project: &Project, session_id: &str, body: Value) -> (u16, Value) {
    app.vault(
        "POST",
        &format!("/v1/identity/sessions/{session_id}/confirm"),
        Some(&project.api_key),
        Some(body),
    )
    .await
}

async fn status_of(app: &TestApp, project: &Project, session_id: &str) -> Value {
    app.vault(
        "GET",
        &format!("/v1/identity/sessions/{session_id}"),
        Some(&project.api_key),
        None,
    )
    .await
    .1
}

fn assert_vault_error(got: &(u16, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "status for {}", got.1);
    assert_eq!(got.1["error"]["code"], code, "body {}", got.1);
}

#[tokio::test]
async fn rfc6749_10_12_a_return_url_connection_is_usable_only_after_the_app_confirms_it() {
    let (app, _fake, project) = setup().await;
    let (session_id, back) = connect_with_return_url(&app, &project, "victim-or-attacker").await;
    // Back at the app's own URL, its query kept, with the session and a one-time token.
    assert_eq!(back.origin().ascii_serialization(), "http://127.0.0.1:5173");
    assert_eq!(back.path(), "/connected");
    assert_eq!(param(&back, "from").as_deref(), Some("latchkey"));
    assert_eq!(param(&back, "session_id").as_deref(), Some(session_id.as_str()));
    let token = param(&back, "connect_token").unwrap();
    assert!(token.starts_with("lk_ct_"), "{token}");

    // Not usable yet: no connection, the proxy refuses, the status says so.
    assert_eq!(connections(&app, &project, "victim-or-attacker").await, json!([]));
    let (status, _, body) = app
        .proxy("GET", "google/me", &project.api_key, "victim-or-attacker")
        .await;
    assert_eq!(status, 404, "{body}");
    let st = status_of(&app, &project, &session_id).await;
    assert_eq!(st["status"], "awaiting_confirmation", "{st}");
    assert!(st["confirm_by"].is_string());
    // The parked item holds the tokens sealed and the token's hash only.
    let dump = format!("{:?}", app.all_items().await);
    assert!(
        !dump.contains(&token) && !dump.contains("fake-at-"),
        "no token bytes stored"
    );

    // The app confirms: 1 batch read and 1 transaction, no KMS.
    let before = app.calls();
    let got = confirm(&app, &project, &session_id, json!({"connect_token": token})).await;
    let after = app.calls();
    assert_eq!(got.0, 200, "{}", got.1);
    assert_eq!(got.1["status"], "complete");
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (2, 0),
        "confirm: 2 DynamoDB round trips, no KMS"
    );
    let conns = connections(&app, &project, "victim-or-attacker").await;
    assert_eq!(conns.as_array().unwrap().len(), 1, "{conns}");
    assert_eq!(conns[0]["email"], "fake-user-1@example.com");
    let (status, _, body) = app
        .proxy("GET", "google/me", &project.api_key, "victim-or-attacker")
        .await;
    assert_eq!(status, 200, "{body}");

    // Single use: a second confirmation changes nothing.
    let again = confirm(&app, &project, &session_id, json!({"connect_token": token})).await;
    assert_vault_error(&again, 409, "not_awaiting_confirmation");
    assert_eq!(status_of(&app, &project, &session_id).await["status"], "complete");
}

#[tokio::test]
async fn rfc6749_10_12_a_wrong_missing_or_foreign_connect_token_confirms_nothing() {
    let (app, _fake, project) = setup().await;
    let (session_id, back) = connect_with_return_url(&app, &project, "u1").await;
    let token = param(&back, "connect_token").unwrap();
    let (other_session, other_back) = connect_with_return_url(&app, &project, "u2").await;
    let other_token = param(&other_back, "connect_token").unwrap();
    let other_project = app.project("other").await;
    let before = app.all_items().await;
    for (body, status, code) in [
        (json!({"connect_token": other_token}), 400, "invalid_connect_token"),
        (json!({"connect_token": "lk_ct_guess"}), 400, "invalid_connect_token"),
        (json!({}), 400, "invalid_request"),
        (json!({"connect_token": 7}), 400, "invalid_request"),
        (json!({"connect_token": ""}), 400, "invalid_request"),
        (json!({"connect_token": "x".repeat(500)}), 400, "invalid_request"),
        (json!({"connect_token": token, "user_id": "u2"}), 400, "invalid_request"),
    ] {
        let got = confirm(&app, &project, &session_id, body.clone()).await;
        assert_vault_error(&got, status, code);
    }
    // Another project cannot confirm (or see) this project's session.
    let got = confirm(&app, &other_project, &session_id, json!({"connect_token": token})).await;
    assert_vault_error(&got, 404, "not_found");
    // Unknown and malformed session ids.
    for id in ["vs_unknown", "nope"] {
        let got = confirm(&app, &project, id, json!({"connect_token": token})).await;
        assert_vault_error(&got, 404, "not_found");
    }
    // No API key.
    let got = app
        .vault(
            "POST",
            &format!("/v1/identity/sessions/{session_id}/confirm"),
            None,
            Some(json!({"connect_token": token})),
        )
        .await;
    assert_eq!(got.0, 401, "{}", got.1);
    let after = app.all_items().await;
    assert_eq!(before, after, "nothing changed");
    assert_eq!(connections(&app, &project, "u1").await, json!([]));
    assert_eq!(connections(&app, &project, "u2").await, json!([]));
    // Each token confirms its own session only.
    assert_eq!(
        confirm(&app, &project, &other_session, json!({"connect_token": other_token}))
            .await
            .0,
        200
    );
    assert_eq!(
        confirm(&app, &project, &session_id, json!({"connect_token": token}))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn rfc6749_10_12_an_unconfirmed_connection_expires_and_stays_unusable() {
    let (app, _fake, project) = setup().await;
    let (session_id, back) = connect_with_return_url(&app, &project, "u").await;
    let token = param(&back, "connect_token").unwrap();
    app.server.state.clock.advance(601);
    assert_eq!(status_of(&app, &project, &session_id).await["status"], "expired");
    let got = confirm(&app, &project, &session_id, json!({"connect_token": token})).await;
    assert_vault_error(&got, 410, "expired");
    assert_eq!(connections(&app, &project, "u").await, json!([]));
}

#[tokio::test]
async fn rfc6749_10_12_without_return_url_there_is_nothing_to_confirm_and_bad_return_urls_store_nothing() {
    let (app, _fake, project) = setup().await;
    let (session_id, status, page) = app.connect(&project, "u", "google").await;
    assert_eq!(status, 200, "{page}");
    let got = confirm(&app, &project, &session_id, json!({"connect_token": "lk_ct_x"})).await;
    assert_vault_error(&got, 409, "not_awaiting_confirmation");
    assert_eq!(connections(&app, &project, "u").await.as_array().unwrap().len(), 1);

    let before = app.all_items().await.len();
    for bad in [
        json!("http://app.example/cb"),
        json!("javascript:alert(1)"),
        json!("https://user:pw@app.example/cb"),
        json!("https://app.example/cb#x"),
        json!("/relative"),
        json!(42),
        json!(format!("https://app.example/{}", "a".repeat(2100))),
    ] {
        let got = app
            .vault(
                "POST",
                "/v1/identity/sessions",
                Some(&project.api_key),
                Some(json!({"user_id": "u", "provider": "google", "return_url": bad})),
            )
            .await;
        assert_vault_error(&got, 400, "invalid_request");
    }
    assert_eq!(app.all_items().await.len(), before, "nothing stored");
}

#[tokio::test]
async fn rfc6749_10_12_a_provider_error_returns_the_browser_to_the_app_with_the_error() {
    let (app, fake, project) = setup().await;
    fake.set(|b| b.deny = Some("access_denied".into()));
    let (status, body) = app
        .vault(
            "POST",
            "/v1/identity/sessions",
            Some(&project.api_key),
            Some(json!({"user_id": "u", "provider": "google", "return_url": RETURN_URL})),
        )
        .await;
    assert_eq!(status, 201);
    let session_id = body["session_id"].as_str().unwrap();
    let browser = no_redirect();
    let res = browser.get(body["auth_url"].as_str().unwrap()).send().await.unwrap();
    let callback = res.headers()["location"].to_str().unwrap().to_string();
    let res = browser.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let back = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(param(&back, "session_id").as_deref(), Some(session_id));
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    assert!(param(&back, "connect_token").is_none());
    assert_eq!(status_of(&app, &project, session_id).await["status"], "error");
}
