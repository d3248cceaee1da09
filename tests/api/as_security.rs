//! Authorization-server hardening, over real HTTP: no silent consent for clients nobody can identify
//! (RFC 8252 §8.6), no open redirector on authorize errors (RFC 9700 §4.11.2), deleting a client
//! revokes what it holds, one live successor per refresh token inside the grace window (OAuth 2.1
//! §4.3.1), and `redirect_uri` at the token endpoint only when it was sent at authorize (OAuth 2.1
//! §4.1.3). Each test asserts status, body and what is stored.

use crate::common;

use common::{assert_oauth_error, TestApp, CHALLENGE, RESOURCE, VERIFIER};
use reqwest::redirect::Policy;
use serde_json::Value;

const LOOPBACK: &str = "http://127.0.0.1:7777/callback";
const HTTPS: &str = "https://app.example.invalid/callback";

/// A browser that keeps its session cookie and does not follow redirects.
struct Browser {
    http: reqwest::Client,
    cookie: Option<String>,
}

impl Browser {
    fn new() -> Self {
        Browser {
            http: reqwest::Client::builder().redirect(Policy::none()).build().unwrap(),
            cookie: None,
        }
    }

    /// (status, Location, body)
    async fn send(&mut self, req: reqwest::RequestBuilder) -> (u16, Option<String>, String) {
        let req = match &self.cookie {
            Some(c) => req.header("cookie", c),
            None => req,
        };
        let res = req.send().await.unwrap();
        if let Some(sc) = res.headers().get("set-cookie") {
            let c = sc.to_str().unwrap().split(';').next().unwrap().to_string();
            if c.starts_with("lk_session=") {
                self.cookie = Some(c);
            }
        }
        let status = res.status().as_u16();
        let location = res.headers().get("location").map(|l| l.to_str().unwrap().to_string());
        (status, location, res.text().await.unwrap())
    }

    async fn get(&mut self, url: &str) -> (u16, Option<String>, String) {
        let req = self.http.get(url);
        self.send(req).await
    }

    async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> (u16, Option<String>, String) {
        let req = self.http.post(url).form(form);
        self.send(req).await
    }

    /// Sign in at the local page (from a sign-in redirect) and land on the consent page's HTML.
    async fn sign_in(&mut self, app: &TestApp, sign_in: &str, email: &str) -> String {
        let (_, _, html) = self.get(sign_in).await;
        let request = hidden(&html, "request");
        let (status, consent, _) = self
            .post(
                &app.url("/oauth/2.1/callback"),
                &[("request", &request), ("email", email)],
            )
            .await;
        assert_eq!(status, 303);
        let (status, _, html) = self.get(&consent.unwrap()).await;
        assert_eq!(status, 200, "{html}");
        html
    }

    /// Answer the consent page: the Location the decision redirects to.
    async fn decide(&mut self, app: &TestApp, consent_html: &str, decision: &str) -> String {
        let (status, location, body) = self
            .post(
                &app.url("/oauth/2.1/consent"),
                &[
                    ("request", &hidden(consent_html, "request")),
                    ("csrf", &hidden(consent_html, "csrf")),
                    ("decision", decision),
                ],
            )
            .await;
        assert_eq!(status, 303, "{body}");
        location.unwrap()
    }
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} in {html}")) + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

fn query_of(location: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(location).unwrap().query_pairs().into_owned().collect()
}

fn authorize_url(app: &TestApp, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("client_id", client_id),
        ("response_type", "code"),
        ("state", "st-1"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("resource", RESOURCE),
        ("scope", "openid email"),
    ];
    for (k, v) in extra {
        pairs.retain(|(pk, _)| pk != k);
        if !v.is_empty() {
            pairs.push((k, v));
        }
    }
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    app.url(&format!("/oauth/2.1/authorize?{q}"))
}

/// An app with the resource server registered, and a client with these redirect URIs and auth method.
async fn app_and_client(redirect_uris: &[&str], auth_method: &str) -> (TestApp, String, Option<String>) {
    let app = TestApp::start().await;
    app.resource_server(RESOURCE).await;
    let (status, body) = app
        .register(serde_json::json!({
            "redirect_uris": redirect_uris,
            "token_endpoint_auth_method": auth_method,
            "client_name": "Some App",
        }))
        .await;
    assert_eq!(status, 201, "{body}");
    (
        app,
        body["client_id"].as_str().unwrap().to_string(),
        body["client_secret"].as_str().map(str::to_string),
    )
}

/// How many stored items have this `type`.
async fn items_of_type(app: &TestApp, kind: &str) -> usize {
    common::items_of(app, kind).await.len()
}

// ---- 1. RFC 8252 §8.6: no silent consent for clients nobody can identify ----

#[tokio::test]
async fn rfc8252_8_6_a_public_client_sees_the_consent_page_every_time_on_any_loopback_port() {
    let (app, client_id, _) = app_and_client(&[LOOPBACK], "none").await;
    let mut browser = Browser::new();
    let first = authorize_url(&app, &client_id, &[("redirect_uri", LOOPBACK)]);
    let (status, sign_in, _) = browser.get(&first).await;
    assert_eq!(status, 303);
    let html = browser.sign_in(&app, &sign_in.unwrap(), "alice@example.com").await;
    let back = browser.decide(&app, &html, "approve").await;
    assert!(query_of(&back).contains_key("code"), "{back}");
    assert_eq!(
        items_of_type(&app, "consent").await,
        0,
        "nothing remembered for a public client"
    );

    // The same browser, the same scopes, the same or any other loopback port: the consent page again.
    for port in ["7777", "51234", "9"] {
        let redirect = format!("http://127.0.0.1:{port}/callback");
        let (status, location, _) = browser
            .get(&authorize_url(
                &app,
                &client_id,
                &[("redirect_uri", &redirect), ("state", port)],
            ))
            .await;
        assert_eq!(status, 303, "port {port}");
        let location = location.unwrap();
        assert!(
            location.starts_with(&app.url("/oauth/2.1/consent?request=")),
            "port {port}: {location}"
        );
        assert!(!location.contains("code="), "port {port}: no code without the user");
    }
    assert_eq!(
        items_of_type(&app, "grant").await,
        1,
        "only the approved request made a grant"
    );
}

#[tokio::test]
async fn rfc8252_8_6_consent_is_remembered_for_a_confidential_client() {
    let (app, client_id, _) = app_and_client(&[LOOPBACK], "client_secret_basic").await;
    let mut browser = Browser::new();
    let (_, sign_in, _) = browser
        .get(&authorize_url(&app, &client_id, &[("redirect_uri", LOOPBACK)]))
        .await;
    let html = browser.sign_in(&app, &sign_in.unwrap(), "alice@example.com").await;
    browser.decide(&app, &html, "approve").await;
    assert_eq!(items_of_type(&app, "consent").await, 1);
    // It must authenticate to redeem a code, so the remembered consent answers at once.
    let (status, location, _) = browser
        .get(&authorize_url(
            &app,
            &client_id,
            &[("redirect_uri", LOOPBACK), ("state", "st-2")],
        ))
        .await;
    assert_eq!(status, 303);
    let q = query_of(&location.unwrap());
    assert!(q["code"].starts_with("lk_ac_"));
    assert_eq!(q["state"], "st-2");
}

// ---- 4. RFC 9700 §4.11.2: no open redirector on authorize errors ----

#[tokio::test]
async fn rfc9700_4_11_2_errors_for_a_registered_non_loopback_redirect_are_a_page_until_the_user_decides() {
    for auth_method in ["none", "client_secret_basic"] {
        let (app, client_id, _) = app_and_client(&[HTTPS], auth_method).await;
        let before = app.all_items().await.len();
        let mut browser = Browser::new();
        for (name, extra, code) in [
            (
                "token response type",
                vec![("response_type", "token")],
                "unsupported_response_type",
            ),
            ("missing state", vec![("state", "")], "invalid_request"),
            (
                "plain PKCE",
                vec![("code_challenge_method", "plain")],
                "invalid_request",
            ),
            (
                "unregistered resource",
                vec![("resource", "https://other.example.invalid/mcp")],
                "invalid_target",
            ),
            ("unknown scope", vec![("scope", "openid admin")], "invalid_scope"),
        ] {
            let mut extra = extra;
            extra.push(("redirect_uri", HTTPS));
            let (status, location, html) = browser.get(&authorize_url(&app, &client_id, &extra)).await;
            assert_eq!(status, 400, "{auth_method} {name}");
            assert!(
                location.is_none(),
                "{auth_method} {name}: never a redirect to {location:?}"
            );
            assert!(html.contains("can't continue"), "{auth_method} {name}: {html}");
            assert!(html.contains(code), "{auth_method} {name}: the page names {code}");
            assert!(
                !html.contains("app.example.invalid"),
                "{auth_method} {name}: no link out"
            );
        }
        // Omitting redirect_uri (one registered) is the same client and URI: still a page.
        let (status, location, _) = browser
            .get(&authorize_url(&app, &client_id, &[("response_type", "token")]))
            .await;
        assert_eq!((status, location), (400, None), "{auth_method}");
        assert_eq!(app.all_items().await.len(), before, "{auth_method}: nothing stored");

        // A valid request goes on to sign-in; once the user has decided, Deny goes back to the client.
        let (status, sign_in, _) = browser
            .get(&authorize_url(&app, &client_id, &[("redirect_uri", HTTPS)]))
            .await;
        assert_eq!(status, 303, "{auth_method}");
        let html = browser.sign_in(&app, &sign_in.unwrap(), "bob@example.com").await;
        let back = browser.decide(&app, &html, "deny").await;
        assert!(back.starts_with(&format!("{HTTPS}?")), "{auth_method}: {back}");
        let q = query_of(&back);
        assert_eq!(q["error"], "access_denied", "{auth_method}");
        assert_eq!(q["state"], "st-1", "{auth_method}");
        assert_eq!(items_of_type(&app, "grant").await, 0, "{auth_method}");
    }
}

#[tokio::test]
async fn rfc9700_4_11_2_loopback_redirects_still_receive_errors() {
    let (app, client_id, _) = app_and_client(&[LOOPBACK, HTTPS], "none").await;
    let mut browser = Browser::new();
    let (status, location, _) = browser
        .get(&authorize_url(
            &app,
            &client_id,
            &[
                ("redirect_uri", "http://127.0.0.1:4444/callback"),
                ("response_type", "token"),
            ],
        ))
        .await;
    assert_eq!(status, 303);
    let q = query_of(&location.unwrap());
    assert_eq!(q["error"], "unsupported_response_type");
    assert_eq!(q["iss"], app.url("/oauth/2.1"));
    // The same client's https URI gets the page.
    let (status, location, _) = browser
        .get(&authorize_url(
            &app,
            &client_id,
            &[("redirect_uri", HTTPS), ("response_type", "token")],
        ))
        .await;
    assert_eq!((status, location), (400, None));
}

// ---- 3. Deleting a client revokes its grants ----

async fn introspect(app: &TestApp, rs: &(String, String), token: &str) -> Value {
    let (status, body) = app
        .post_form("/oauth/2.1/introspect", &[("token", token)], Some((&rs.0, &rs.1)))
        .await;
    assert_eq!(status, 200, "{body}");
    body
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

fn grant_status(items: &[latchkey::store::Item]) -> Option<String> {
    items
        .iter()
        .find(|i| i.s("sk") == Some("GRANT"))
        .and_then(|g| g.s("status").map(str::to_string))
}

fn token_items(items: &[latchkey::store::Item]) -> usize {
    items
        .iter()
        .filter(|i| i.s("sk").is_some_and(|s| s.starts_with("AT#") || s.starts_with("RT#")))
        .count()
}

#[tokio::test]
async fn deleting_a_client_revokes_its_grants_and_their_tokens() {
    let app = TestApp::start().await;
    let rs = app.resource_server(RESOURCE).await;
    let (client_id, _) = app.client("none").await;
    let (other_id, _) = app.client("none").await;
    let a = app.issue_tokens(&client_id, "openid").await;
    let b = app.issue_tokens(&client_id, "openid email").await;
    let keep = app.issue_tokens(&other_id, "openid").await;
    assert_eq!(introspect(&app, &rs, &a.access_token).await["active"], true);

    let store = &app.server.state.store;
    let now = app.server.state.clock.now();
    // What `latchkey client delete` runs.
    let revoked = latchkey::authz::client::delete(store, &client_id, now).await.unwrap();
    assert_eq!(revoked, Some(2));
    assert_eq!(
        latchkey::authz::client::delete(store, &client_id, now).await.unwrap(),
        None,
        "a second delete names no client"
    );
    assert!(store.get_client(&client_id, now).await.unwrap().is_none());

    for issued in [&a, &b] {
        assert_eq!(
            introspect(&app, &rs, &issued.access_token).await,
            serde_json::json!({"active": false})
        );
        let got = refresh(&app, &client_id, &issued.refresh_token).await;
        assert_oauth_error(&got, 401, "invalid_client");
        let items = app.grant_items(&issued.grant_id).await;
        assert_eq!(grant_status(&items).as_deref(), Some("revoked"));
        assert_eq!(token_items(&items), 0, "its tokens are deleted");
    }
    // Another client's grant is untouched.
    assert_eq!(introspect(&app, &rs, &keep.access_token).await["active"], true);
    assert_eq!(
        grant_status(&app.grant_items(&keep.grant_id).await).as_deref(),
        Some("active")
    );
}

#[tokio::test]
async fn a_token_whose_client_is_gone_is_refused_at_the_token_endpoint_even_if_its_grant_slipped_through() {
    let app = TestApp::start().await;
    let (client_id, _) = app.client("none").await;
    let issued = app.issue_tokens(&client_id, "openid").await;
    // Only the client item removed: its grant still active (as if revocation had missed it).
    let store = &app.server.state.store;
    store.delete(&latchkey::store::keys::client(&client_id)).await.unwrap();
    let before = app.calls();
    let got = refresh(&app, &client_id, &issued.refresh_token).await;
    let after = app.calls();
    assert_oauth_error(&got, 401, "invalid_client");
    assert_eq!(after.0 - before.0, 1, "refused on the one read that loads the client");
    let items = app.grant_items(&issued.grant_id).await;
    assert_eq!(grant_status(&items).as_deref(), Some("active"), "nothing changed");
    assert_eq!(token_items(&items), 2);
}

// ---- 5. OAuth 2.1 §4.3.1: the grace window never forks a token family ----

/// The refresh tokens in a grant's partition that are still active.
fn live_refresh_tokens(items: &[latchkey::store::Item]) -> Vec<String> {
    items
        .iter()
        .filter(|i| i.s("sk").is_some_and(|s| s.starts_with("RT#")) && i.s("status") == Some("active"))
        .map(|i| i.s("sk").unwrap().to_string())
        .collect()
}

fn rt_sk(token: &str) -> String {
    format!("RT#{}", latchkey::crypto::secret::hash(token))
}

#[tokio::test]
async fn oauth21_4_3_1_a_replay_within_the_grace_window_leaves_one_live_refresh_token() {
    let app = TestApp::start().await;
    let (client_id, _) = app.client("none").await;
    let first = app.issue_tokens(&client_id, "openid").await;
    let (status, second) = refresh(&app, &client_id, &first.refresh_token).await;
    assert_eq!(status, 200, "{second}");
    let rt2 = second["refresh_token"].as_str().unwrap().to_string();

    // The same (rotated) token again inside the window: a new pair, and the earlier successor is
    // superseded in the same write, within the token budget.
    app.server.state.clock.advance(5);
    let before = app.calls();
    let (status, replay) = refresh(&app, &client_id, &first.refresh_token).await;
    let after = app.calls();
    assert_eq!(status, 200, "{replay}");
    assert!(after.0 - before.0 <= 2, "{} round trips", after.0 - before.0);
    let rt3 = replay["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt3, rt2);
    let live = live_refresh_tokens(&app.grant_items(&first.grant_id).await);
    assert_eq!(
        live,
        vec![rt_sk(&rt3)],
        "one live refresh token in the grant: the newest"
    );

    // Replayed again and again: still one live chain.
    for _ in 0..3 {
        let (status, _) = refresh(&app, &client_id, &first.refresh_token).await;
        assert_eq!(status, 200);
        assert_eq!(live_refresh_tokens(&app.grant_items(&first.grant_id).await).len(), 1);
    }

    // The superseded successor presented after the window is reuse: the grant and every chain die.
    app.server.state.clock.advance(11);
    let got = refresh(&app, &client_id, &rt2).await;
    assert_oauth_error(&got, 400, "invalid_grant");
    let items = app.grant_items(&first.grant_id).await;
    assert_eq!(grant_status(&items).as_deref(), Some("revoked"));
    assert!(live_refresh_tokens(&items).is_empty());
}

#[tokio::test]
async fn oauth21_4_3_1_a_rotated_token_replayed_after_its_successor_was_used_revokes_the_grant() {
    let app = TestApp::start().await;
    let (client_id, _) = app.client("none").await;
    let first = app.issue_tokens(&client_id, "openid").await;
    let (_, second) = refresh(&app, &client_id, &first.refresh_token).await;
    let (status, _) = refresh(&app, &client_id, second["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    // Still inside the first token's window, but its successor already moved the chain on.
    let got = refresh(&app, &client_id, &first.refresh_token).await;
    assert_oauth_error(&got, 400, "invalid_grant");
    let items = app.grant_items(&first.grant_id).await;
    assert_eq!(grant_status(&items).as_deref(), Some("revoked"));
    assert_eq!(token_items(&items), 0);
}

// ---- 6. OAuth 2.1 §4.1.3: redirect_uri at the token endpoint only when sent at authorize ----

async fn code_from_browser(app: &TestApp, client_id: &str, redirect_uri: Option<&str>) -> String {
    let url = authorize_url(app, client_id, &[("redirect_uri", redirect_uri.unwrap_or(""))]);
    let back = app.approve_in_browser(&url, "carol@example.com").await;
    assert!(back.starts_with(LOOPBACK), "{back}");
    query_of(&back)["code"].clone()
}

async fn exchange(app: &TestApp, client_id: &str, code: &str, redirect_uri: Option<&str>) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", VERIFIER),
        ("client_id", client_id),
    ];
    if let Some(r) = redirect_uri {
        form.push(("redirect_uri", r));
    }
    app.post_form("/oauth/2.1/token", &form, None).await
}

#[tokio::test]
async fn oauth21_4_1_3_redirect_uri_is_required_at_the_token_endpoint_only_when_sent_at_authorize() {
    let (app, client_id, _) = app_and_client(&[LOOPBACK], "none").await;

    // Left out at authorize (one registered URI): the token request may leave it out too.
    let code = code_from_browser(&app, &client_id, None).await;
    let (status, body) = exchange(&app, &client_id, &code, None).await;
    assert_eq!(status, 200, "{body}");
    // ... and if it sends one, it must still be the URI the code went to.
    let code = code_from_browser(&app, &client_id, None).await;
    let got = exchange(&app, &client_id, &code, Some("http://127.0.0.1:7777/other")).await;
    assert_oauth_error(&got, 400, "invalid_grant");
    let code = code_from_browser(&app, &client_id, None).await;
    let (status, body) = exchange(&app, &client_id, &code, Some(LOOPBACK)).await;
    assert_eq!(status, 200, "{body}");

    // Sent at authorize: required, and the same.
    let code = code_from_browser(&app, &client_id, Some(LOOPBACK)).await;
    let got = exchange(&app, &client_id, &code, None).await;
    assert_oauth_error(&got, 400, "invalid_request");
    assert!(got.1["error_description"].as_str().unwrap().contains("redirect_uri"));
    let (status, body) = exchange(&app, &client_id, &code, Some(LOOPBACK)).await;
    assert_eq!(status, 200, "the refused request did not consume the code: {body}");
}
