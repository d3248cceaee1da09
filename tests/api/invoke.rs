//! The Lambda path end to end: a function's real bootstrap (its own binary, built without the
//! embedded feature) answers an `events/*.json` event under a Lambda Runtime API stand-in
//! (`scripts/invoke`), reading and writing the embedded server's store through
//! `LATCHKEY_DYNAMODB_ENDPOINT`. Discovery, token and proxy; the proxy's sealed-token path needs a
//! KMS-compatible server (moto, from `scripts/test`), since a Lambda only opens what KMS sealed.

use crate::common;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn event(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(root().join("events").join(name)).unwrap()).unwrap()
}

/// `scripts/invoke <function> <event>` with `env`; the response the bootstrap posted, with its
/// `body` parsed as JSON when it is JSON.
async fn invoke(function: &str, event: Value, env: Vec<(&'static str, String)>) -> Value {
    let function = function.to_string();
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("event.json");
        std::fs::write(&path, serde_json::to_vec(&event).unwrap()).unwrap();
        let out = std::process::Command::new(root().join("scripts/invoke"))
            .arg(&function)
            .arg(&path)
            .envs(env)
            .output()
            .expect("scripts/invoke runs");
        assert!(
            out.status.success(),
            "{function}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut res: Value = serde_json::from_slice(&out.stdout).expect("the bootstrap's response is JSON");
        if let Some(body) = res["body"].as_str().and_then(|b| serde_json::from_str::<Value>(b).ok()) {
            res["body"] = body;
        }
        res
    })
    .await
    .unwrap()
}

fn store_env(app: &common::TestApp) -> Vec<(&'static str, String)> {
    vec![
        ("LATCHKEY_DYNAMODB_ENDPOINT", app.server.dynamodb_endpoint.clone()),
        ("LATCHKEY_TABLE", app.server.state.config.table.clone()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_bootstrap_answers_rfc8414_metadata_for_the_request_host() {
    let res = invoke("discovery", event("discovery.json"), vec![]).await;
    assert_eq!(res["statusCode"], 200, "{res}");
    let issuer = res["body"]["issuer"].as_str().unwrap();
    assert!(issuer.ends_with("/oauth/2.1"), "{issuer}");
    assert_eq!(res["body"]["token_endpoint"], format!("{issuer}/token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_bootstrap_exchanges_a_code_from_the_shared_store_and_the_token_introspects_active() {
    let app = common::TestApp::start().await;
    // First an unsupported grant type (this also builds the bootstrap, which can take longer than a
    // code lives): RFC 6749 §5.2.
    let res = invoke("token", event("token-unsupported-grant.json"), store_env(&app)).await;
    assert_eq!(res["statusCode"], 400, "{res}");
    assert_eq!(res["body"]["error"], "unsupported_grant_type", "{res}");
    let (client_id, _) = app.client("none").await;
    let (_grant, code) = app.seed_code(&client_id, "openid").await;
    let mut ev = event("token.json");
    ev["body"] = json!(url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", &code)
        .append_pair("redirect_uri", "http://127.0.0.1:7777/callback")
        .append_pair("code_verifier", common::VERIFIER)
        .append_pair("client_id", &client_id)
        .finish());
    ev["isBase64Encoded"] = json!(false);
    let res = invoke("token", ev, store_env(&app)).await;
    assert_eq!(res["statusCode"], 200, "{res}");
    assert_eq!(res["headers"]["cache-control"], "no-store");
    let token = res["body"]["access_token"].as_str().unwrap().to_string();
    assert!(token.starts_with("lk_at_"), "{token}");

    // The Lambda wrote to the same store the embedded server reads.
    let (rs_id, rs_secret) = app.resource_server(common::RESOURCE).await;
    let (status, body) = app
        .post_form(
            "/oauth/2.1/introspect",
            &[("token", &token)],
            Some((&rs_id, &rs_secret)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["client_id"], client_id.as_str());
}

fn proxy_event(api_key: &str, user: &str, provider: &str, path: &str) -> Value {
    let mut ev = event("proxy.json");
    let raw = format!("/v1/proxy/{provider}/{path}");
    ev["rawPath"] = json!(raw);
    ev["requestContext"]["http"]["path"] = json!(raw);
    ev["headers"]["x-api-key"] = json!(api_key);
    ev["headers"]["x-user-id"] = json!(user);
    ev["pathParameters"] = json!({"provider": provider, "path": path});
    ev
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_bootstrap_refuses_an_unknown_api_key_with_the_vault_error_shape() {
    let app = common::TestApp::start().await;
    let ev = proxy_event("lk_ak_prj_nope.bm90LWEta2V5", "alice", "google", "me");
    let res = invoke("proxy", ev, store_env(&app)).await;
    assert_eq!(res["statusCode"], 401, "{res}");
    assert!(res["body"]["error"]["code"].is_string(), "{res}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_bootstrap_opens_the_kms_sealed_token_and_calls_the_provider() {
    use common::fake_provider::FakeProvider;
    let Ok(kms) = std::env::var("LATCHKEY_TEST_KMS_ENDPOINT") else {
        assert!(
            std::env::var("LATCHKEY_REQUIRE_KMS").is_err(),
            "LATCHKEY_REQUIRE_KMS is set but LATCHKEY_TEST_KMS_ENDPOINT is not"
        );
        eprintln!("skipped: run scripts/test to start the local KMS server");
        return;
    };
    let conf = aws_sdk_kms::Config::builder()
        .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new("t", "t", None, None, "test"))
        .endpoint_url(&kms)
        .build();
    let key = aws_sdk_kms::Client::from_conf(conf)
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .arn
        .unwrap();
    let app = common::TestApp::start_configured(
        None,
        &[
            ("LATCHKEY_KMS_KEY_ID", key.as_str()),
            ("LATCHKEY_KMS_ENDPOINT", kms.as_str()),
        ],
    )
    .await;
    let fake = FakeProvider::start().await;
    let project = app.project("invoke").await;
    app.set_provider(&project, "google", Some("google"), fake.overrides())
        .await;
    let (_, status, page) = app.connect(&project, "alice", "google").await;
    assert_eq!(status, 200, "{page}");
    let (status, _, direct) = app.proxy("GET", "google/me", &project.api_key, "alice").await;
    assert_eq!(status, 200, "{direct}");

    let mut env = store_env(&app);
    env.push(("LATCHKEY_KMS_KEY_ID", key.clone()));
    env.push(("LATCHKEY_KMS_ENDPOINT", kms.clone()));
    env.push(("LATCHKEY_ALLOW_LOOPBACK_OUTBOUND", "true".into()));
    let res = invoke("proxy", proxy_event(&project.api_key, "alice", "google", "me"), env).await;
    assert_eq!(res["statusCode"], 200, "{res}");
    let direct: Value = serde_json::from_str(&direct).unwrap_or(Value::String(direct));
    assert_eq!(res["body"], direct, "the bootstrap relays what the provider answered");
}
