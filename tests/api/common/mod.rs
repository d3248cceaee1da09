//! `TestApp`: an embedded latchkey (in-memory emulator, local keyring) on a loopback port, with typed
//! helpers to call it over real HTTP and to inspect what it stored.
#![allow(dead_code)]

pub mod example;
pub mod fake_provider;
pub mod mcp_server;

use std::path::PathBuf;

use latchkey::local::{self, Embedded, Options};
use serde_json::Value;

pub struct TestApp {
    pub server: Embedded,
    pub http: reqwest::Client,
    pub base: String,
}

impl TestApp {
    pub async fn start() -> TestApp {
        Self::start_with(None).await
    }

    pub async fn start_with(data_dir: Option<PathBuf>) -> TestApp {
        Self::start_configured(data_dir, &[]).await
    }

    /// Start with configuration values (`LATCHKEY_*`) set for this server only.
    pub async fn start_configured(data_dir: Option<PathBuf>, config: &[(&str, &str)]) -> TestApp {
        Self::start_options(data_dir, config, false).await
    }

    /// Start as `latchkey serve` does, with the store's read cache on.
    pub async fn start_read_cached(data_dir: Option<PathBuf>) -> TestApp {
        Self::start_options(data_dir, &[], true).await
    }

    async fn start_options(data_dir: Option<PathBuf>, config: &[(&str, &str)], read_cache: bool) -> TestApp {
        let server = local::start(Options {
            addr: "127.0.0.1:0".parse().unwrap(),
            data_dir,
            public_url: None,
            config: config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            read_cache,
        })
        .await
        .expect("embedded latchkey starts");
        let base = server.base_url();
        TestApp {
            server,
            http: reqwest::Client::new(),
            base,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `(dynamodb, kms)` calls made so far.
    pub fn calls(&self) -> (u64, u64) {
        self.server.state.metrics.snapshot()
    }

    /// POST a raw body to the registration endpoint.
    pub async fn register_raw(&self, content_type: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let res = self
            .http
            .post(self.url("/oauth/2.1/register"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn register(&self, body: Value) -> (u16, Value) {
        self.register_raw("application/json", body.to_string()).await
    }

    /// Every item in the table, raw.
    pub async fn all_items(&self) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let store = &self.server.state.store;
        store
            .client()
            .scan()
            .table_name(store.table())
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default()
    }
}

/// Items of one kind (the `type` attribute), raw.
pub async fn items_of(
    app: &TestApp,
    kind: &str,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    app.all_items()
        .await
        .into_iter()
        .filter(|i| matches!(i.get("type"), Some(aws_sdk_dynamodb::types::AttributeValue::S(t)) if t == kind))
        .collect()
}

/// A server with `config`, the fake provider, and a project whose `google` is that provider.
pub async fn setup_with(config: &[(&str, &str)]) -> (TestApp, fake_provider::FakeProvider, Project) {
    let app = TestApp::start_configured(None, config).await;
    let fake = fake_provider::FakeProvider::start().await;
    let project = app.project("demo").await;
    app.set_provider(&project, "google", Some("google"), fake.overrides())
        .await;
    (app, fake, project)
}

/// Connect `user` to `google` through the whole browser flow and assert it worked; the session id.
pub async fn connected(app: &TestApp, project: &Project, user: &str) -> String {
    let (session_id, status, page) = app.connect(project, user, "google").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Connected to Fake Google"), "{page}");
    session_id
}

/// `GET /v1/identity/users/{user}/connections`, asserted 200: the `connections` list.
pub async fn connections(app: &TestApp, project: &Project, user: &str) -> Value {
    let (status, list) = app
        .vault(
            "GET",
            &format!("/v1/identity/users/{user}/connections"),
            Some(&project.api_key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{list}");
    list["connections"].clone()
}

/// Assert an OAuth error response: status, `error` code, and a description.
pub fn assert_oauth_error(got: &(u16, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "status for {:?}", got.1);
    assert_eq!(got.1["error"], code, "body {:?}", got.1);
    assert!(
        got.1["error_description"].as_str().is_some_and(|d| !d.is_empty()),
        "description in {:?}",
        got.1
    );
}

/// RFC 7636 Appendix B: a verifier and its S256 challenge.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const RESOURCE: &str = "https://mcp.example.com/mcp";

impl TestApp {
    /// Register a new client and return (client_id, client_secret?). Each call's `software_id` is its
    /// own, so two public clients are never one deduplicated registration (issue 12 item 8).
    pub async fn client(&self, auth_method: &str) -> (String, Option<String>) {
        let (status, body) = self
            .register(serde_json::json!({
                "redirect_uris": ["http://127.0.0.1:7777/callback"],
                "token_endpoint_auth_method": auth_method,
                "software_id": latchkey::crypto::secret::random_token("test-client-", 8),
            }))
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["client_id"].as_str().unwrap().to_string(),
            body["client_secret"].as_str().map(str::to_string),
        )
    }

    /// What the authorize endpoint stores when a user approves: a grant and its code, written by
    /// the same code issuer authorize and consent use.
    pub async fn seed_code(&self, client_id: &str, scope: &str) -> (String, String) {
        use latchkey::domain::authz::{AuthRequest, Session};
        let state = &self.server.state;
        let request = AuthRequest {
            id: "seeded".into(),
            client_id: client_id.to_string(),
            client_name: None,
            redirect_uri: "http://127.0.0.1:7777/callback".into(),
            redirect_uri_sent: true,
            remember_consent: false,
            state: "seeded".into(),
            code_challenge: CHALLENGE.into(),
            resource: RESOURCE.into(),
            scope: scope.into(),
        };
        let session = Session {
            sub: "user-1".into(),
            username: "alice@example.com".into(),
        };
        let issued = latchkey::authz::code::issue(state, &request, &session, state.clock.now())
            .await
            .unwrap();
        (issued.grant_id, issued.code)
    }

    /// POST a form to an endpoint, optionally with Basic credentials.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> (u16, Value) {
        let mut req = self.http.post(self.url(path)).form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Items in a grant's partition (grant, codes, tokens), regardless of TTL.
    pub async fn grant_items(&self, grant_id: &str) -> Vec<latchkey::store::Item> {
        self.server
            .state
            .store
            .query_partition(&format!("GRANT#{grant_id}"), i64::MIN)
            .await
            .unwrap()
    }
}

impl TestApp {
    /// Register a resource server for `resource`; returns (id, secret).
    /// A resource server declaring what the MCP server fixture declares (`mcp:tools`, `mcp:admin`),
    /// as an operator would create it for a real server.
    pub async fn resource_server(&self, resource: &str) -> (String, String) {
        let now = self.server.state.clock.now();
        let (rec, secret) = self
            .server
            .state
            .store
            .create_resource_server(
                &latchkey::domain::resource::Resource::parse(resource).unwrap(),
                &["mcp:tools".to_string(), "mcp:admin".to_string()],
                now,
            )
            .await
            .unwrap();
        (rec.rs_id, secret)
    }
}

/// Tokens a public client got for a seeded grant.
pub struct Issued {
    pub grant_id: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl TestApp {
    /// Seed a grant and code for a public client and redeem it at the token endpoint.
    pub async fn issue_tokens(&self, client_id: &str, scope: &str) -> Issued {
        let (grant_id, code) = self.seed_code(client_id, scope).await;
        let (status, body) = self
            .post_form(
                "/oauth/2.1/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", "http://127.0.0.1:7777/callback"),
                    ("code_verifier", VERIFIER),
                    ("client_id", client_id),
                ],
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        Issued {
            grant_id,
            access_token: body["access_token"].as_str().unwrap().to_string(),
            refresh_token: body["refresh_token"].as_str().unwrap().to_string(),
        }
    }
}

/// A vault project with its API key.
pub struct Project {
    pub project_id: String,
    pub api_key: String,
}

impl TestApp {
    /// Create a project (as `latchkey project create` does).
    pub async fn project(&self, name: &str) -> Project {
        let now = self.server.state.clock.now();
        let (project_id, _key_id, api_key) = self.server.state.store.create_project(name, now).await.unwrap();
        Project { project_id, api_key }
    }

    /// Configure `provider` for a project from the catalogue entry `base` with `overrides` (as
    /// `latchkey provider set` does), the fake provider's client credentials.
    pub async fn set_provider(
        &self,
        project: &Project,
        provider: &str,
        base: Option<&str>,
        overrides: serde_json::Map<String, Value>,
    ) {
        let state = &self.server.state;
        let keyring = state.keyring.as_ref().unwrap();
        let sealed = keyring
            .encrypt(
                &latchkey::domain::context::provider_context(&project.project_id, provider),
                fake_provider::CLIENT_SECRET.as_bytes(),
            )
            .await
            .unwrap();
        state
            .store
            .put_provider(&latchkey::domain::provider::ProviderConfig {
                project_id: project.project_id.clone(),
                provider: provider.to_string(),
                base: base.map(str::to_string),
                overrides,
                client_id: fake_provider::CLIENT_ID.into(),
                sealed_secret: sealed,
                updated_at: state.clock.now(),
            })
            .await
            .unwrap();
    }

    /// A vault API call with an API key: (status, JSON body or text).
    pub async fn vault(&self, method: &str, path: &str, api_key: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), self.url(path));
        if let Some(k) = api_key {
            req = req.header("x-api-key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Create a session and open its `auth_url` in a "browser" that follows redirects (the fake
    /// provider approves at once). Returns (session_id, final page status, page text).
    pub async fn connect(&self, project: &Project, user_id: &str, provider: &str) -> (String, u16, String) {
        let (status, body) = self
            .vault(
                "POST",
                "/v1/identity/sessions",
                Some(&project.api_key),
                Some(serde_json::json!({"user_id": user_id, "provider": provider})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let session_id = body["session_id"].as_str().unwrap().to_string();
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .unwrap();
        let page = browser.get(body["auth_url"].as_str().unwrap()).send().await.unwrap();
        let code = page.status().as_u16();
        (session_id, code, page.text().await.unwrap())
    }

    /// A proxied call: (status, headers, body text).
    pub async fn proxy(
        &self,
        method: &str,
        provider_path: &str,
        api_key: &str,
        user_id: &str,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let res = self
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                self.url(&format!("/v1/proxy/{provider_path}")),
            )
            .header("x-api-key", api_key)
            .header("x-user-id", user_id)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        (status, headers, res.text().await.unwrap())
    }
}

fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

impl TestApp {
    /// Drive latchkey's authorize endpoint the way a browser does in `serve` (local development
    /// sign-in as `email`, then Approve on the consent page). Returns the final redirect's Location
    /// (the client's redirect URI with `code`, `state` and `iss`).
    pub async fn approve_in_browser(&self, authorize_url: &str, email: &str) -> String {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut cookie: Option<String> = None;
        let mut next = authorize_url.to_string();
        for _ in 0..6 {
            let mut req = http.get(&next);
            if let Some(c) = &cookie {
                req = req.header("cookie", c);
            }
            let res = req.send().await.unwrap();
            if let Some(sc) = res.headers().get("set-cookie") {
                cookie = Some(sc.to_str().unwrap().split(';').next().unwrap().to_string());
            }
            let status = res.status().as_u16();
            let location = res.headers().get("location").map(|l| l.to_str().unwrap().to_string());
            if status == 303 {
                let loc = location.unwrap();
                if !loc.starts_with(&self.base) {
                    return loc;
                }
                next = loc;
                continue;
            }
            let html = res.text().await.unwrap();
            assert_eq!(status, 200, "{next}: {html}");
            let request = hidden_field(&html, "request");
            let form: Vec<(&str, String)> = if html.contains("type=\"email\"") {
                vec![("request", request), ("email", email.to_string())]
            } else {
                vec![
                    ("request", request),
                    ("csrf", hidden_field(&html, "csrf")),
                    ("decision", "approve".to_string()),
                ]
            };
            let action = if html.contains("type=\"email\"") {
                self.url("/oauth/2.1/callback")
            } else {
                self.url("/oauth/2.1/consent")
            };
            let mut req = http.post(action).form(&form);
            if let Some(c) = &cookie {
                req = req.header("cookie", c);
            }
            let res = req.send().await.unwrap();
            if let Some(sc) = res.headers().get("set-cookie") {
                cookie = Some(sc.to_str().unwrap().split(';').next().unwrap().to_string());
            }
            assert_eq!(res.status().as_u16(), 303, "{}", res.text().await.unwrap());
            let loc = res.headers()["location"].to_str().unwrap().to_string();
            if !loc.starts_with(&self.base) {
                return loc;
            }
            next = loc;
        }
        panic!("the browser flow did not end at the client's redirect URI");
    }
}

impl TestApp {
    /// Register `server_url` as a tool of `project`, authorize it in the browser at latchkey's own
    /// authorization server and complete: the tool id.
    pub async fn connect_tool(&self, project: &Project, server_url: &str) -> String {
        let redirect = "http://127.0.0.1:7777/callback";
        let (status, body) = self
            .vault(
                "POST",
                "/tools",
                Some(&project.api_key),
                Some(serde_json::json!({"name": "tool", "server_url": server_url, "redirect_uris": [redirect]})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let tool_id = body["item_id"].as_str().unwrap().to_string();
        let (status, init) = self
            .vault(
                "POST",
                &format!("/tools/{tool_id}/initiate-oauth"),
                Some(&project.api_key),
                Some(serde_json::json!({"redirect_uri": redirect})),
            )
            .await;
        assert_eq!(status, 200, "{init}");
        let loc = self
            .approve_in_browser(init["authorization_url"].as_str().unwrap(), "tool-user@example.com")
            .await;
        let q: std::collections::HashMap<String, String> =
            url::Url::parse(&loc).unwrap().query_pairs().into_owned().collect();
        let (status, body) = self
            .vault(
                "POST",
                &format!("/tools/{tool_id}/complete-oauth"),
                Some(&project.api_key),
                Some(serde_json::json!({"code": q["code"], "state": q["state"], "iss": q["iss"]})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        tool_id
    }
}
