//! Issue 14: connection health you can act on. Webhooks over real HTTP: a loopback receiver that
//! verifies each delivery's Standard Webhooks signature (here, and with the Python client's
//! independent `verify_webhook`), fails when told to, or holds a delivery open; the fake provider
//! that forgets its refresh tokens to make a refresh fail for real; latchkey as the authorization
//! server of a loopback MCP server for the tool events; moto (SQS, EventBridge) for the AWS path.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::mcp_server::McpServer;
use common::{connected, connections, setup_with, Project, TestApp};
use serde_json::{json, Value};

/// One delivery as the receiver saw it.
#[derive(Clone, Debug)]
struct Delivery {
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Delivery {
    fn event(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn kind(&self) -> String {
        self.event()["type"].as_str().unwrap().to_string()
    }
}

#[derive(Default)]
struct ReceiverState {
    deliveries: Vec<Delivery>,
    /// Answer 500 to this many deliveries first.
    fail_first: usize,
    /// Answer 500 to every delivery.
    always_fail: bool,
    /// Hold each delivery until this is released.
    hold: Option<Arc<tokio::sync::Notify>>,
    /// Set when a held delivery has arrived.
    arrived: Option<Arc<tokio::sync::Notify>>,
}

#[derive(Clone)]
struct Receiver {
    url: String,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        async fn receive(State(st): State<Arc<Mutex<ReceiverState>>>, headers: HeaderMap, body: Bytes) -> StatusCode {
            let (fail, hold, arrived) = {
                let mut s = st.lock().unwrap();
                s.deliveries.push(Delivery {
                    headers: headers
                        .iter()
                        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                        .collect(),
                    body: body.to_vec(),
                });
                let fail = s.always_fail || s.deliveries.len() <= s.fail_first;
                (fail, s.hold.clone(), s.arrived.clone())
            };
            if let Some(a) = arrived {
                a.notify_one();
            }
            if let Some(h) = hold {
                h.notified().await;
            }
            if fail {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::NO_CONTENT
            }
        }
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { url, state }
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.state.lock().unwrap().deliveries.clone()
    }

    fn of(&self, kind: &str) -> Vec<Delivery> {
        self.deliveries().into_iter().filter(|d| d.kind() == kind).collect()
    }

    /// Wait (bounded) until `n` deliveries of `kind` arrived; returns them.
    async fn wait_for(&self, kind: &str, n: usize) -> Vec<Delivery> {
        for _ in 0..300 {
            let got = self.of(kind);
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{n} deliveries of {kind} did not arrive; got {:?}",
            self.deliveries().iter().map(Delivery::kind).collect::<Vec<_>>()
        );
    }
}

/// Verify a delivery as a receiver must: the HMAC over `id.timestamp.body` with the secret's key.
fn verify(secret: &str, d: &Delivery) -> bool {
    let key = latchkey::domain::webhook::secret_key(secret).unwrap();
    let expected = latchkey::domain::webhook::signature(
        &key,
        &d.headers["webhook-id"],
        d.headers["webhook-timestamp"].parse().unwrap(),
        &d.body,
    );
    d.headers["webhook-signature"].split(' ').any(|s| s == expected)
}

/// The Python client's `verify_webhook` (an independent implementation, standard library HMAC) on
/// each `(headers, body)`: `true` where it accepted.
fn python_verifies(secret: &str, cases: &[(HashMap<String, String>, Vec<u8>)]) -> Vec<bool> {
    let python = std::env::var("LATCHKEY_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let client = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../clients/python");
    let input: Vec<Value> = cases
        .iter()
        .map(|(h, b)| json!({"headers": h, "body": String::from_utf8_lossy(b)}))
        .collect();
    let script = r#"
import json, sys
from latchkey_client import WebhookVerificationError, verify_webhook
secret, cases = sys.argv[1], json.loads(sys.stdin.read())
out = []
for c in cases:
    try:
        verify_webhook(secret, c["headers"], c["body"].encode())
        out.append(True)
    except WebhookVerificationError:
        out.append(False)
print(json.dumps(out))
"#;
    let mut child = std::process::Command::new(python)
        .args(["-c", script, secret])
        .env("PYTHONPATH", &client)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&input).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Fast retries for the tests (the default waits 60 s first).
const FAST: &[(&str, &str)] = &[("LATCHKEY_WEBHOOK_RETRY_SCHEDULE", "1,1")];

async fn create_hook(app: &TestApp, project: &Project, url: &str, events: Option<&[&str]>) -> (String, String) {
    let mut body = json!({"url": url});
    if let Some(e) = events {
        body["events"] = json!(e);
    }
    let (status, v) = app
        .vault("POST", "/v1/webhooks", Some(&project.api_key), Some(body))
        .await;
    assert_eq!(status, 201, "{v}");
    (
        v["webhook_id"].as_str().unwrap().to_string(),
        v["secret"].as_str().unwrap().to_string(),
    )
}

/// The webhook's `failures` once it shows any (bounded wait: dead-lettering happens after the
/// request that caused the event).
async fn dead_letters(app: &TestApp, project: &Project, id: &str) -> Value {
    let mut failures = Value::Null;
    for _ in 0..100 {
        let (_, one) = app
            .vault("GET", &format!("/v1/webhooks/{id}"), Some(&project.api_key), None)
            .await;
        failures = one["failures"].clone();
        if failures.as_array().is_some_and(|f| !f.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    failures
}

async fn hook_items(app: &TestApp) -> Vec<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    common::items_of(app, "webhook").await
}

#[tokio::test]
async fn issue14_api_creates_lists_shows_and_deletes_with_the_secret_shown_once_and_sealed() {
    let (app, _fake, project) = setup_with(&[]).await;
    let before = app.calls();
    let (status, v) = app
        .vault(
            "POST",
            "/v1/webhooks",
            Some(&project.api_key),
            Some(json!({"url": "http://127.0.0.1:9/hook", "events": ["connection.refresh_failed", "connection.created"]})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let after = app.calls();
    assert_eq!(after.0 - before.0, 2, "the key, then one transaction (count + item)");
    let secret = v["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(latchkey::domain::webhook::secret_key(secret).unwrap().len(), 32);
    assert_eq!(v["events"], json!(["connection.created", "connection.refresh_failed"]));
    let id = v["webhook_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("lkwh_"));
    // Stored sealed: the secret's bytes are nowhere in the table.
    let items = app.all_items().await;
    let dump = format!("{items:?}");
    assert!(
        !dump.contains(secret.trim_start_matches("whsec_")),
        "the secret is sealed"
    );
    assert_eq!(hook_items(&app).await.len(), 1);

    let (status, list) = app.vault("GET", "/v1/webhooks", Some(&project.api_key), None).await;
    assert_eq!(status, 200);
    assert_eq!(list["webhooks"].as_array().unwrap().len(), 1);
    assert!(list["webhooks"][0].get("secret").is_none(), "never shown again");
    let (status, one) = app
        .vault("GET", &format!("/v1/webhooks/{id}"), Some(&project.api_key), None)
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["failures"], json!([]));
    assert!(one.get("secret").is_none());

    // Omitted events: every event.
    let (_, all) = app
        .vault(
            "POST",
            "/v1/webhooks",
            Some(&project.api_key),
            Some(json!({"url": "https://127.0.0.1:9/all"})),
        )
        .await;
    assert_eq!(all["events"].as_array().unwrap().len(), 7);

    let (status, del) = app
        .vault("DELETE", &format!("/v1/webhooks/{id}"), Some(&project.api_key), None)
        .await;
    assert_eq!((status, del.clone()), (200, json!({"deleted": true, "webhook_id": id})));
    let (status, again) = app
        .vault("DELETE", &format!("/v1/webhooks/{id}"), Some(&project.api_key), None)
        .await;
    assert_eq!(status, 404, "{again}");
    assert_eq!(again["error"]["code"], "not_found");
    assert_eq!(hook_items(&app).await.len(), 1);
}

#[tokio::test]
async fn issue14_bad_input_gets_a_clear_error_and_stores_nothing() {
    let (app, _fake, project) = setup_with(&[]).await;
    let other = app.project("other").await;
    let (other_id, _) = create_hook(&app, &other, "http://127.0.0.1:9/other", None).await;
    let long = format!("https://127.0.0.1/{}", "a".repeat(2100));
    let cases: Vec<(Option<&str>, Value, u16, &str)> = vec![
        (None, json!({"url": "https://127.0.0.1/x"}), 401, "invalid_api_key"),
        (
            Some("lk_ak_prj_nope.bad"),
            json!({"url": "https://127.0.0.1/x"}),
            401,
            "invalid_api_key",
        ),
        (Some(""), json!({}), 400, "invalid_request"),
        (Some(""), json!({"url": ""}), 400, "invalid_request"),
        (Some(""), json!({"url": 5}), 400, "invalid_request"),
        (Some(""), json!({"url": "not a url"}), 400, "invalid_request"),
        (Some(""), json!({"url": "ftp://127.0.0.1/x"}), 400, "invalid_request"),
        (
            Some(""),
            json!({"url": "https://u:p@127.0.0.1/x"}),
            400,
            "invalid_request",
        ),
        (
            Some(""),
            json!({"url": "https://127.0.0.1/x#frag"}),
            400,
            "invalid_request",
        ),
        (Some(""), json!({"url": long}), 400, "invalid_request"),
        (
            Some(""),
            json!({"url": "https://127.0.0.1/x", "secret": "mine"}),
            400,
            "invalid_request",
        ),
        (
            Some(""),
            json!({"url": "https://127.0.0.1/x", "events": "connection.created"}),
            400,
            "invalid_request",
        ),
        (
            Some(""),
            json!({"url": "https://127.0.0.1/x", "events": [1]}),
            400,
            "invalid_request",
        ),
        (
            Some(""),
            json!({"url": "https://127.0.0.1/x", "events": ["connection.exploded"]}),
            422,
            "unknown_event",
        ),
        // http only to loopback; private, link-local (cloud metadata) and unspecified addresses never.
        (Some(""), json!({"url": "http://203.0.113.7/x"}), 422, "url_refused"),
        (
            Some(""),
            json!({"url": "https://169.254.169.254/latest/meta-data"}),
            422,
            "url_refused",
        ),
        (Some(""), json!({"url": "https://10.0.0.8/x"}), 422, "url_refused"),
        (Some(""), json!({"url": "https://[fd00::1]/x"}), 422, "url_refused"),
        (Some(""), json!({"url": "https://0.0.0.0/x"}), 422, "url_refused"),
    ];
    for (key, body, status, code) in cases {
        let key = match key {
            Some("") => Some(project.api_key.as_str()),
            k => k,
        };
        let got = app.vault("POST", "/v1/webhooks", key, Some(body.clone())).await;
        assert_eq!(got.0, status, "{body}: {}", got.1);
        assert_eq!(got.1["error"]["code"], code, "{body}: {}", got.1);
    }
    // Not JSON, and a body too large.
    let res = app
        .http
        .post(app.url("/v1/webhooks"))
        .header("x-api-key", &project.api_key)
        .header("content-type", "application/json")
        .body("{\"url\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = app
        .http
        .post(app.url("/v1/webhooks"))
        .header("x-api-key", &project.api_key)
        .header("content-type", "application/json")
        .body(format!("{{\"url\": \"{}\"}}", "a".repeat(2_000_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(hook_items(&app).await.len(), 1, "only the other project's webhook");
    // Another project's webhook is not found through this key; a malformed id neither.
    for path in [
        format!("/v1/webhooks/{other_id}"),
        "/v1/webhooks/lkwh_..%2F..".to_string(),
        "/v1/webhooks/nothook".to_string(),
    ] {
        for method in ["GET", "DELETE"] {
            let got = app.vault(method, &path, Some(&project.api_key), None).await;
            assert_eq!(got.0, 404, "{method} {path}: {}", got.1);
        }
    }
    let got = app.vault("PUT", "/v1/webhooks", Some(&project.api_key), None).await;
    assert_eq!(got.0, 405);
    let res = app
        .http
        .put(app.url("/v1/webhooks"))
        .header("x-api-key", &project.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["allow"],
        "GET, POST",
        "RFC 9110 §15.5.6: a 405 names what is allowed"
    );
    assert_eq!(
        hook_items(&app).await.len(),
        1,
        "the other project's webhook is still there"
    );
    // Ten per project; the eleventh is refused and not stored.
    for i in 0..10 {
        create_hook(&app, &project, &format!("http://127.0.0.1:9/{i}"), None).await;
    }
    let got = app
        .vault(
            "POST",
            "/v1/webhooks",
            Some(&project.api_key),
            Some(json!({"url": "http://127.0.0.1:9/11"})),
        )
        .await;
    assert_eq!(got.0, 409, "{}", got.1);
    assert_eq!(got.1["error"]["code"], "too_many_webhooks");
    assert_eq!(hook_items(&app).await.len(), 11);
}

#[tokio::test]
async fn issue14_deliveries_are_signed_and_retried_with_the_same_webhook_id() {
    let (app, _fake, project) = setup_with(FAST).await;
    let rx = Receiver::start().await;
    rx.state.lock().unwrap().fail_first = 1;
    let (_, secret) = create_hook(&app, &project, &rx.url, None).await;
    connected(&app, &project, "user-1").await;
    let got = rx.wait_for("connection.created", 2).await;
    assert_eq!(got.len(), 2, "one failure, one retry");
    assert_eq!(
        got[0].headers["webhook-id"], got[1].headers["webhook-id"],
        "stable across retries"
    );
    assert_eq!(got[0].body, got[1].body);
    let ts = |d: &Delivery| d.headers["webhook-timestamp"].parse::<i64>().unwrap();
    assert!(
        ts(&got[1]) > ts(&got[0]),
        "a retry is signed when it is sent (receivers refuse old timestamps)"
    );
    assert!(got[0].headers["webhook-id"].starts_with("evt_"));
    for d in &got {
        assert!(verify(&secret, d), "signature of {:?}", d.headers);
        assert_eq!(d.headers["content-type"], "application/json");
    }
    let event = got[1].event();
    assert_eq!(event["id"], got[1].headers["webhook-id"].as_str());
    assert_eq!(
        event["data"],
        json!({"project_id": project.project_id, "user_id": "user-1", "provider": "google"})
    );
    assert!(event["timestamp"].as_str().unwrap().ends_with('Z'));
    // The Python client's verifier agrees, and refuses a tampered body or another secret.
    let d = &got[1];
    let mut tampered = d.body.clone();
    let at = tampered.iter().position(|b| *b == b'1').unwrap();
    tampered[at] = b'2';
    let verdicts = python_verifies(
        &secret,
        &[(d.headers.clone(), d.body.clone()), (d.headers.clone(), tampered)],
    );
    assert_eq!(verdicts, vec![true, false]);
    let (_, other_secret) = create_hook(&app, &project, "http://127.0.0.1:9/x", None).await;
    assert_eq!(
        python_verifies(&other_secret, &[(d.headers.clone(), d.body.clone())]),
        vec![false]
    );
    assert!(!verify(&other_secret, d));
}

#[tokio::test]
async fn issue14_dead_letters_show_on_the_webhook() {
    let (app, _fake, project) = setup_with(&[("LATCHKEY_WEBHOOK_RETRY_SCHEDULE", "0,0,1,0")]).await;
    let rx = Receiver::start().await;
    rx.state.lock().unwrap().always_fail = true;
    let (id, _) = create_hook(&app, &project, &rx.url, Some(&["connection.created"])).await;
    connected(&app, &project, "user-1").await;
    let got = rx.wait_for("connection.created", 5).await;
    let ids: std::collections::BTreeSet<_> = got.iter().map(|d| d.headers["webhook-id"].clone()).collect();
    assert_eq!(ids.len(), 1, "five attempts of one message");
    let failures = dead_letters(&app, &project, &id).await;
    let f = &failures[0];
    assert_eq!(f["event_id"], got[0].headers["webhook-id"].as_str());
    assert_eq!(f["type"], "connection.created");
    assert_eq!(f["attempts"], 5);
    assert_eq!(f["error"], "the receiver answered HTTP 500");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rx.deliveries().len(), 5, "nothing after the dead letter");
}

#[tokio::test]
async fn issue14_default_schedule_is_at_least_five_attempts_over_an_hour() {
    let config = latchkey::Config::from_lookup(|_| None).unwrap();
    let schedule = &config.webhook_retry_schedule;
    assert!(schedule.len() + 1 >= 5, "{schedule:?}");
    assert!(
        schedule.iter().map(|s| u64::from(*s)).sum::<u64>() >= 3600,
        "{schedule:?}"
    );
    assert!(
        schedule.iter().all(|s| *s <= latchkey::events::MAX_DELAY),
        "each fits one SQS delay"
    );
    assert!(
        latchkey::Config::from_lookup(|k| (k == "LATCHKEY_WEBHOOK_RETRY_SCHEDULE").then(|| "60,901".into())).is_err()
    );
    assert!(
        latchkey::Config::from_lookup(|k| (k == "LATCHKEY_WEBHOOK_RETRY_SCHEDULE").then(|| "soon".into())).is_err()
    );
}

#[tokio::test]
async fn issue14_vault_events_refresh_failed_recovered_deleted_session_failed_and_filters() {
    let (app, fake, project) = setup_with(FAST).await;
    let rx = Receiver::start().await;
    let only_deleted = Receiver::start().await;
    let (_, secret) = create_hook(&app, &project, &rx.url, None).await;
    create_hook(&app, &project, &only_deleted.url, Some(&["connection.deleted"])).await;
    connected(&app, &project, "user-1").await;
    rx.wait_for("connection.created", 1).await;

    // The provider forgets its refresh tokens: the proxy's refresh fails for real.
    fake.drop_refresh_tokens();
    app.server.state.clock.advance(3600);
    let (status, _, body) = app.proxy("GET", "google/me", &project.api_key, "user-1").await;
    assert_eq!(status, 401, "{body}");
    let failed = rx.wait_for("connection.refresh_failed", 1).await;
    assert_eq!(
        failed[0].event()["data"],
        json!({"project_id": project.project_id, "user_id": "user-1", "provider": "google", "reason": "invalid_grant"})
    );
    // Once: later calls do not ask the provider again, nor tell anyone again.
    let refreshes = fake.refreshes();
    app.proxy("GET", "google/me", &project.api_key, "user-1").await;
    assert_eq!(fake.refreshes(), refreshes, "the provider is not asked again");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.of("connection.refresh_failed").len(), 1);

    // Connecting again: created, and recovered.
    connected(&app, &project, "user-1").await;
    let rec = rx.wait_for("connection.recovered", 1).await;
    assert_eq!(rec[0].event()["data"]["user_id"], "user-1");
    assert_eq!(rx.of("connection.created").len(), 2);
    // A connection that never failed does not "recover".
    connected(&app, &project, "user-1").await;
    rx.wait_for("connection.created", 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.of("connection.recovered").len(), 1);

    let (status, _) = app
        .vault(
            "DELETE",
            "/v1/identity/users/user-1/connections/google",
            Some(&project.api_key),
            None,
        )
        .await;
    assert_eq!(status, 200);
    rx.wait_for("connection.deleted", 1).await;
    let del = only_deleted.wait_for("connection.deleted", 1).await;
    assert_eq!(del[0].event()["data"]["provider"], "google");

    // The user denies at the provider.
    fake.set(|b| b.deny = Some("access_denied".into()));
    let (session_id, _, _) = app.connect(&project, "user-2", "google").await;
    let sf = rx.wait_for("session.failed", 1).await;
    assert_eq!(
        sf[0].event()["data"],
        json!({"project_id": project.project_id, "user_id": "user-2", "provider": "google", "session_id": session_id, "reason": "access_denied"})
    );
    for d in rx.deliveries() {
        assert!(verify(&secret, &d));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(only_deleted.deliveries().len(), 1, "a webhook hears only its events");
}

#[tokio::test]
async fn issue14_return_url_sessions_emit_connection_created_when_the_app_confirms() {
    let (app, _fake, project) = setup_with(FAST).await;
    let rx = Receiver::start().await;
    create_hook(&app, &project, &rx.url, None).await;
    let (status, s) = app
        .vault(
            "POST",
            "/v1/identity/sessions",
            Some(&project.api_key),
            Some(json!({"user_id": "user-9", "provider": "google", "return_url": "https://app.example.com/done"})),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::custom(|a| {
            if a.url().host_str() == Some("app.example.com") {
                a.stop()
            } else {
                a.follow()
            }
        }))
        .build()
        .unwrap();
    let res = browser.get(s["auth_url"].as_str().unwrap()).send().await.unwrap();
    let back = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    let q: HashMap<String, String> = back.query_pairs().into_owned().collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.of("connection.created").is_empty(), "not before the app confirms");
    let (status, body) = app
        .vault(
            "POST",
            &format!("/v1/identity/sessions/{}/confirm", q["session_id"]),
            Some(&project.api_key),
            Some(json!({"connect_token": q["connect_token"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let got = rx.wait_for("connection.created", 1).await;
    assert_eq!(got[0].event()["data"]["user_id"], "user-9");
}

#[tokio::test]
async fn issue14_events_are_isolated_between_projects() {
    let (app, fake, a) = setup_with(FAST).await;
    let b = app.project("b").await;
    app.set_provider(&b, "google", Some("google"), fake.overrides()).await;
    let rx_a = Receiver::start().await;
    let rx_b = Receiver::start().await;
    create_hook(&app, &a, &rx_a.url, None).await;
    create_hook(&app, &b, &rx_b.url, None).await;
    connected(&app, &a, "same-user").await;
    rx_a.wait_for("connection.created", 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(rx_b.deliveries().is_empty(), "project b hears nothing of project a");
    connected(&app, &b, "same-user").await;
    let got = rx_b.wait_for("connection.created", 1).await;
    assert_eq!(got[0].event()["data"]["project_id"], b.project_id.as_str());
    assert_eq!(rx_a.deliveries().len(), 1);
}

#[tokio::test]
async fn issue14_a_slow_receiver_never_holds_up_the_request_that_caused_the_event() {
    let (app, _fake, project) = setup_with(FAST).await;
    let rx = Receiver::start().await;
    let hold = Arc::new(tokio::sync::Notify::new());
    let arrived = Arc::new(tokio::sync::Notify::new());
    {
        let mut s = rx.state.lock().unwrap();
        s.hold = Some(Arc::clone(&hold));
        s.arrived = Some(Arc::clone(&arrived));
    }
    create_hook(&app, &project, &rx.url, Some(&["connection.deleted"])).await;
    connected(&app, &project, "user-1").await;
    // The request answers well within the delivery's 10 s timeout, though the receiver will hold
    // the delivery open until told to answer.
    let (status, _) = tokio::time::timeout(
        Duration::from_secs(3),
        app.vault(
            "DELETE",
            "/v1/identity/users/user-1/connections/google",
            Some(&project.api_key),
            None,
        ),
    )
    .await
    .expect("the request answered while its event was still to be delivered");
    assert_eq!(status, 200);
    // The delivery arrives (and is still held open by the receiver) after the request answered.
    tokio::time::timeout(Duration::from_secs(15), arrived.notified())
        .await
        .expect("the delivery arrives");
    // While the receiver holds it, other requests answer normally.
    let (status, _) = app.vault("GET", "/v1/webhooks", Some(&project.api_key), None).await;
    assert_eq!(status, 200);
    hold.notify_waiters();
    hold.notify_one();
}

/// Every log line this test binary writes (installed once, by the first test that asks).
fn captured_log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: std::sync::OnceLock<Arc<Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    Arc::clone(LOG.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let for_writer = Arc::clone(&buf);
        assert!(
            latchkey::telemetry::init_json_with(move || Sink(Arc::clone(&for_writer))),
            "no other logger in the test binary"
        );
        buf
    }))
}

#[tokio::test]
async fn issue14_no_token_in_any_payload_or_log() {
    let log = captured_log();
    let (app, fake, project) = setup_with(FAST).await;
    let rx = Receiver::start().await;
    create_hook(&app, &project, &rx.url, None).await;
    connected(&app, &project, "user-1").await;
    let issued: Vec<String> = {
        let st = fake.state.lock().unwrap();
        st.access.keys().chain(st.refresh.keys()).cloned().collect()
    };
    fake.drop_refresh_tokens();
    app.server.state.clock.advance(3600);
    app.proxy("GET", "google/me", &project.api_key, "user-1").await;
    rx.wait_for("connection.refresh_failed", 1).await;
    assert!(!issued.is_empty());
    for d in rx.deliveries() {
        let text = String::from_utf8_lossy(&d.body).to_string() + &format!("{:?}", d.headers);
        for t in &issued {
            assert!(!text.contains(t.as_str()), "a token in a delivery");
        }
        assert!(!text.contains(&project.api_key));
        assert!(!text.contains("whsec_"));
    }
    // Nor in the log, which did record what happened.
    let text = String::from_utf8_lossy(&log.lock().unwrap()).to_string();
    assert!(text.contains("webhooks: delivered"), "the log is captured");
    assert!(text.contains("the provider refused the refresh token"));
    for t in &issued {
        assert!(!text.contains(t.as_str()), "a token in the log");
    }
    assert!(!text.contains(&project.api_key), "the API key in the log");
    assert!(!text.contains("whsec_"), "a signing secret in the log");
    // Stored outbox/webhook items hold no token either (in serve nothing goes to the outbox).
    let dump = format!("{:?}", app.all_items().await.into_iter().filter(|i| {
        matches!(i.get("type"), Some(aws_sdk_dynamodb::types::AttributeValue::S(t)) if t == "webhook" || t == "outbox")
    }).collect::<Vec<_>>());
    for t in &issued {
        assert!(!dump.contains(t.as_str()));
    }
}

#[tokio::test]
async fn issue14_guard_is_checked_again_at_delivery() {
    // A webhook whose stored URL names a refused address (as if it changed since registration)
    // is never posted to: the delivery fails with the guard's reason and is dead-lettered.
    let (app, _fake, project) = setup_with(&[("LATCHKEY_WEBHOOK_RETRY_SCHEDULE", "0")]).await;
    let (id, _) = create_hook(&app, &project, "http://127.0.0.1:9/x", Some(&["connection.created"])).await;
    let state = &app.server.state;
    let now = state.clock.now();
    state
        .store
        .client()
        .update_item()
        .table_name(state.store.table())
        .set_key(Some(
            latchkey::store::webhooks::webhook_key(&project.project_id, &id).to_map(),
        ))
        .update_expression("SET #u = :u")
        .expression_attribute_names("#u", "url")
        .expression_attribute_values(
            ":u",
            aws_sdk_dynamodb::types::AttributeValue::S("https://169.254.169.254/latest".into()),
        )
        .send()
        .await
        .unwrap();
    let event = latchkey::domain::webhook::Event::new(
        latchkey::domain::webhook::EventType::ConnectionCreated,
        &project.project_id,
        now,
        &[("user_id", "u"), ("provider", "google")],
    );
    latchkey::webhooks::deliver::process(state, latchkey::events::Message::new(event))
        .await
        .unwrap();
    let failures = dead_letters(&app, &project, &id).await;
    assert!(
        failures[0]["error"].as_str().unwrap().contains("not allowed"),
        "{failures}"
    );
}

#[tokio::test]
async fn issue14_tool_events_connected_and_reauthorization_required() {
    let app = TestApp::start_configured(None, FAST).await;
    let (listener, url) = McpServer::bind().await;
    let (rs_id, rs_secret) = app.resource_server(&url).await;
    let _mcp = McpServer::serve(listener, &app.url("/oauth/2.1"), &rs_id, &rs_secret).await;
    let project = app.project("tools").await;
    let rx = Receiver::start().await;
    create_hook(&app, &project, &rx.url, None).await;
    let tool_id = app.connect_tool(&project, &url).await;
    let got = rx.wait_for("tool.connected", 1).await;
    assert_eq!(
        got[0].event()["data"],
        json!({"project_id": project.project_id, "tool_id": tool_id})
    );
    // The authorization server forgets the grant: the server refuses the token, the refresh is refused.
    let state = &app.server.state;
    for (g, _) in state.store.list_grants(None, state.clock.now()).await.unwrap() {
        state.store.revoke_grant(&g.grant_id, state.clock.now()).await.unwrap();
    }
    let res = app
        .http
        .post(app.url(&format!("/tools/{tool_id}/mcp")))
        .header("x-api-key", &project.api_key)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let got = rx.wait_for("tool.reauthorization_required", 1).await;
    assert_eq!(got[0].event()["data"]["tool_id"], tool_id.as_str());
    assert_eq!(got[0].event()["data"]["reason"], "invalid_grant");
}

#[tokio::test]
async fn issue14_health_run_refreshes_due_tokens_and_reports_refusals() {
    // No timer: the test runs the health run itself, as the schedule would.
    let (app, fake, project) = setup_with(&[
        ("LATCHKEY_WEBHOOK_RETRY_SCHEDULE", "1,1"),
        ("LATCHKEY_HEALTH_INTERVAL_SECONDS", "0"),
    ])
    .await;
    fake.set(|b| b.expires_in = Some(7200));
    connected(&app, &project, "user-1").await;
    // After the connection and its connection.created's delivery run (no webhook yet), so neither
    // is in the counts below.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rx = Receiver::start().await;
    create_hook(&app, &project, &rx.url, Some(&["connection.refresh_failed"])).await;
    let state = &app.server.state;
    // Expires in two hours: an hour later it is due before the next run. (Two, not one, so that
    // the freshly refreshed token is not due again a second later: the test clock is real time.)
    state.clock.advance(3601);
    let before = app.calls();
    let r = latchkey::webhooks::health::run(state).await.unwrap();
    assert_eq!((r.due, r.refreshed), (1, 1), "{r:?}");
    assert_eq!(fake.refreshes(), 1);
    let after = app.calls();
    // One Query page of the index, the provider's config, the lease, the refreshed tokens.
    assert_eq!(after.0 - before.0, 4, "DynamoDB round trips of one refreshed holder");
    // Freshly refreshed: nothing is due now.
    let r = latchkey::webhooks::health::run(state).await.unwrap();
    assert_eq!(r.due, 0, "{r:?}");

    // The provider refuses latchkey's own client (an operator's wrong client secret, say): that is
    // not the user's refresh token dying, so the run counts it failed, tells no one, leaves the
    // connection active and looks again at the next run.
    fake.set(|b| b.basic_auth = true);
    state.clock.advance(3700);
    let r = latchkey::webhooks::health::run(state).await.unwrap();
    assert_eq!((r.due, r.failed, r.refused), (1, 1, 0), "{r:?}");
    let list = connections(&app, &project, "user-1").await;
    assert_eq!(list[0]["status"], "active");
    fake.set(|b| b.basic_auth = false);

    // The provider forgets its refresh tokens; an hour later the run's refresh is refused.
    fake.drop_refresh_tokens();
    state.clock.advance(3600);
    let r = latchkey::webhooks::health::run(state).await.unwrap();
    assert_eq!((r.due, r.refused), (1, 1), "{r:?}");
    let got = rx.wait_for("connection.refresh_failed", 1).await;
    assert_eq!(got[0].event()["data"]["reason"], "invalid_grant");
    let list = connections(&app, &project, "user-1").await;
    assert_eq!(list[0]["status"], "reauthorization_required");
    // Out of the index: the next runs leave it alone.
    state.clock.advance(7 * 86_400);
    let r = latchkey::webhooks::health::run(state).await.unwrap();
    assert_eq!(r.due, 0, "{r:?}");
    assert_eq!(rx.of("connection.refresh_failed").len(), 1);
}

#[tokio::test]
async fn issue14_health_run_refreshes_tokens_idle_for_a_day() {
    let (app, fake, project) = setup_with(&[("LATCHKEY_HEALTH_INTERVAL_SECONDS", "0")]).await;
    // Tokens without a stated expiry: due only after a day without a refresh.
    fake.set(|b| b.expires_in = None);
    connected(&app, &project, "user-1").await;
    let state = &app.server.state;
    let r = latchkey::webhooks::health::run(state).await.unwrap();
    assert_eq!(r.due, 0, "{r:?}");
    state.clock.advance(86_400 - 3_599);
    let r = latchkey::webhooks::health::run(state).await.unwrap();
    assert_eq!(
        (r.due, r.refreshed),
        (1, 1),
        "a day idle (within the hour ahead): {r:?}"
    );
    assert_eq!(fake.refreshes(), 1);
    let r = latchkey::webhooks::health::run(state).await.unwrap();
    assert_eq!(r.due, 0, "{r:?}");
    // A connection with nothing to refresh with is skipped and looked at again a day later.
    fake.set(|b| b.no_refresh_token = true);
    connected(&app, &project, "user-2").await;
    state.clock.advance(86_400);
    let r = latchkey::webhooks::health::run(state).await.unwrap();
    assert_eq!(r.skipped, 1, "{r:?}");
    let r = latchkey::webhooks::health::run(state).await.unwrap();
    assert_eq!(r.skipped, 0, "{r:?}");
}

#[tokio::test]
async fn issue14_serve_runs_the_health_run_on_its_timer() {
    let (app, fake, project) = setup_with(&[("LATCHKEY_HEALTH_INTERVAL_SECONDS", "1")]).await;
    fake.set(|b| b.expires_in = Some(1));
    connected(&app, &project, "user-1").await;
    for _ in 0..100 {
        if fake.refreshes() >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(fake.refreshes() >= 1, "the timer refreshed the token about to expire");
}

/// The AWS path against moto: the noticing request sends to SQS; `webhook-deliver`'s invocation
/// (the SQS batch as Lambda passes it) delivers it and puts it on the operator's bus; a send the
/// queue refuses goes to the outbox, which the scheduled invocation moves to the queue.
#[tokio::test]
async fn issue14_outbox_and_sqs_and_eventbridge() {
    let Ok(moto) = std::env::var("LATCHKEY_TEST_KMS_ENDPOINT") else {
        assert!(
            std::env::var("LATCHKEY_REQUIRE_KMS").is_err(),
            "LATCHKEY_REQUIRE_KMS is set but LATCHKEY_TEST_KMS_ENDPOINT (moto) is not"
        );
        eprintln!("issue14_outbox_and_sqs_and_eventbridge skipped: no moto (scripts/test starts one)");
        return;
    };
    let aws = latchkey::state::Aws::Local { endpoint: moto.clone() };
    let sqs = aws.sqs();
    let suffix = latchkey::crypto::secret::random_token("", 6).replace(['-', '_'], "x");
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("events-{suffix}"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let bus_name = format!("bus-{suffix}");
    let eb = aws.eventbridge();
    eb.create_event_bus().name(&bus_name).send().await.unwrap();
    let seen_url = sqs
        .create_queue()
        .queue_name(format!("bus-seen-{suffix}"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let seen_arn = sqs
        .get_queue_attributes()
        .queue_url(&seen_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    eb.put_rule()
        .name(format!("all-{suffix}"))
        .event_bus_name(&bus_name)
        .event_pattern(r#"{"source": ["latchkey"]}"#)
        .send()
        .await
        .unwrap();
    eb.put_targets()
        .rule(format!("all-{suffix}"))
        .event_bus_name(&bus_name)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("seen")
                .arn(&seen_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let (app, _fake, project) = setup_with(&[
        ("LATCHKEY_EVENTS_QUEUE_URL", queue_url.as_str()),
        ("LATCHKEY_SQS_ENDPOINT", moto.as_str()),
        ("LATCHKEY_EVENT_BUS", bus_name.as_str()),
        ("LATCHKEY_EVENTBRIDGE_ENDPOINT", moto.as_str()),
    ])
    .await;
    let rx = Receiver::start().await;
    let (_, secret) = create_hook(&app, &project, &rx.url, None).await;
    connected(&app, &project, "user-1").await;
    // The event is in the queue, not delivered yet.
    let msgs = sqs
        .receive_message()
        .queue_url(&queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(rx.deliveries().is_empty());
    let records: Vec<Value> = msgs
        .iter()
        .map(|m| json!({"messageId": m.message_id(), "body": m.body(), "eventSource": "aws:sqs"}))
        .collect();
    let out = latchkey::lambda::deliver_invocation(&app.server.state, &json!({"Records": records})).await;
    assert_eq!(out, json!({"batchItemFailures": []}));
    let got = rx.wait_for("connection.created", 1).await;
    assert!(verify(&secret, &got[0]));
    // And on the operator's bus (a rule there sends everything from latchkey to a queue).
    let on_bus = sqs
        .receive_message()
        .queue_url(&seen_url)
        .max_number_of_messages(10)
        .wait_time_seconds(2)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(on_bus.len(), 1, "{on_bus:?}");
    let envelope: Value = serde_json::from_str(on_bus[0].body().unwrap()).unwrap();
    assert_eq!(envelope["detail-type"], "connection.created");
    assert_eq!(envelope["source"], "latchkey");
    assert_eq!(envelope["detail"]["id"], got[0].headers["webhook-id"].as_str());

    // A queue that refuses (here: nothing listens): the event goes to the outbox.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let down = TestApp::start_configured(
        None,
        &[
            ("LATCHKEY_EVENTS_QUEUE_URL", queue_url.as_str()),
            ("LATCHKEY_SQS_ENDPOINT", closed.as_str()),
        ],
    )
    .await;
    let p2 = down.project("down").await;
    let now = down.server.state.clock.now();
    let event = latchkey::domain::webhook::Event::new(
        latchkey::domain::webhook::EventType::ConnectionDeleted,
        &p2.project_id,
        now,
        &[("user_id", "u"), ("provider", "google")],
    );
    let event_id = event.id.clone();
    down.server
        .state
        .events
        .emit(&down.server.state.store, event, now)
        .await;
    let outbox = down.server.state.store.due_outbox(now, 25).await.unwrap();
    assert_eq!(outbox.len(), 1);
    assert!(outbox[0].1.contains(&event_id));
    // The scheduled invocation, in a process whose queue answers, moves it and empties the outbox.
    let up = latchkey::state::AppState::build(
        down.server.state.config.clone(),
        latchkey::state::Backends {
            store: down.server.state.store.clone(),
            keyring: down.server.state.keyring.clone(),
            metrics: latchkey::metrics::Metrics::default(),
        },
    )
    .with_events(latchkey::events::Events::new(
        latchkey::events::Sink::Sqs {
            client: sqs.clone(),
            queue_url: queue_url.clone(),
        },
        None,
    ));
    let out = latchkey::lambda::deliver_invocation(&up, &json!({"drain_outbox": true})).await;
    assert_eq!(out, json!({"outbox_moved": 1}));
    assert!(down.server.state.store.due_outbox(now, 25).await.unwrap().is_empty());
    let moved = sqs
        .receive_message()
        .queue_url(&queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert!(
        moved.iter().any(|m| m.body().unwrap_or("").contains(&event_id)),
        "{moved:?}"
    );
}

#[tokio::test]
async fn issue14_deliveries_dead_lettered_at_once_all_keep_their_record() {
    use latchkey::domain::webhook::{Failure, Webhook};
    use latchkey::store::FromItem;
    let (app, _fake, project) = setup_with(&[]).await;
    let (id, _) = create_hook(&app, &project, "http://127.0.0.1:9/x", None).await;
    let store = &app.server.state.store;
    let now = app.server.state.clock.now();
    let key = latchkey::store::webhooks::webhook_key(&project.project_id, &id);
    // Five deliveries that each read the webhook before any of them dead-lettered (a batch of the
    // queue, or several functions), then record their failure.
    let stale = Webhook::from_item(&store.get(&key, now).await.unwrap().unwrap()).unwrap();
    let failure = |n: usize| Failure {
        event_id: format!("evt_{n}"),
        kind: "connection.created".into(),
        attempts: 7,
        error: "the receiver answered HTTP 500".into(),
        failed_at: now,
    };
    let recorded = tokio::join!(
        store.record_failure(&stale, failure(0), now),
        store.record_failure(&stale, failure(1), now),
        store.record_failure(&stale, failure(2), now),
        store.record_failure(&stale, failure(3), now),
        store.record_failure(&stale, failure(4), now),
    );
    for r in [recorded.0, recorded.1, recorded.2, recorded.3, recorded.4] {
        r.unwrap();
    }
    let stored = Webhook::from_item(&store.get(&key, now).await.unwrap().unwrap()).unwrap();
    let mut ids: Vec<_> = stored.failures.iter().map(|f| f.event_id.clone()).collect();
    ids.sort();
    assert_eq!(
        ids,
        ["evt_0", "evt_1", "evt_2", "evt_3", "evt_4"],
        "no record overwrites another"
    );
    // A webhook deleted meanwhile stays deleted.
    let (status, _) = app
        .vault("DELETE", &format!("/v1/webhooks/{id}"), Some(&project.api_key), None)
        .await;
    assert_eq!(status, 200);
    store.record_failure(&stale, failure(9), now).await.unwrap();
    assert!(store.get(&key, now).await.unwrap().is_none());
}

#[tokio::test]
async fn issue14_health_run_reaches_every_due_holder_past_one_page() {
    // Access tokens that last an hour (as Google's do) make every holder due at every hourly run:
    // one run must get through more than one page of the index.
    let (app, fake, project) = setup_with(&[("LATCHKEY_HEALTH_INTERVAL_SECONDS", "0")]).await;
    // Two hours (not one) so that a token refreshed in the run is not due again in the same second.
    fake.set(|b| b.expires_in = Some(7200));
    let holders = latchkey::webhooks::health::BATCH as usize * 2 + 3;
    for n in 0..holders {
        connected(&app, &project, &format!("user-{n}")).await;
    }
    let state = &app.server.state;
    state.clock.advance(3601);
    let r = latchkey::webhooks::health::run(state).await.unwrap();
    assert_eq!((r.due, r.refreshed), (holders, holders), "{r:?}");
    assert_eq!(fake.refreshes() as usize, holders);
    let r = latchkey::webhooks::health::run(state).await.unwrap();
    assert_eq!(r.due, 0, "{r:?}");
}

/// A sign-in kept as a vault connection (`LATCHKEY_LOGIN_VAULT_PROJECT`) over a connection whose
/// refresh had been refused is a recovery, as a reconnect through a session is: the store's write
/// answers what it replaced, in the same round trip.
#[tokio::test]
async fn issue14_a_sign_in_over_a_failed_connection_is_a_recovery() {
    use latchkey::domain::connection::Connection;
    let app = TestApp::start().await;
    let store = &app.server.state.store;
    let now = app.server.state.clock.now();
    let conn = Connection::new(
        "prj_login",
        "user-1",
        "google",
        vec!["openid".into()],
        vec![1, 2, 3],
        None,
        now,
    );
    let before = app.calls().0;
    assert!(
        !store.put_connection(&conn, now).await.unwrap(),
        "a first connection recovers nothing"
    );
    assert_eq!(app.calls().0 - before, 1, "one round trip");
    let key = latchkey::store::connections::key_of(&conn);
    store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(key.to_map()))
        .update_expression("SET #s = :r")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(
            ":r",
            aws_sdk_dynamodb::types::AttributeValue::S("reauthorization_required".into()),
        )
        .send()
        .await
        .unwrap();
    assert!(
        store.put_connection(&conn, now).await.unwrap(),
        "replacing a failed connection"
    );
    assert!(!store.put_connection(&conn, now).await.unwrap(), "it is active again");
}
