//! The browser side of the authorization code flow over real HTTP, the way a browser drives it:
//! authorize → local development sign-in → consent (CSRF, no framing) → redirect with code, state
//! and iss (RFC 9207) → token → introspection. Then remembered consent, Deny, and bad requests
//! (error page before the redirect URI is validated, redirect with an error after).

use crate::common;

use common::{TestApp, CHALLENGE, RESOURCE, VERIFIER};
use latchkey::domain::resource::Resource;
use reqwest::redirect::Policy;
use reqwest::StatusCode;

const REDIRECT: &str = "http://127.0.0.1:7777/callback";

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

    async fn send(
        &mut self,
        req: reqwest::RequestBuilder,
    ) -> (StatusCode, Option<String>, String, reqwest::header::HeaderMap) {
        let req = match &self.cookie {
            Some(c) => req.header("cookie", c),
            None => req,
        };
        let res = req.send().await.unwrap();
        if let Some(sc) = res.headers().get("set-cookie") {
            self.cookie = Some(sc.to_str().unwrap().split(';').next().unwrap().to_string());
        }
        let status = res.status();
        let location = res.headers().get("location").map(|l| l.to_str().unwrap().to_string());
        let headers = res.headers().clone();
        (status, location, res.text().await.unwrap(), headers)
    }

    async fn get(&mut self, url: &str) -> (StatusCode, Option<String>, String, reqwest::header::HeaderMap) {
        let req = self.http.get(url);
        self.send(req).await
    }

    async fn post(
        &mut self,
        url: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, Option<String>, String, reqwest::header::HeaderMap) {
        let req = self.http.post(url).form(form);
        self.send(req).await
    }
}

async fn setup() -> (TestApp, String, String, String) {
    let app = TestApp::start().await;
    let now = app.server.state.clock.now();
    let (rs, secret) = app
        .server
        .state
        .store
        .create_resource_server(&Resource::parse(RESOURCE).unwrap(), &[], now)
        .await
        .unwrap();
    let (_, body) = app
        .register(serde_json::json!({
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "client_name": "Demo <b>App</b>",
        }))
        .await;
    (app, body["client_id"].as_str().unwrap().to_string(), rs.rs_id, secret)
}

fn authorize_url(app: &TestApp, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("client_id", client_id),
        ("redirect_uri", "http://127.0.0.1:5555/callback"),
        ("response_type", "code"),
        ("state", "st-123"),
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

fn query_of(location: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(location).unwrap().query_pairs().into_owned().collect()
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

async fn authreqs(app: &TestApp) -> usize {
    app.all_items()
        .await
        .iter()
        .filter(|i| i.get("type").and_then(|t| t.as_s().ok()).map(String::as_str) == Some("authreq"))
        .count()
}

#[tokio::test]
async fn full_flow_sign_in_consent_code_token_introspect_then_consent_again_for_a_public_client() {
    let (app, client_id, rs_id, rs_secret) = setup().await;
    let mut browser = Browser::new();

    let (status, location, _, _) = browser.get(&authorize_url(&app, &client_id, &[])).await;
    assert_eq!(status, 303);
    let sign_in = location.unwrap();
    assert!(sign_in.starts_with(&app.url("/oauth/2.1/callback?request=")));

    let (status, _, html, _) = browser.get(&sign_in).await;
    assert_eq!(status, 200);
    assert!(html.contains("Local development sign-in"));
    assert!(html.contains("Demo &lt;b&gt;App&lt;/b&gt;"), "client name escaped");
    let request_id = hidden(&html, "request");

    let (status, location, _, _) = browser
        .post(
            &app.url("/oauth/2.1/callback"),
            &[("request", &request_id), ("email", "Alice@Example.com")],
        )
        .await;
    assert_eq!(status, 303);
    let cookie = browser.cookie.clone().expect("session cookie set");
    assert!(cookie.starts_with("lk_session=lk_sess_"));
    let consent_url = location.unwrap();

    let (status, _, html, headers) = browser.get(&consent_url).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    for text in [
        "Demo &lt;b&gt;App&lt;/b&gt;",
        RESOURCE,
        "alice@example.com",
        "127.0.0.1",
        "See your email address",
        "<code>openid</code>",
    ] {
        assert!(html.contains(text), "consent page names {text}");
    }
    let csrf = hidden(&html, "csrf");

    // A forged or missing CSRF token changes nothing.
    let (status, _, _, _) = browser
        .post(
            &app.url("/oauth/2.1/consent"),
            &[("request", &request_id), ("csrf", "forged"), ("decision", "approve")],
        )
        .await;
    assert_eq!(status, 403);
    let (status, _, _, _) = browser
        .post(
            &app.url("/oauth/2.1/consent"),
            &[("request", &request_id), ("decision", "approve")],
        )
        .await;
    assert_eq!(status, 403);
    // Without the session cookie: refused.
    let (status, _, _, _) = Browser::new()
        .post(
            &app.url("/oauth/2.1/consent"),
            &[("request", &request_id), ("csrf", &csrf), ("decision", "approve")],
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(authreqs(&app).await, 1, "the pending request is still there");

    let (status, location, _, _) = browser
        .post(
            &app.url("/oauth/2.1/consent"),
            &[("request", &request_id), ("csrf", &csrf), ("decision", "approve")],
        )
        .await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    assert!(
        location.starts_with("http://127.0.0.1:5555/callback?"),
        "loopback redirect keeps the port the client used"
    );
    let q = query_of(&location);
    assert_eq!(q["state"], "st-123");
    assert_eq!(q["iss"], format!("{}/oauth/2.1", app.base));
    let code = &q["code"];
    assert!(code.starts_with("lk_ac_"));
    assert_eq!(authreqs(&app).await, 0, "the pending request was consumed");

    // Replaying the consent form does nothing.
    let (status, _, _, _) = browser
        .post(
            &app.url("/oauth/2.1/consent"),
            &[("request", &request_id), ("csrf", &csrf), ("decision", "approve")],
        )
        .await;
    assert_eq!(status, 400);

    let (status, body) = app
        .post_form(
            "/oauth/2.1/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", "http://127.0.0.1:5555/callback"),
                ("code_verifier", VERIFIER),
                ("client_id", &client_id),
                ("resource", RESOURCE),
            ],
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "openid email");
    let (status, info) = app
        .post_form(
            "/oauth/2.1/introspect",
            &[("token", body["access_token"].as_str().unwrap())],
            Some((&rs_id, &rs_secret)),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(info["active"], true);
    assert_eq!(info["username"], "alice@example.com");
    assert_eq!(info["sub"], "local:alice@example.com");

    // A second authorize in the same browser, same scopes: this client is public (`none`), so the
    // consent page again (RFC 8252 §8.6; remembered consent for confidential clients is
    // as_security::rfc8252_8_6_consent_is_remembered_for_a_confidential_client).
    let (status, location, _, _) = browser
        .get(&authorize_url(&app, &client_id, &[("state", "st-2")]))
        .await;
    assert_eq!(status, 303);
    assert!(location.unwrap().contains("/oauth/2.1/consent?request="));
    // More scopes than approved: consent again.
    let (status, location, _, _) = browser
        .get(&authorize_url(&app, &client_id, &[("scope", "openid email profile")]))
        .await;
    assert_eq!(status, 303);
    assert!(location.unwrap().contains("/oauth/2.1/consent?request="));
}

#[tokio::test]
async fn rfc6749_4_1_2_1_deny_redirects_with_access_denied_state_and_iss() {
    let (app, client_id, _, _) = setup().await;
    let mut browser = Browser::new();
    let (_, location, _, _) = browser.get(&authorize_url(&app, &client_id, &[])).await;
    let (_, _, html, _) = browser.get(&location.unwrap()).await;
    let request_id = hidden(&html, "request");
    let (_, location, _, _) = browser
        .post(
            &app.url("/oauth/2.1/callback"),
            &[("request", &request_id), ("email", "bob@example.com")],
        )
        .await;
    let (_, _, html, _) = browser.get(&location.unwrap()).await;
    let csrf = hidden(&html, "csrf");
    let (status, location, _, _) = browser
        .post(
            &app.url("/oauth/2.1/consent"),
            &[("request", &request_id), ("csrf", &csrf), ("decision", "deny")],
        )
        .await;
    assert_eq!(status, 303);
    let q = query_of(&location.unwrap());
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st-123");
    assert_eq!(q["iss"], format!("{}/oauth/2.1", app.base));
    assert!(!q.contains_key("code"));
    assert!(!app
        .all_items()
        .await
        .iter()
        .any(|i| i.get("type").and_then(|t| t.as_s().ok()).map(String::as_str) == Some("grant")));
}

#[tokio::test]
async fn rfc6749_4_1_2_1_before_the_redirect_uri_is_validated_errors_are_a_page_never_a_redirect() {
    let (app, client_id, _, _) = setup().await;
    let mut browser = Browser::new();
    for (name, url) in [
        ("unknown client", authorize_url(&app, "lkc_nobody", &[])),
        ("missing client", authorize_url(&app, &client_id, &[("client_id", "")])),
        (
            "unregistered redirect",
            authorize_url(&app, &client_id, &[("redirect_uri", "https://evil.example/callback")]),
        ),
        (
            "extra path",
            authorize_url(
                &app,
                &client_id,
                &[("redirect_uri", "http://127.0.0.1:5555/callback/x")],
            ),
        ),
        (
            "query",
            authorize_url(
                &app,
                &client_id,
                &[("redirect_uri", "http://127.0.0.1:5555/callback?x=1")],
            ),
        ),
        (
            "case change",
            authorize_url(&app, &client_id, &[("redirect_uri", "http://127.0.0.1:5555/Callback")]),
        ),
        (
            "userinfo",
            authorize_url(
                &app,
                &client_id,
                &[("redirect_uri", "http://u@127.0.0.1:5555/callback")],
            ),
        ),
        (
            "fragment",
            authorize_url(
                &app,
                &client_id,
                &[("redirect_uri", "http://127.0.0.1:5555/callback#f")],
            ),
        ),
        (
            "duplicate parameter",
            format!("{}&state=again", authorize_url(&app, &client_id, &[])),
        ),
    ] {
        let (status, location, html, headers) = browser.get(&url).await;
        assert_eq!(status, 400, "{name}");
        assert!(location.is_none(), "{name}: no redirect");
        assert!(
            headers["content-type"].to_str().unwrap().starts_with("text/html"),
            "{name}"
        );
        assert!(html.contains("can't continue"), "{name}");
    }
    assert_eq!(authreqs(&app).await, 0);
}

#[tokio::test]
async fn rfc6749_4_1_2_1_after_the_redirect_uri_is_validated_errors_go_back_to_the_client() {
    let (app, client_id, _, _) = setup().await;
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
            "missing PKCE method",
            vec![("code_challenge_method", "")],
            "invalid_request",
        ),
        ("missing challenge", vec![("code_challenge", "")], "invalid_request"),
        ("short challenge", vec![("code_challenge", "abc")], "invalid_request"),
        (
            "unregistered resource",
            vec![("resource", "https://other.example.com/mcp")],
            "invalid_target",
        ),
        ("missing resource", vec![("resource", "")], "invalid_target"),
        ("bad resource", vec![("resource", "not a url")], "invalid_target"),
        ("unknown scope", vec![("scope", "openid admin")], "invalid_scope"),
    ] {
        let (status, location, _, _) = browser.get(&authorize_url(&app, &client_id, &extra)).await;
        assert_eq!(status, 303, "{name}");
        let location = location.unwrap();
        assert!(location.starts_with("http://127.0.0.1:5555/callback?"), "{name}");
        let q = query_of(&location);
        assert_eq!(q["error"], code, "{name}");
        assert!(!q["error_description"].is_empty(), "{name}");
        assert_eq!(q["iss"], format!("{}/oauth/2.1", app.base), "{name}");
        if name != "missing state" {
            assert_eq!(q["state"], "st-123", "{name}");
        }
    }
    assert_eq!(authreqs(&app).await, 0, "nothing stored");
}

#[tokio::test]
async fn expired_or_unknown_sign_in_requests_are_refused() {
    let (app, client_id, _, _) = setup().await;
    let mut browser = Browser::new();
    let (_, location, _, _) = browser.get(&authorize_url(&app, &client_id, &[])).await;
    let sign_in = location.unwrap();
    let (_, _, html, _) = browser.get(&sign_in).await;
    let request_id = hidden(&html, "request");
    for email in ["", "not-an-email", "<script>@x.com"] {
        let (status, _, _, _) = browser
            .post(
                &app.url("/oauth/2.1/callback"),
                &[("request", &request_id), ("email", email)],
            )
            .await;
        assert_eq!(status, 400, "{email:?}");
    }
    assert!(browser.cookie.is_none(), "no session for bad input");
    let (status, _, _, _) = browser
        .post(
            &app.url("/oauth/2.1/callback"),
            &[("request", "unknown"), ("email", "a@example.com")],
        )
        .await;
    assert_eq!(status, 400);
    app.server.state.clock.advance(601);
    let (status, _, _, _) = browser.get(&sign_in).await;
    assert_eq!(status, 400, "expired after 10 minutes");
    let (status, _, _, _) = browser
        .post(
            &app.url("/oauth/2.1/callback"),
            &[("request", &request_id), ("email", "a@example.com")],
        )
        .await;
    assert_eq!(status, 400);
    assert!(browser.cookie.is_none());
}

/// A resource server that declares its own scopes, as real MCP servers do, and a second one.
async fn declared_setup(grant_types: &[&str]) -> (TestApp, String) {
    let app = TestApp::start().await;
    let store = &app.server.state.store;
    let now = app.server.state.clock.now();
    store
        .create_resource_server(
            &Resource::parse(RESOURCE).unwrap(),
            &["mcp:tools".into(), "mcp:admin".into()],
            now,
        )
        .await
        .unwrap();
    store
        .create_resource_server(
            &Resource::parse("https://files.example.com/mcp").unwrap(),
            &["files:write".into()],
            now,
        )
        .await
        .unwrap();
    let (status, body) = app
        .register(serde_json::json!({
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "grant_types": grant_types,
            "scope": "mcp:tools",
        }))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["scope"], "mcp:tools");
    (app, body["client_id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn rfc6749_3_3_declared_scopes_offline_access_and_step_up_are_granted_for_their_resource() {
    let (app, client_id) = declared_setup(&["authorization_code", "refresh_token"]).await;
    // What the Python SDK asks for: the challenge's scope plus offline_access.
    let url = authorize_url(&app, &client_id, &[("scope", "mcp:tools offline_access")]);
    let location = app.approve_in_browser(&url, "ada@example.com").await;
    let q = query_of(&location);
    assert!(q.contains_key("code"), "{location}");
    let (status, body) = app
        .post_form(
            "/oauth/2.1/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &q["code"]),
                ("client_id", &client_id),
                ("redirect_uri", "http://127.0.0.1:5555/callback"),
                ("code_verifier", VERIFIER),
                ("resource", RESOURCE),
            ],
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "mcp:tools offline_access");
    assert!(body["refresh_token"].as_str().unwrap().starts_with("lk_rt_"));

    // Step-up beyond the registered scope, to another scope the same server declares.
    let url = authorize_url(&app, &client_id, &[("scope", "mcp:tools mcp:admin")]);
    let location = app.approve_in_browser(&url, "ada@example.com").await;
    assert!(query_of(&location).contains_key("code"), "{location}");

    // No scope at all: the resource's declared scopes.
    let url = authorize_url(&app, &client_id, &[("scope", "")]);
    let mut browser = Browser::new();
    let (status, location, _, _) = browser.get(&url).await;
    assert_eq!(status, 303);
    assert!(location.unwrap().contains("/oauth/2.1/callback?request="));
    let items = app.all_items().await;
    let scopes: Vec<&str> = items
        .iter()
        .filter_map(|i| match i.get("scope") {
            Some(aws_sdk_dynamodb::types::AttributeValue::S(s)) if i["pk"].as_s().unwrap().starts_with("AUTHREQ#") => {
                Some(s.as_str())
            }
            _ => None,
        })
        .collect();
    assert!(scopes.contains(&"mcp:tools mcp:admin"), "{scopes:?}");
}

#[tokio::test]
async fn rfc6749_4_1_2_1_invalid_scope_for_another_resources_scope_and_offline_access_without_refresh_grant() {
    for (grant_types, scope, why) in [
        (
            &["authorization_code", "refresh_token"][..],
            "mcp:tools files:write",
            "\"files:write\"",
        ),
        (
            &["authorization_code"][..],
            "mcp:tools offline_access",
            "refresh_token grant",
        ),
        (
            &["authorization_code", "refresh_token"][..],
            "nowhere:declared",
            "\"nowhere:declared\"",
        ),
    ] {
        let (app, client_id) = declared_setup(grant_types).await;
        let before = app.all_items().await.len();
        let mut browser = Browser::new();
        let (status, location, _, _) = browser.get(&authorize_url(&app, &client_id, &[("scope", scope)])).await;
        assert_eq!(status, 303, "{scope}");
        let q = query_of(&location.unwrap());
        assert_eq!(q["error"], "invalid_scope", "{scope}");
        assert!(
            q["error_description"].contains(why),
            "{scope}: {}",
            q["error_description"]
        );
        assert_eq!(app.all_items().await.len(), before, "{scope}: nothing stored");
    }
}
