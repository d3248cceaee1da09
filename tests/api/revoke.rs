//! Revocation (RFC 7009) over HTTP: a refresh token revokes its grant, an access token only itself,
//! another client's token is untouched, unknown tokens get 200.

use crate::common;

use common::{assert_oauth_error, TestApp, VERIFIER};

async fn tokens(app: &TestApp, client_id: &str) -> (String, String, String) {
    let t = app.issue_tokens(client_id, "openid").await;
    (t.grant_id, t.access_token, t.refresh_token)
}

fn token_count(items: &[latchkey::store::Item]) -> usize {
    items
        .iter()
        .filter(|i| i.s("sk").is_some_and(|s| s.starts_with("AT#") || s.starts_with("RT#")))
        .count()
}

#[tokio::test]
async fn rfc7009_2_1_revoking_a_refresh_token_revokes_its_grant() {
    let app = TestApp::start().await;
    let (client_id, _) = app.client("none").await;
    let (grant_id, _, rt) = tokens(&app, &client_id).await;
    let (status, _) = app
        .post_form("/oauth/2.1/revoke", &[("token", &rt), ("client_id", &client_id)], None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(token_count(&app.grant_items(&grant_id).await), 0);
    let got = app
        .post_form(
            "/oauth/2.1/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("client_id", &client_id),
            ],
            None,
        )
        .await;
    assert_oauth_error(&got, 400, "invalid_grant");
}

#[tokio::test]
async fn rfc7009_2_1_revoking_an_access_token_removes_only_it() {
    let app = TestApp::start().await;
    let (client_id, secret) = app.client("client_secret_basic").await;
    let secret = secret.unwrap();
    let (grant_id, at, _) = {
        let (grant_id, code) = app.seed_code(&client_id, "openid").await;
        let (_, body) = app
            .post_form(
                "/oauth/2.1/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", "http://127.0.0.1:7777/callback"),
                    ("code_verifier", VERIFIER),
                ],
                Some((&client_id, &secret)),
            )
            .await;
        (grant_id, body["access_token"].as_str().unwrap().to_string(), ())
    };
    let (status, _) = app
        .post_form(
            "/oauth/2.1/revoke",
            &[("token", &at), ("token_type_hint", "access_token")],
            Some((&client_id, &secret)),
        )
        .await;
    assert_eq!(status, 200);
    let items = app.grant_items(&grant_id).await;
    assert!(!items.iter().any(|i| i.s("sk").is_some_and(|s| s.starts_with("AT#"))));
    assert!(
        items.iter().any(|i| i.s("sk").is_some_and(|s| s.starts_with("RT#"))),
        "refresh token kept"
    );
}

#[tokio::test]
async fn rfc7009_2_1_a_client_cannot_revoke_another_clients_tokens_and_unknown_tokens_get_200() {
    let app = TestApp::start().await;
    let (owner, _) = app.client("none").await;
    let (other, _) = app.client("none").await;
    let (grant_id, at, rt) = tokens(&app, &owner).await;
    for token in [&at, &rt] {
        let (status, _) = app
            .post_form("/oauth/2.1/revoke", &[("token", token), ("client_id", &other)], None)
            .await;
        assert_eq!(status, 200);
    }
    assert_eq!(token_count(&app.grant_items(&grant_id).await), 2, "nothing revoked");
    for token in ["lk_rt_nope.nope", "lk_at_nope.nope", "garbage"] {
        let (status, _) = app
            .post_form("/oauth/2.1/revoke", &[("token", token), ("client_id", &owner)], None)
            .await;
        assert_eq!(status, 200, "{token}");
    }
    // Client authentication is still required.
    let got = app.post_form("/oauth/2.1/revoke", &[("token", &rt)], None).await;
    assert_oauth_error(&got, 401, "invalid_client");
    let got = app
        .post_form(
            "/oauth/2.1/revoke",
            &[("token", &rt), ("client_id", "lkc_nobody")],
            None,
        )
        .await;
    assert_oauth_error(&got, 401, "invalid_client");
    let got = app.post_form("/oauth/2.1/revoke", &[("client_id", &owner)], None).await;
    assert_oauth_error(&got, 400, "invalid_request");
    assert_eq!(token_count(&app.grant_items(&grant_id).await), 2);
}

#[tokio::test]
async fn admin_lists_and_revokes_a_users_grants() {
    let app = TestApp::start().await;
    let (client_id, _) = app.client("none").await;
    let (grant_id, _, _) = tokens(&app, &client_id).await;
    let store = &app.server.state.store;
    let now = app.server.state.clock.now();
    let grants = store.list_grants(Some("user-1"), now).await.unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].0.grant_id, grant_id);
    assert_eq!(grants[0].1.as_str(), "active");
    assert!(store.list_grants(Some("someone-else"), now).await.unwrap().is_empty());
    store.revoke_grant(&grant_id, now).await.unwrap();
    assert_eq!(store.list_grants(None, now).await.unwrap()[0].1.as_str(), "revoked");
    assert_eq!(token_count(&app.grant_items(&grant_id).await), 0);
}
