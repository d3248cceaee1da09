//! A real browser (headless Chromium driven by playwright-core, `tests/browser/consent.mjs`) goes
//! through the authorize endpoint as `latchkey serve` runs it: the local development sign-in page,
//! the consent page of a dynamically registered client claiming a well-known name (marked unverified,
//! the scopes in words; framing forbidden; screenshots at 1280 and 390 px into
//! `.cache/screenshots/`, with the front door `GET /` too), Approve, and the redirect to the client with `code`, `state` and `iss`;
//! the code is then redeemed with its PKCE verifier. `scripts/test` installs playwright-core
//! (`tests/browser`) and Chromium and requires this test; a plain `cargo test` skips it when either
//! is missing. `chromium_revokes_a_connected_app_through_the_account_page` does the same for "Your
//! connected apps" (`tests/browser/account.mjs`): sign in, list, revoke, sign out, with screenshots.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{TestApp, CHALLENGE, RESOURCE, VERIFIER};

const CHROMIUM: &str = "/usr/bin/chromium";
const REDIRECT_URI: &str = "http://127.0.0.1:7777/callback";
/// A name anyone can claim by dynamic registration (issue 17's reproduction).
const CLIENT_NAME: &str = "Claude Desktop";
const TOOLS_WORDS: &str = "Run this server's tools";

fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Node 22 from tests/conformance when installed, else `node` on PATH.
fn node() -> PathBuf {
    let pinned = tests_dir().join("conformance/node_modules/.bin/node");
    if pinned.exists() {
        pinned
    } else {
        PathBuf::from("node")
    }
}

/// Why the browser test cannot run here, if it cannot.
fn missing() -> Option<String> {
    if !tests_dir().join("browser/node_modules/playwright-core").exists() {
        return Some("tests/browser/node_modules/playwright-core is missing".into());
    }
    if !Path::new(CHROMIUM).exists() {
        return Some(format!("{CHROMIUM} is missing"));
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_consents_and_is_redirected_with_a_code_mcp_security_dcr_client_marked_unverified() {
    if let Some(why) = missing() {
        assert!(
            std::env::var("LATCHKEY_REQUIRE_BROWSER").is_err(),
            "LATCHKEY_REQUIRE_BROWSER is set but {why}"
        );
        eprintln!("browser test skipped: {why} (scripts/test installs playwright-core and Chromium)");
        return;
    }
    let app = TestApp::start().await;
    let now = app.server.state.clock.now();
    app.server
        .state
        .store
        .create_described_resource_server(
            &latchkey::domain::resource::Resource::parse(RESOURCE).unwrap(),
            &["mcp:tools".to_string()],
            &[("mcp:tools".to_string(), TOOLS_WORDS.to_string())].into(),
            now,
        )
        .await
        .unwrap();
    let (status, body) = app
        .register(serde_json::json!({
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "none",
            "client_name": CLIENT_NAME,
            "client_uri": "https://claude.example.invalid/about",
            "logo_uri": "https://cdn.example.invalid/logo.png",
        }))
        .await;
    assert_eq!(status, 201, "{body}");
    let client_id = body["client_id"].as_str().unwrap().to_string();

    let state = "browser-state-42";
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("state", state),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("resource", RESOURCE),
            ("scope", "openid email mcp:tools"),
        ])
        .finish();
    let authorize_url = app.url(&format!("/oauth/2.1/authorize?{q}"));
    let front_door_url = app.url("/");
    let screenshots = tests_dir().parent().unwrap().join(".cache/screenshots");

    let out = {
        let screenshots = screenshots.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(node())
                .arg("consent.mjs")
                .current_dir(tests_dir().join("browser"))
                .env("AUTHORIZE_URL", authorize_url)
                .env("FRONT_DOOR_URL", front_door_url)
                .env("REDIRECT_PREFIX", REDIRECT_URI)
                .env("SCREENSHOT_DIR", screenshots)
                .env("CHROMIUM", CHROMIUM)
                .output()
                .expect("node runs")
        })
        .await
        .unwrap()
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "browser flow failed:\n{stdout}\n{stderr}");
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or_else(|| {
        panic!("no JSON line from consent.mjs:\n{stdout}\n{stderr}");
    });
    let result: serde_json::Value = serde_json::from_str(line).unwrap();

    assert_eq!(result["state"], state, "{result}");
    assert_eq!(result["iss"], format!("{}/oauth/2.1", app.base), "{result}");
    // The front door, before the flow: one resource server, one client, no project yet.
    let door = result["front_door_text"].as_str().unwrap();
    for expected in [
        "latchkey is running",
        &format!("{}/oauth/2.1", app.base),
        &format!("{}/.well-known/oauth-authorization-server/oauth/2.1", app.base),
        "latchkey project create",
    ] {
        assert!(door.contains(expected), "front door lacks {expected:?}:\n{door}");
    }
    let title = result["consent_title"].as_str().unwrap();
    assert!(title.contains(CLIENT_NAME), "consent title {title:?}");
    let text = result["consent_text"].as_str().unwrap();
    for expected in [
        CLIENT_NAME,
        "Unverified",
        "Anyone can register an app under any name",
        client_id.as_str(),
        RESOURCE,
        "alice@example.com",
        "See your email address",
        TOOLS_WORDS,
        "mcp:tools",
        "127.0.0.1",
        "claude.example.invalid",
        "cdn.example.invalid",
    ] {
        assert!(text.contains(expected), "consent page lacks {expected:?}:\n{text}");
    }
    // The claimed name never appears without the marking: on every line (and in the title) that
    // shows it, the page says "unverified".
    let page_title = result["page_title"].as_str().unwrap();
    for line in text.lines().chain([title, page_title]) {
        if line.contains(CLIENT_NAME) {
            assert!(
                line.to_lowercase().contains("unverified"),
                "name shown unmarked: {line:?}"
            );
        }
    }
    let sign_in_text = result["sign_in_text"].as_str().unwrap();
    for line in sign_in_text.lines() {
        if line.contains(CLIENT_NAME) {
            assert!(
                line.to_lowercase().contains("unverified"),
                "sign-in shows the name unmarked: {line:?}"
            );
        }
    }
    for shot in [
        "consent-laptop.png",
        "consent-phone.png",
        "front-door-laptop.png",
        "front-door-phone.png",
    ] {
        let len = std::fs::metadata(screenshots.join(shot)).map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "screenshot {shot} missing or empty");
    }

    // The code the browser carried back redeems with the PKCE verifier, for the resource.
    let code = result["code"].as_str().unwrap();
    let (status, body) = app
        .post_form(
            "/oauth/2.1/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", VERIFIER),
                ("client_id", &client_id),
            ],
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
    assert_eq!(body["scope"], "openid email mcp:tools", "{body}");
}

/// Issue 15 in a real browser, without JavaScript: a user with a connected app opens "Your connected
/// apps", is sent to sign in and back, sees the app (framing forbidden, no script; screenshots at
/// 1280 and 390 px wide into `.cache/screenshots/account-*.png`, nothing wider than the phone),
/// revokes it through the page (303 back with a notice, the card gone) and signs out. The app's
/// tokens are then dead: introspection says inactive and the refresh token is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_revokes_a_connected_app_through_the_account_page() {
    if let Some(why) = missing() {
        assert!(
            std::env::var("LATCHKEY_REQUIRE_BROWSER").is_err(),
            "LATCHKEY_REQUIRE_BROWSER is set but {why}"
        );
        eprintln!("browser test skipped: {why} (scripts/test installs playwright-core and Chromium)");
        return;
    }
    let app = TestApp::start().await;
    let (rs_id, rs_secret) = app.resource_server(RESOURCE).await;
    let (status, body) = app
        .register(serde_json::json!({
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "client_name": CLIENT_NAME,
        }))
        .await;
    assert_eq!(status, 201, "{body}");
    let client_id = body["client_id"].as_str().unwrap().to_string();
    // alice@example.com approves the client (in another browser) and the client gets its tokens.
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("state", "s"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("resource", RESOURCE),
            ("scope", "openid email offline_access"),
        ])
        .finish();
    let location = app
        .approve_in_browser(&app.url(&format!("/oauth/2.1/authorize?{q}")), "alice@example.com")
        .await;
    let code = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    let (status, tokens) = app
        .post_form(
            "/oauth/2.1/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", VERIFIER),
                ("client_id", &client_id),
            ],
            None,
        )
        .await;
    assert_eq!(status, 200, "{tokens}");

    let screenshots = tests_dir().parent().unwrap().join(".cache/screenshots");
    let account_url = app.url("/oauth/2.1/account");
    let out = {
        let screenshots = screenshots.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(node())
                .arg("account.mjs")
                .current_dir(tests_dir().join("browser"))
                .env("ACCOUNT_URL", account_url)
                .env("SCREENSHOT_DIR", screenshots)
                .env("CHROMIUM", CHROMIUM)
                .output()
                .expect("node runs")
        })
        .await
        .unwrap()
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "browser flow failed:\n{stdout}\n{stderr}");
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or_else(|| {
        panic!("no JSON line from account.mjs:\n{stdout}\n{stderr}");
    });
    let result: serde_json::Value = serde_json::from_str(line).unwrap();

    assert!(
        result["csp"].as_str().unwrap().contains("frame-ancestors 'none'"),
        "{result}"
    );
    assert_eq!(result["xfo"].as_str().unwrap().to_ascii_uppercase(), "DENY", "{result}");
    assert_eq!(result["scripts"], 0, "no script on the page");
    assert_eq!(result["cards_before"], 1, "{result}");
    assert_eq!(result["cards_after"], 0, "{result}");
    assert!(
        result["phone_overflow"].as_i64().unwrap() <= 0,
        "wider than 390 px: {result}"
    );
    let listed = result["listed_text"].as_str().unwrap();
    for expected in [
        "Your connected apps",
        "alice@example.com",
        CLIENT_NAME,
        "127.0.0.1",
        RESOURCE,
        "See your email address",
        "Stay connected when you are away",
        "Approved",
        "Last used",
    ] {
        assert!(
            listed.contains(expected),
            "the account page lacks {expected:?}:\n{listed}"
        );
    }
    assert!(
        result["revoked_text"].as_str().unwrap().contains("Access revoked"),
        "{result}"
    );
    assert!(
        result["signed_out_text"]
            .as_str()
            .unwrap()
            .contains("You are signed out"),
        "{result}"
    );
    for shot in [
        "account-laptop.png",
        "account-phone.png",
        "account-revoked-laptop.png",
        "account-revoked-phone.png",
    ] {
        let len = std::fs::metadata(screenshots.join(shot)).map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "screenshot {shot} missing or empty");
    }

    // Revoked through the page: the tokens are dead.
    let (status, body) = app
        .post_form(
            "/oauth/2.1/introspect",
            &[("token", tokens["access_token"].as_str().unwrap())],
            Some((&rs_id, &rs_secret)),
        )
        .await;
    assert_eq!((status, &body["active"]), (200, &serde_json::json!(false)), "{body}");
    let (status, body) = app
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
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
}
