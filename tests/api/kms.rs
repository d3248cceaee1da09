//! The KMS keyring against a local KMS-compatible server (moto, started by `scripts/test`, which sets
//! `LATCHKEY_TEST_KMS_ENDPOINT`). Round trip, tampering, wrong context, wrong key, and the data-key
//! cache that keeps KMS off the hot path.

use crate::common;

use aws_credential_types::Credentials;
use aws_sdk_kms::config::{BehaviorVersion, Region};
use latchkey::crypto::envelope::context;
use latchkey::crypto::{CryptoError, KeyWrapper, Keyring, KmsWrapper};
use latchkey::metrics::Metrics;

/// The endpoint, or `None` when KMS tests are not required here (plain `cargo test`).
fn endpoint() -> Option<String> {
    match std::env::var("LATCHKEY_TEST_KMS_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ => {
            assert!(
                std::env::var("LATCHKEY_REQUIRE_KMS").is_err(),
                "LATCHKEY_REQUIRE_KMS is set but LATCHKEY_TEST_KMS_ENDPOINT is not"
            );
            eprintln!("KMS tests skipped: run scripts/test to start the local KMS server");
            None
        }
    }
}

fn client(endpoint: &str, metrics: &Metrics) -> aws_sdk_kms::Client {
    let conf = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(endpoint)
        .interceptor(metrics.kms.interceptor("count-kms"))
        .build();
    aws_sdk_kms::Client::from_conf(conf)
}

async fn new_key(client: &aws_sdk_kms::Client) -> String {
    let out = client
        .create_key()
        .description("latchkey test")
        .send()
        .await
        .expect("CreateKey on the local KMS");
    out.key_metadata.unwrap().arn.unwrap()
}

fn ctx(user: &str) -> latchkey::crypto::EncryptionContext {
    context([
        ("kind", "connection"),
        ("project", "p1"),
        ("user", user),
        ("provider", "google"),
    ])
}

#[tokio::test]
async fn kms_keyring_round_trip_and_cache_keeps_kms_off_the_hot_path() {
    let Some(ep) = endpoint() else { return };
    let metrics = Metrics::default();
    let kms = client(&ep, &metrics);
    let key = new_key(&kms).await;
    let ring = Keyring::new(KeyWrapper::Kms(KmsWrapper::new(kms.clone(), key.clone())));

    let start = metrics.kms.get();
    let rec = ring.encrypt(&ctx("alice"), b"ya29.secret-token").await.unwrap();
    assert_eq!(metrics.kms.get() - start, 1, "one GenerateDataKey");
    assert!(!rec.windows(17).any(|w| w == b"ya29.secret-token"));
    assert_eq!(ring.decrypt(&ctx("alice"), &rec).await.unwrap(), b"ya29.secret-token");
    let rec2 = ring.encrypt(&ctx("alice"), b"second").await.unwrap();
    assert_eq!(ring.decrypt(&ctx("alice"), &rec2).await.unwrap(), b"second");
    assert_eq!(metrics.kms.get() - start, 1, "cached data key: no further KMS calls");

    // A new container (cold cache) unwraps once through KMS Decrypt, then serves from cache.
    let cold = Keyring::new(KeyWrapper::Kms(KmsWrapper::new(kms.clone(), key.clone())));
    let before = metrics.kms.get();
    assert_eq!(cold.decrypt(&ctx("alice"), &rec).await.unwrap(), b"ya29.secret-token");
    assert_eq!(cold.decrypt(&ctx("alice"), &rec).await.unwrap(), b"ya29.secret-token");
    assert_eq!(metrics.kms.get() - before, 1, "one Decrypt, then cached");
}

#[tokio::test]
async fn kms_wrong_context_tampering_and_wrong_key_fail() {
    let Some(ep) = endpoint() else { return };
    let metrics = Metrics::default();
    let kms = client(&ep, &metrics);
    let key = new_key(&kms).await;
    let other_key = new_key(&kms).await;
    let ring = || Keyring::new(KeyWrapper::Kms(KmsWrapper::new(kms.clone(), key.clone())));
    let rec = ring().encrypt(&ctx("alice"), b"secret").await.unwrap();

    // Wrong context with a cold cache: KMS itself refuses to unwrap the data key.
    let err = ring().decrypt(&ctx("bob"), &rec).await.unwrap_err();
    assert!(
        matches!(err, CryptoError::Authentication | CryptoError::KeyService(_)),
        "{err:?}"
    );

    // Tampered ciphertext.
    let mut bad = rec.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    assert!(matches!(
        ring().decrypt(&ctx("alice"), &bad).await,
        Err(CryptoError::Authentication)
    ));

    // Tampered wrapped key.
    let mut bad = rec.clone();
    bad[10] ^= 0x01;
    assert!(ring().decrypt(&ctx("alice"), &bad).await.is_err());

    // Another KMS key cannot open it.
    let wrong = Keyring::new(KeyWrapper::Kms(KmsWrapper::new(kms.clone(), other_key)));
    assert!(wrong.decrypt(&ctx("alice"), &rec).await.is_err());

    // A local-keyring record is refused by the KMS keyring, and vice versa.
    let local = Keyring::new(KeyWrapper::Local(latchkey::crypto::LocalWrapper::from_key([1; 32])));
    let local_rec = local.encrypt(&ctx("alice"), b"x").await.unwrap();
    assert!(matches!(
        ring().decrypt(&ctx("alice"), &local_rec).await,
        Err(CryptoError::WrongKeyring)
    ));
    assert!(matches!(
        local.decrypt(&ctx("alice"), &rec).await,
        Err(CryptoError::WrongKeyring)
    ));
}

/// The vault with a KMS keyring end to end: the warm proxy makes no KMS call, and swapped
/// ciphertexts are refused by KMS itself (the encryption context names the user).
#[tokio::test]
async fn vault_proxy_with_kms_keeps_kms_off_the_hot_path_and_binds_records_to_users() {
    use common::fake_provider::FakeProvider;
    let Some(ep) = endpoint() else { return };
    let metrics = Metrics::default();
    let key = new_key(&client(&ep, &metrics)).await;
    let app = common::TestApp::start_configured(
        None,
        &[
            ("LATCHKEY_KMS_KEY_ID", key.as_str()),
            ("LATCHKEY_KMS_ENDPOINT", ep.as_str()),
        ],
    )
    .await;
    let fake = FakeProvider::start().await;
    let project = app.project("kms").await;
    app.set_provider(&project, "google", Some("google"), fake.overrides())
        .await;
    for (user, fake_user) in [("alice", "fake-user-1"), ("bob", "fake-user-2")] {
        fake.state.lock().unwrap().next_user = fake_user.into();
        let (_, status, page) = app.connect(&project, user, "google").await;
        assert_eq!(status, 200, "{page}");
    }
    assert!(app.calls().1 >= 3, "sealed through KMS (GenerateDataKey)");
    let (status, _, _) = app.proxy("GET", "google/me", &project.api_key, "alice").await;
    assert_eq!(status, 200);
    let before = app.calls();
    let (status, _, body) = app.proxy("GET", "google/me", &project.api_key, "alice").await;
    assert_eq!(status, 200, "{body}");
    let after = app.calls();
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (1, 0),
        "warm proxy: 1 round trip, 0 KMS"
    );

    // Swap the users' sealed tokens and open them in a cold process: KMS refuses both.
    let store = &app.server.state.store;
    let ka = latchkey::store::connections::connection_key(&project.project_id, "alice", "google");
    let kb = latchkey::store::connections::connection_key(&project.project_id, "bob", "google");
    let a = store.get(&ka, 0).await.unwrap().unwrap();
    let b = store.get(&kb, 0).await.unwrap().unwrap();
    let cold = Keyring::new(KeyWrapper::Kms(KmsWrapper::new(client(&ep, &metrics), key.clone())));
    let ctx_of = |u: &str| latchkey::domain::context::connection_context(&project.project_id, u, "google");
    assert!(cold.decrypt(&ctx_of("alice"), b.b("tokens").unwrap()).await.is_err());
    assert!(cold.decrypt(&ctx_of("bob"), a.b("tokens").unwrap()).await.is_err());
    assert!(cold.decrypt(&ctx_of("alice"), a.b("tokens").unwrap()).await.is_ok());
}

/// Tool forwarding with a KMS keyring: the warm call opens the tool's tokens from the cached data
/// key (no KMS call).
#[tokio::test]
async fn tool_forwarding_with_kms_keeps_kms_off_the_hot_path() {
    use common::mcp_server::McpServer;
    let Some(ep) = endpoint() else { return };
    let metrics = Metrics::default();
    let key = new_key(&client(&ep, &metrics)).await;
    let app = common::TestApp::start_configured(
        None,
        &[
            ("LATCHKEY_KMS_KEY_ID", key.as_str()),
            ("LATCHKEY_KMS_ENDPOINT", ep.as_str()),
        ],
    )
    .await;
    let (listener, url) = McpServer::bind().await;
    let (rs_id, rs_secret) = app.resource_server(&url).await;
    let _mcp = McpServer::serve(listener, &app.url("/oauth/2.1"), &rs_id, &rs_secret).await;
    let project = app.project("kms-tools").await;
    let tool_id = app.connect_tool(&project, &url).await;
    let call = || async {
        app.http
            .post(app.url(&format!("/tools/{tool_id}/mcp")))
            .header("x-api-key", &project.api_key)
            .header("accept", "application/json, text/event-stream")
            .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(call().await, 200);
    let before = app.calls();
    assert_eq!(call().await, 200);
    let after = app.calls();
    // latchkey's one batch read, plus the MCP server's introspection at latchkey; no KMS.
    assert_eq!((after.0 - before.0, after.1 - before.1), (2, 0));
}
