//! Token endpoint (RFC 6749 §4.1.3, §6; RFC 7636 §4.6; OAuth 2.1 §4.3.1), over HTTP: exchange,
//! rotation, grace window, replay and reuse revocation, budgets, and bad input.

use crate::common;

use common::{assert_oauth_error, TestApp, RESOURCE, VERIFIER};
use serde_json::Value;

const REDIRECT: &str = "http://127.0.0.1:7777/callback";

async fn exchange(app: &TestApp, client_id: &str, code: &str) -> (u16, Value) {
    app.post_form(
        "/oauth/2.1/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", client_id),
            ("resource", RESOURCE),
        ],
        None,
    )
    .await
}

async fn refresh(app: &TestApp, client_id: &str, rt: &str) -> (u16, Value) {
    app.post_form(
        "/oauth/2.1/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", client_id),
        ],
        None,
    )
    .await
}

fn live_tokens(items: &[latchkey::store::Item]) -> usize {
    items
        .iter()
        .filter(|i| i.s("sk").is_some_and(|s| s.starts_with("AT#") || s.starts_with("RT#")))
        .count()
}

#[tokio::test]
async fn rfc6749_4_1_3_public_client_exchanges_a_code_within_budget() {
    let app = TestApp::start().await;
    let (client_id, _) = app.client("none").await;
    let (grant_id, code) = app.seed_code(&client_id, "openid email").await;
    let before = app.calls();
    let (status, body) = exchange(&app, &client_id, &code).await;
    let after = app.calls();
    assert_eq!(status, 200, "{body}");
    assert!(
        after.0 - before.0 <= 2,
        "token makes at most 2 DynamoDB calls, made {}",
        after.0 - before.0
    );
    assert_eq!(after.1, before.1, "no KMS call");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "openid email");
    assert_eq!(body["expires_in"], 3600);
    let at = body["access_token"].as_str().unwrap();
    let rt = body["refresh_token"].as_str().unwrap();
    assert!(at.starts_with("lk_at_") && rt.starts_with("lk_rt_"));
    // Only hashes are stored.
    let raw = format!("{:?}", app.grant_items(&grant_id).await);
    assert!(!raw.contains(at) && !raw.contains(rt) && !raw.contains(&code));
}

#[tokio::test]
async fn rfc6749_2_3_1_confidential_client_authenticates_with_basic_or_post_and_wrong_secret_is_401() {
    let app = TestApp::start().await;
    let (client_id, secret) = app.client("client_secret_basic").await;
    let secret = secret.unwrap();
    let (_, code) = app.seed_code(&client_id, "openid").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let got = app
        .post_form("/oauth/2.1/token", &form, Some((&client_id, "lk_cs_wrong")))
        .await;
    assert_oauth_error(&got, 401, "invalid_client");
    // The failed attempt did not consume the code.
    let (status, body) = app
        .post_form("/oauth/2.1/token", &form, Some((&client_id, &secret)))
        .await;
    assert_eq!(status, 200, "{body}");

    let (post_id, post_secret) = app.client("client_secret_post").await;
    let post_secret = post_secret.unwrap();
    let (_, code) = app.seed_code(&post_id, "openid").await;
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", post_id.as_str()),
    ];
    // Without its secret a confidential client cannot act as a public one.
    let got = app.post_form("/oauth/2.1/token", &form, None).await;
    assert_oauth_error(&got, 401, "invalid_client");
    form.push(("client_secret", post_secret.as_str()));
    let got = app
        .post_form("/oauth/2.1/token", &form, Some((&post_id, &post_secret)))
        .await;
    assert_oauth_error(&got, 400, "invalid_request");
    let (status, _) = app.post_form("/oauth/2.1/token", &form, None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn oauth21_4_1_3_replayed_code_revokes_the_grant_and_its_tokens() {
    let app = TestApp::start().await;
    let (client_id, _) = app.client("none").await;
    let (grant_id, code) = app.seed_code(&client_id, "openid").await;
    let (status, first) = exchange(&app, &client_id, &code).await;
    assert_eq!(status, 200);
    assert_eq!(live_tokens(&app.grant_items(&grant_id).await), 2);
    let got = exchange(&app, &client_id, &code).await;
    assert_oauth_error(&got, 400, "invalid_grant");
    let items = app.grant_items(&grant_id).await;
    assert_eq!(live_tokens(&items), 0, "every token from the grant is gone");
    assert_eq!(
        items.iter().find(|i| i.s("sk") == Some("GRANT")).unwrap().s("status"),
        Some("revoked")
    );
    let got = refresh(&app, &client_id, first["refresh_token"].as_str().unwrap()).await;
    assert_oauth_error(&got, 400, "invalid_grant");
}

#[tokio::test]
async fn rfc6749_4_1_3_code_is_bound_to_client_redirect_uri_resource_verifier_and_sixty_seconds() {
    let app = TestApp::start().await;
    let (client_id, _) = app.client("none").await;
    let (other_id, _) = app.client("none").await;
    let (grant_id, code) = app.seed_code(&client_id, "openid").await;
    let base = |over: &[(&'static str, &'static str)]| {
        let mut f: Vec<(&str, String)> = vec![
            ("grant_type", "authorization_code".into()),
            ("code", code.clone()),
            ("redirect_uri", REDIRECT.into()),
            ("code_verifier", VERIFIER.into()),
            ("client_id", client_id.clone()),
        ];
        for (k, v) in over {
            f.retain(|(fk, _)| fk != k);
            if !v.is_empty() {
                f.push((k, v.to_string()));
            }
        }
        f
    };
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "other client",
            base(&[("client_id", "")])
                .into_iter()
                .chain([("client_id", other_id.clone())])
                .collect(),
            400,
            "invalid_grant",
        ),
        (
            "unknown client",
            base(&[("client_id", "lkc_nobody")]),
            401,
            "invalid_client",
        ),
        (
            "redirect extra path",
            base(&[("redirect_uri", "http://127.0.0.1:7777/callback/x")]),
            400,
            "invalid_grant",
        ),
        (
            "redirect query",
            base(&[("redirect_uri", "http://127.0.0.1:7777/callback?a=1")]),
            400,
            "invalid_grant",
        ),
        (
            "redirect case",
            base(&[("redirect_uri", "http://127.0.0.1:7777/Callback")]),
            400,
            "invalid_grant",
        ),
        (
            "redirect userinfo",
            base(&[("redirect_uri", "http://u@127.0.0.1:7777/callback")]),
            400,
            "invalid_grant",
        ),
        (
            "missing redirect",
            base(&[("redirect_uri", "")]),
            400,
            "invalid_request",
        ),
        (
            "resource differs",
            base(&[("resource", "https://other.example.com/mcp")]),
            400,
            "invalid_target",
        ),
        (
            "verifier wrong",
            base(&[("code_verifier", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX")]),
            400,
            "invalid_grant",
        ),
        (
            "verifier short",
            base(&[("code_verifier", "abc")]),
            400,
            "invalid_request",
        ),
        (
            "verifier bad charset",
            base(&[("code_verifier", "dBjftJeZ4CVP+mB92K27uhbUJU1p1r/wW1gFWFOEjXk")]),
            400,
            "invalid_request",
        ),
        (
            "missing verifier",
            base(&[("code_verifier", "")]),
            400,
            "invalid_request",
        ),
        (
            "unknown code",
            base(&[("code", "lk_ac_nope.nope")]),
            400,
            "invalid_grant",
        ),
        ("not our code", base(&[("code", "garbage")]), 400, "invalid_grant"),
        ("missing code", base(&[("code", "")]), 400, "invalid_request"),
        (
            "unsupported grant",
            base(&[("grant_type", "password")]),
            400,
            "unsupported_grant_type",
        ),
        (
            "missing grant type",
            base(&[("grant_type", "")]),
            400,
            "invalid_request",
        ),
    ];
    let long = "a".repeat(129);
    let mut cases = cases;
    cases.push((
        "verifier long",
        base(&[])
            .into_iter()
            .map(|(k, v)| {
                if k == "code_verifier" {
                    (k, long.clone())
                } else {
                    (k, v)
                }
            })
            .collect(),
        400,
        "invalid_request",
    ));
    for (name, form, status, code_str) in cases {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let got = app.post_form("/oauth/2.1/token", &form, None).await;
        assert_eq!(got.0, status, "{name}: {:?}", got.1);
        assert_oauth_error(&got, status, code_str);
    }
    assert_eq!(
        live_tokens(&app.grant_items(&grant_id).await),
        0,
        "no refused request issued a token"
    );
    // Expired after 60 s.
    app.server.state.clock.advance(61);
    let got = exchange(&app, &client_id, &code).await;
    assert_oauth_error(&got, 400, "invalid_grant");
}

#[tokio::test]
async fn rfc6749_3_2_malformed_token_requests() {
    let app = TestApp::start().await;
    let url = app.url("/oauth/2.1/token");
    let send = |ct: &'static str, body: String| {
        let http = app.http.clone();
        let url = url.clone();
        async move {
            let res = http
                .post(url)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    assert_oauth_error(&send("application/json", "{}".into()).await, 415, "invalid_request");
    assert_oauth_error(
        &send(
            "application/x-www-form-urlencoded",
            "grant_type=a&grant_type=b&client_id=x".into(),
        )
        .await,
        400,
        "invalid_request",
    );
    assert_oauth_error(
        &send(
            "application/x-www-form-urlencoded",
            format!("client_id=x&pad={}", "a".repeat(70_000)),
        )
        .await,
        413,
        "invalid_request",
    );
    assert_oauth_error(
        &send("application/x-www-form-urlencoded", "grant_type=refresh_token".into()).await,
        401,
        "invalid_client",
    );
    let res = app.http.get(app.url("/oauth/2.1/token")).send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert!(app.all_items().await.is_empty());
}

#[tokio::test]
async fn oauth21_4_3_1_refresh_rotates_preserves_scope_and_may_narrow() {
    let app = TestApp::start().await;
    let (client_id, _) = app.client("none").await;
    let (_, code) = app.seed_code(&client_id, "openid email").await;
    let (_, first) = exchange(&app, &client_id, &code).await;
    let rt1 = first["refresh_token"].as_str().unwrap();
    let before = app.calls();
    let (status, second) = refresh(&app, &client_id, rt1).await;
    assert_eq!(status, 200, "{second}");
    assert!(app.calls().0 - before.0 <= 2, "refresh makes at most 2 DynamoDB calls");
    assert_eq!(app.calls().1, before.1);
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(second["scope"], "openid email");
    let rt2 = second["refresh_token"].as_str().unwrap();
    let got = app
        .post_form(
            "/oauth/2.1/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt2),
                ("client_id", &client_id),
                ("scope", "openid admin"),
            ],
            None,
        )
        .await;
    assert_oauth_error(&got, 400, "invalid_scope");
    let (status, third) = app
        .post_form(
            "/oauth/2.1/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt2),
                ("client_id", &client_id),
                ("scope", "email"),
            ],
            None,
        )
        .await;
    assert_eq!(status, 200, "{third}");
    assert_eq!(third["scope"], "email");
    // RFC 6749 §6: the narrowing applied to the access token; the new refresh token keeps the scope.
    let (status, fourth) = refresh(&app, &client_id, third["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{fourth}");
    assert_eq!(fourth["scope"], "openid email");
    let (other, _) = app.client("none").await;
    let got = refresh(&app, &other, third["refresh_token"].as_str().unwrap()).await;
    assert_oauth_error(&got, 400, "invalid_grant");
}

#[tokio::test]
async fn oauth21_4_3_1_reused_refresh_token_after_the_grace_window_revokes_the_grant() {
    let app = TestApp::start().await;
    let (client_id, _) = app.client("none").await;
    let (grant_id, code) = app.seed_code(&client_id, "openid").await;
    let (_, first) = exchange(&app, &client_id, &code).await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_string();
    let (status, second) = refresh(&app, &client_id, &rt1).await;
    assert_eq!(status, 200);
    // Within the grace window (10 s by default) a retry gets a fresh pair from the same grant.
    let (status, retry) = refresh(&app, &client_id, &rt1).await;
    assert_eq!(status, 200, "{retry}");
    assert_ne!(retry["refresh_token"], second["refresh_token"]);
    // After the window, the same token revokes the grant and every token issued from it.
    app.server.state.clock.advance(11);
    let got = refresh(&app, &client_id, &rt1).await;
    assert_oauth_error(&got, 400, "invalid_grant");
    assert_eq!(live_tokens(&app.grant_items(&grant_id).await), 0);
    let got = refresh(&app, &client_id, second["refresh_token"].as_str().unwrap()).await;
    assert_oauth_error(&got, 400, "invalid_grant");
}

#[tokio::test]
async fn oauth21_4_1_3_twenty_concurrent_redemptions_of_one_code_one_wins_then_the_grant_is_revoked() {
    let app = TestApp::start().await;
    let (client_id, _) = app.client("none").await;
    let (grant_id, code) = app.seed_code(&client_id, "openid").await;
    let results = futures_join(&app, 20, |_| exchange(&app, &client_id, &code)).await;
    let ok = results.iter().filter(|r| r.0 == 200).count();
    assert_eq!(ok, 1, "{results:?}");
    assert!(results
        .iter()
        .filter(|r| r.0 != 200)
        .all(|r| r.1["error"] == "invalid_grant"));
    assert_eq!(
        live_tokens(&app.grant_items(&grant_id).await),
        0,
        "the replay revoked the grant"
    );
}

#[tokio::test]
async fn oauth21_4_3_1_twenty_concurrent_refreshes_with_grace_zero_exactly_one_succeeds() {
    let app = TestApp::start_configured(None, &[("LATCHKEY_REFRESH_GRACE_SECONDS", "0")]).await;
    let (client_id, _) = app.client("none").await;
    let (_, code) = app.seed_code(&client_id, "openid").await;
    let (_, first) = exchange(&app, &client_id, &code).await;
    let rt = first["refresh_token"].as_str().unwrap().to_string();
    let results = futures_join(&app, 20, |_| refresh(&app, &client_id, &rt)).await;
    assert_eq!(results.iter().filter(|r| r.0 == 200).count(), 1, "{results:?}");
}

#[tokio::test]
async fn oauth21_4_3_1_twenty_concurrent_refreshes_within_the_grace_window_leave_one_live_refresh_token() {
    let app = TestApp::start().await;
    let (client_id, _) = app.client("none").await;
    let (grant_id, code) = app.seed_code(&client_id, "openid").await;
    let (_, first) = exchange(&app, &client_id, &code).await;
    let rt = first["refresh_token"].as_str().unwrap().to_string();
    let results = futures_join(&app, 20, |_| refresh(&app, &client_id, &rt)).await;
    // Each one supersedes the one before (none forks the family); under this much contention some
    // are told to retry (503 temporarily_unavailable), none revokes the grant.
    assert!(
        results
            .iter()
            .all(|r| r.0 == 200 || (r.0 == 503 && r.1["error"] == "temporarily_unavailable")),
        "{results:?}"
    );
    let ok: Vec<&str> = results
        .iter()
        .filter(|r| r.0 == 200)
        .map(|r| r.1["refresh_token"].as_str().unwrap())
        .collect();
    assert!(!ok.is_empty());
    let items = app.grant_items(&grant_id).await;
    let live: Vec<String> = items
        .iter()
        .filter(|i| i.s("sk").is_some_and(|s| s.starts_with("RT#")) && i.s("status") == Some("active"))
        .map(|i| i.s("sk").unwrap().to_string())
        .collect();
    assert_eq!(live.len(), 1, "one live refresh token");
    let winner = ok
        .iter()
        .find(|t| format!("RT#{}", latchkey::crypto::secret::hash(t)) == live[0])
        .expect("the live token is one of the answers");
    let (status, next) = refresh(&app, &client_id, winner).await;
    assert_eq!(status, 200, "{next}");
}

async fn futures_join<'a, F, Fut>(_app: &'a TestApp, n: usize, f: F) -> Vec<(u16, Value)>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = (u16, Value)> + 'a,
{
    let mut set = Vec::new();
    for i in 0..n {
        set.push(f(i));
    }
    join_all(set).await
}

/// Poll every future concurrently on this task (no extra dependency).
async fn join_all<Fut: std::future::Future<Output = (u16, Value)>>(futs: Vec<Fut>) -> Vec<(u16, Value)> {
    let mut futs: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<(u16, Value)>> = vec![None; futs.len()];
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in futs.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(Option::unwrap).collect()
}

#[tokio::test]
async fn rfc8707_resource_is_compared_in_canonical_form() {
    let app = TestApp::start().await;
    let (client_id, _) = app.client("none").await;
    let (_, code) = app.seed_code(&client_id, "openid").await;
    let (status, body) = app
        .post_form(
            "/oauth/2.1/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
                ("client_id", &client_id),
                ("resource", "https://MCP.example.com:443/mcp"),
            ],
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn oauth21_4_1_3_a_code_replayed_after_its_sixty_seconds_still_revokes_the_grant() {
    let app = TestApp::start().await;
    let (client_id, _) = app.client("none").await;
    let (grant_id, code) = app.seed_code(&client_id, "openid").await;
    assert_eq!(exchange(&app, &client_id, &code).await.0, 200);
    app.server.state.clock.advance(120);
    let got = exchange(&app, &client_id, &code).await;
    assert_oauth_error(&got, 400, "invalid_grant");
    assert_eq!(live_tokens(&app.grant_items(&grant_id).await), 0);
}

#[tokio::test]
async fn an_oversized_client_id_is_refused_as_invalid_client_not_a_server_error() {
    let app = TestApp::start().await;
    let huge = "x".repeat(5000);
    let got = app
        .post_form(
            "/oauth/2.1/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", "lk_rt_a.b"),
                ("client_id", &huge),
            ],
            None,
        )
        .await;
    assert_oauth_error(&got, 401, "invalid_client");
    let got = app
        .post_form(
            "/oauth/2.1/revoke",
            &[("token", "lk_rt_a.b"), ("client_id", &huge)],
            None,
        )
        .await;
    assert_oauth_error(&got, 401, "invalid_client");
}
