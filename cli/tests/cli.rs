//! The `latchkey` binary's vault verbs, run as an operator runs them: `project create --json`,
//! `api-key create|list|revoke`, `provider set` for a catalogue and a custom provider, then
//! `latchkey serve` on the same data dir answering with those keys over HTTP.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn latchkey(args: &[&str], dir: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("the latchkey binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal HTTP/1.1 request: (status, body).
fn post_json(port: u16, path: &str, api_key: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {api_key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split(' ').nth(1).unwrap().parse().unwrap();
    (status, out.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
}

#[test]
fn projects_keys_and_providers_from_the_command_line_then_serve() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ok, out, err) = latchkey(&["project", "create", "My app", "--json"], d);
    assert!(ok, "{err}");
    let project: Value = serde_json::from_str(&out).unwrap();
    let pid = project["project_id"].as_str().unwrap().to_string();
    let first_key = project["api_key"].as_str().unwrap().to_string();
    assert!(first_key.starts_with(&format!("lk_ak_{pid}.")));

    let (ok, out, err) = latchkey(&["api-key", "create", "--project", &pid, "--json"], d);
    assert!(ok, "{err}");
    let second: Value = serde_json::from_str(&out).unwrap();
    let second_id = second["api_key_id"].as_str().unwrap().to_string();
    let second_key = second["api_key"].as_str().unwrap().to_string();
    let (ok, out, _) = latchkey(&["api-key", "list", "--project", &pid], d);
    assert!(ok);
    assert_eq!(out.lines().count(), 2);
    assert!(
        !out.contains(&first_key) && !out.contains(&second_key),
        "keys are never listed"
    );
    let (ok, _, err) = latchkey(&["api-key", "revoke", &second_id, "--project", &pid], d);
    assert!(ok, "{err}");
    let (ok, _, err) = latchkey(&["api-key", "revoke", &second_id, "--project", &pid], d);
    assert!(!ok && err.contains("has no API key"), "{err}");

    let (ok, out, err) = latchkey(
        &[
            "provider",
            "set",
            "--project",
            &pid,
            "google",
            "--client-id",
            "gid",
            "--client-secret",
            "google-secret-value",
        ],
        d,
    );
    assert!(ok, "{err}");
    assert!(out.contains("accounts.google.com"), "{out}");
    let (ok, _, err) = latchkey(
        &[
            "provider",
            "set",
            "--project",
            &pid,
            "acme",
            "--client-id",
            "aid",
            "--client-secret",
            "acme-secret-value",
            "--authorize-url",
            "https://id.acme.invalid/authorize",
            "--token-url",
            "https://id.acme.invalid/token",
            "--api-base-url",
            "https://api.acme.invalid/v1/",
            "--scope",
            "read",
            "--scope",
            "write",
        ],
        d,
    );
    assert!(ok, "{err}");
    // A custom provider without its endpoints is refused with the flags it needs.
    let (ok, _, err) = latchkey(
        &[
            "provider",
            "set",
            "--project",
            &pid,
            "other",
            "--client-id",
            "x",
            "--client-secret",
            "y",
        ],
        d,
    );
    assert!(!ok && err.contains("--authorize-url"), "{err}");
    // An unknown project.
    let (ok, _, err) = latchkey(
        &[
            "provider",
            "set",
            "--project",
            "prj_nope",
            "google",
            "--client-id",
            "x",
            "--client-secret",
            "y",
        ],
        d,
    );
    assert!(!ok && err.contains("no project"), "{err}");
    let (ok, out, _) = latchkey(&["provider", "list", "--project", &pid], d);
    assert!(ok);
    assert!(out.contains("\"acme\"") && out.contains("\"google\""));
    assert!(!out.contains("secret-value"));
    // The SQLite store holds no client secret or API key in the clear.
    let mut db = Vec::new();
    for entry in std::fs::read_dir(d).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("latchkey.db") {
            db.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(!db.is_empty());
    for needle in [
        "google-secret-value",
        "acme-secret-value",
        first_key.as_str(),
        second_key.as_str(),
    ] {
        assert!(
            !db.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} stored in the clear"
        );
    }

    // serve on the same data dir: the first key works, the revoked one does not.
    let port = free_port();
    let serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(d)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let body = r#"{"user_id":"u1","provider":"acme"}"#;
    let (status, text) = post_json(port, "/v1/identity/sessions", &first_key, body);
    assert_eq!(status, 201, "{text}");
    let session: Value = serde_json::from_str(&text).unwrap();
    let auth_url = session["auth_url"].as_str().unwrap();
    assert!(auth_url.starts_with("https://id.acme.invalid/authorize?"), "{auth_url}");
    assert!(
        auth_url.contains("scope=read+write") && auth_url.contains("client_id=aid"),
        "{auth_url}"
    );
    let (status, text) = post_json(port, "/v1/identity/sessions", &second_key, body);
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("invalid_api_key"));
    drop(serve);
}

#[test]
fn resource_server_update_replaces_declared_scopes_and_refuses_an_unknown_id() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = latchkey(
        &[
            "resource-server",
            "create",
            "--resource",
            "https://mcp.example.com/mcp",
            "--scope",
            "mcp:tools",
            "--json",
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(out.trim()).unwrap();
    let id = created["resource_server_id"].as_str().unwrap();
    let (ok, out, err) = latchkey(
        &[
            "resource-server",
            "update",
            id,
            "--scope",
            "mcp:tools",
            "--scope",
            "mcp:admin",
            "--json",
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    let updated: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(updated["resource_server_id"], id);
    assert_eq!(updated["scopes"], serde_json::json!(["mcp:tools", "mcp:admin"]));

    let (ok, _, err) = latchkey(
        &["resource-server", "update", "lkrs_unknown", "--scope", "x"],
        dir.path(),
    );
    assert!(!ok);
    assert!(err.contains("no resource server lkrs_unknown"), "{err}");
    let (ok, _, err) = latchkey(&["resource-server", "update", id, "--scope", "bad scope"], dir.path());
    assert!(!ok, "a malformed scope is refused: {err}");
    let (ok, out, _) = latchkey(&["resource-server", "list", "--json"], dir.path());
    assert!(ok);
    let listed: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        listed["scopes"],
        serde_json::json!(["mcp:tools", "mcp:admin"]),
        "unchanged by the refusals"
    );
}
