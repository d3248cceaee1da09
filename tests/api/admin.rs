//! Admin: resource servers (the MCP servers that call introspection) in the store, as the
//! `latchkey resource-server create|update|list|delete` commands use them, and the declared-scope
//! registry (`SCOPES` / `DECLARED`) written in the same transactions.

use crate::common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::{TestApp, RESOURCE};
use latchkey::domain::resource::{Resource, RS_ID_PREFIX, RS_SECRET_PREFIX};
use latchkey::store::StoreError;

fn scopes(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

/// The `pk` of every raw item in the table, sorted.
async fn pks(app: &TestApp) -> Vec<String> {
    let mut out: Vec<String> = app
        .all_items()
        .await
        .iter()
        .filter_map(|i| match i.get("pk") {
            Some(AttributeValue::S(s)) => Some(s.clone()),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn create_then_read_back_by_id_and_by_resource() {
    let app = TestApp::start().await;
    let store = &app.server.state.store;
    let now = app.server.state.clock.now();
    let resource = Resource::parse(RESOURCE).unwrap();
    let (rs, secret) = store
        .create_resource_server(&resource, &scopes(&["read", "write"]), now)
        .await
        .unwrap();
    assert!(rs.rs_id.starts_with(RS_ID_PREFIX), "{}", rs.rs_id);
    assert!(secret.starts_with(RS_SECRET_PREFIX), "{secret}");
    assert_eq!(rs.resource, RESOURCE);
    assert_eq!(rs.scopes, scopes(&["read", "write"]));
    assert_eq!(rs.created_at, now);
    assert!(rs.verify_secret(&secret));

    let by_id = store.get_resource_server(&rs.rs_id, now).await.unwrap();
    assert_eq!(by_id.as_ref(), Some(&rs));
    assert!(by_id.unwrap().verify_secret(&secret));

    let (before, _) = app.calls();
    let by_resource = store.resource_server_for(RESOURCE, now).await.unwrap();
    let (after, _) = app.calls();
    assert_eq!(by_resource.as_ref(), Some(&rs));
    assert_eq!(after - before, 1, "the resource lookup is one GetItem");

    assert_eq!(
        store
            .resource_server_for("https://MCP.example.com:443/mcp", now)
            .await
            .unwrap()
            .as_ref(),
        Some(&rs),
        "a presented resource is normalised before the lookup"
    );
    assert_eq!(
        store
            .resource_server_for("https://mcp.example.com/other", now)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.resource_server_for("not a url", now).await.unwrap(), None);
    assert_eq!(store.get_resource_server("lkrs_unknown", now).await.unwrap(), None);
    assert_eq!(store.get_resource_server("", now).await.unwrap(), None);
}

#[tokio::test]
async fn root_resource_stored_without_trailing_slash() {
    let app = TestApp::start().await;
    let store = &app.server.state.store;
    let now = app.server.state.clock.now();
    let (rs, _) = store
        .create_resource_server(&Resource::parse("https://mcp.example.com/").unwrap(), &[], now)
        .await
        .unwrap();
    assert_eq!(rs.resource, "https://mcp.example.com");
    assert!(rs.scopes.is_empty());
    for presented in ["https://mcp.example.com", "https://mcp.example.com/"] {
        assert_eq!(
            store
                .resource_server_for(presented, now)
                .await
                .unwrap()
                .map(|r| r.rs_id),
            Some(rs.rs_id.clone()),
            "{presented}"
        );
    }
}

#[tokio::test]
async fn duplicate_resource_refused_and_nothing_extra_stored() {
    let app = TestApp::start().await;
    let store = &app.server.state.store;
    let now = app.server.state.clock.now();
    let resource = Resource::parse(RESOURCE).unwrap();
    let (first, _) = store.create_resource_server(&resource, &[], now).await.unwrap();
    let stored = pks(&app).await;
    assert_eq!(
        stored,
        vec![
            format!("RESOURCE#{RESOURCE}"),
            format!("RS#{}", first.rs_id),
            "SCOPES".to_string()
        ]
    );

    let again = store.create_resource_server(&resource, &scopes(&["x"]), now).await;
    assert!(matches!(again, Err(StoreError::ConditionFailed)), "{again:?}");
    // The same resource, spelt with a root slash dropped, is the same resource.
    let root = Resource::parse("https://mcp.example.com").unwrap();
    store.create_resource_server(&root, &[], now).await.unwrap();
    let dup_root = store
        .create_resource_server(&Resource::parse("https://mcp.example.com/").unwrap(), &[], now)
        .await;
    assert!(matches!(dup_root, Err(StoreError::ConditionFailed)), "{dup_root:?}");

    assert_eq!(
        pks(&app).await.len(),
        stored.len() + 2,
        "only the second resource's two items were added"
    );
    assert_eq!(
        store.resource_server_for(RESOURCE, now).await.unwrap().map(|r| r.rs_id),
        Some(first.rs_id),
        "the lookup still names the first resource server"
    );
    assert_eq!(store.list_resource_servers(now).await.unwrap().len(), 2);
}

#[test]
fn invalid_resource_urls_refused() {
    for (raw, why) in [
        ("http://mcp.example.com/mcp", "loopback"),
        ("https://mcp.example.com/mcp#section", "fragment"),
        ("https://mcp.example.com/mcp#", "fragment"),
        ("not a url", "absolute URL"),
        ("/mcp", "absolute URL"),
        ("javascript:alert(1)", "scheme"),
        ("data:text/plain,hi", "scheme"),
        ("https://user:pw@mcp.example.com/mcp", "user info"),
        ("", "empty"),
        ("HTTPS://MCP.EXAMPLE.COM/mcp", "write it as https://mcp.example.com/mcp"),
    ] {
        let err = Resource::parse(raw).expect_err(raw);
        let msg = err.to_string();
        assert!(msg.contains(why), "{raw}: {msg}");
        assert!(raw.parse::<Resource>().is_err(), "{raw}");
    }
    for raw in [
        "http://127.0.0.1:3000/mcp",
        "http://localhost:3000/mcp",
        "http://[::1]/mcp",
        RESOURCE,
    ] {
        assert_eq!(Resource::parse(raw).unwrap().as_str(), raw);
    }
}

#[tokio::test]
async fn only_the_secrets_hash_is_stored() {
    let app = TestApp::start().await;
    let store = &app.server.state.store;
    let now = app.server.state.clock.now();
    let (rs, secret) = store
        .create_resource_server(&Resource::parse(RESOURCE).unwrap(), &[], now)
        .await
        .unwrap();
    let items: Vec<_> = app
        .all_items()
        .await
        .into_iter()
        .filter(|i| i["pk"].as_s().unwrap() != "SCOPES")
        .collect();
    assert_eq!(items.len(), 2);
    let dump = format!("{items:?}");
    assert!(!dump.contains(&secret), "the secret is not stored");
    assert!(!dump.contains(&secret[RS_SECRET_PREFIX.len()..]), "nor its random part");
    assert!(
        dump.contains(&latchkey::crypto::secret::hash(&secret)),
        "its SHA-256 is"
    );
    for item in &items {
        assert_eq!(
            item.get("secret_hash"),
            Some(&AttributeValue::S(rs.secret_hash.clone()))
        );
        assert!(item.get("ttl").is_none(), "resource servers do not expire");
    }
}

#[tokio::test]
async fn delete_removes_both_items() {
    let app = TestApp::start().await;
    let store = &app.server.state.store;
    let now = app.server.state.clock.now();
    let (keep, _) = store
        .create_resource_server(&Resource::parse("https://other.example.com/mcp").unwrap(), &[], now)
        .await
        .unwrap();
    let (rs, _) = store
        .create_resource_server(&Resource::parse(RESOURCE).unwrap(), &[], now)
        .await
        .unwrap();
    assert_eq!(pks(&app).await.len(), 5, "two items each and the registry");

    assert!(store.delete_resource_server(&rs.rs_id, now).await.unwrap());
    assert_eq!(
        pks(&app).await,
        vec![
            "RESOURCE#https://other.example.com/mcp".to_string(),
            format!("RS#{}", keep.rs_id),
            "SCOPES".to_string()
        ]
    );
    let registry = registry(&app).await;
    assert!(registry.contains_key(&keep.rs_id) && !registry.contains_key(&rs.rs_id));
    assert_eq!(store.get_resource_server(&rs.rs_id, now).await.unwrap(), None);
    assert_eq!(store.resource_server_for(RESOURCE, now).await.unwrap(), None);
    assert!(
        !store.delete_resource_server(&rs.rs_id, now).await.unwrap(),
        "a second delete finds nothing"
    );
    assert!(!store.delete_resource_server("lkrs_unknown", now).await.unwrap());

    // The resource can be registered again, with new credentials.
    let (again, _) = store
        .create_resource_server(&Resource::parse(RESOURCE).unwrap(), &[], now)
        .await
        .unwrap();
    assert_ne!(again.rs_id, rs.rs_id);
}

/// The declared-scope registry item's attributes, raw.
async fn registry(app: &TestApp) -> std::collections::HashMap<String, AttributeValue> {
    app.all_items()
        .await
        .into_iter()
        .find(|i| i["pk"].as_s().unwrap() == "SCOPES")
        .expect("the registry item exists")
}

#[tokio::test]
async fn update_replaces_declared_scopes_in_place_on_both_items_and_the_registry() {
    let app = TestApp::start().await;
    let store = &app.server.state.store;
    let now = app.server.state.clock.now();
    let (rs, secret) = store
        .create_resource_server(&Resource::parse(RESOURCE).unwrap(), &scopes(&["mcp:tools"]), now)
        .await
        .unwrap();
    assert_eq!(
        store.declared_scopes(now).await.unwrap().as_slice(),
        ["mcp:tools".to_string()]
    );
    let updated = store
        .update_resource_server_scopes(&rs.rs_id, &scopes(&["mcp:tools", "mcp:admin"]), now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.rs_id, rs.rs_id);
    assert_eq!(updated.secret_hash, rs.secret_hash, "same credentials");
    assert!(updated.verify_secret(&secret));
    for read in [
        store.get_resource_server(&rs.rs_id, now).await.unwrap().unwrap(),
        store.resource_server_for(RESOURCE, now).await.unwrap().unwrap(),
    ] {
        assert_eq!(read.scopes, scopes(&["mcp:tools", "mcp:admin"]));
        assert_eq!(read.created_at, rs.created_at);
    }
    assert_eq!(
        registry(&app).await[&rs.rs_id],
        AttributeValue::L(vec![
            AttributeValue::S("mcp:tools".into()),
            AttributeValue::S("mcp:admin".into())
        ])
    );
    assert_eq!(
        store.declared_scopes(now).await.unwrap().as_slice(),
        scopes(&["mcp:tools", "mcp:admin"]),
        "this process sees its own change at once"
    );

    // An unknown id changes nothing.
    let before = app.all_items().await;
    for id in ["lkrs_unknown", "not-an-id", ""] {
        assert_eq!(
            store
                .update_resource_server_scopes(id, &scopes(&["x"]), now)
                .await
                .unwrap(),
            None,
            "{id}"
        );
    }
    assert_eq!(app.all_items().await, before, "nothing changed");
}

#[tokio::test]
async fn list_returns_every_resource_server() {
    let app = TestApp::start().await;
    let store = &app.server.state.store;
    let now = app.server.state.clock.now();
    assert!(store.list_resource_servers(now).await.unwrap().is_empty());
    let (a, _) = store
        .create_resource_server(&Resource::parse(RESOURCE).unwrap(), &scopes(&["read"]), now)
        .await
        .unwrap();
    let (b, _) = store
        .create_resource_server(&Resource::parse("http://127.0.0.1:3000/mcp").unwrap(), &[], now + 1)
        .await
        .unwrap();
    // A registered client is not listed as a resource server.
    app.client("none").await;
    assert_eq!(store.list_resource_servers(now + 1).await.unwrap(), vec![a, b]);
}
