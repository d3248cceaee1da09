//! Every sample event in `events/` parses with `lambda_http::request::from_str` and runs through its
//! function's handler (the same call the Lambda binary makes), with the expected status.

use crate::common;

use std::path::PathBuf;

use latchkey::router::{self, Route};

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// (event file, expected status). Every file in `events/` must be listed here.
const EXPECTED: &[(&str, u16)] = &[
    ("discovery.json", 200),
    ("discovery-root.json", 200),
    ("discovery-preflight.json", 204),
    ("register.json", 201),
    ("register-confidential.json", 201),
    ("register-invalid-redirect.json", 400),
    // No client is registered in the fresh test store: client authentication fails first.
    ("token.json", 401),
    ("token-refresh.json", 401),
    ("token-unsupported-grant.json", 400),
    ("revoke.json", 401),
    ("introspect.json", 401),
    // An unregistered client: an error page, never a redirect.
    ("authorize.json", 400),
    // The embedded server has local sign-in; the request id is unknown.
    ("callback.json", 400),
    // No session cookie.
    ("consent.json", 401),
    // Not signed in: sent to sign in (the embedded server's local page) and back.
    ("account.json", 303),
    // A session the store does not know: nothing changes.
    ("account-revoke.json", 403),
    // The vault's events carry an API key the fresh store does not know.
    ("session-create.json", 401),
    ("session-status.json", 401),
    ("session-confirm.json", 401),
    // An unknown state: an error page, nothing changes.
    ("identity-callback.json", 400),
    ("connections.json", 401),
    ("connections-delete.json", 401),
    ("proxy.json", 401),
    // A hostile path is refused before the API key is even looked up.
    ("proxy-traversal.json", 400),
    // The tool events' project key is unknown to the fresh store.
    ("tool-create.json", 401),
    ("tool.json", 401),
    ("tool-delete.json", 401),
    // Public document; the tool does not exist.
    ("tool-client-metadata.json", 404),
    ("tool-initiate.json", 401),
    ("tool-complete.json", 401),
    // FastAPI-style validation before anything else: code is a number, state is missing.
    ("tool-complete-missing-state.json", 422),
    ("tool-mcp.json", 401),
    // The webhook events' project key is unknown to the fresh store.
    ("webhooks.json", 401),
    ("webhooks-list.json", 401),
    ("webhooks-show.json", 401),
    ("webhooks-delete.json", 401),
];

/// The sample events of the functions that API Gateway does not call (`router::BACKGROUND`), run
/// by `background_events_run_through_their_invocations`.
const BACKGROUND_EVENTS: &[&str] = &[
    "webhook-deliver-sqs.json",
    "webhook-deliver-schedule.json",
    "health-schedule.json",
];

/// The function an event file belongs to: `<function>.json` or `<function>-<case>.json` (the
/// longest function name that matches, since function names contain dashes too).
fn route_of(file: &str) -> Route {
    let stem = file.trim_end_matches(".json");
    Route::ALL
        .into_iter()
        .filter(|r| stem == r.function() || stem.starts_with(&format!("{}-", r.function())))
        .max_by_key(|r| r.function().len())
        .unwrap_or_else(|| panic!("{file} names no function"))
}

#[tokio::test]
async fn every_event_parses_and_runs_through_its_handler() {
    let app = common::TestApp::start().await;
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(events_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.ends_with(".json") || BACKGROUND_EVENTS.contains(&name.as_str()) {
            continue;
        }
        let expected = EXPECTED
            .iter()
            .find(|(f, _)| *f == name)
            .unwrap_or_else(|| panic!("events/{name} has no expectation in tests/api/events.rs"))
            .1;
        let text = std::fs::read_to_string(events_dir().join(&name)).unwrap();
        let req = lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let route = route_of(&name);
        assert_eq!(
            Route::for_path(latchkey::http::request::raw_path(&req)),
            Some(route),
            "{name} path is routed to its function"
        );
        let res = router::call(route, &app.server.state, req).await;
        assert_eq!(res.status().as_u16(), expected, "{name}: {:?}", res.body());
        seen.push(route);
    }
    for route in Route::ALL {
        assert!(
            seen.contains(&route),
            "functions/{} has a sample event",
            route.function()
        );
    }
}

#[test]
fn without_a_public_url_the_issuer_comes_from_api_gateway_not_the_host_header() {
    let text = std::fs::read_to_string(events_dir().join("discovery.json")).unwrap();
    let mut req = lambda_http::request::from_str(&text).unwrap();
    req.headers_mut().insert("host", "attacker.example".parse().unwrap());
    let config = latchkey::Config::from_lookup(|_| None).unwrap();
    assert_eq!(
        latchkey::http::request::public_base(&config, &req),
        "https://abc123.execute-api.us-east-1.amazonaws.com"
    );
}

/// With the sample API key known to the store, the vault events reach their domain logic.
#[tokio::test]
async fn vault_events_run_with_a_known_api_key() {
    use latchkey::domain::project::project_of_key;
    use latchkey::store::{projects, Item};
    let app = common::TestApp::start().await;
    let key = "lk_ak_prj_exampleproject1.c2FtcGxlLWtleS1ub3QtcmVhbC0wMDAwMDAwMDAwMDAwMDA";
    let project = project_of_key(key).unwrap();
    let item = Item::with_key(&projects::api_key_key(&latchkey::crypto::secret::hash(key)))
        .set_s("type", "api_key")
        .set_s("project_id", project)
        .set_s("key_id", "ak_sample")
        .set_n("created_at", 0);
    app.server.state.store.put(item).await.unwrap();
    for (file, status, code) in [
        ("session-create.json", 409, "provider_not_configured"),
        ("session-status.json", 404, "not_found"),
        ("session-confirm.json", 404, "not_found"),
        ("connections.json", 200, ""),
        ("connections-delete.json", 404, "not_connected"),
        ("proxy.json", 409, "provider_not_configured"),
        ("webhooks-show.json", 404, "not_found"),
        ("webhooks-delete.json", 404, "not_found"),
    ] {
        let text = std::fs::read_to_string(events_dir().join(file)).unwrap();
        let req = lambda_http::request::from_str(&text).unwrap();
        let res = router::call(route_of(file), &app.server.state, req).await;
        assert_eq!(res.status().as_u16(), status, "{file}: {:?}", res.body());
        let body: serde_json::Value = serde_json::from_slice(res.body().as_ref()).unwrap();
        if code.is_empty() {
            assert_eq!(body, serde_json::json!({"user_id": "user-42", "connections": []}));
        } else {
            assert_eq!(body["error"]["code"], code, "{file}");
        }
    }
}

/// With the sample project key known, the tool events reach their domain logic (the sample tool
/// does not exist). `tool-create.json` is not run here: it would start discovery of a public host.
#[tokio::test]
async fn tool_events_run_with_a_known_project_key() {
    use latchkey::domain::project::project_of_key;
    use latchkey::store::{projects, Item};
    let app = common::TestApp::start().await;
    let key = "lk_ak_prj_exampleproject1.c2FtcGxlLWtleS1ub3QtcmVhbC0wMDAwMDAwMDAwMDAwMDA";
    let item = Item::with_key(&projects::api_key_key(&latchkey::crypto::secret::hash(key)))
        .set_s("type", "api_key")
        .set_s("project_id", project_of_key(key).unwrap())
        .set_s("key_id", "ak_sample")
        .set_n("created_at", 0);
    app.server.state.store.put(item).await.unwrap();
    for file in [
        "tool.json",
        "tool-delete.json",
        "tool-initiate.json",
        "tool-complete.json",
        "tool-mcp.json",
    ] {
        let text = std::fs::read_to_string(events_dir().join(file)).unwrap();
        let req = lambda_http::request::from_str(&text).unwrap();
        let res = router::call(route_of(file), &app.server.state, req).await;
        assert_eq!(res.status().as_u16(), 404, "{file}: {:?}", res.body());
        let body: serde_json::Value = serde_json::from_slice(res.body().as_ref()).unwrap();
        assert_eq!(body, serde_json::json!({"detail": "Tool not found"}), "{file}");
    }
}

/// The queue's and the schedules' sample events run through the invocations `functions/webhook-deliver`
/// and `functions/health` make: the SQS batch's event names a project with no webhooks (delivered to
/// no one, nothing to redeliver), the outbox is empty, the health index names nothing.
#[tokio::test]
async fn background_events_run_through_their_invocations() {
    let app = common::TestApp::start().await;
    let state = &app.server.state;
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(events_dir().join(f)).unwrap()).unwrap()
    };
    let sqs = read("webhook-deliver-sqs.json");
    // The queue's body is a message `webhook-deliver` reads (a malformed one would be dropped, and
    // the batch would still answer no failures).
    for record in sqs["Records"].as_array().unwrap() {
        let body = record["body"].as_str().unwrap();
        let message: latchkey::events::Message = serde_json::from_str(body).expect("a queue message");
        assert!(message.event.event_type().is_some(), "{body}");
    }
    let out = latchkey::lambda::deliver_invocation(state, &sqs).await;
    assert_eq!(out, serde_json::json!({"batchItemFailures": []}));
    let out = latchkey::lambda::deliver_invocation(state, &read("webhook-deliver-schedule.json")).await;
    assert_eq!(out, serde_json::json!({"outbox_moved": 0}));
    // The schedules' input (template.yaml's ScheduleV2 `Input`): a JSON object the functions accept.
    assert!(read("health-schedule.json").is_object());
    let out = latchkey::lambda::health_invocation(state).await;
    assert_eq!(
        out,
        serde_json::json!({"due": 0, "refreshed": 0, "refused": 0, "failed": 0, "skipped": 0})
    );
    for f in BACKGROUND_EVENTS {
        assert!(events_dir().join(f).exists(), "events/{f}");
    }
    assert_eq!(
        latchkey::router::BACKGROUND,
        ["webhook-deliver", "health"],
        "every background function has its sample events above"
    );
}
