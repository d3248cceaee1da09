//! Issue 17: a consent page that tells the truth (names are claims, scopes in words, never an empty
//! promise; everything a client supplies escaped) and the front door `GET /` of `latchkey serve`.

use crate::common;

use common::{TestApp, CHALLENGE, RESOURCE};
use reqwest::redirect::Policy;

const REDIRECT: &str = "http://127.0.0.1:7777/callback";

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// Register a DCR client with `meta`, authorize with `scope` (or none), sign in locally and return
/// the consent page's HTML.
async fn consent_html(app: &TestApp, meta: serde_json::Value, scope: Option<&str>) -> String {
    let (status, body) = app.register(meta).await;
    assert_eq!(status, 201, "{body}");
    let client_id = body["client_id"].as_str().unwrap();
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("state", "s"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("resource", RESOURCE),
    ];
    if let Some(s) = scope {
        pairs.push(("scope", s));
    }
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let http = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    let res = http
        .get(app.url(&format!("/oauth/2.1/authorize?{q}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let sign_in = res.headers()["location"].to_str().unwrap().to_string();
    let html = http.get(&sign_in).send().await.unwrap().text().await.unwrap();
    let request = hidden(&html, "request");
    let res = http
        .post(app.url("/oauth/2.1/callback"))
        .form(&[("request", request.as_str()), ("email", "alice@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let consent = res.headers()["location"].to_str().unwrap().to_string();
    let res = http.get(&consent).header("cookie", cookie).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

#[tokio::test]
async fn mcp_security_consent_without_a_scope_parameter_lists_the_default_scopes_in_words_never_an_empty_list() {
    let app = TestApp::start().await;
    // An operator describing one of the server's two scopes (`--scope "mcp:tools=…"`).
    let state = &app.server.state;
    state
        .store
        .create_described_resource_server(
            &latchkey::domain::resource::Resource::parse(RESOURCE).unwrap(),
            &["mcp:tools".to_string(), "mcp:admin".to_string()],
            &[("mcp:tools".to_string(), "Run this server's tools".to_string())]
                .into_iter()
                .collect(),
            state.clock.now(),
        )
        .await
        .unwrap();
    let html = consent_html(
        &app,
        serde_json::json!({
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "client_name": "Claude Desktop",
        }),
        None,
    )
    .await;
    // RFC 6749 §3.3: no `scope` means the default (the resource's declared scopes), each in the
    // operator's words, or said to be undescribed.
    assert!(
        html.contains(&format!("may use <strong>{RESOURCE}</strong> on your behalf")),
        "{html}"
    );
    assert!(html.contains("Run this server&#39;s tools"), "{html}");
    assert!(
        html.contains("<code>mcp:admin</code> <span class=\"muted\">(not described by this server's operator)</span>"),
        "{html}"
    );
    assert!(!html.contains("<ul class=\"scopes\"></ul>"), "no empty list: {html}");
    assert!(
        html.contains("Unverified</span> An unverified app calling itself \u{201c}Claude Desktop\u{201d}"),
        "{html}"
    );
    assert!(
        html.contains("<title>Allow unverified app \u{201c}Claude Desktop\u{201d} access?</title>"),
        "{html}"
    );
}

#[tokio::test]
async fn mcp_security_client_supplied_name_and_uris_are_html_escaped_on_consent() {
    let app = TestApp::start().await;
    app.resource_server(RESOURCE).await;
    let html = consent_html(
        &app,
        serde_json::json!({
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "client_name": "<script>alert(1)</script>\"'&",
            "client_uri": "https://x.example.invalid/<b>",
        }),
        Some("openid"),
    )
    .await;
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"),
        "{html}"
    );
    assert!(
        html.contains("Its website is on <strong>x.example.invalid</strong>"),
        "{html}"
    );
}

#[tokio::test]
async fn front_door_on_an_empty_store_names_the_issuer_and_the_first_command() {
    let app = TestApp::start().await;
    let http = reqwest::Client::new();
    let res = http.get(app.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let html = res.text().await.unwrap();
    assert!(!html.contains("<script"), "no JavaScript");
    for expected in [
        "latchkey is running".to_string(),
        format!("{}/oauth/2.1", app.base),
        format!("{}/.well-known/oauth-authorization-server/oauth/2.1", app.base),
        "<strong id=\"resource-servers\">0</strong>".into(),
        "<strong id=\"clients\">0</strong>".into(),
        "<strong id=\"projects\">0</strong>".into(),
        "latchkey resource-server create --resource".into(),
    ] {
        assert!(html.contains(&expected), "front door lacks {expected:?}: {html}");
    }
    // Other methods are refused; other unknown paths stay a JSON 404.
    assert_eq!(http.post(app.url("/")).send().await.unwrap().status(), 405);
    let res = http.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    // Not an endpoint of the deployed API: no Lambda route serves it.
    assert_eq!(latchkey::router::Route::for_path("/"), None);
}
