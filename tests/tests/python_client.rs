//! The Python client (`clients/python`) against a running latchkey and the fake provider: its unit
//! tests, then `tests/flow.py` end to end over real HTTP (create session, browser sign-in, wait,
//! proxy, list, delete).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::fake_provider::FakeProvider;
use common::TestApp;

fn python() -> String {
    std::env::var("LATCHKEY_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn client_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../clients/python")
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
}

#[tokio::test(flavor = "multi_thread")]
async fn python_client_flow_against_latchkey_serve() {
    let app = TestApp::start().await;
    let fake = FakeProvider::start().await;
    let project = app.project("python").await;
    app.set_provider(&project, "google", Some("google"), fake.overrides())
        .await;
    let (base, key) = (app.base.clone(), project.api_key.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg("tests/flow.py")
            .current_dir(client_dir())
            .env("LATCHKEY_URL", base)
            .env("LATCHKEY_API_KEY", key)
            .env("LATCHKEY_PROVIDER", "google")
            .env("LATCHKEY_USER_ID", "py-user-1")
            .env("LATCHKEY_PROXY_PATH", "me")
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "flow.py failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("python client flow: OK"), "{stdout}");
    assert!(
        stdout.contains("fake-user-1"),
        "the proxied call reached the provider as the user: {stdout}"
    );
    // The flow deleted the connection at the end: revoked upstream, gone here.
    assert_eq!(fake.state.lock().unwrap().revocations.len(), 1);
    assert!(app
        .server
        .state
        .store
        .get_connection(&project.project_id, "py-user-1", "google", 0)
        .await
        .unwrap()
        .is_none());
}
