//! Issue 12 item 8, registration abuse, over real HTTP: a dynamic registration expires unless a code is
//! redeemed for it within `LATCHKEY_REGISTRATION_UNUSED_TTL` (its first use removes the expiry inside
//! the token transaction); a public client registering metadata identical to a live registration
//! gets that client back instead of a new item; confidential clients never share one. Each test
//! asserts the answers, the DynamoDB round trips and what is stored.

use crate::common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::{assert_oauth_error, TestApp, CHALLENGE, RESOURCE, VERIFIER};
use reqwest::redirect::Policy;
use serde_json::{json, Value};

/// The unused-registration window the tests configure (seconds).
const WINDOW: i64 = 600;
const CALLBACK: &str = "http://127.0.0.1:7777/callback";

async fn app() -> TestApp {
    let window = WINDOW.to_string();
    let app = TestApp::start_configured(None, &[("LATCHKEY_REGISTRATION_UNUSED_TTL", &window)]).await;
    app.resource_server(RESOURCE).await;
    app
}

/// What an MCP client that keeps nothing between runs sends every time it starts.
fn public_metadata() -> Value {
    json!({
        "redirect_uris": [CALLBACK],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "client_name": "Forgetful Tool",
        "software_id": "forgetful-tool",
        "software_version": "1.2.3"
    })
}

/// Register and return (body, DynamoDB round trips it took).
async fn register(app: &TestApp, body: Value) -> (Value, u64) {
    let before = app.calls();
    let (status, got) = app.register(body).await;
    let after = app.calls();
    assert_eq!(status, 201, "{got}");
    assert_eq!(after.1, before.1, "register makes no KMS call");
    (got, after.0 - before.0)
}

fn attr_s<'a>(item: &'a std::collections::HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn attr_n(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}

/// (client items, dedup items) in the table, raw (expired ones included).
async fn registrations(
    app: &TestApp,
) -> (
    Vec<std::collections::HashMap<String, AttributeValue>>,
    Vec<std::collections::HashMap<String, AttributeValue>>,
) {
    let items = app.all_items().await;
    let of = |prefix: &str| {
        items
            .iter()
            .filter(|i| attr_s(i, "pk").is_some_and(|pk| pk.starts_with(prefix)))
            .cloned()
            .collect::<Vec<_>>()
    };
    (of("CLIENT#"), of("DCR#"))
}

async fn redeem(app: &TestApp, client_id: &str, code: &str) -> (u16, Value) {
    app.post_form(
        "/oauth/2.1/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
            ("client_id", client_id),
        ],
        None,
    )
    .await
}

/// GET authorize for the client without following redirects: (status, Location, body).
async fn authorize(app: &TestApp, client_id: &str) -> (u16, Option<String>, String) {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("client_id", client_id),
            ("redirect_uri", CALLBACK),
            ("response_type", "code"),
            ("state", "st-1"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("resource", RESOURCE),
            ("scope", "openid email"),
        ])
        .finish();
    let http = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    let res = http
        .get(app.url(&format!("/oauth/2.1/authorize?{q}")))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let location = res.headers().get("location").map(|l| l.to_str().unwrap().to_string());
    (status, location, res.text().await.unwrap())
}

fn assert_unknown_at_authorize(got: &(u16, Option<String>, String)) {
    assert_eq!(got.0, 400, "an error page: {}", got.2);
    assert!(got.1.is_none(), "never a redirect for an unknown client");
    assert!(got.2.contains("not registered"), "{}", got.2);
}

#[tokio::test]
async fn issue12_8_an_unused_registration_past_its_window_is_refused_at_authorize_and_token() {
    let app = app().await;
    let clock = &app.server.state.clock;
    let (public, _) = register(&app, public_metadata()).await;
    let public_id = public["client_id"].as_str().unwrap().to_string();
    let issued_at = public["client_id_issued_at"].as_i64().unwrap();
    let (confidential, _) = register(&app, json!({"redirect_uris": [CALLBACK]})).await;
    let confidential_id = confidential["client_id"].as_str().unwrap().to_string();
    let confidential_secret = confidential["client_secret"].as_str().unwrap().to_string();

    // Both carry the window as their `ttl`, and so does the public one's dedup item.
    let (clients, dedups) = registrations(&app).await;
    assert_eq!(clients.len(), 2);
    for c in &clients {
        assert_eq!(attr_n(c, "ttl"), Some(issued_at + WINDOW), "{c:?}");
    }
    assert_eq!(dedups.len(), 1);
    assert_eq!(attr_n(&dedups[0], "ttl"), Some(issued_at + WINDOW));
    assert_eq!(attr_s(&dedups[0], "client_id"), Some(public_id.as_str()));

    // Ten seconds before the window ends a user approves; the code is redeemed after it ended.
    clock.advance(WINDOW - 10);
    assert_ne!(authorize(&app, &public_id).await.0, 400, "alive inside the window");
    let (_, public_code) = app.seed_code(&public_id, "openid email").await;
    let (_, confidential_code) = app.seed_code(&confidential_id, "openid email").await;
    clock.advance(10);

    // Expired but not yet deleted by DynamoDB: unknown everywhere, at once.
    assert!(app.all_items().await.len() >= 3, "the items are still in the table");
    assert_unknown_at_authorize(&authorize(&app, &public_id).await);
    assert_unknown_at_authorize(&authorize(&app, &confidential_id).await);
    let got = redeem(&app, &public_id, &public_code).await;
    assert_oauth_error(&got, 401, "invalid_client");
    let got = app
        .post_form(
            "/oauth/2.1/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &confidential_code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", VERIFIER),
            ],
            Some((&confidential_id, &confidential_secret)),
        )
        .await;
    assert_oauth_error(&got, 401, "invalid_client");
    let now = clock.now();
    assert!(app
        .server
        .state
        .store
        .get_client(&public_id, now)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn issue12_8_the_first_code_redemption_ends_the_expiry_inside_the_token_transaction() {
    let app = app().await;
    let clock = &app.server.state.clock;
    let (public, _) = register(&app, public_metadata()).await;
    let client_id = public["client_id"].as_str().unwrap().to_string();

    // The first redemption: still two round trips (one BatchGetItem, one TransactWriteItems that also
    // removes the client's and its dedup item's `ttl`).
    let (_, code) = app.seed_code(&client_id, "openid email offline_access").await;
    let before = app.calls();
    let (status, tokens) = redeem(&app, &client_id, &code).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(app.calls().0 - before.0, 2, "token keeps its budget of two round trips");
    assert_eq!(app.calls().1, before.1, "and no KMS call");
    let (clients, dedups) = registrations(&app).await;
    assert_eq!(attr_n(&clients[0], "ttl"), None, "the client no longer expires");
    assert_eq!(attr_n(&dedups[0], "ttl"), None, "nor its dedup item");

    // A confidential registration's first use too (it has no dedup item).
    let (confidential, _) = register(&app, json!({"redirect_uris": [CALLBACK]})).await;
    let confidential_id = confidential["client_id"].as_str().unwrap().to_string();
    let (_, code) = app.seed_code(&confidential_id, "openid").await;
    let before = app.calls();
    let (status, body) = app
        .post_form(
            "/oauth/2.1/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", VERIFIER),
            ],
            Some((&confidential_id, confidential["client_secret"].as_str().unwrap())),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.calls().0 - before.0, 2);

    // Long past the window both are still known: authorize, a second redemption, a refresh.
    clock.advance(WINDOW * 10);
    let now = clock.now();
    let stored = app.server.state.store.get_client(&confidential_id, now).await.unwrap();
    assert_eq!(stored.map(|c| c.unused_until), Some(None), "used: no expiry");
    let (status, location, body) = authorize(&app, &client_id).await;
    assert!(status == 302 || status == 303, "{status} {body}");
    assert!(location.is_some());
    let (_, code) = app.seed_code(&client_id, "openid email offline_access").await;
    let before = app.calls();
    let (status, second) = redeem(&app, &client_id, &code).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(app.calls().0 - before.0, 2);
    let (status, refreshed) = app
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
    assert_eq!(status, 200, "{refreshed}");
    let (clients, _) = registrations(&app).await;
    assert_eq!(clients.len(), 2);
    assert!(
        clients.iter().all(|c| attr_n(c, "ttl").is_none()),
        "later uses add nothing back"
    );
}

#[tokio::test]
async fn issue12_8_identical_public_registrations_get_the_same_client_and_store_one_item() {
    let app = app().await;
    let clock = &app.server.state.clock;
    let (first, calls) = register(&app, public_metadata()).await;
    assert_eq!(
        calls, 1,
        "a new registration is one round trip (the client and its dedup item)"
    );
    let client_id = first["client_id"].as_str().unwrap().to_string();
    let issued_at = first["client_id_issued_at"].as_i64().unwrap();

    // The same client starting again a minute later, keys in another order: the same registration,
    // the same response shape, the original issue time; its window starts again (two round trips).
    clock.advance(60);
    let reordered: Value = {
        let mut m: Vec<(String, Value)> = public_metadata().as_object().unwrap().clone().into_iter().collect();
        m.reverse();
        Value::Object(m.into_iter().collect())
    };
    let (again, calls) = register(&app, reordered).await;
    assert_eq!(
        calls, 2,
        "a hit on an unused registration: the refused write, then the extension"
    );
    assert_eq!(
        again, first,
        "the same RFC 7591 response, client_id_issued_at of the original"
    );
    assert!(again.get("client_secret").is_none());
    let (clients, dedups) = registrations(&app).await;
    assert_eq!(clients.len(), 1, "one client item");
    assert_eq!(dedups.len(), 1, "one dedup item");
    let extended = clock.now() + WINDOW;
    assert_eq!(
        attr_n(&clients[0], "ttl"),
        Some(extended),
        "the client's window extended"
    );
    assert_eq!(attr_n(&dedups[0], "ttl"), Some(extended), "and its dedup item's");
    assert!(extended > issued_at + WINDOW);

    // Past the original window, inside the extended one: still alive.
    clock.advance(WINDOW - 30);
    assert_ne!(authorize(&app, &client_id).await.0, 400);

    // Used, it is returned as it is in one round trip, and gains no expiry back.
    let (_, code) = app.seed_code(&client_id, "openid email").await;
    assert_eq!(redeem(&app, &client_id, &code).await.0, 200);
    let (used, calls) = register(&app, public_metadata()).await;
    assert_eq!(calls, 1, "a hit on a used registration: the refused write only");
    assert_eq!(used["client_id"], client_id);
    assert_eq!(used["client_id_issued_at"], issued_at);
    let (clients, dedups) = registrations(&app).await;
    assert_eq!((clients.len(), dedups.len()), (1, 1));
    assert_eq!(attr_n(&clients[0], "ttl"), None);
    assert_eq!(attr_n(&dedups[0], "ttl"), None);
}

#[tokio::test]
async fn issue12_8_different_metadata_and_confidential_clients_get_new_registrations() {
    let app = app().await;
    let (base, _) = register(&app, public_metadata()).await;
    let mut ids = vec![base["client_id"].as_str().unwrap().to_string()];
    let variants = [
        ("software_version", json!("1.2.4")),
        ("software_id", json!("another-tool")),
        ("client_name", json!("Forgetful Tool 2")),
        ("redirect_uris", json!(["http://127.0.0.1:7777/other"])),
        ("scope", json!("openid")),
    ];
    for (name, value) in variants {
        let mut body = public_metadata();
        body[name] = value;
        let (got, calls) = register(&app, body).await;
        assert_eq!(calls, 1, "{name}: a new registration, one round trip");
        let id = got["client_id"].as_str().unwrap().to_string();
        assert!(!ids.contains(&id), "{name}: a new client_id");
        ids.push(id);
    }

    // Confidential clients are never deduplicated: each has its own secret.
    let confidential = json!({"redirect_uris": [CALLBACK], "client_name": "Server App", "software_id": "server-app"});
    let (a, calls_a) = register(&app, confidential.clone()).await;
    let (b, calls_b) = register(&app, confidential).await;
    assert_eq!((calls_a, calls_b), (1, 1));
    assert_ne!(a["client_id"], b["client_id"]);
    assert_ne!(a["client_secret"], b["client_secret"]);

    let (clients, dedups) = registrations(&app).await;
    assert_eq!(clients.len(), 8);
    assert_eq!(
        dedups.len(),
        6,
        "a dedup item per distinct public registration, none for confidential ones"
    );
    assert!(clients
        .iter()
        .filter(|c| attr_s(c, "secret_hash").is_some())
        .all(|c| attr_s(c, "dedup").is_none()));
}

#[tokio::test]
async fn issue12_8_an_expired_or_deleted_registration_is_replaced_never_revived() {
    let app = app().await;
    let clock = &app.server.state.clock;
    let (first, _) = register(&app, public_metadata()).await;
    let first_id = first["client_id"].as_str().unwrap().to_string();

    // Past its window, an identical registration is a new client (one round trip), the old one stays
    // unknown.
    clock.advance(WINDOW + 1);
    let (second, calls) = register(&app, public_metadata()).await;
    assert_eq!(calls, 1);
    let second_id = second["client_id"].as_str().unwrap().to_string();
    assert_ne!(second_id, first_id);
    assert_eq!(second["client_id_issued_at"], clock.now());
    assert_unknown_at_authorize(&authorize(&app, &first_id).await);
    let (_, dedups) = registrations(&app).await;
    assert_eq!(dedups.len(), 1);
    assert_eq!(attr_s(&dedups[0], "client_id"), Some(second_id.as_str()));

    // Deleted by the operator (`latchkey client delete`): its dedup item goes with it.
    let state = &app.server.state;
    let deleted = latchkey::authz::client::delete(&state.store, &second_id, clock.now())
        .await
        .unwrap();
    assert_eq!(deleted, Some(0));
    assert!(
        registrations(&app).await.1.is_empty(),
        "the dedup item is deleted with its client"
    );
    let (third, _) = register(&app, public_metadata()).await;
    assert_ne!(third["client_id"], second_id.as_str());
}

#[tokio::test]
async fn issue12_8_with_the_window_off_registrations_never_expire_and_still_deduplicate() {
    let app = TestApp::start_configured(None, &[("LATCHKEY_REGISTRATION_UNUSED_TTL", "0")]).await;
    let (first, _) = register(&app, public_metadata()).await;
    let (confidential, _) = register(&app, json!({"redirect_uris": [CALLBACK]})).await;
    let (clients, dedups) = registrations(&app).await;
    assert_eq!(clients.len(), 2);
    assert!(clients.iter().chain(&dedups).all(|i| attr_n(i, "ttl").is_none()));
    app.server.state.clock.advance(365 * 86_400);
    let (again, calls) = register(&app, public_metadata()).await;
    assert_eq!(calls, 1);
    assert_eq!(again, first);
    let now = app.server.state.clock.now();
    let store = &app.server.state.store;
    let id = confidential["client_id"].as_str().unwrap();
    assert!(store.get_client(id, now).await.unwrap().is_some());
}

#[tokio::test]
async fn issue12_8_twenty_concurrent_identical_public_registrations_make_one_client() {
    let app = app().await;
    let answers = join_all((0..20).map(|_| app.register(public_metadata()))).await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 201, "{body}");
            body["client_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one client_id for all: {ids:?}");
    let (clients, dedups) = registrations(&app).await;
    assert_eq!((clients.len(), dedups.len()), (1, 1));
}

/// Run the futures concurrently on this task and collect their outputs in order.
async fn join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(Option::unwrap).collect()
}
