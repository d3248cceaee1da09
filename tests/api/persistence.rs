//! `latchkey serve` keeps its data in a SQLite file: a client registered before a restart is still
//! there after it, and the master key file is reused.

use crate::common;

use common::TestApp;
use serde_json::json;

#[tokio::test]
async fn registered_client_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start_with(Some(dir.path().to_path_buf())).await;
    let (status, body) = app
        .register(json!({"redirect_uris": ["http://127.0.0.1:9999/cb"]}))
        .await;
    assert_eq!(status, 201);
    let client_id = body["client_id"].as_str().unwrap().to_string();
    let secret = body["client_secret"].as_str().unwrap().to_string();
    let key_before = std::fs::read(dir.path().join("master.key")).unwrap();
    app.server.shutdown().await;

    let app = TestApp::start_with(Some(dir.path().to_path_buf())).await;
    let now = app.server.state.clock.now();
    let stored = app
        .server
        .state
        .store
        .get_client(&client_id, now)
        .await
        .unwrap()
        .expect("client survives");
    assert!(latchkey::crypto::secret::verify(
        &secret,
        stored.secret_hash.as_deref().unwrap()
    ));
    assert_eq!(std::fs::read(dir.path().join("master.key")).unwrap(), key_before);
    assert_eq!(app.server.state.store.list_clients(now).await.unwrap().len(), 1);
}

#[tokio::test]
async fn table_create_is_idempotent_and_turns_ttl_on() {
    let app = TestApp::start().await;
    let client = app.server.state.store.client();
    assert!(latchkey::store::table::create_table(client, "latchkey-other")
        .await
        .unwrap());
    assert!(!latchkey::store::table::create_table(client, "latchkey-other")
        .await
        .unwrap());
    let ttl = client
        .describe_time_to_live()
        .table_name("latchkey-other")
        .send()
        .await
        .unwrap();
    let desc = ttl.time_to_live_description.unwrap();
    assert_eq!(desc.attribute_name.as_deref(), Some("ttl"));
}

#[tokio::test]
async fn expired_items_read_as_absent() {
    use latchkey::store::{keys::Key, Item};
    let app = TestApp::start().await;
    let store = &app.server.state.store;
    let now = app.server.state.clock.now();
    let key = Key {
        pk: "TEST#1".into(),
        sk: "X".into(),
    };
    store
        .put_new(Item::with_key(&key).set_n("ttl", now + 5), now)
        .await
        .unwrap();
    assert!(store.get(&key, now).await.unwrap().is_some());
    assert!(
        store.get(&key, now + 5).await.unwrap().is_none(),
        "ttl <= now is absent"
    );
    // A second put_new on the same key fails its condition.
    let again = store.put_new(Item::with_key(&key), now).await;
    assert!(matches!(again, Err(latchkey::store::StoreError::ConditionFailed)));
    // Once expired (but not yet deleted by DynamoDB), the key is free again.
    store
        .put_new(Item::with_key(&key).set_s("v", "new"), now + 5)
        .await
        .unwrap();
    assert_eq!(store.get(&key, now + 5).await.unwrap().unwrap().s("v"), Some("new"));
}
