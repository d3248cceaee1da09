//! The KMS keyring against a local KMS-compatible server (moto, started by `scripts/test`, which sets
//! `LATCHKEY_TEST_KMS_ENDPOINT`). Round trip, tampering, wrong context, wrong key, and the data-key
//! cache that keeps KMS off the hot path.

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
