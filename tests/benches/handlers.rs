//! `cargo bench -p latchkey-tests`: in-process handler timings (discovery, registration, token,
//! introspection) against the embedded store, the same endpoints over loopback HTTP, and the vault
//! proxy's overhead over a direct call to a (fake) provider API. Prints requests/s, p50 and p99.
//! Timings live here, never in a test.

use std::time::{Duration, Instant};

use lambda_http::Body;
use latchkey::domain::grant;
use latchkey::local::{start, Options};
use latchkey::router::{self, Route};

#[path = "../api/common/mod.rs"]
mod common;
use common::fake_provider;

fn report(name: &str, mut samples: Vec<Duration>, wall: Duration) {
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p) as usize];
    println!(
        "{name:<34} n={:<6} {:>9.0} req/s   p50 {:>8.1} µs   p99 {:>8.1} µs",
        samples.len(),
        samples.len() as f64 / wall.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e6,
        pct(0.99).as_secs_f64() * 1e6,
    );
}

fn discovery_request() -> lambda_http::Request {
    http::Request::builder()
        .method("GET")
        .uri("/.well-known/oauth-authorization-server/oauth/2.1")
        .body(Body::Empty)
        .unwrap()
}

const REGISTER_BODY: &str = r#"{"redirect_uris":["http://127.0.0.1:33418/callback"],"client_name":"bench","token_endpoint_auth_method":"none"}"#;

fn register_request() -> lambda_http::Request {
    http::Request::builder()
        .method("POST")
        .uri("/oauth/2.1/register")
        .header("content-type", "application/json")
        .body(Body::Text(REGISTER_BODY.into()))
        .unwrap()
}

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn form_request(path: &str, body: String, authorization: Option<&str>) -> lambda_http::Request {
    let mut b = http::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(a) = authorization {
        b = b.header("authorization", a);
    }
    b.body(Body::Text(body)).unwrap()
}

fn base64_basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
}

#[tokio::main]
async fn main() {
    let server = start(Options {
        addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: None,
        public_url: None,
        config: Vec::new(),
        // The handlers' own cost, store round trips included (as in a Lambda function).
        read_cache: false,
    })
    .await
    .unwrap();
    let state = &server.state;

    for (name, route, make, n) in [
        (
            "in-process discovery",
            Route::Discovery,
            discovery_request as fn() -> _,
            20_000,
        ),
        (
            "in-process register (1 PutItem)",
            Route::Register,
            register_request as fn() -> _,
            2_000,
        ),
    ] {
        let mut samples = Vec::with_capacity(n);
        let wall = Instant::now();
        for _ in 0..n {
            let req = make();
            let t = Instant::now();
            let res = router::call(route, state, req).await;
            samples.push(t.elapsed());
            assert!(res.status().is_success());
        }
        report(name, samples, wall.elapsed());
    }

    // Token exchange and introspection: seed grants and codes the way authorize stores them.
    let now = state.clock.now();
    let client_res = router::call(Route::Register, state, register_request()).await;
    let client: serde_json::Value = serde_json::from_slice(client_res.body().as_ref()).unwrap();
    let client_id = client["client_id"].as_str().unwrap().to_string();
    let resource = latchkey::domain::resource::Resource::parse("https://mcp.example.com/mcp").unwrap();
    let (rs, rs_secret) = state.store.create_resource_server(&resource, &[], now).await.unwrap();
    let n = 2_000;
    let mut codes = Vec::with_capacity(n);
    for _ in 0..n {
        let grant_id = latchkey::crypto::secret::random_token("", 16);
        let grant = grant::Grant {
            grant_id: grant_id.clone(),
            client_id: client_id.clone(),
            sub: "user".into(),
            username: "user@example.com".into(),
            resource: rs.resource.clone(),
            scope: "openid".into(),
            created_at: now,
            client_name: None,
            client_host: None,
            last_used: None,
        };
        let code = grant::new_token(grant::CODE_PREFIX, &grant_id);
        let rec = grant::CodeRecord {
            redirect_uri: "http://127.0.0.1:33418/callback".into(),
            redirect_uri_sent: true,
            code_challenge: CHALLENGE.into(),
            expires_at: now + 600,
            used: false,
        };
        state
            .store
            .put_grant_with_code(&grant, &code, &rec, now + 3600)
            .await
            .unwrap();
        codes.push(code);
    }
    let mut samples = Vec::with_capacity(n);
    let mut access_tokens = Vec::with_capacity(n);
    let wall = Instant::now();
    for code in &codes {
        let body = format!(
            "grant_type=authorization_code&code={code}&redirect_uri=http%3A%2F%2F127.0.0.1%3A33418%2Fcallback&code_verifier={VERIFIER}&client_id={client_id}"
        );
        let req = form_request("/oauth/2.1/token", body, None);
        let t = Instant::now();
        let res = router::call(Route::Token, state, req).await;
        samples.push(t.elapsed());
        assert!(res.status().is_success(), "{:?}", res.body());
        let v: serde_json::Value = serde_json::from_slice(res.body().as_ref()).unwrap();
        access_tokens.push(v["access_token"].as_str().unwrap().to_string());
    }
    report("in-process token (code exchange)", samples, wall.elapsed());
    let basic = format!("Basic {}", base64_basic(&rs.rs_id, &rs_secret));
    let mut samples = Vec::with_capacity(n);
    let wall = Instant::now();
    for at in &access_tokens {
        let req = form_request("/oauth/2.1/introspect", format!("token={at}"), Some(&basic));
        let t = Instant::now();
        let res = router::call(Route::Introspect, state, req).await;
        samples.push(t.elapsed());
        assert!(res.body().as_ref().starts_with(b"{\"active\":true"));
    }
    report("in-process introspect", samples, wall.elapsed());

    let http = reqwest::Client::new();
    let base = server.base_url();
    for (name, n) in [("http discovery", 5_000usize), ("http register", 1_000)] {
        let mut samples = Vec::with_capacity(n);
        let wall = Instant::now();
        for _ in 0..n {
            let t = Instant::now();
            let res = if name == "http discovery" {
                http.get(format!("{base}/.well-known/oauth-authorization-server/oauth/2.1"))
                    .send()
                    .await
                    .unwrap()
            } else {
                http.post(format!("{base}/oauth/2.1/register"))
                    .header("content-type", "application/json")
                    .body(REGISTER_BODY)
                    .send()
                    .await
                    .unwrap()
            };
            let ok = res.status().is_success();
            let _ = res.bytes().await;
            samples.push(t.elapsed());
            assert!(ok);
        }
        report(name, samples, wall.elapsed());
    }

    server.shutdown().await;
    proxy_overhead().await;
    tool_forwarding_overhead().await;
}

/// `n` sequential requests made directly and the same `n` through latchkey: both reported, then
/// the p50 latchkey adds.
async fn overhead(
    label: &str,
    n: usize,
    direct: (&str, &dyn Fn() -> reqwest::RequestBuilder),
    through: (&str, &dyn Fn() -> reqwest::RequestBuilder),
) {
    let mut medians = Vec::new();
    for (name, make) in [direct, through] {
        let mut samples = Vec::with_capacity(n);
        let wall = Instant::now();
        for _ in 0..n {
            let t = Instant::now();
            let res = make().send().await.unwrap();
            let ok = res.status().is_success();
            let _ = res.bytes().await;
            samples.push(t.elapsed());
            assert!(ok, "{name}");
        }
        let mut sorted = samples.clone();
        sorted.sort();
        medians.push(sorted[n / 2]);
        report(name, samples, wall.elapsed());
    }
    println!(
        "{label:<34} p50 {:>8.1} µs added per call",
        (medians[1].as_secs_f64() - medians[0].as_secs_f64()) * 1e6
    );
}

/// The vault proxy's overhead: the same provider API call made directly with the user's token and
/// through `/v1/proxy`, both over loopback HTTP against the fake provider.
async fn proxy_overhead() {
    let app = common::TestApp::start().await;
    let fake = fake_provider::FakeProvider::start().await;
    let project = app.project("bench").await;
    app.set_provider(&project, "google", Some("google"), fake.overrides())
        .await;
    let (_, status, _) = app.connect(&project, "bench-user", "google").await;
    assert_eq!(status, 200);
    let token = fake.state.lock().unwrap().access.keys().next().unwrap().clone();
    let http = reqwest::Client::new();
    overhead(
        "proxy overhead",
        2_000,
        ("http provider API, direct", &|| {
            http.get(fake.url("/api/me")).bearer_auth(&token)
        }),
        ("http provider API via /v1/proxy", &|| {
            http.get(app.url("/v1/proxy/google/me"))
                .header("x-api-key", &project.api_key)
                .header("x-user-id", "bench-user")
        }),
    )
    .await;
}

/// The tools' MCP forwarding overhead: `tools/list` sent straight to an OAuth-protected MCP server
/// with the tool's token, and through `/tools/{id}/mcp`. The server introspects each token at
/// latchkey in both cases.
async fn tool_forwarding_overhead() {
    let app = common::TestApp::start().await;
    let (listener, url) = common::mcp_server::McpServer::bind().await;
    let (rs_id, rs_secret) = app.resource_server(&url).await;
    let _mcp = common::mcp_server::McpServer::serve(listener, &app.url("/oauth/2.1"), &rs_id, &rs_secret).await;
    let project = app.project("bench").await;
    let tool_id = app.connect_tool(&project, &url).await;
    let state = &app.server.state;
    let conn = state.store.get_tool_tokens(&tool_id, 0).await.unwrap().unwrap();
    let token = latchkey::vault::open_tokens(state, &conn.context(), &conn.sealed_tokens)
        .await
        .unwrap()
        .access_token;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#;
    let http = reqwest::Client::new();
    let rpc = |req: reqwest::RequestBuilder| {
        req.header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body)
    };
    overhead(
        "tool forwarding overhead",
        1_000,
        ("http MCP tools/list, direct", &|| {
            rpc(http.post(&url).bearer_auth(&token))
        }),
        ("http MCP tools/list via /tools/mcp", &|| {
            rpc(http
                .post(app.url(&format!("/tools/{tool_id}/mcp")))
                .header("x-api-key", &project.api_key))
        }),
    )
    .await;
}
