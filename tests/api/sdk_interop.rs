//! Every official SDK client connects to every official SDK server through latchkey, with the
//! scopes real MCP servers declare. The two examples (`examples/typescript`: `McpServer`,
//! `mcpAuthMetadataRouter`, `requireBearerAuth`; `examples/python`: `MCPServer` with a
//! `TokenVerifier` and `AuthSettings`) run as child processes on loopback, registered as resource
//! servers declaring `mcp:tools` and `mcp:admin`; their metadata lists both, their 401 challenge
//! asks for `mcp:tools`, and their `admin_audit` tool answers 403 insufficient_scope without
//! `mcp:admin`. Against each, three clients do discovery → registration → PKCE → token →
//! `tools/call` → refresh → step-up to `mcp:admin`:
//!
//! - the TypeScript SDK's step-by-step functions (`tests/mcp-sdk/steps.mjs`) and its `auth()`
//!   orchestrator under `StreamableHTTPClientTransport` + `Client` (`tests/mcp-sdk/transport.mjs`);
//! - the Python SDK's `OAuthClientProvider` under `streamable_http_client` + `ClientSession`
//!   (`tests/python-sdk/client.py`);
//! - latchkey's own tools API as an app drives it (register, initiate-oauth without scopes,
//!   sign-in and consent, complete-oauth, forward; on 403 initiate again and retry).
//!
//! The clients report what they sent and got; the test checks the tokens at latchkey's
//! introspection endpoint with the resource server's credentials. Then bad input for the
//! authorization server's scope model. `scripts/test` installs the SDKs and requires these tests
//! (`LATCHKEY_REQUIRE_SDK_INTEROP`); a plain `cargo test` skips them when a package is missing.

use crate::common;

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestApp;
use latchkey::domain::resource::Resource;
use serde_json::{json, Value};

const TOOLS: &str = "mcp:tools";
const ADMIN: &str = "mcp:admin";
/// How far the test moves latchkey's clock to expire an access token (lifetime 3600 s).
const PAST_EXPIRY: i64 = 3700;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Python with `mcp` 2.3: `LATCHKEY_TEST_PYTHON` (scripts/test's venv), else that venv if it
/// exists, else `python3`.
fn python() -> PathBuf {
    if let Ok(p) = std::env::var("LATCHKEY_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = repo().join(".cache/test-venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// Why these tests cannot run here, if they cannot.
fn missing() -> Option<String> {
    let ts = repo().join("examples/typescript/node_modules");
    if !ts.join("@modelcontextprotocol/sdk").exists() || !ts.join("tsx").exists() {
        return Some("examples/typescript/node_modules is missing (npm ci there)".into());
    }
    if !repo()
        .join("tests/mcp-sdk/node_modules/@modelcontextprotocol/sdk")
        .exists()
    {
        return Some("tests/mcp-sdk/node_modules is missing (npm ci there)".into());
    }
    let py = Command::new(python())
        .args(["-c", "import mcp.client.auth, mcp.server.mcpserver, httpx2, uvicorn"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !py.is_ok_and(|s| s.success()) {
        return Some(format!(
            "{} cannot import mcp 2.3 (pip install -r examples/python/requirements.txt)",
            python().display()
        ));
    }
    None
}

/// `true` when the tests should run; `false` (with a message) when they are skipped.
fn available() -> bool {
    match missing() {
        None => true,
        Some(why) => {
            assert!(
                std::env::var("LATCHKEY_REQUIRE_SDK_INTEROP").is_err(),
                "LATCHKEY_REQUIRE_SDK_INTEROP is set but {why}"
            );
            eprintln!("SDK interop test skipped: {why} (scripts/test installs them)");
            false
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Server {
    TypeScript,
    Python,
}

/// A child process with its output in files; killed when dropped.
struct Process {
    child: Child,
    dir: tempfile::TempDir,
}

impl Process {
    fn spawn(mut cmd: Command) -> Process {
        let dir = tempfile::tempdir().unwrap();
        cmd.stdin(Stdio::null())
            .stdout(File::create(dir.path().join("stdout")).unwrap())
            .stderr(File::create(dir.path().join("stderr")).unwrap());
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Process { child, dir }
    }

    fn output(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    fn logs(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.output("stdout"), self.output("stderr"))
    }

    /// Wait for the process to end (killing it after `limit`): its success.
    fn wait(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("timed out after {limit:?}\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The embedded latchkey, one example server registered as a resource server declaring
/// `mcp:tools` and `mcp:admin`, and a control endpoint the client scripts call to move latchkey's
/// clock past an access token's lifetime.
struct Interop {
    app: TestApp,
    server: Server,
    url: String,
    rs_id: String,
    rs_secret: String,
    control: String,
    example: Process,
}

impl Interop {
    async fn start(server: Server) -> Interop {
        let app = TestApp::start().await;
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}/mcp");
        let now = app.server.state.clock.now();
        let (rs, rs_secret) = app
            .server
            .state
            .store
            .create_resource_server(
                &Resource::parse(&url).unwrap(),
                &[TOOLS.to_string(), ADMIN.to_string()],
                now,
            )
            .await
            .unwrap();

        let clock = app.server.state.clock.clone();
        let control = axum::Router::new().route(
            "/advance",
            axum::routing::post(move || {
                let clock = clock.clone();
                async move {
                    clock.advance(PAST_EXPIRY);
                    "advanced"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let control_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, control).await.unwrap() });

        let mut cmd = match server {
            Server::TypeScript => {
                // node with tsx's loader: one process to stop.
                let mut c = Command::new("node");
                c.args(["--import", "tsx", "server.ts"])
                    .current_dir(repo().join("examples/typescript"));
                c
            }
            Server::Python => {
                let mut c = Command::new(python());
                c.arg("server.py").current_dir(repo().join("examples/python"));
                c
            }
        };
        cmd.env("LATCHKEY_ISSUER", app.url("/oauth/2.1"))
            .env("LATCHKEY_RESOURCE_SERVER_ID", &rs.rs_id)
            .env("LATCHKEY_RESOURCE_SERVER_SECRET", &rs_secret)
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("MCP_RESOURCE_URL", &url);
        let mut example = Process::spawn(cmd);

        // Ready when its protected resource metadata answers.
        let prm = format!("http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp");
        let start = Instant::now();
        loop {
            if let Ok(res) = app.http.get(&prm).send().await {
                if res.status() == 200 {
                    break;
                }
            }
            if let Some(status) = example.child.try_wait().unwrap() {
                panic!("{server:?} example exited with {status}\n{}", example.logs());
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{server:?} example did not start\n{}",
                example.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Interop {
            app,
            server,
            url,
            rs_id: rs.rs_id,
            rs_secret,
            control: control_url,
            example,
        }
    }

    fn issuer(&self) -> String {
        self.app.url("/oauth/2.1")
    }

    /// RFC 7662 with this resource server's credentials.
    async fn introspect(&self, token: &str) -> Value {
        let (status, body) = self
            .app
            .post_form(
                "/oauth/2.1/introspect",
                &[("token", token)],
                Some((&self.rs_id, &self.rs_secret)),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Run a client script against the example: its report (the last stdout line).
    async fn run_client(&self, client: Client) -> Value {
        let (program, args, dir): (PathBuf, Vec<&str>, PathBuf) = match client {
            Client::TypeScriptSteps => ("node".into(), vec!["steps.mjs"], repo().join("tests/mcp-sdk")),
            Client::TypeScriptTransport => ("node".into(), vec!["transport.mjs"], repo().join("tests/mcp-sdk")),
            Client::Python => (python(), vec!["client.py"], repo().join("tests/python-sdk")),
        };
        let mut cmd = Command::new(program);
        cmd.args(args)
            .arg(&self.url)
            .current_dir(dir)
            .env("LATCHKEY_ISSUER", self.issuer())
            .env("LATCHKEY_TEST_CONTROL", &self.control);
        let (ok, stdout, logs) = tokio::task::spawn_blocking(move || {
            let mut p = Process::spawn(cmd);
            let ok = p.wait(Duration::from_secs(120));
            (ok, p.output("stdout"), p.logs())
        })
        .await
        .unwrap();
        let report: Value = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| panic!("{client:?}: no report\n{logs}"));
        eprintln!("{client:?} against the {:?} example:\n{report:#}", self.server);
        assert!(
            ok && report["ok"] == true,
            "{client:?} against the {:?} example failed: {}\n{logs}\nexample server:\n{}",
            self.server,
            report["failure"].as_str().unwrap_or("(see the report above)"),
            self.example.logs()
        );
        report
    }
}

#[derive(Clone, Copy, Debug)]
enum Client {
    TypeScriptSteps,
    TypeScriptTransport,
    Python,
}

fn scopes(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => s.split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect(),
        Value::Array(a) => a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

fn has(v: &Value, scope: &str) -> bool {
    scopes(v).iter().any(|s| s == scope)
}

/// What every SDK client's report must show, checked against latchkey.
async fn assert_sdk_client_connected(env: &Interop, client: Client, r: &Value) {
    assert_eq!(r["authorization_server"], env.issuer());
    let client_id = r["client_id"].as_str().unwrap();

    // Registration: one RFC 7591 request, accepted with the scope asked for (all declared).
    let requests = r["requests"].as_array().unwrap();
    let registrations: Vec<&Value> = requests.iter().filter(|q| q["endpoint"] == "register").collect();
    assert_eq!(registrations.len(), 1, "{requests:?}");
    let reg = registrations[0];
    assert_eq!(reg["status"], 201, "{reg}");
    assert!(has(&reg["requested_scope"], TOOLS), "{reg}");
    assert_eq!(
        scopes(&reg["registered_scope"]),
        scopes(&reg["requested_scope"]),
        "{reg}"
    );

    // The first authorization asked for mcp:tools (the challenge's scope) with the resource.
    let auths = r["authorizations"].as_array().unwrap();
    assert!(auths.len() >= 2, "{auths:?}");
    assert!(has(&auths[0]["requested_scope"], TOOLS), "{auths:?}");
    assert!(!has(&auths[0]["requested_scope"], ADMIN), "{auths:?}");
    assert_eq!(auths[0]["resource"], env.url.as_str());

    // Tokens: latchkey's, bound to the resource, with the scope the client asked for.
    let (first, refreshed, stepped) = match client {
        Client::TypeScriptSteps => (r["first"].clone(), r["refreshed"].clone(), r["stepped_up"].clone()),
        _ => {
            // Every token pair the SDK saved, in order: the first, refreshed ones (without
            // mcp:admin), the stepped-up one last.
            let t = r["tokens"].as_array().unwrap();
            let refreshed = t[1..]
                .iter()
                .rev()
                .find(|x| !has(&x["scope"], ADMIN))
                .unwrap_or_else(|| panic!("no refreshed token in {t:?}"));
            (t[0].clone(), refreshed.clone(), t[t.len() - 1].clone())
        }
    };
    let first_at = first["access_token"].as_str().unwrap();
    assert!(first_at.starts_with("lk_at_"), "{first}");
    assert!(
        first["refresh_token"].as_str().unwrap().starts_with("lk_rt_"),
        "{first}"
    );
    let i = env.introspect(first_at).await;
    // Moved past its lifetime by the test: inactive now.
    assert_eq!(i, json!({"active": false}), "the first access token expired");
    let i = env.introspect(refreshed["access_token"].as_str().unwrap()).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["aud"], env.url.as_str());
    assert_eq!(i["client_id"], client_id);
    assert_eq!(scopes(&i["scope"]), scopes(&auths[0]["requested_scope"]), "{i}");
    assert!(!has(&i["scope"], ADMIN));

    // The first tools/call ran with the first token's scope, as the server saw it at introspection.
    assert!(has(&r["echo"]["scopes"], TOOLS), "{}", r["echo"]);
    assert!(!has(&r["echo"]["scopes"], ADMIN));
    assert_eq!(r["echo"]["client_id"], client_id);
    assert!(r["echo"]["username"].as_str().unwrap().ends_with("@example.com"));

    // Refresh: a refresh_token grant succeeded and kept the scope.
    let refreshes: Vec<&Value> = requests
        .iter()
        .filter(|q| q["endpoint"] == "token" && q["grant_type"] == "refresh_token")
        .collect();
    assert!(!refreshes.is_empty(), "{requests:?}");
    assert!(refreshes.iter().all(|q| q["status"] == 200), "{refreshes:?}");
    assert_eq!(refreshes[0]["resource"], env.url.as_str());
    let after = if r["echo_after_refresh"].is_object() {
        &r["echo_after_refresh"]
    } else {
        &r["echo_after_expiry"]
    };
    assert!(has(&after["scopes"], TOOLS), "{after}");

    // Step-up: a later authorization asked for mcp:admin too, the consent page named it, and the
    // admin tool answered with a token that has it.
    let last = &auths[auths.len() - 1];
    assert!(
        has(&last["requested_scope"], ADMIN) && has(&last["requested_scope"], TOOLS),
        "{last}"
    );
    let consent = last["pages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["page"] == "consent");
    assert!(
        consent.is_some_and(|c| has(&c["scopes"], ADMIN)),
        "the user approved mcp:admin: {last}"
    );
    let i = env.introspect(stepped["access_token"].as_str().unwrap()).await;
    assert_eq!(i["active"], true, "{i}");
    assert!(has(&i["scope"], ADMIN) && has(&i["scope"], TOOLS), "{i}");
    assert_eq!(r["admin"]["admin"], true, "{}", r["admin"]);
    assert!(has(&r["admin"]["scopes"], ADMIN), "{}", r["admin"]);
    assert_eq!(r["admin"]["client_id"], client_id);
}

async fn sdk_client_against(server: Server, client: Client) {
    if !available() {
        return;
    }
    let env = Interop::start(server).await;
    let report = env.run_client(client).await;
    assert_sdk_client_connected(&env, client, &report).await;
    match client {
        Client::TypeScriptSteps => {
            // The expired token was refused by the server with the challenge.
            assert_eq!(report["expired_call"]["status"], 401, "{}", report["expired_call"]);
            let denied = &report["admin_denied"];
            assert_eq!(denied["status"], 403);
            assert_eq!(denied["error"], "insufficient_scope");
            assert_eq!(scopes(&denied["scope"]), vec![TOOLS, ADMIN]);
            assert!(denied["resourceMetadataUrl"]
                .as_str()
                .unwrap()
                .ends_with("/.well-known/oauth-protected-resource/mcp"));
        }
        Client::TypeScriptTransport => {
            eprintln!(
                "TypeScript transport step-up: {} {}",
                report["step_up"], report["sdk_step_up_error"]
            );
        }
        Client::Python => {
            // The SDK saw the 403 insufficient_scope challenge naming both scopes.
            let challenges = report["challenges"].as_array().unwrap();
            assert!(challenges.iter().any(|c| c["status"] == 403
                && c["www_authenticate"]
                    .as_str()
                    .unwrap()
                    .contains("scope=\"mcp:tools mcp:admin\"")));
        }
    }
}

/// The example runs under tsx, which does not check types: check them, as a user's build would.
#[test]
fn typescript_example_type_checks() {
    if !available() {
        return;
    }
    let out = Command::new("node")
        .args(["node_modules/typescript/bin/tsc", "--noEmit", "-p", "."])
        .current_dir(repo().join("examples/typescript"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tsc:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_step_by_step_against_the_typescript_example() {
    sdk_client_against(Server::TypeScript, Client::TypeScriptSteps).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_step_by_step_against_the_python_example() {
    sdk_client_against(Server::Python, Client::TypeScriptSteps).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_transport_against_the_typescript_example() {
    sdk_client_against(Server::TypeScript, Client::TypeScriptTransport).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_transport_against_the_python_example() {
    sdk_client_against(Server::Python, Client::TypeScriptTransport).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_against_the_typescript_example() {
    sdk_client_against(Server::TypeScript, Client::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_against_the_python_example() {
    sdk_client_against(Server::Python, Client::Python).await;
}

// latchkey's tools API, as an app uses it.

const TOOL_REDIRECT: &str = "http://127.0.0.1:7777/callback";

/// One JSON-RPC request through `/tools/{id}/mcp`: (status, WWW-Authenticate, body).
async fn forward(env: &Interop, api_key: &str, tool_id: &str, method: &str, params: Value) -> (u16, String, Value) {
    let mut req = env
        .app
        .http
        .post(env.app.url(&format!("/tools/{tool_id}/mcp")))
        .header("x-api-key", api_key)
        .header("accept", "application/json, text/event-stream");
    if method != "initialize" {
        req = req.header("mcp-protocol-version", "2025-11-25");
    }
    let res = req
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let www = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = res.text().await.unwrap();
    (status, www, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// initiate-oauth without scopes → the user signs in and approves → complete-oauth: the scope the
/// authorization URL asked for.
async fn connect_tool(env: &Interop, api_key: &str, tool_id: &str) -> String {
    let (status, init) = env
        .app
        .vault(
            "POST",
            &format!("/tools/{tool_id}/initiate-oauth"),
            Some(api_key),
            Some(json!({"redirect_uri": TOOL_REDIRECT})),
        )
        .await;
    assert_eq!(status, 200, "{init}");
    let auth_url = url::Url::parse(init["authorization_url"].as_str().unwrap()).unwrap();
    let q: std::collections::HashMap<String, String> = auth_url.query_pairs().into_owned().collect();
    assert_eq!(q["resource"], env.url);
    let location = env
        .app
        .approve_in_browser(auth_url.as_str(), "tools-user@example.com")
        .await;
    let back: std::collections::HashMap<String, String> =
        url::Url::parse(&location).unwrap().query_pairs().into_owned().collect();
    assert!(!back.contains_key("error"), "authorization refused: {location}");
    let (status, body) = env
        .app
        .vault(
            "POST",
            &format!("/tools/{tool_id}/complete-oauth"),
            Some(api_key),
            Some(json!({"code": back["code"], "state": back["state"], "iss": back["iss"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    q.get("scope").cloned().unwrap_or_default()
}

/// tools/call through forwarding: the tool's JSON answer.
async fn call_tool(env: &Interop, api_key: &str, tool_id: &str, name: &str, args: Value) -> (u16, String, Value) {
    let (status, www, body) = forward(
        env,
        api_key,
        tool_id,
        "tools/call",
        json!({"name": name, "arguments": args}),
    )
    .await;
    if status != 200 {
        return (status, www, body);
    }
    assert!(body["result"]["isError"] != true, "{body}");
    let text = body["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"));
    (status, www, serde_json::from_str(text).unwrap())
}

async fn tools_api_against(server: Server) {
    if !available() {
        return;
    }
    let env = Interop::start(server).await;
    let project = env.app.project("interop").await;
    let key = project.api_key.as_str();
    let (status, body) = env
        .app
        .vault(
            "POST",
            "/tools",
            Some(key),
            Some(json!({"name": "example", "server_url": env.url, "redirect_uris": [TOOL_REDIRECT]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let tool_id = body["item_id"].as_str().unwrap().to_string();
    assert_eq!(body["tool"]["authorization_server"], env.issuer());
    assert_eq!(body["tool"]["resource"], env.url.as_str());

    // Connect without naming scopes: latchkey asks for what the server's challenge named.
    let asked = connect_tool(&env, key, &tool_id).await;
    eprintln!("tools API against the {server:?} example: first authorization asked for {asked:?}");
    assert!(has(&json!(asked), TOOLS), "{asked}");
    assert!(!has(&json!(asked), ADMIN), "{asked}");

    let (status, _, init) = forward(
        &env,
        key,
        &tool_id,
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "latchkey-app", "version": "1"}}),
    )
    .await;
    assert_eq!(status, 200, "{init}");
    assert!(init["result"]["serverInfo"]["name"].is_string(), "{init}");
    let (status, _, echo) = call_tool(&env, key, &tool_id, "echo", json!({"text": "through latchkey"})).await;
    assert_eq!(status, 200, "{echo}");
    assert_eq!(echo["echo"], "through latchkey");
    assert!(has(&echo["scopes"], TOOLS) && !has(&echo["scopes"], ADMIN), "{echo}");
    let first_client = echo["client_id"].clone();

    // The access token's lifetime passes: latchkey refreshes (with the resource) before forwarding,
    // so the server sees a new, active token from the same client with the same scope.
    env.app.server.state.clock.advance(PAST_EXPIRY);
    let (status, _, echo) = call_tool(&env, key, &tool_id, "echo", json!({"text": "after expiry"})).await;
    assert_eq!(status, 200, "{echo}");
    assert_eq!(echo["client_id"], first_client);
    assert!(has(&echo["scopes"], TOOLS), "{echo}");

    // Step-up: the admin tool's 403 reaches the app with the server's challenge; the app initiates
    // again without scopes and latchkey asks for the union; then the admin tool answers.
    let (status, www, body) = call_tool(&env, key, &tool_id, "admin_audit", json!({})).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        www.contains("error=\"insufficient_scope\"") && www.contains("scope=\"mcp:tools mcp:admin\""),
        "{www}"
    );
    let asked = connect_tool(&env, key, &tool_id).await;
    eprintln!("tools API against the {server:?} example: step-up authorization asked for {asked:?}");
    assert!(has(&json!(asked), TOOLS) && has(&json!(asked), ADMIN), "{asked}");
    let (status, _, admin) = call_tool(&env, key, &tool_id, "admin_audit", json!({})).await;
    assert_eq!(status, 200, "{admin}");
    assert_eq!(admin["admin"], true);
    assert!(has(&admin["scopes"], ADMIN) && has(&admin["scopes"], TOOLS), "{admin}");
    assert_eq!(admin["username"], "tools-user@example.com");
    // And the ordinary tool still works with the stepped-up token.
    let (status, _, echo) = call_tool(&env, key, &tool_id, "echo", json!({"text": "still"})).await;
    assert_eq!(status, 200, "{echo}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latchkey_tools_api_against_the_typescript_example() {
    tools_api_against(Server::TypeScript).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latchkey_tools_api_against_the_python_example() {
    tools_api_against(Server::Python).await;
}

// The authorization server's scope model, bad input. Two resource servers: the MCP server
// declaring mcp:tools and mcp:admin, and another declaring billing:read.

const REDIRECT: &str = "http://127.0.0.1:7777/callback";
const MCP: &str = "http://127.0.0.1:9/mcp";
const OTHER: &str = "http://127.0.0.1:9/billing";

async fn scoped_app() -> TestApp {
    let app = TestApp::start().await;
    let store = &app.server.state.store;
    let now = app.server.state.clock.now();
    store
        .create_resource_server(
            &Resource::parse(MCP).unwrap(),
            &[TOOLS.to_string(), ADMIN.to_string()],
            now,
        )
        .await
        .unwrap();
    store
        .create_resource_server(&Resource::parse(OTHER).unwrap(), &["billing:read".to_string()], now)
        .await
        .unwrap();
    app
}

async fn public_client(app: &TestApp, grant_types: &[&str]) -> String {
    let (status, body) = app
        .register(json!({
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "grant_types": grant_types,
        }))
        .await;
    assert_eq!(status, 201, "{body}");
    body["client_id"].as_str().unwrap().to_string()
}

/// An authorization request's answer: the Location of the redirect.
async fn authorize(app: &TestApp, client_id: &str, resource: &str, scope: &str) -> String {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("state", "scope-state"),
            ("code_challenge", common::CHALLENGE),
            ("code_challenge_method", "S256"),
            ("resource", resource),
            ("scope", scope),
        ])
        .finish();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = http
        .get(app.url(&format!("/oauth/2.1/authorize?{q}")))
        .send()
        .await
        .unwrap();
    assert!(
        res.status().is_redirection(),
        "{}: {}",
        res.status(),
        res.text().await.unwrap()
    );
    res.headers()["location"].to_str().unwrap().to_string()
}

fn error_of(location: &str) -> Option<String> {
    url::Url::parse(location)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == "error")
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn rfc7591_2_registration_keeps_declared_scopes_and_leaves_out_undeclared_ones() {
    let app = scoped_app().await;
    // What the TypeScript SDK sends: exactly the server's challenge.
    let (status, body) = app
        .register(json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "scope": "mcp:tools"}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["scope"], "mcp:tools");
    // What the Python SDK sends: the challenge plus offline_access.
    let (status, body) = app
        .register(json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "scope": "mcp:tools offline_access"}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(scopes(&body["scope"]), vec![TOOLS, "offline_access"]);
    // Scopes nobody declared are left out of the registration, and the response shows it.
    let (status, body) = app
        .register(json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "scope": "mcp:tools mcp:admin undeclared:write"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let registered = scopes(&body["scope"]);
    assert!(
        registered.contains(&TOOLS.to_string()) && registered.contains(&ADMIN.to_string()),
        "{body}"
    );
    assert!(!registered.contains(&"undeclared:write".to_string()), "{body}");
    let client_id = body["client_id"].as_str().unwrap();
    let stored = app
        .server
        .state
        .store
        .get_client(client_id, app.server.state.clock.now())
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.metadata.scope.unwrap_or_default().contains("undeclared"));
}

#[tokio::test]
async fn rfc6749_4_1_2_1_a_scope_of_another_resource_is_invalid_scope() {
    let app = scoped_app().await;
    let client_id = public_client(&app, &["authorization_code", "refresh_token"]).await;
    // The MCP server's own scopes go on to sign-in.
    let ok = authorize(&app, &client_id, MCP, "mcp:tools mcp:admin").await;
    assert_eq!(error_of(&ok), None, "{ok}");
    assert!(ok.starts_with(&app.base), "{ok}");
    // Another resource's scope, asked for this one: invalid_scope back to the client.
    let refused = authorize(&app, &client_id, MCP, "mcp:tools billing:read").await;
    assert!(refused.starts_with(REDIRECT), "{refused}");
    assert_eq!(error_of(&refused).as_deref(), Some("invalid_scope"), "{refused}");
    let q: std::collections::HashMap<String, String> =
        url::Url::parse(&refused).unwrap().query_pairs().into_owned().collect();
    assert_eq!(q["state"], "scope-state");
    assert_eq!(q["iss"], app.url("/oauth/2.1"));
    // And the other way round.
    let refused = authorize(&app, &client_id, OTHER, "mcp:admin").await;
    assert_eq!(error_of(&refused).as_deref(), Some("invalid_scope"), "{refused}");
}

#[tokio::test]
async fn offline_access_without_the_refresh_grant_is_invalid_scope() {
    let app = scoped_app().await;
    let with_refresh = public_client(&app, &["authorization_code", "refresh_token"]).await;
    let ok = authorize(&app, &with_refresh, MCP, "mcp:tools offline_access").await;
    assert_eq!(error_of(&ok), None, "{ok}");
    let without = public_client(&app, &["authorization_code"]).await;
    let ok = authorize(&app, &without, MCP, "mcp:tools").await;
    assert_eq!(error_of(&ok), None, "{ok}");
    let refused = authorize(&app, &without, MCP, "mcp:tools offline_access").await;
    assert!(refused.starts_with(REDIRECT), "{refused}");
    assert_eq!(error_of(&refused).as_deref(), Some("invalid_scope"), "{refused}");
}
