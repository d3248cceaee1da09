//! The official MCP TypeScript SDK connects as an OAuth client: RFC 9728 discovery through a
//! stand-in MCP server, RFC 8414 discovery, dynamic registration, authorization with PKCE and
//! `resource`, sign-in and consent driven like a browser, code exchange and refresh, all against the
//! embedded latchkey over loopback HTTP. `scripts/test` installs the SDK (`tests/mcp-sdk`) and
//! requires this test; a plain `cargo test` skips it when the SDK is not installed.

use crate::common;

use std::path::PathBuf;
use std::process::Command;

use latchkey::domain::resource::Resource;

fn sdk_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mcp-sdk")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_typescript_sdk_registers_authorizes_exchanges_and_refreshes() {
    if !sdk_dir().join("node_modules/@modelcontextprotocol/sdk").exists() {
        assert!(
            std::env::var("LATCHKEY_REQUIRE_MCP_SDK").is_err(),
            "LATCHKEY_REQUIRE_MCP_SDK is set but tests/mcp-sdk/node_modules is missing"
        );
        eprintln!("MCP SDK test skipped: run scripts/test to install @modelcontextprotocol/sdk");
        return;
    }
    let app = common::TestApp::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let now = app.server.state.clock.now();
    let (rs, _) = app
        .server
        .state
        .store
        .create_resource_server(&Resource::parse(&resource).unwrap(), &[], now)
        .await
        .unwrap();
    let issuer = format!("{}/oauth/2.1", app.base);
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("flow.mjs")
            .arg(port.to_string())
            .current_dir(sdk_dir())
            .env("LATCHKEY_ISSUER", issuer)
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "SDK flow failed:\n{stdout}\n{stderr}");
    let result: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(result["ok"], true);
    assert_eq!(result["authorization_server"], format!("{}/oauth/2.1", app.base));
    assert_eq!(result["access_token_prefix"], "lk_at_");
    assert_eq!(result["refreshed_prefix"], "lk_rt_");
    // The SDK's client is registered and its tokens are bound to the resource.
    let client_id = result["client_id"].as_str().unwrap();
    let now = app.server.state.clock.now();
    assert!(app
        .server
        .state
        .store
        .get_client(client_id, now)
        .await
        .unwrap()
        .is_some());
    assert_eq!(rs.resource, resource);
}
