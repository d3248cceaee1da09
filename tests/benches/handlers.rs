//! `cargo bench -p latchkey-tests`: in-process handler timings (discovery, registration) against the
//! embedded store, and the same endpoints over loopback HTTP. Prints requests/s, p50 and p99.
//! Timings live here, never in a test.

use std::time::{Duration, Instant};

use lambda_http::Body;
use latchkey::local::{start, Options};
use latchkey::router::{self, Route};

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

#[tokio::main]
async fn main() {
    let server = start(Options {
        addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: None,
        public_url: None,
        config: Vec::new(),
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
}
