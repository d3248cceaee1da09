//! Sign-in through an upstream OpenID Connect provider: a small real provider on loopback (discovery,
//! authorize, token with client authentication and PKCE, ID tokens), and a browser-like client that
//! follows the redirects. Checks state (single use), nonce, audience, the provider's refusal, and that
//! the PKCE verifier reaches the provider intact.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode as AxStatus};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use common::{TestApp, CHALLENGE, RESOURCE};
use latchkey::domain::resource::Resource;
use reqwest::redirect::Policy;
use serde_json::json;

/// What the provider remembers about a code it issued: nonce, code challenge, redirect URI.
type Issued = (String, String, String);

#[derive(Clone, Default)]
struct Provider {
    issuer: String,
    /// code → (nonce, code_challenge, redirect_uri)
    codes: Arc<Mutex<HashMap<String, Issued>>>,
    /// What to do: "ok", "deny", "bad-nonce", "bad-aud".
    mode: Arc<Mutex<String>>,
    verifier_checks: Arc<Mutex<u32>>,
}

async fn discovery(State(p): State<Provider>) -> Json<serde_json::Value> {
    Json(json!({
        "issuer": p.issuer,
        "authorization_endpoint": format!("{}/authorize", p.issuer),
        "token_endpoint": format!("{}/token", p.issuer),
        "jwks_uri": format!("{}/jwks", p.issuer),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

async fn authorize(State(p): State<Provider>, Query(q): Query<HashMap<String, String>>) -> Response {
    let redirect_uri = q["redirect_uri"].clone();
    if q.get("code_challenge_method").map(String::as_str) != Some("S256")
        || q.get("client_id").map(String::as_str) != Some("latchkey-test")
    {
        return (AxStatus::BAD_REQUEST, "bad request").into_response();
    }
    if p.mode.lock().unwrap().as_str() == "deny" {
        return Redirect::to(&format!("{redirect_uri}?error=access_denied&state={}", q["state"])).into_response();
    }
    let code = format!("upstream-code-{}", p.codes.lock().unwrap().len());
    p.codes.lock().unwrap().insert(
        code.clone(),
        (q["nonce"].clone(), q["code_challenge"].clone(), redirect_uri.clone()),
    );
    Redirect::to(&format!("{redirect_uri}?code={code}&state={}", q["state"])).into_response()
}

async fn token(State(p): State<Provider>, headers: HeaderMap, Form(f): Form<HashMap<String, String>>) -> Response {
    let expected = format!("Basic {}", STANDARD.encode("latchkey-test:upstream-secret"));
    if headers.get("authorization").and_then(|h| h.to_str().ok()) != Some(expected.as_str()) {
        return (AxStatus::UNAUTHORIZED, Json(json!({"error": "invalid_client"}))).into_response();
    }
    let Some((nonce, challenge, redirect_uri)) = p.codes.lock().unwrap().remove(&f["code"]) else {
        return (AxStatus::BAD_REQUEST, Json(json!({"error": "invalid_grant"}))).into_response();
    };
    if latchkey::oauth::pkce::challenge_for(&f["code_verifier"]) != challenge || f["redirect_uri"] != redirect_uri {
        return (AxStatus::BAD_REQUEST, Json(json!({"error": "invalid_grant"}))).into_response();
    }
    *p.verifier_checks.lock().unwrap() += 1;
    let mode = p.mode.lock().unwrap().clone();
    let claims = json!({
        "iss": p.issuer,
        "sub": "user-42",
        "aud": if mode == "bad-aud" { "someone-else" } else { "latchkey-test" },
        "exp": 4_000_000_000i64,
        "iat": 1_700_000_000i64,
        "nonce": if mode == "bad-nonce" { "wrong".to_string() } else { nonce },
        "email": "carol@example.com",
        "email_verified": true,
    });
    let jwt = format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    Json(
        json!({"access_token": "upstream-at", "refresh_token": "upstream-rt", "token_type": "Bearer",
        "expires_in": 3600, "scope": "openid email profile", "id_token": jwt}),
    )
    .into_response()
}

async fn start_provider() -> Provider {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let p = Provider {
        issuer,
        mode: Arc::new(Mutex::new("ok".into())),
        ..Default::default()
    };
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .with_state(p.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    p
}

struct Flow {
    app: TestApp,
    provider: Provider,
    client_id: String,
    http: reqwest::Client,
}

async fn setup() -> Flow {
    setup_with(&[]).await
}

async fn setup_with(extra: &[(&str, &str)]) -> Flow {
    let provider = start_provider().await;
    let mut config = vec![
        ("LATCHKEY_LOGIN_ISSUER", provider.issuer.as_str()),
        ("LATCHKEY_LOGIN_CLIENT_ID", "latchkey-test"),
        ("LATCHKEY_LOGIN_CLIENT_SECRET", "upstream-secret"),
    ];
    config.extend_from_slice(extra);
    let app = TestApp::start_configured(None, &config).await;
    let now = app.server.state.clock.now();
    app.server
        .state
        .store
        .create_resource_server(&Resource::parse(RESOURCE).unwrap(), &[], now)
        .await
        .unwrap();
    let (client_id, _) = app.client("none").await;
    let http = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    Flow {
        app,
        provider,
        client_id,
        http,
    }
}

impl Flow {
    fn authorize_url(&self) -> String {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("client_id", self.client_id.as_str()),
                ("redirect_uri", "http://127.0.0.1:7777/callback"),
                ("response_type", "code"),
                ("state", "client-state"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
                ("resource", RESOURCE),
            ])
            .finish();
        self.app.url(&format!("/oauth/2.1/authorize?{q}"))
    }

    /// authorize → provider → back to latchkey's callback URL (not yet followed), and the cookie
    /// that binds the sign-in to this browser.
    async fn to_callback_with_cookie(&self) -> (String, String) {
        let res = self.http.get(self.authorize_url()).send().await.unwrap();
        assert_eq!(res.status(), 303);
        let cookie = res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        assert!(cookie.starts_with("lk_login="), "{cookie}");
        let upstream = res.headers()["location"].to_str().unwrap().to_string();
        assert!(
            upstream.starts_with(&format!("{}/authorize?", self.provider.issuer)),
            "{upstream}"
        );
        let res = self.http.get(&upstream).send().await.unwrap();
        assert_eq!(res.status(), 303);
        (res.headers()["location"].to_str().unwrap().to_string(), cookie)
    }

    /// Follow the callback URL in the browser that started the sign-in.
    async fn callback(&self, url: &str, cookie: &str) -> reqwest::Response {
        self.http.get(url).header("cookie", cookie).send().await.unwrap()
    }
}

#[tokio::test]
async fn oidc_sign_in_with_pkce_state_and_nonce_then_consent_and_code() {
    let f = setup().await;
    let (callback, login_cookie) = f.to_callback_with_cookie().await;
    assert!(callback.starts_with(&f.app.url("/oauth/2.1/callback?code=")));
    // While the sign-in is in flight, the PKCE verifier is stored sealed by the keyring (record v1,
    // local wrapper), not in the clear.
    let items = f.app.all_items().await;
    let login = items
        .iter()
        .find(|i| i.get("type").and_then(|t| t.as_s().ok()).map(String::as_str) == Some("login"))
        .expect("login state stored");
    let sealed = login["verifier"].as_b().unwrap().as_ref();
    assert_eq!(&sealed[..2], &[1, 1]);
    assert!(sealed.len() > 64 + 12 + 16);
    let res = f.callback(&callback, &login_cookie).await;
    assert_eq!(res.status(), 303);
    let cookies: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_string())
        .collect();
    let cookie = cookies
        .iter()
        .find(|c| c.starts_with("lk_session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("lk_login=;") && c.contains("Max-Age=0")),
        "login cookie cleared"
    );
    let consent = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        *f.provider.verifier_checks.lock().unwrap(),
        1,
        "the provider checked our PKCE verifier"
    );
    let html = f
        .http
        .get(&consent)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("carol@example.com"));
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = html.find(&marker).unwrap() + marker.len();
        html[start..].split('"').next().unwrap().to_string()
    };
    let res = f
        .http
        .post(f.app.url("/oauth/2.1/consent"))
        .header("cookie", &cookie)
        .form(&[
            ("request", field("request")),
            ("csrf", field("csrf")),
            ("decision", "approve".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let back = res.headers()["location"].to_str().unwrap();
    assert!(back.starts_with("http://127.0.0.1:7777/callback?code=lk_ac_"), "{back}");
    // The state is single use: replaying the provider's redirect does nothing.
    let res = f.callback(&callback, &login_cookie).await;
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("set-cookie").is_none());
    assert!(
        !f.app
            .all_items()
            .await
            .iter()
            .any(|i| i.get("type").and_then(|t| t.as_s().ok()).map(String::as_str) == Some("login")),
        "login state consumed"
    );
}

#[tokio::test]
async fn oidc_core_3_1_3_7_wrong_nonce_or_audience_is_refused_and_starts_no_session() {
    for mode in ["bad-nonce", "bad-aud"] {
        let f = setup().await;
        *f.provider.mode.lock().unwrap() = mode.into();
        let (callback, login_cookie) = f.to_callback_with_cookie().await;
        let res = f.callback(&callback, &login_cookie).await;
        assert_eq!(res.status(), 400, "{mode}");
        assert!(res.headers().get("set-cookie").is_none(), "{mode}");
        assert!(
            !f.app
                .all_items()
                .await
                .iter()
                .any(|i| i.get("type").and_then(|t| t.as_s().ok()).map(String::as_str) == Some("session")),
            "{mode}: no session stored"
        );
    }
}

#[tokio::test]
async fn provider_refusal_sends_access_denied_to_the_client() {
    let f = setup().await;
    *f.provider.mode.lock().unwrap() = "deny".into();
    let (callback, login_cookie) = f.to_callback_with_cookie().await;
    let res = f.callback(&callback, &login_cookie).await;
    assert_eq!(res.status(), 303);
    let back = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    let q: HashMap<_, _> = back.query_pairs().into_owned().collect();
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "client-state");
    assert_eq!(q["iss"], format!("{}/oauth/2.1", f.app.base));
}

#[tokio::test]
async fn unknown_or_missing_state_is_an_error_page() {
    let f = setup().await;
    for path in ["/oauth/2.1/callback?code=x&state=unknown", "/oauth/2.1/callback?code=x"] {
        let res = f.http.get(f.app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 400, "{path}");
        assert!(res.headers().get("location").is_none());
    }
    // The local development sign-in form is not available when a login issuer is configured.
    let res = f
        .http
        .post(f.app.url("/oauth/2.1/callback"))
        .form(&[("request", "x"), ("email", "a@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
}

#[tokio::test]
async fn rfc6749_10_12_a_callback_link_opened_in_another_browser_does_not_sign_it_in() {
    // Login CSRF: the attacker signs in upstream, stops before the callback, and sends the link.
    let f = setup().await;
    let (callback, _attackers_cookie) = f.to_callback_with_cookie().await;
    let res = f.http.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("set-cookie").is_none());
    let res = f.callback(&callback, "lk_login=someone-elses").await;
    assert_eq!(res.status(), 400);
    assert!(
        !f.app
            .all_items()
            .await
            .iter()
            .any(|i| i.get("type").and_then(|t| t.as_s().ok()).map(String::as_str) == Some("session")),
        "no session stored"
    );
}

/// With `LATCHKEY_LOGIN_VAULT_PROJECT`, the sign-in asks for a refresh token (the catalogue's Google
/// parameters) and keeps the provider's tokens, sealed, as the user's vault connection.
#[tokio::test]
async fn sign_in_tokens_are_kept_sealed_as_the_users_vault_connection() {
    let f = setup_with(&[("LATCHKEY_LOGIN_VAULT_PROJECT", "prj_login-test")]).await;
    let res = f.http.get(f.authorize_url()).send().await.unwrap();
    let upstream = res.headers()["location"].to_str().unwrap().to_string();
    let q: HashMap<String, String> = url::Url::parse(&upstream).unwrap().query_pairs().into_owned().collect();
    assert_eq!(q["access_type"], "offline");
    assert_eq!(q["prompt"], "consent");
    let (callback, cookie) = f.to_callback_with_cookie().await;
    assert_eq!(f.callback(&callback, &cookie).await.status(), 303);
    let sub = format!("{}|user-42", f.provider.issuer);
    let state = &f.app.server.state;
    let conn = state
        .store
        .get_connection("prj_login-test", &sub, "google", state.clock.now())
        .await
        .unwrap()
        .expect("the sign-in is kept as a connection");
    assert_eq!(conn.status.as_str(), "active");
    assert_eq!(conn.email.as_deref(), Some("carol@example.com"));
    assert_eq!(conn.scopes, vec!["openid", "email", "profile"]);
    assert!(!conn.sealed_tokens.windows(11).any(|w| w == b"upstream-at"));
    let tokens = latchkey::vault::open_tokens(
        state,
        &latchkey::domain::context::connection_context("prj_login-test", &sub, "google"),
        &conn.sealed_tokens,
    )
    .await
    .unwrap();
    assert_eq!(tokens.access_token, "upstream-at");
    assert_eq!(tokens.refresh_token.as_deref(), Some("upstream-rt"));
}

#[tokio::test]
async fn without_a_vault_project_sign_in_keeps_no_tokens() {
    let f = setup().await;
    let (callback, cookie) = f.to_callback_with_cookie().await;
    assert_eq!(f.callback(&callback, &cookie).await.status(), 303);
    let items = f.app.all_items().await;
    assert!(!items
        .iter()
        .any(|i| i.get("type").and_then(|t| t.as_s().ok()).map(String::as_str) == Some("connection")));
}

/// Issue 15: the account page signs a browser in through the same upstream provider as authorize
/// (PKCE, state bound to the browser) and comes back to the page; a declined sign-in is a page, not a
/// redirect to any client, and starts no session.
#[tokio::test]
async fn account_page_signs_in_at_the_upstream_provider_and_comes_back() {
    for mode in ["ok", "deny"] {
        let f = setup().await;
        *f.provider.mode.lock().unwrap() = mode.into();
        let res = f.http.get(f.app.url("/oauth/2.1/account")).send().await.unwrap();
        assert_eq!(res.status(), 303, "{mode}");
        let login_cookie = res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        assert!(login_cookie.starts_with("lk_login="), "{login_cookie}");
        let upstream = res.headers()["location"].to_str().unwrap().to_string();
        assert!(
            upstream.starts_with(&format!("{}/authorize?", f.provider.issuer)),
            "{upstream}"
        );
        let res = f.http.get(&upstream).send().await.unwrap();
        let callback = res.headers()["location"].to_str().unwrap().to_string();
        let res = f.callback(&callback, &login_cookie).await;
        if mode == "deny" {
            assert_eq!(res.status(), 400);
            assert!(res.headers().get("location").is_none());
            assert!(res.text().await.unwrap().contains("You did not sign in"));
            continue;
        }
        assert_eq!(res.status(), 303);
        assert_eq!(
            res.headers()["location"].to_str().unwrap(),
            f.app.url("/oauth/2.1/account")
        );
        let session = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_string())
            .find(|c| c.starts_with("lk_session="))
            .expect("a session cookie");
        let res = f
            .http
            .get(f.app.url("/oauth/2.1/account"))
            .header("cookie", session)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let html = res.text().await.unwrap();
        assert!(
            html.contains("Your connected apps") && html.contains("carol@example.com"),
            "{html}"
        );
    }
}
