//! The Python clients (`clients/python`: `Latchkey` and `AsyncLatchkey`) against a running latchkey:
//! their unit tests; `tests/flow.py` end to end over real HTTP with each client (create session,
//! browser sign-in at the fake provider, wait, initialize, proxy, list, delete, typed errors); the
//! tools API with each client against an OAuth-protected MCP server (`tests/tools_flow.py`); and
//! the README's opening example as written.
//!
//! `AsyncLatchkey` needs httpx in the Python that runs them (`LATCHKEY_TEST_PYTHON`): `scripts/test`
//! installs it and sets `LATCHKEY_REQUIRE_HTTPX`; a plain `cargo test` without httpx skips the
//! async parts with a message.

use crate::common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::fake_provider::FakeProvider;
use common::mcp_server::McpServer;
use common::TestApp;

fn python() -> String {
    std::env::var("LATCHKEY_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn client_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../clients/python")
}

/// Whether the Python has httpx; panics when it has not and `LATCHKEY_REQUIRE_HTTPX` is set.
fn have_httpx(what: &str) -> bool {
    let ok = Command::new(python())
        .args(["-c", "import httpx"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("LATCHKEY_REQUIRE_HTTPX").is_err(),
            "LATCHKEY_REQUIRE_HTTPX is set but {} cannot import httpx",
            python()
        );
        eprintln!("{what} skipped: {} has no httpx (scripts/test installs it)", python());
    }
    ok
}

/// A loopback server the client scripts call for what a test must do outside the client: sign in
/// and approve at latchkey's authorization server like a browser (`GET /approve?url=…` answers
/// with the client redirect URI the browser ends at), and make the fake provider forget every
/// token (`POST /provider/forget-tokens`).
async fn control_server(app: Arc<TestApp>, fake: Option<FakeProvider>) -> String {
    use axum::extract::{Query, State};
    use axum::routing::{get, post};
    type Ctl = (Arc<TestApp>, Option<FakeProvider>);
    async fn approve(
        State((app, _)): State<Ctl>,
        Query(q): Query<std::collections::HashMap<String, String>>,
    ) -> String {
        app.approve_in_browser(&q["url"], "tool-user@example.com").await
    }
    async fn forget(State((_, fake)): State<Ctl>) -> &'static str {
        let fake = fake.expect("a fake provider");
        fake.drop_access_tokens();
        fake.drop_refresh_tokens();
        "ok"
    }
    let router = axum::Router::new()
        .route("/approve", get(approve))
        .route("/provider/forget-tokens", post(forget))
        .with_state((app, fake));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, router).await.ok();
    });
    url
}

/// Run a client script to its end (at most 120 s): (success, stdout, stderr).
async fn run_script(script: &str, env: Vec<(&'static str, String)>) -> (bool, String, String) {
    let script = script.to_string();
    let run = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(script)
            .current_dir(client_dir())
            .envs(env)
            .output()
            .expect("python3 runs")
    });
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the script finished within 120 s")
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn python_client_unit_tests_pass() {
    let out = Command::new(python())
        .args(["-m", "unittest", "discover", "-s", "tests", "-t", "."])
        .current_dir(client_dir())
        .output()
        .expect("python3 runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python unit tests failed:\n{err}");
    assert!(err.contains("OK"), "{err}");
    if err.contains("skipped") {
        have_httpx("AsyncLatchkey's unit tests");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn python_client_flow_against_latchkey_serve() {
    let app = TestApp::start().await;
    let fake = FakeProvider::start().await;
    let project = app.project("python").await;
    app.set_provider(&project, "google", Some("google"), fake.overrides())
        .await;
    let (base, key) = (app.base.clone(), project.api_key.clone());
    let (ok, stdout, stderr) = run_script(
        "tests/flow.py",
        vec![
            ("LATCHKEY_URL", base),
            ("LATCHKEY_API_KEY", key),
            ("LATCHKEY_PROVIDER", "google".into()),
            ("LATCHKEY_USER_ID", "py-user-1".into()),
            ("LATCHKEY_PROXY_PATH", "me".into()),
        ],
    )
    .await;
    assert!(ok, "flow.py failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("python client flow: OK"), "{stdout}");
    assert!(
        stdout.contains("-- the connection.deleted delivery, then delete_webhook"),
        "the flow received and verified real webhook deliveries: {stdout}"
    );
    assert!(
        stdout.contains("fake-user-1"),
        "the proxied call reached the provider as the user: {stdout}"
    );
    // The flow deleted the connection at the end: revoked upstream, gone here.
    // (and the return_url user's, deleted after its confirmation).
    assert_eq!(fake.state.lock().unwrap().revocations.len(), 2);
    assert!(app
        .server
        .state
        .store
        .get_connection(&project.project_id, "py-user-1", "google", 0)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn python_async_client_flow_against_latchkey_serve_with_typed_errors() {
    if !have_httpx("the AsyncLatchkey flow") {
        return;
    }
    let app = Arc::new(TestApp::start().await);
    let fake = FakeProvider::start().await;
    let project = app.project("python-async").await;
    app.set_provider(&project, "google", Some("google"), fake.overrides())
        .await;
    let control = control_server(Arc::clone(&app), Some(fake.clone())).await;
    let (ok, stdout, stderr) = run_script(
        "tests/flow.py",
        vec![
            ("LATCHKEY_URL", app.base.clone()),
            ("LATCHKEY_API_KEY", project.api_key.clone()),
            ("LATCHKEY_CLIENT", "async".into()),
            ("LATCHKEY_USER_ID", "py-async-1".into()),
            ("LATCHKEY_PROXY_PATH", "me".into()),
            ("LATCHKEY_TEST_CONTROL", control),
        ],
    )
    .await;
    assert!(ok, "flow.py (async) failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("python client flow: OK"), "{stdout}");
    assert!(
        stdout.contains("-- the connection.deleted delivery, then delete_webhook"),
        "{stdout}"
    );
    assert!(stdout.contains("fake-user-1"), "{stdout}");
    assert!(
        stdout.contains("ReauthorizationRequiredError"),
        "the control server was used: {stdout}"
    );
    let store = &app.server.state.store;
    assert!(store
        .get_connection(&project.project_id, "py-async-1", "google", 0)
        .await
        .unwrap()
        .is_none());
    let second = store
        .get_connection(&project.project_id, "py-async-1-b", "google", 0)
        .await
        .unwrap()
        .expect("the second user's connection is kept");
    assert_eq!(second.status.as_str(), "reauthorization_required");
}

#[tokio::test(flavor = "multi_thread")]
async fn python_clients_drive_the_tools_api_against_an_oauth_protected_mcp_server() {
    let app = Arc::new(TestApp::start().await);
    let (listener, mcp_url) = McpServer::bind().await;
    let (rs_id, rs_secret) = app.resource_server(&mcp_url).await;
    let mcp = McpServer::serve(listener, &app.url("/oauth/2.1"), &rs_id, &rs_secret).await;
    let project = app.project("python-tools").await;
    let control = control_server(Arc::clone(&app), None).await;
    let mut clients = vec!["sync"];
    if have_httpx("the AsyncLatchkey tools flow") {
        clients.push("async");
    }
    for client in clients {
        let (ok, stdout, stderr) = run_script(
            "tests/tools_flow.py",
            vec![
                ("LATCHKEY_URL", app.base.clone()),
                ("LATCHKEY_API_KEY", project.api_key.clone()),
                ("LATCHKEY_CLIENT", client.into()),
                ("LATCHKEY_MCP_URL", mcp.url.clone()),
                ("LATCHKEY_TEST_CONTROL", control.clone()),
            ],
        )
        .await;
        assert!(ok, "tools_flow.py ({client}) failed:\n{stdout}\n{stderr}");
        assert!(stdout.contains("python tools flow: OK"), "{stdout}");
        assert!(stdout.contains("you are tool-user@example.com"), "{stdout}");
    }
    // Every call reached the server through latchkey with a token it introspected.
    assert!(mcp.state.lock().unwrap().introspections >= 4);
    // Both tools were deleted.
    let tools: Vec<_> = app
        .all_items()
        .await
        .into_iter()
        .filter(|i| {
            i["pk"].as_s().is_ok_and(|pk| pk.starts_with("TOOL#"))
                && i["sk"].as_s().is_ok_and(|sk| sk == "TOOL" || sk == "TOKENS")
        })
        .collect();
    assert!(tools.is_empty(), "{tools:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn python_readme_example_runs_as_written() {
    if !have_httpx("the README example (AsyncLatchkey)") {
        return;
    }
    let app = TestApp::start().await;
    let fake = FakeProvider::start().await;
    let project = app.project("readme").await;
    // Google's API paths reach the fake's echo route.
    let mut overrides = fake.overrides();
    overrides.insert("api_base_url".into(), fake.url("/api/echo/").into());
    app.set_provider(&project, "google", Some("google"), overrides).await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("example.py");
    std::fs::write(
        &script,
        common::example::readme_example(&client_dir().join("README.md"), "python", &app.base, &project.api_key),
    )
    .unwrap();
    let mut cmd = Command::new(python());
    // A user's terminal shows each line as it is printed; a pipe would hold them until exit.
    cmd.arg(&script)
        .env("PYTHONPATH", client_dir())
        .env("PYTHONUNBUFFERED", "1");
    let (ok, stdout, stderr) = common::example::run_as_user(cmd).await;
    assert!(ok, "README example failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("Please open: "), "{stdout}");
    // `print(profile.status, profile.json())`: the provider's answer for the user.
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("200 {"), "{stdout}");
    assert!(last.contains("'user': 'fake-user-1'"), "{stdout}");
    assert!(
        last.contains("'path': '/api/echo/gmail/v1/users/me/profile'"),
        "{stdout}"
    );
}
