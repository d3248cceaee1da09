//! Client ID Metadata Documents over real HTTP: a document server on loopback, latchkey fetching it
//! at authorize (through the address guard, 5 KB, 5 s, no redirects, HTTP caching), the document
//! binding the redirect URI, and the resulting public client exchanging and refreshing tokens.
//! Refusals end to end use loopback targets under the production policy.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use common::{TestApp, CHALLENGE, RESOURCE, VERIFIER};
use reqwest::redirect::Policy;
use serde_json::json;

#[derive(Clone)]
struct Docs {
    base: String,
    hits: Arc<AtomicUsize>,
}

async fn serve_docs() -> Docs {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let docs = Docs {
        base,
        hits: Arc::new(AtomicUsize::new(0)),
    };
    let doc = |path: &'static str, body: fn(&str) -> String, cache: &'static str| {
        move |State(d): State<Docs>| async move {
            d.hits.fetch_add(1, Ordering::SeqCst);
            let url = format!("{}{path}", d.base);
            (
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::CACHE_CONTROL, cache),
                ],
                body(&url),
            )
                .into_response()
        }
    };
    fn good(url: &str) -> String {
        json!({"client_id": url, "client_name": "Doc Client", "redirect_uris": ["http://127.0.0.1:7777/callback"], "grant_types": ["authorization_code", "refresh_token"]}).to_string()
    }
    fn mismatched(_url: &str) -> String {
        json!({"client_id": "https://evil.example/client.json", "redirect_uris": ["http://127.0.0.1:7777/callback"]})
            .to_string()
    }
    fn big(url: &str) -> String {
        json!({"client_id": url, "redirect_uris": ["http://127.0.0.1:7777/callback"], "client_name": "x".repeat(6000)})
            .to_string()
    }
    let app = Router::new()
        .route("/client.json", get(doc("/client.json", good, "max-age=300")))
        .route("/mismatch.json", get(doc("/mismatch.json", mismatched, "max-age=300")))
        .route("/big.json", get(doc("/big.json", big, "max-age=300")))
        .route(
            "/slow.json",
            get(|State(d): State<Docs>| async move {
                d.hits.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(7)).await;
                "{}"
            }),
        )
        .with_state(docs.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    docs
}

async fn app_with(config: &[(&str, &str)]) -> TestApp {
    let app = TestApp::start_configured(None, config).await;
    app.resource_server(RESOURCE).await;
    app
}

fn authorize_url(app: &TestApp, client_id: &str) -> String {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("client_id", client_id),
            ("redirect_uri", "http://127.0.0.1:7777/callback"),
            ("response_type", "code"),
            ("state", "s"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("resource", RESOURCE),
        ])
        .finish();
    app.url(&format!("/oauth/2.1/authorize?{q}"))
}

fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

fn stored_clients(items: &[std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>]) -> usize {
    items
        .iter()
        .filter(|i| i.get("type").and_then(|t| t.as_s().ok()).map(String::as_str) == Some("client"))
        .count()
}

#[tokio::test]
async fn a_metadata_document_client_authorizes_exchanges_and_refreshes_and_the_document_is_cached() {
    let docs = serve_docs().await;
    let app = app_with(&[]).await;
    let client_id = format!("{}/client.json", docs.base);
    let http = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();

    let res = http.get(authorize_url(&app, &client_id)).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let sign_in = res.headers()["location"].to_str().unwrap().to_string();
    let html = http.get(&sign_in).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Doc Client"));
    let request = field(&html, "request");
    let res = http
        .post(app.url("/oauth/2.1/callback"))
        .form(&[("request", request.as_str()), ("email", "dee@example.com")])
        .send()
        .await
        .unwrap();
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = http
        .get(res.headers()["location"].to_str().unwrap())
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let res = http
        .post(app.url("/oauth/2.1/consent"))
        .header("cookie", &cookie)
        .form(&[
            ("request", field(&html, "request")),
            ("csrf", field(&html, "csrf")),
            ("decision", "approve".into()),
        ])
        .send()
        .await
        .unwrap();
    let back = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    let code = back.query_pairs().find(|(k, _)| k == "code").unwrap().1.to_string();

    let (status, tokens) = app
        .post_form(
            "/oauth/2.1/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:7777/callback"),
                ("code_verifier", VERIFIER),
                ("client_id", &client_id),
            ],
            None,
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    let (status, _) = app
        .post_form(
            "/oauth/2.1/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                ("client_id", &client_id),
            ],
            None,
        )
        .await;
    assert_eq!(status, 200);
    // A second authorize within max-age uses the stored document: no new fetch.
    let res = http
        .get(authorize_url(&app, &client_id))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(docs.hits.load(Ordering::SeqCst), 1, "fetched once, then cached");
    // After max-age it is fetched again.
    app.server.state.clock.advance(301);
    let _ = http.get(authorize_url(&app, &client_id)).send().await.unwrap();
    assert_eq!(docs.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn documents_that_do_not_name_themselves_are_oversized_or_slow_are_refused() {
    let docs = serve_docs().await;
    let app = app_with(&[]).await;
    let http = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    for (path, why) in [
        ("/mismatch.json", "does not equal its URL"),
        ("/big.json", "larger than 5 KB"),
        ("/slow.json", "took too long"),
        ("/missing.json", "answered 404"),
    ] {
        let res = http
            .get(authorize_url(&app, &format!("{}{path}", docs.base)))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{path}");
        assert!(res.headers().get("location").is_none(), "{path}: never a redirect");
        let html = res.text().await.unwrap();
        assert!(html.contains(why), "{path}: {html}");
    }
    assert_eq!(stored_clients(&app.all_items().await), 0, "no client stored");
}

#[tokio::test]
async fn under_the_production_policy_http_and_loopback_targets_are_refused_before_any_request() {
    let docs = serve_docs().await;
    let app = app_with(&[("LATCHKEY_ALLOW_LOOPBACK_OUTBOUND", "false")]).await;
    let http = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    let port = docs.base.rsplit(':').next().unwrap();
    for (client_id, why) in [
        (format!("{}/client.json", docs.base), "must use https"),
        (
            format!("https://127.0.0.1:{port}/client.json"),
            "loopback addresses are not allowed",
        ),
        (
            format!("https://localhost:{port}/client.json"),
            "loopback addresses are not allowed",
        ),
        (format!("https://[::1]:{port}/client.json"), "not allowed"),
    ] {
        let res = http.get(authorize_url(&app, &client_id)).send().await.unwrap();
        assert_eq!(res.status(), 400, "{client_id}");
        let html = res.text().await.unwrap();
        assert!(html.contains(why), "{client_id}: {html}");
    }
    assert_eq!(
        docs.hits.load(Ordering::SeqCst),
        0,
        "the guard refused before connecting"
    );
    assert_eq!(stored_clients(&app.all_items().await), 0);
}
