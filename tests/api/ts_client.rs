//! The TypeScript client (`clients/typescript`, npm package `latchkey-client`): its tests under
//! Node's own test runner, unit tests against a fake and end-to-end ones against a running latchkey
//! with the fake provider, an OAuth-protected MCP server and a control server; its declarations
//! type-checked by tsc (strict); and the tarball `npm pack` makes, installed offline into an empty
//! project, running the README's opening example as written.
//!
//! `scripts/test` installs the package's dev dependency (typescript) and sets
//! `LATCHKEY_REQUIRE_TS_CLIENT`; a plain `cargo test` without node (or without
//! `clients/typescript/node_modules` for the type check) skips with a message.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::fake_provider::FakeProvider;
use common::mcp_server::McpServer;
use common::TestApp;

fn client_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../clients/typescript")
}

/// Whether `what` can run; panics when it cannot and `LATCHKEY_REQUIRE_TS_CLIENT` is set.
fn available(ok: bool, what: &str, why: &str) -> bool {
    if !ok {
        assert!(
            std::env::var("LATCHKEY_REQUIRE_TS_CLIENT").is_err(),
            "LATCHKEY_REQUIRE_TS_CLIENT is set but {why}"
        );
        eprintln!("{what} skipped: {why}");
    }
    ok
}

fn have_node(what: &str) -> bool {
    let ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    available(ok, what, "node is not installed")
}

/// The control server the end-to-end tests call: `GET /approve?url=…` signs in and approves at
/// latchkey's authorization server like a browser and answers with the client redirect URI it ends
/// at; `POST /provider/forget-tokens` makes the fake provider forget every token.
async fn control_server(app: Arc<TestApp>, fake: FakeProvider) -> String {
    use axum::extract::{Query, State};
    use axum::routing::{get, post};
    type Ctl = (Arc<TestApp>, FakeProvider);
    async fn approve(
        State((app, _)): State<Ctl>,
        Query(q): Query<std::collections::HashMap<String, String>>,
    ) -> String {
        app.approve_in_browser(&q["url"], "tool-user@example.com").await
    }
    async fn forget(State((_, fake)): State<Ctl>) -> &'static str {
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

/// Run a command to its end (at most `secs`): (success, stdout, stderr).
async fn output(mut cmd: Command, secs: u64) -> (bool, String, String) {
    let run = tokio::task::spawn_blocking(move || cmd.output().expect("the command starts"));
    let out = tokio::time::timeout(Duration::from_secs(secs), run)
        .await
        .unwrap_or_else(|_| panic!("the command did not finish within {secs} s"))
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `# name N` from Node's TAP summary.
fn tap_count(stdout: &str, name: &str) -> Option<u64> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("# {name} ")))
        .and_then(|n| n.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn typescript_client_tests_pass_against_latchkey_serve() {
    if !have_node("the TypeScript client's tests") {
        return;
    }
    let app = Arc::new(TestApp::start().await);
    let fake = FakeProvider::start().await;
    let project = app.project("typescript").await;
    app.set_provider(&project, "google", Some("google"), fake.overrides())
        .await;
    let (listener, mcp_url) = McpServer::bind().await;
    let (rs_id, rs_secret) = app.resource_server(&mcp_url).await;
    let mcp = McpServer::serve(listener, &app.url("/oauth/2.1"), &rs_id, &rs_secret).await;
    let control = control_server(Arc::clone(&app), fake.clone()).await;

    let mut files: Vec<String> = std::fs::read_dir(client_dir().join("test"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".test.mjs"))
        .map(|n| format!("test/{n}"))
        .collect();
    files.sort();
    assert_eq!(files, ["test/client.test.mjs", "test/latchkey.test.mjs"]);
    let mut cmd = Command::new("node");
    cmd.args(["--test", "--test-reporter=tap"])
        .args(&files)
        .current_dir(client_dir())
        .env("LATCHKEY_URL", &app.base)
        .env("LATCHKEY_API_KEY", &project.api_key)
        .env("LATCHKEY_MCP_URL", &mcp.url)
        .env("LATCHKEY_TEST_CONTROL", &control);
    let (ok, stdout, stderr) = output(cmd, 180).await;
    assert!(ok, "node --test failed:\n{stdout}\n{stderr}");
    assert_eq!(tap_count(&stdout, "fail"), Some(0), "{stdout}");
    assert_eq!(
        tap_count(&stdout, "skipped"),
        Some(0),
        "the end-to-end tests ran: {stdout}"
    );
    assert!(tap_count(&stdout, "pass").unwrap_or(0) >= 17, "{stdout}");
    assert!(stdout.contains("proxied as fake-user-1"), "{stdout}");
    assert!(
        stdout.contains("ok")
            && stdout.contains("webhooks: create, list, get, a real signed delivery verified, delete"),
        "the webhook test ran against the server: {stdout}"
    );
    assert!(stdout.contains("you are tool-user@example.com"), "{stdout}");

    let store = &app.server.state.store;
    assert!(store
        .get_connection(&project.project_id, "ts-user-1", "google", 0)
        .await
        .unwrap()
        .is_none());
    let second = store
        .get_connection(&project.project_id, "ts-user-2", "google", 0)
        .await
        .unwrap()
        .expect("the second user's connection is kept");
    assert_eq!(second.status.as_str(), "reauthorization_required");
    // Two deletes revoked upstream: the first user's and the confirmed return_url user's.
    assert_eq!(fake.state.lock().unwrap().revocations.len(), 2);
    assert!(mcp.state.lock().unwrap().introspections >= 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn typescript_declarations_type_check_strict() {
    if !have_node("the type check") {
        return;
    }
    let tsc = client_dir().join("node_modules/typescript/bin/tsc");
    if !available(
        tsc.exists(),
        "the type check",
        "clients/typescript/node_modules is missing (npm ci there)",
    ) {
        return;
    }
    let mut cmd = Command::new("node");
    cmd.arg(&tsc)
        .args(["-p", "test/tsconfig.json"])
        .current_dir(client_dir());
    let (ok, stdout, stderr) = output(cmd, 120).await;
    assert!(ok, "tsc found errors:\n{stdout}\n{stderr}");
}

fn npm(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("npm");
    cmd.args(args)
        .args(["--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir);
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn typescript_npm_pack_installs_offline_and_runs_the_readme_example() {
    if !have_node("the npm pack check") {
        return;
    }
    let npm_ok = Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !available(npm_ok, "the npm pack check", "npm is not installed") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().to_string_lossy().into_owned();
    let (ok, stdout, stderr) = output(
        npm(&client_dir(), &["pack", "--json", "--pack-destination", &dest]),
        120,
    )
    .await;
    assert!(ok, "npm pack failed:\n{stdout}\n{stderr}");
    let packed: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let mut files: Vec<&str> = packed[0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["README.md", "index.d.ts", "index.js", "package.json"]);
    let tarball = dir.path().join(packed[0]["filename"].as_str().unwrap());
    assert!(tarball.exists());

    // An empty project installs the tarball without the network: the package has no dependencies.
    let project_dir = dir.path().join("app");
    std::fs::create_dir(&project_dir).unwrap();
    std::fs::write(
        project_dir.join("package.json"),
        r#"{"name": "app", "private": true, "type": "module"}"#,
    )
    .unwrap();
    let tarball = tarball.to_string_lossy().into_owned();
    let (ok, stdout, stderr) = output(npm(&project_dir, &["install", "--offline", &tarball]), 120).await;
    assert!(ok, "npm install of the tarball failed:\n{stdout}\n{stderr}");
    let installed = project_dir.join("node_modules/latchkey-client");
    assert!(installed.join("index.js").exists() && installed.join("index.d.ts").exists());

    let app = TestApp::start().await;
    let fake = FakeProvider::start().await;
    let project = app.project("ts-readme").await;
    // Google's API paths reach the fake's echo route.
    let mut overrides = fake.overrides();
    overrides.insert("api_base_url".into(), fake.url("/api/echo/").into());
    app.set_provider(&project, "google", Some("google"), overrides).await;
    std::fs::write(
        project_dir.join("example.mjs"),
        common::example::readme_example(&client_dir().join("README.md"), "js", &app.base, &project.api_key),
    )
    .unwrap();
    let mut cmd = Command::new("node");
    cmd.arg("example.mjs").current_dir(&project_dir);
    let (ok, stdout, stderr) = common::example::run_as_user(cmd).await;
    assert!(ok, "README example failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("Please open: "), "{stdout}");
    // `console.log(profile.status, profile.json())`: the provider's answer for the user.
    let tail: String = stdout.lines().skip(1).collect::<Vec<_>>().join(" ");
    assert!(tail.starts_with("200 {"), "{stdout}");
    assert!(tail.contains("user: 'fake-user-1'"), "{stdout}");
    assert!(tail.contains("path: '/api/echo/gmail/v1/users/me/profile'"), "{stdout}");
}
