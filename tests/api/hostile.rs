//! Hostile input at every endpoint, table-driven: malformed, oversized, duplicated parameters and
//! headers, wrong types, invalid UTF-8, control characters, replayed and expired credentials, and
//! another project's ids. Each case asserts the status, the body's error shape for its API family
//! (docs/api.md "Error shapes": OAuth `{error, error_description}`, vault `{error: {code,
//! message}}`, tools `{detail}` / 422 `{detail: [{loc, msg, type}]}`, HTML error pages) and that
//! the table is exactly as before (a scan before and after each case).

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};

use crate::common::fake_provider::FakeProvider;
use crate::common::mcp_server::McpServer;
use crate::common::{Project, TestApp, RESOURCE, VERIFIER};

const REDIRECT: &str = "http://127.0.0.1:7777/callback";
const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

/// What a case must answer.
#[derive(Clone, Debug)]
enum Want {
    /// RFC 6749 §5.2: `{"error": code, "error_description"}`, `Cache-Control: no-store`.
    OAuth(u16, &'static str),
    /// The vault shape: `{"error": {"code", "message"}}`, `X-Latchkey-Error: 1`.
    Vault(u16, &'static str),
    /// The tools shape: `{"detail": "…"}`, `X-Latchkey-Error: 1`.
    Detail(u16),
    /// The tools 422: `{"detail": [{"loc", "msg", "type"}]}`.
    Unprocessable,
    /// An HTML error page.
    Page(u16),
    /// A redirect to the client carrying `error=code` (after the client and redirect URI are valid).
    RedirectError(&'static str),
    /// A success that must still change nothing (RFC 7009 §2.2 revocation of an unknown token, an
    /// inactive introspection, another project's user listed as having no connections).
    Json(u16, Value),
}

struct Case {
    name: String,
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Vec<u8>,
    want: Want,
}

fn case(name: impl Into<String>, method: &'static str, path: impl Into<String>, want: Want) -> Case {
    Case {
        name: name.into(),
        method,
        path: path.into(),
        headers: Vec::new(),
        body: Vec::new(),
        want,
    }
}

impl Case {
    fn header(mut self, name: &'static str, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((name, value.as_ref().to_vec()));
        self
    }
    fn body(mut self, content_type: &str, body: impl AsRef<[u8]>) -> Self {
        self.headers.push(("content-type", content_type.as_bytes().to_vec()));
        self.body = body.as_ref().to_vec();
        self
    }
    fn form(self, body: impl AsRef<[u8]>) -> Self {
        self.body(FORM, body)
    }
    fn json(self, body: impl AsRef<[u8]>) -> Self {
        self.body(JSON, body)
    }
    fn basic(self, id: &str, secret: &str) -> Self {
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        self.header("authorization", format!("Basic {b}"))
    }
    fn key(self, key: impl AsRef<[u8]>) -> Self {
        self.header("x-api-key", key)
    }
}

/// The table, sorted so two scans compare equal exactly when they hold the same items.
async fn snapshot(app: &TestApp) -> Vec<String> {
    let mut items: Vec<String> = app
        .all_items()
        .await
        .into_iter()
        .map(|i| format!("{:?}", i.into_iter().collect::<std::collections::BTreeMap<_, _>>()))
        .collect();
    items.sort();
    items
}

struct World {
    app: TestApp,
    _fake: FakeProvider,
    _mcp: McpServer,
    a: Project,
    b: Project,
    conf_id: String,
    conf_secret: String,
    pub_id: String,
    rs_id: String,
    rs_secret: String,
    access_token: String,
    refresh_token: String,
    used_code: String,
    other_client_code: String,
    session_b: String,
    used_callback: String,
    tool_a: String,
    tool_b: String,
}

async fn world() -> World {
    let app = TestApp::start().await;
    let (listener, mcp_url) = McpServer::bind().await;
    let (mcp_rs_id, mcp_rs_secret) = app.resource_server(&mcp_url).await;
    let mcp = McpServer::serve(listener, &app.url("/oauth/2.1"), &mcp_rs_id, &mcp_rs_secret).await;
    let (rs_id, rs_secret) = app.resource_server(RESOURCE).await;
    let (conf_id, conf_secret) = app.client("client_secret_basic").await;
    let (pub_id, _) = app.client("none").await;
    let issued = app.issue_tokens(&pub_id, "openid offline_access").await;

    // A code redeemed, then replayed once (which revokes its grant): replaying it again is a case.
    let (_, used_code) = app.seed_code(&pub_id, "openid").await;
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", used_code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", pub_id.as_str()),
    ];
    assert_eq!(app.post_form("/oauth/2.1/token", &redeem, None).await.0, 200);
    assert_eq!(app.post_form("/oauth/2.1/token", &redeem, None).await.0, 400);
    let (_, other_client_code) = app.seed_code(&conf_id, "openid").await;

    // Project B: a provider, a connected user (its callback URL, now spent), a pending session.
    let fake = FakeProvider::start().await;
    let a = app.project("a").await;
    let b = app.project("b").await;
    app.set_provider(&b, "google", Some("google"), fake.overrides()).await;
    let (status, s) = app
        .vault(
            "POST",
            "/v1/identity/sessions",
            Some(&b.api_key),
            Some(json!({"user_id": "user-b", "provider": "google"})),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .unwrap();
    let page = browser.get(s["auth_url"].as_str().unwrap()).send().await.unwrap();
    let used_callback = page.url().to_string();
    assert_eq!(page.status(), 200);
    assert!(used_callback.contains("/v1/identity/callback?"), "{used_callback}");
    let (status, s) = app
        .vault(
            "POST",
            "/v1/identity/sessions",
            Some(&b.api_key),
            Some(json!({"user_id": "user-b2", "provider": "google"})),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    let session_b = s["session_id"].as_str().unwrap().to_string();

    // A tool in each project.
    let mut tools = Vec::new();
    for p in [&a, &b] {
        let (status, t) = app
            .vault(
                "POST",
                "/tools",
                Some(&p.api_key),
                Some(json!({"name": "t", "server_url": mcp.url, "redirect_uris": [REDIRECT]})),
            )
            .await;
        assert_eq!(status, 201, "{t}");
        tools.push(t["item_id"].as_str().unwrap().to_string());
    }
    World {
        app,
        _fake: fake,
        _mcp: mcp,
        a,
        b,
        conf_id,
        conf_secret: conf_secret.unwrap(),
        pub_id,
        rs_id,
        rs_secret,
        access_token: issued.access_token,
        refresh_token: issued.refresh_token,
        used_code,
        other_client_code,
        session_b,
        used_callback,
        tool_a: tools[0].clone(),
        tool_b: tools[1].clone(),
    }
}

fn oauth_cases(w: &World) -> Vec<Case> {
    use Want::*;
    let mut c = Vec::new();
    let big = format!("token={}", "a".repeat(64 * 1024));
    for (ep, good) in [
        ("token", "grant_type=refresh_token&refresh_token=x"),
        ("revoke", "token=x"),
        ("introspect", "token=x"),
    ] {
        let p = format!("/oauth/2.1/{ep}");
        let auth = |k: Case| match ep {
            "introspect" => k.basic(&w.rs_id, &w.rs_secret),
            _ => k.basic(&w.conf_id, &w.conf_secret),
        };
        c.push(
            auth(case(
                format!("{ep}: text/plain body"),
                "POST",
                &p,
                OAuth(415, "invalid_request"),
            ))
            .body("text/plain", good),
        );
        c.push(
            auth(case(
                format!("{ep}: JSON body"),
                "POST",
                &p,
                OAuth(415, "invalid_request"),
            ))
            .json("{\"token\":\"x\"}"),
        );
        c.push(auth(case(
            format!("{ep}: no content type"),
            "POST",
            &p,
            OAuth(415, "invalid_request"),
        )));
        c.push(
            auth(case(
                format!("{ep}: body over 64 KiB"),
                "POST",
                &p,
                OAuth(413, "invalid_request"),
            ))
            .form(&big),
        );
        c.push(
            auth(case(
                format!("{ep}: invalid UTF-8 byte"),
                "POST",
                &p,
                OAuth(400, "invalid_request"),
            ))
            .form(b"token=\xff\xfe"),
        );
        c.push(
            auth(case(
                format!("{ep}: invalid UTF-8 percent-encoded"),
                "POST",
                &p,
                OAuth(400, "invalid_request"),
            ))
            .form("token=%C3%28"),
        );
        c.push(
            auth(case(
                format!("{ep}: repeated parameter (RFC 6749 §3.2)"),
                "POST",
                &p,
                OAuth(400, "invalid_request"),
            ))
            .form(format!("{good}&token=x&token=y")),
        );
        c.push(
            auth(case(
                format!("{ep}: repeated Content-Type header"),
                "POST",
                &p,
                OAuth(400, "invalid_request"),
            ))
            .form(good)
            .header("content-type", FORM),
        );
        c.push(
            case(
                format!("{ep}: repeated Authorization header"),
                "POST",
                &p,
                OAuth(401, "invalid_client"),
            )
            .basic(&w.conf_id, &w.conf_secret)
            .basic(&w.conf_id, &w.conf_secret)
            .form(good),
        );
        c.push(
            case(
                format!("{ep}: Basic credentials not base64"),
                "POST",
                &p,
                OAuth(401, "invalid_client"),
            )
            .header("authorization", "Basic !!!***")
            .form(good),
        );
        c.push(
            case(
                format!("{ep}: Basic credentials not UTF-8"),
                "POST",
                &p,
                OAuth(401, "invalid_client"),
            )
            .header("authorization", "Basic /v8=")
            .form(good),
        );
        c.push(
            case(
                format!("{ep}: Basic credentials without a colon"),
                "POST",
                &p,
                OAuth(401, "invalid_client"),
            )
            .header("authorization", "Basic bm9jb2xvbg==")
            .form(good),
        );
        c.push(
            case(format!("{ep}: wrong secret"), "POST", &p, OAuth(401, "invalid_client"))
                .basic(&w.conf_id, "lk_cs_wrong")
                .form(good),
        );
        c.push(
            case(
                format!("{ep}: unknown client"),
                "POST",
                &p,
                OAuth(401, "invalid_client"),
            )
            .basic("lkc_unknown", "x")
            .form(good),
        );
        c.push(case(format!("{ep}: GET"), "GET", &p, OAuth(405, "invalid_request")));
        c.push(case(format!("{ep}: PUT"), "PUT", &p, OAuth(405, "invalid_request")).form(good));
        c.push(case(
            format!("{ep}: DELETE"),
            "DELETE",
            &p,
            OAuth(405, "invalid_request"),
        ));
    }

    // Token endpoint.
    let t = "/oauth/2.1/token";
    let p = &w.pub_id;
    let token = |name: &str, want: Want, body: String| case(format!("token: {name}"), "POST", t, want).form(body);
    c.push(token(
        "missing grant_type",
        OAuth(400, "invalid_request"),
        format!("client_id={p}"),
    ));
    c.push(token(
        "grant_type=password",
        OAuth(400, "unsupported_grant_type"),
        format!("client_id={p}&grant_type=password&username=a&password=b"),
    ));
    c.push(token(
        "grant_type=client_credentials",
        OAuth(400, "unsupported_grant_type"),
        format!("client_id={p}&grant_type=client_credentials"),
    ));
    c.push(token(
        "grant_type with a control character",
        OAuth(400, "unsupported_grant_type"),
        format!("client_id={p}&grant_type=refresh_token%00"),
    ));
    c.push(token(
        "grant_type implicit spelled in capitals",
        OAuth(400, "unsupported_grant_type"),
        format!("client_id={p}&grant_type=AUTHORIZATION_CODE"),
    ));
    c.push(token(
        "code missing",
        OAuth(400, "invalid_request"),
        format!("client_id={p}&grant_type=authorization_code&redirect_uri={REDIRECT}&code_verifier={VERIFIER}"),
    ));
    c.push(token("unknown code", OAuth(400, "invalid_grant"), format!("client_id={p}&grant_type=authorization_code&code=lk_code_nope&redirect_uri={REDIRECT}&code_verifier={VERIFIER}")));
    c.push(token("code with control characters", OAuth(400, "invalid_grant"), format!("client_id={p}&grant_type=authorization_code&code=%0d%0a%00&redirect_uri={REDIRECT}&code_verifier={VERIFIER}")));
    c.push(token(
        "code of 10 000 characters",
        OAuth(400, "invalid_grant"),
        format!(
            "client_id={p}&grant_type=authorization_code&code={}&redirect_uri={REDIRECT}&code_verifier={VERIFIER}",
            "c".repeat(10_000)
        ),
    ));
    c.push(token(
        "replayed code (RFC 6749 §4.1.2), grant already revoked",
        OAuth(400, "invalid_grant"),
        format!(
            "client_id={p}&grant_type=authorization_code&code={}&redirect_uri={REDIRECT}&code_verifier={VERIFIER}",
            w.used_code
        ),
    ));
    c.push(token(
        "code verifier too short (RFC 7636 §4.1)",
        OAuth(400, "invalid_request"),
        format!(
            "client_id={p}&grant_type=authorization_code&code={}&redirect_uri={REDIRECT}&code_verifier=short",
            w.other_client_code
        ),
    ));
    c.push(token(
        "code verifier with invalid characters",
        OAuth(400, "invalid_request"),
        format!(
            "client_id={p}&grant_type=authorization_code&code={}&redirect_uri={REDIRECT}&code_verifier={}",
            w.other_client_code,
            "%24".repeat(43)
        ),
    ));
    c.push(token(
        "unknown refresh token",
        OAuth(400, "invalid_grant"),
        format!("client_id={p}&grant_type=refresh_token&refresh_token=lk_rt_nope.nope"),
    ));
    c.push(token(
        "refresh token missing",
        OAuth(400, "invalid_request"),
        format!("client_id={p}&grant_type=refresh_token"),
    ));
    c.push(token(
        "refresh token with only the prefix",
        OAuth(400, "invalid_grant"),
        format!("client_id={p}&grant_type=refresh_token&refresh_token=lk_rt_"),
    ));
    c.push(token(
        "access token presented as refresh token",
        OAuth(400, "invalid_grant"),
        format!(
            "client_id={p}&grant_type=refresh_token&refresh_token={}",
            w.access_token
        ),
    ));
    c.push(token(
        "refresh token with invalid UTF-8 after decoding",
        OAuth(400, "invalid_request"),
        format!("client_id={p}&grant_type=refresh_token&refresh_token=lk_rt_%ff"),
    ));
    c.push(
        token(
            "both Basic and client_secret (RFC 6749 §2.3)",
            OAuth(400, "invalid_request"),
            format!(
                "client_id={}&client_secret={}&grant_type=refresh_token&refresh_token=x",
                w.conf_id, w.conf_secret
            ),
        )
        .basic(&w.conf_id, &w.conf_secret),
    );
    c.push(token(
        "confidential client without authentication",
        OAuth(401, "invalid_client"),
        format!("client_id={}&grant_type=refresh_token&refresh_token=x", w.conf_id),
    ));
    c.push(token(
        "client_id of 5 000 characters",
        OAuth(401, "invalid_client"),
        format!(
            "client_id={}&grant_type=refresh_token&refresh_token=x",
            "x".repeat(5000)
        ),
    ));
    c.push(token(
        "client_id with a NUL",
        OAuth(401, "invalid_client"),
        "client_id=%00&grant_type=refresh_token&refresh_token=x".into(),
    ));
    c.push(token(
        "no client at all",
        OAuth(401, "invalid_client"),
        "grant_type=refresh_token&refresh_token=x".into(),
    ));
    c.push(token("empty body", OAuth(401, "invalid_client"), String::new()));
    c.push(token("only separators", OAuth(400, "invalid_request"), "&&&=&=".into()));
    c.push(
        case(
            "token: another client's refresh token (RFC 6749 §6)",
            "POST",
            t,
            OAuth(400, "invalid_grant"),
        )
        .basic(&w.conf_id, &w.conf_secret)
        .form(format!("grant_type=refresh_token&refresh_token={}", w.refresh_token)),
    );

    // Revocation (RFC 7009 §2.2: 200 for tokens it does not know, and nothing changes).
    let r = "/oauth/2.1/revoke";
    c.push(
        case("revoke: unknown token", "POST", r, Json(200, json!({})))
            .form(format!("client_id={p}&token=lk_rt_nope.nope")),
    );
    c.push(
        case(
            "revoke: garbage token with control characters",
            "POST",
            r,
            Json(200, json!({})),
        )
        .form(format!("client_id={p}&token=%00%01%7f")),
    );
    c.push(
        case(
            "revoke: another client's refresh token changes nothing",
            "POST",
            r,
            Json(200, json!({})),
        )
        .basic(&w.conf_id, &w.conf_secret)
        .form(format!("token={}", w.refresh_token)),
    );
    c.push(
        case(
            "revoke: another client's access token changes nothing",
            "POST",
            r,
            Json(200, json!({})),
        )
        .basic(&w.conf_id, &w.conf_secret)
        .form(format!("token={}&token_type_hint=access_token", w.access_token)),
    );
    c.push(case("revoke: token missing", "POST", r, OAuth(400, "invalid_request")).form(format!("client_id={p}")));

    // Introspection (RFC 7662: resource-server credentials only).
    let i = "/oauth/2.1/introspect";
    c.push(
        case("introspect: no credentials", "POST", i, OAuth(401, "invalid_client"))
            .form(format!("token={}", w.access_token)),
    );
    c.push(
        case(
            "introspect: an MCP client's credentials",
            "POST",
            i,
            OAuth(401, "invalid_client"),
        )
        .basic(&w.conf_id, &w.conf_secret)
        .form(format!("token={}", w.access_token)),
    );
    c.push(
        case(
            "introspect: unknown token is inactive",
            "POST",
            i,
            Json(200, json!({"active": false})),
        )
        .basic(&w.rs_id, &w.rs_secret)
        .form("token=lk_at_nope.nope"),
    );
    c.push(
        case(
            "introspect: a refresh token is inactive",
            "POST",
            i,
            Json(200, json!({"active": false})),
        )
        .basic(&w.rs_id, &w.rs_secret)
        .form(format!("token={}", w.refresh_token)),
    );
    c.push(
        case(
            "introspect: control characters are inactive",
            "POST",
            i,
            Json(200, json!({"active": false})),
        )
        .basic(&w.rs_id, &w.rs_secret)
        .form("token=%00%0a"),
    );
    c
}

fn register_cases() -> Vec<Case> {
    use Want::*;
    let p = "/oauth/2.1/register";
    let meta = |name: &str, body: Value| {
        case(
            format!("register: {name}"),
            "POST",
            p,
            OAuth(400, "invalid_client_metadata"),
        )
        .json(body.to_string())
    };
    let uri = |name: &str, u: Value| {
        case(
            format!("register: {name}"),
            "POST",
            p,
            OAuth(400, "invalid_redirect_uri"),
        )
        .json(json!({"redirect_uris": u}).to_string())
    };
    let mut c = vec![
        case("register: form body", "POST", p, OAuth(415, "invalid_request")).form("redirect_uris=x"),
        case("register: no content type", "POST", p, OAuth(415, "invalid_request")),
        case("register: body over 64 KiB", "POST", p, OAuth(413, "invalid_request"))
            .json(json!({"redirect_uris": [REDIRECT], "client_name": "n".repeat(64 * 1024)}).to_string()),
        case("register: GET", "GET", p, OAuth(405, "invalid_request")),
        case("register: not JSON", "POST", p, OAuth(400, "invalid_client_metadata")).json("{redirect_uris:"),
        case(
            "register: invalid UTF-8",
            "POST",
            p,
            OAuth(400, "invalid_client_metadata"),
        )
        .json(b"{\"client_name\":\"\xff\"}"),
        case(
            "register: repeated key",
            "POST",
            p,
            OAuth(400, "invalid_client_metadata"),
        )
        .json(format!(
            "{{\"redirect_uris\":[\"{REDIRECT}\"],\"redirect_uris\":[\"https://evil.example/cb\"]}}"
        )),
        case(
            "register: repeated nested key",
            "POST",
            p,
            OAuth(400, "invalid_client_metadata"),
        )
        .json(format!(
            "{{\"redirect_uris\":[\"{REDIRECT}\"],\"jwks\":{{\"k\":1,\"k\":2}}}}"
        )),
        case("register: array body", "POST", p, OAuth(400, "invalid_client_metadata")).json("[]"),
        case(
            "register: trailing data",
            "POST",
            p,
            OAuth(400, "invalid_client_metadata"),
        )
        .json("{} {}"),
        case("register: empty body", "POST", p, OAuth(400, "invalid_client_metadata")).json(""),
        case(
            "register: repeated Content-Type",
            "POST",
            p,
            OAuth(400, "invalid_client_metadata"),
        )
        .json(json!({"redirect_uris": [REDIRECT]}).to_string())
        .header("content-type", JSON),
        meta(
            "grant_types a string",
            json!({"redirect_uris": [REDIRECT], "grant_types": "authorization_code"}),
        ),
        meta(
            "grant type password",
            json!({"redirect_uris": [REDIRECT], "grant_types": ["authorization_code", "password"]}),
        ),
        meta(
            "no authorization_code grant",
            json!({"redirect_uris": [REDIRECT], "grant_types": ["refresh_token"]}),
        ),
        meta(
            "response type token",
            json!({"redirect_uris": [REDIRECT], "response_types": ["token"]}),
        ),
        meta(
            "auth method private_key_jwt",
            json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"}),
        ),
        meta(
            "auth method a number",
            json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": 1}),
        ),
        meta(
            "client_name an object",
            json!({"redirect_uris": [REDIRECT], "client_name": {"a": 1}}),
        ),
        meta("scope a number", json!({"redirect_uris": [REDIRECT], "scope": 7})),
        meta(
            "contacts a string",
            json!({"redirect_uris": [REDIRECT], "contacts": "a@example.com"}),
        ),
        meta(
            "application type desktop",
            json!({"redirect_uris": [REDIRECT], "application_type": "desktop"}),
        ),
        meta(
            "logo_uri javascript",
            json!({"redirect_uris": [REDIRECT], "logo_uri": "javascript:alert(1)"}),
        ),
        uri("redirect_uris missing", Value::Null),
        uri("redirect_uris empty", json!([])),
        uri("redirect_uris a string", json!(REDIRECT)),
        uri("redirect URI a number", json!([7])),
        uri("http on a public host", json!(["http://evil.example/cb"])),
        uri("javascript scheme", json!(["javascript:alert(1)"])),
        uri("data scheme", json!(["data:text/html,hi"])),
        uri("fragment", json!(["https://app.example.com/cb#x"])),
        uri("user info", json!(["https://user:pw@app.example.com/cb"])),
        uri("dot segment", json!(["https://app.example.com/a/../cb"])),
        uri("encoded dot segment", json!(["https://app.example.com/a/%2e%2e/cb"])),
        uri("backslash", json!(["https://app.example.com\\@evil.example/cb"])),
        uri("newline", json!(["https://app.example.com/cb\nx"])),
        uri("NUL", json!(["https://app.example.com/cb\u{0}"])),
        uri("relative", json!(["/cb"])),
        uri(
            "21 URIs",
            json!((0..21).map(|i| format!("http://127.0.0.1/cb{i}")).collect::<Vec<_>>()),
        ),
        uri(
            "2 001 characters",
            json!([format!("https://app.example.com/{}", "a".repeat(2000))]),
        ),
    ];
    c.push(case("register: DELETE", "DELETE", p, OAuth(405, "invalid_request")));
    c
}

fn browser_cases(w: &World) -> Vec<Case> {
    use Want::*;
    let a = "/oauth/2.1/authorize";
    let pid = &w.pub_id;
    let q = |extra: &str| {
        format!("{a}?response_type=code&client_id={pid}&redirect_uri={REDIRECT}&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&resource={RESOURCE}{extra}")
    };
    vec![
        case("authorize: no parameters", "GET", a, Page(400)),
        case(
            "authorize: unknown client",
            "GET",
            format!("{a}?response_type=code&client_id=lkc_nope&redirect_uri={REDIRECT}&state=s"),
            Page(400),
        ),
        case(
            "authorize: client_id with control characters",
            "GET",
            format!("{a}?response_type=code&client_id=%00%0d%0a&state=s"),
            Page(400),
        ),
        case(
            "authorize: client_id invalid UTF-8",
            "GET",
            format!("{a}?response_type=code&client_id=%ff&state=s"),
            Page(400),
        ),
        case(
            "authorize: repeated client_id",
            "GET",
            format!("{a}?client_id={pid}&client_id=lkc_other&response_type=code"),
            Page(400),
        ),
        case(
            "authorize: unregistered redirect URI is never redirected to",
            "GET",
            format!("{a}?response_type=code&client_id={pid}&redirect_uri=https://evil.example/cb&state=s"),
            Page(400),
        ),
        case(
            "authorize: redirect URI with a fragment",
            "GET",
            format!("{a}?response_type=code&client_id={pid}&redirect_uri=http://127.0.0.1:7777/callback%23x&state=s"),
            Page(400),
        ),
        case(
            "authorize: CIMD client_id on a private address",
            "GET",
            format!("{a}?response_type=code&client_id=https://10.0.0.1/client.json&redirect_uri={REDIRECT}&state=s"),
            Page(400),
        ),
        case(
            "authorize: CIMD client_id on the metadata address",
            "GET",
            format!("{a}?response_type=code&client_id=https://169.254.169.254/latest&redirect_uri={REDIRECT}&state=s"),
            Page(400),
        ),
        case(
            "authorize: response_type=token (RFC 9700 §2.1.2)",
            "GET",
            q("").replace("response_type=code", "response_type=token"),
            RedirectError("unsupported_response_type"),
        ),
        case(
            "authorize: code_challenge_method=plain (RFC 9700 §2.1.1)",
            "GET",
            q("").replace("S256", "plain"),
            RedirectError("invalid_request"),
        ),
        case(
            "authorize: no code_challenge",
            "GET",
            q("").replace("code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&", ""),
            RedirectError("invalid_request"),
        ),
        case(
            "authorize: unregistered resource (RFC 8707 §2)",
            "GET",
            q("").replace(RESOURCE, "https://other.example/mcp"),
            RedirectError("invalid_target"),
        ),
        case(
            "authorize: unknown scope",
            "GET",
            q("&scope=admin%3Aall"),
            RedirectError("invalid_scope"),
        ),
        case(
            "authorize: repeated state after a valid client (RFC 6749 §3.1)",
            "GET",
            q("&state=t"),
            Page(400),
        ),
        case("authorize: form POST with a JSON body", "POST", a, Page(415)).json("{}"),
        case(
            "callback: unknown request",
            "GET",
            "/oauth/2.1/callback?request=nope",
            Page(400),
        ),
        case(
            "callback: unknown upstream state",
            "GET",
            "/oauth/2.1/callback?state=nope&code=x",
            Page(400),
        ),
        case(
            "callback: POST sign-in for an unknown request",
            "POST",
            "/oauth/2.1/callback",
            Page(400),
        )
        .form("request=nope&email=a%40example.com"),
        case(
            "consent: no session",
            "GET",
            "/oauth/2.1/consent?request=nope",
            Page(401),
        ),
        case(
            "consent: POST without a session",
            "POST",
            "/oauth/2.1/consent",
            Page(401),
        )
        .form("request=nope&csrf=x&decision=approve"),
        case(
            "consent: forged session cookie",
            "GET",
            "/oauth/2.1/consent?request=nope",
            Page(401),
        )
        .header("cookie", "lk_session=lk_s_forged"),
        case(
            "consent: over-long session cookie",
            "GET",
            "/oauth/2.1/consent?request=nope",
            Page(401),
        )
        .header("cookie", format!("lk_session={}", "a".repeat(300))),
        case(
            "discovery: POST",
            "POST",
            "/.well-known/oauth-authorization-server",
            OAuth(405, "invalid_request"),
        )
        .json("{}"),
    ]
}

fn vault_cases(w: &World) -> Vec<Case> {
    use Want::*;
    let s = "/v1/identity/sessions";
    let a = &w.a.api_key;
    let sess =
        |name: &str, want: Want, body: &str| case(format!("sessions: {name}"), "POST", s, want).key(a).json(body);
    let mut c = vec![
        case("sessions: no API key", "POST", s, Vault(401, "invalid_api_key"))
            .json(r#"{"user_id":"u","provider":"google"}"#),
        case("sessions: malformed API key", "POST", s, Vault(401, "invalid_api_key"))
            .key("not-a-key")
            .json(r#"{"user_id":"u","provider":"google"}"#),
        case("sessions: unknown API key", "POST", s, Vault(401, "invalid_api_key"))
            .key(format!("lk_ak_{}.wrong", w.a.project_id))
            .json(r#"{"user_id":"u","provider":"google"}"#),
        case(
            "sessions: API key with another project's id",
            "POST",
            s,
            Vault(401, "invalid_api_key"),
        )
        .key(a.replace(&w.a.project_id, &w.b.project_id))
        .json(r#"{"user_id":"u","provider":"google"}"#),
        case(
            "sessions: API key invalid UTF-8",
            "POST",
            s,
            Vault(401, "invalid_api_key"),
        )
        .header("x-api-key", b"lk_ak_\xff\xfe")
        .json(r#"{"user_id":"u","provider":"google"}"#),
        case("sessions: two API keys", "POST", s, Vault(401, "invalid_api_key"))
            .key(a)
            .key(&w.b.api_key)
            .json(r#"{"user_id":"u","provider":"google"}"#),
        case("sessions: form body", "POST", s, Vault(415, "invalid_request"))
            .key(a)
            .form("user_id=u&provider=google"),
        case("sessions: body over 64 KiB", "POST", s, Vault(413, "body_too_large"))
            .key(a)
            .json(format!(
                r#"{{"user_id":"{}","provider":"google"}}"#,
                "u".repeat(64 * 1024)
            )),
        sess("not JSON", Vault(400, "invalid_request"), "{user_id"),
        case("sessions: invalid UTF-8", "POST", s, Vault(400, "invalid_request"))
            .key(a)
            .json(b"{\"user_id\":\"\xff\",\"provider\":\"google\"}"),
        sess(
            "repeated key",
            Vault(400, "invalid_request"),
            r#"{"user_id":"u","user_id":"v","provider":"google"}"#,
        ),
        sess("array body", Vault(400, "invalid_request"), r#"["u","google"]"#),
        sess(
            "user_id a number",
            Vault(400, "invalid_request"),
            r#"{"user_id":5,"provider":"google"}"#,
        ),
        sess(
            "user_id null",
            Vault(400, "invalid_request"),
            r#"{"user_id":null,"provider":"google"}"#,
        ),
        sess(
            "user_id empty",
            Vault(400, "invalid_request"),
            r#"{"user_id":"","provider":"google"}"#,
        ),
        sess(
            "user_id with a NUL",
            Vault(400, "invalid_request"),
            r#"{"user_id":"u\u0000","provider":"google"}"#,
        ),
        sess(
            "user_id with a newline",
            Vault(400, "invalid_request"),
            r#"{"user_id":"u\nv","provider":"google"}"#,
        ),
        sess(
            "user_id with leading space",
            Vault(400, "invalid_request"),
            r#"{"user_id":" u","provider":"google"}"#,
        ),
        sess(
            "user_id over 256 bytes",
            Vault(400, "invalid_request"),
            &format!(r#"{{"user_id":"{}","provider":"google"}}"#, "é".repeat(129)),
        ),
        sess("provider missing", Vault(400, "invalid_request"), r#"{"user_id":"u"}"#),
        sess(
            "provider a list",
            Vault(400, "invalid_request"),
            r#"{"user_id":"u","provider":["google"]}"#,
        ),
        sess(
            "unknown provider",
            Vault(404, "unknown_provider"),
            r#"{"user_id":"u","provider":"nope"}"#,
        ),
        sess(
            "provider not configured for this project",
            Vault(409, "provider_not_configured"),
            r#"{"user_id":"u","provider":"google"}"#,
        ),
        sess(
            "unknown field",
            Vault(400, "invalid_request"),
            r#"{"user_id":"u","provider":"google","admin":true}"#,
        ),
        sess(
            "scopes a string",
            Vault(400, "invalid_request"),
            r#"{"user_id":"u","provider":"google","scopes":"email"}"#,
        ),
        sess(
            "scopes of numbers",
            Vault(400, "invalid_request"),
            r#"{"user_id":"u","provider":"google","scopes":[1,2]}"#,
        ),
        sess(
            "51 scopes",
            Vault(400, "invalid_request"),
            &json!({"user_id":"u","provider":"google","scopes": (0..51).map(|i| format!("s{i}")).collect::<Vec<_>>()})
                .to_string(),
        ),
    ];
    c.push(
        case(
            "sessions: other project's session (404)",
            "GET",
            format!("{s}/{}", w.session_b),
            Vault(404, "not_found"),
        )
        .key(a),
    );
    c.push(
        case(
            "sessions: unknown session",
            "GET",
            format!("{s}/vs_nope"),
            Vault(404, "not_found"),
        )
        .key(a),
    );
    c.push(
        case(
            "sessions: session id with control characters",
            "GET",
            format!("{s}/vs_%00%0a"),
            Vault(404, "not_found"),
        )
        .key(a),
    );
    c.push(case(
        "sessions: status without a key",
        "GET",
        format!("{s}/{}", w.session_b),
        Vault(401, "invalid_api_key"),
    ));

    // POST …/confirm (issue 12 item 9): every refusal changes nothing.
    let confirm = |name: &str, path: String, want: Want, body: &str| {
        case(format!("confirm: {name}"), "POST", path, want).key(a).json(body)
    };
    let other = format!("{s}/{}/confirm", w.session_b);
    c.extend([
        confirm(
            "other project's session",
            other.clone(),
            Vault(404, "not_found"),
            r#"{"connect_token":"lk_ct_x"}"#,
        ),
        confirm(
            "unknown session",
            format!("{s}/vs_nope/confirm"),
            Vault(404, "not_found"),
            r#"{"connect_token":"lk_ct_x"}"#,
        ),
        confirm(
            "control characters in the id",
            format!("{s}/vs_%00%0a/confirm"),
            Vault(404, "not_found"),
            r#"{"connect_token":"lk_ct_x"}"#,
        ),
        confirm(
            "not JSON",
            other.clone(),
            Vault(400, "invalid_request"),
            "{connect_token",
        ),
        confirm(
            "token a number",
            other.clone(),
            Vault(400, "invalid_request"),
            r#"{"connect_token":5}"#,
        ),
        confirm("token missing", other.clone(), Vault(400, "invalid_request"), "{}"),
        confirm(
            "unknown field",
            other.clone(),
            Vault(400, "invalid_request"),
            r#"{"connect_token":"lk_ct_x","user_id":"v"}"#,
        ),
        confirm(
            "repeated key",
            other.clone(),
            Vault(400, "invalid_request"),
            r#"{"connect_token":"a","connect_token":"b"}"#,
        ),
        case(
            "confirm: no API key",
            "POST",
            other.clone(),
            Vault(401, "invalid_api_key"),
        )
        .json(r#"{"connect_token":"lk_ct_x"}"#),
        case("confirm: GET", "GET", other.clone(), Vault(405, "method_not_allowed")).key(a),
        sess(
            "return_url javascript:",
            Vault(400, "invalid_request"),
            r#"{"user_id":"u","provider":"google","return_url":"javascript:alert(1)"}"#,
        ),
        sess(
            "return_url plain http to another host",
            Vault(400, "invalid_request"),
            r#"{"user_id":"u","provider":"google","return_url":"http://evil.example/cb"}"#,
        ),
        sess(
            "return_url with credentials",
            Vault(400, "invalid_request"),
            r#"{"user_id":"u","provider":"google","return_url":"https://u:p@app.example/cb"}"#,
        ),
        sess(
            "return_url a number",
            Vault(400, "invalid_request"),
            r#"{"user_id":"u","provider":"google","return_url":7}"#,
        ),
    ]);

    let cb = "/v1/identity/callback";
    c.push(case(
        "identity callback: replayed state",
        "GET",
        w.used_callback.replace(&w.app.base, ""),
        Page(400),
    ));
    c.push(case(
        "identity callback: unknown state",
        "GET",
        format!("{cb}?state=nope&code=x"),
        Page(400),
    ));
    c.push(case("identity callback: no parameters", "GET", cb, Page(400)));
    c.push(case(
        "identity callback: provider error with unknown state",
        "GET",
        format!("{cb}?state=nope&error=access_denied"),
        Page(400),
    ));
    c.push(case(
        "identity callback: repeated state",
        "GET",
        format!("{cb}?state=a&state=b&code=x"),
        Page(400),
    ));
    c.push(case(
        "identity callback: state invalid UTF-8",
        "GET",
        format!("{cb}?state=%ff&code=x"),
        Page(400),
    ));

    let u = "/v1/identity/users";
    c.push(
        case(
            "connections: another project's user has none here",
            "GET",
            format!("{u}/user-b/connections"),
            Json(200, json!({"user_id": "user-b", "connections": []})),
        )
        .key(a),
    );
    c.push(
        case(
            "connections: delete another project's connection",
            "DELETE",
            format!("{u}/user-b/connections/google"),
            Vault(404, "not_connected"),
        )
        .key(a),
    );
    c.push(case(
        "connections: no key",
        "GET",
        format!("{u}/user-b/connections"),
        Vault(401, "invalid_api_key"),
    ));
    c.push(case(
        "connections: delete without a key",
        "DELETE",
        format!("{u}/user-b/connections/google"),
        Vault(401, "invalid_api_key"),
    ));
    c.push(
        case(
            "connections: user id with a NUL",
            "GET",
            format!("{u}/u%00/connections"),
            Vault(400, "invalid_request"),
        )
        .key(a),
    );
    c.push(
        case(
            "connections: user id invalid UTF-8",
            "GET",
            format!("{u}/u%ff/connections"),
            Vault(400, "invalid_request"),
        )
        .key(a),
    );
    c.push(
        case(
            "connections: user id over 256 bytes",
            "GET",
            format!("{u}/{}/connections", "u".repeat(257)),
            Vault(400, "invalid_request"),
        )
        .key(a),
    );

    let px = |name: &str, path: &str| {
        case(
            format!("proxy: {name}"),
            "GET",
            format!("/v1/proxy/google/{path}"),
            Vault(400, "invalid_request"),
        )
        .key(a)
        .header("x-user-id", "user-b")
    };
    c.extend([
        px("empty segment", "a//evil.example/x"),
        px("encoded slash", "a%2f..%2fevil"),
        px("encoded backslash", "a/%5c%5cevil.example"),
        px("at sign", "a@evil.example/x"),
        px("absolute URL", "https:%2f%2fevil.example/x"),
        px("scheme-looking first segment", "javascript:alert(1)"),
        px("NUL", "a/%00/b"),
        px("invalid UTF-8", "a/%ff/b"),
        px("over 4096 characters", &"a/".repeat(2100)),
    ]);
    c.push(
        case(
            "proxy: no key",
            "GET",
            "/v1/proxy/google/drive/v3/files",
            Vault(401, "invalid_api_key"),
        )
        .header("x-user-id", "user-b"),
    );
    c.push(
        case(
            "proxy: another project's user",
            "GET",
            "/v1/proxy/google/drive/v3/files",
            Vault(409, "provider_not_configured"),
        )
        .key(a)
        .header("x-user-id", "user-b"),
    );
    c.push(
        case(
            "proxy: unknown provider",
            "GET",
            "/v1/proxy/nope/x",
            Vault(404, "unknown_provider"),
        )
        .key(a)
        .header("x-user-id", "user-b"),
    );
    c.push(
        case(
            "proxy: no user id",
            "GET",
            "/v1/proxy/google/drive/v3/files",
            Vault(400, "invalid_request"),
        )
        .key(a),
    );
    c.push(
        case(
            "proxy: user id with an encoded NUL",
            "GET",
            "/v1/proxy/google/drive/v3/files",
            Vault(400, "invalid_request"),
        )
        .key(a)
        .header("x-user-id", "u%00"),
    );
    c.push(
        case(
            "proxy: user id invalid UTF-8",
            "GET",
            "/v1/proxy/google/drive/v3/files",
            Vault(400, "invalid_request"),
        )
        .key(a)
        .header("x-user-id", b"u\xff"),
    );
    c.push(
        case(
            "proxy: an API host not in the catalogue",
            "GET",
            "/v1/proxy/google/drive/v3/files",
            Vault(400, "invalid_request"),
        )
        .key(&w.b.api_key)
        .header("x-user-id", "user-b")
        .header("x-latchkey-api-host", "evil.example"),
    );
    c.push(
        case(
            "proxy: two user ids",
            "GET",
            "/v1/proxy/google/drive/v3/files",
            Vault(400, "invalid_request"),
        )
        .key(a)
        .header("x-user-id", "u")
        .header("x-user-id", "v"),
    );
    c
}

fn tool_cases(w: &World) -> Vec<Case> {
    use Want::*;
    let a = &w.a.api_key;
    let t = "/tools";
    let create =
        |name: &str, want: Want, body: &str| case(format!("tools create: {name}"), "POST", t, want).key(a).json(body);
    let mut c = vec![
        case("tools create: no key", "POST", t, Detail(401))
            .json(r#"{"name":"t","server_url":"https://10.0.0.1/mcp","redirect_uris":[]}"#),
        case("tools create: wrong key", "POST", t, Detail(401))
            .key("lk_ak_x.y")
            .json(r#"{"name":"t","server_url":"https://10.0.0.1/mcp"}"#),
        case("tools create: wrong project_key in the body", "POST", t, Detail(401))
            .json(r#"{"project_key":"lk_ak_x.y","name":"t","server_url":"https://10.0.0.1/mcp"}"#),
        create(
            "name missing",
            Unprocessable,
            r#"{"server_url":"https://10.0.0.1/mcp","redirect_uris":["http://127.0.0.1:7777/callback"]}"#,
        ),
        create(
            "server_url missing",
            Unprocessable,
            r#"{"name":"t","redirect_uris":["http://127.0.0.1:7777/callback"]}"#,
        ),
        create(
            "name a number",
            Unprocessable,
            r#"{"name":1,"server_url":"https://10.0.0.1/mcp","redirect_uris":["http://127.0.0.1:7777/callback"]}"#,
        ),
        create(
            "server_url an object",
            Unprocessable,
            r#"{"name":"t","server_url":{},"redirect_uris":["http://127.0.0.1:7777/callback"]}"#,
        ),
        create(
            "redirect_uris a number",
            Unprocessable,
            r#"{"name":"t","server_url":"https://10.0.0.1/mcp","redirect_uris":7}"#,
        ),
        create(
            "scopes of numbers",
            Unprocessable,
            r#"{"name":"t","server_url":"https://10.0.0.1/mcp","scopes":[1],"redirect_uris":["http://127.0.0.1:7777/callback"]}"#,
        ),
        create(
            "server_url on a private address",
            Detail(400),
            r#"{"name":"t","server_url":"https://10.0.0.1/mcp","redirect_uris":["http://127.0.0.1:7777/callback"]}"#,
        ),
        create(
            "server_url on the metadata address",
            Detail(400),
            r#"{"name":"t","server_url":"https://169.254.169.254/latest","redirect_uris":["http://127.0.0.1:7777/callback"]}"#,
        ),
        create(
            "server_url on IPv4-mapped private address",
            Detail(400),
            r#"{"name":"t","server_url":"https://[::ffff:10.0.0.1]/mcp","redirect_uris":["http://127.0.0.1:7777/callback"]}"#,
        ),
        create(
            "server_url with user info",
            Detail(400),
            r#"{"name":"t","server_url":"https://u:p@10.0.0.1/mcp","redirect_uris":["http://127.0.0.1:7777/callback"]}"#,
        ),
        create(
            "server_url file scheme",
            Detail(400),
            r#"{"name":"t","server_url":"file:///etc/passwd","redirect_uris":["http://127.0.0.1:7777/callback"]}"#,
        ),
        create(
            "server_url not a URL",
            Detail(400),
            r#"{"name":"t","server_url":"not a url","redirect_uris":["http://127.0.0.1:7777/callback"]}"#,
        ),
        create("not JSON", Unprocessable, "{name"),
        create(
            "repeated key",
            Unprocessable,
            r#"{"name":"t","name":"u","server_url":"https://10.0.0.1/mcp"}"#,
        ),
        create(
            "replacement character, server_url missing",
            Unprocessable,
            "{\"name\":\"\u{fffd}\"}",
        ),
        case("tools create: invalid UTF-8 bytes", "POST", t, Unprocessable)
            .key(a)
            .json(b"{\"name\":\"\xff\"}"),
        case("tools create: body over 64 KiB", "POST", t, Detail(413))
            .key(a)
            .json(format!(
                r#"{{"name":"{}","server_url":"https://10.0.0.1/mcp"}}"#,
                "n".repeat(64 * 1024)
            )),
        case("tools create: form body", "POST", t, Unprocessable)
            .key(a)
            .form("name=t"),
    ];
    let tb = &w.tool_b;
    let ta = &w.tool_a;
    c.extend([
        case(
            "tools: GET another project's tool",
            "GET",
            format!("{t}/{tb}"),
            Detail(404),
        )
        .key(a),
        case(
            "tools: DELETE another project's tool",
            "DELETE",
            format!("{t}/{tb}"),
            Detail(404),
        )
        .key(a),
        case("tools: GET unknown tool", "GET", format!("{t}/tl_nope"), Detail(404)).key(a),
        case(
            "tools: GET tool id with control characters",
            "GET",
            format!("{t}/tl_%00%0a"),
            Detail(404),
        )
        .key(a),
        case("tools: GET without a key", "GET", format!("{t}/{ta}"), Detail(401)),
        case(
            "tools: DELETE with a wrong key",
            "DELETE",
            format!("{t}/{ta}"),
            Detail(401),
        )
        .key("lk_ak_x.y"),
        case(
            "tools: client metadata of an unknown tool",
            "GET",
            format!("{t}/tl_nope/client-metadata.json"),
            Detail(404),
        ),
        case(
            "tools initiate: another project's tool",
            "POST",
            format!("{t}/{tb}/initiate-oauth"),
            Detail(404),
        )
        .key(a)
        .json(json!({"redirect_uri": REDIRECT}).to_string()),
        case(
            "tools initiate: no key",
            "POST",
            format!("{t}/{ta}/initiate-oauth"),
            Unprocessable,
        )
        .json(json!({"redirect_uri": REDIRECT}).to_string()),
        case(
            "tools initiate: redirect_uri not the tool's",
            "POST",
            format!("{t}/{ta}/initiate-oauth"),
            Unprocessable,
        )
        .key(a)
        .json(json!({"redirect_uri": "https://evil.example/cb"}).to_string()),
        case(
            "tools initiate: redirect_uri a number",
            "POST",
            format!("{t}/{ta}/initiate-oauth"),
            Unprocessable,
        )
        .key(a)
        .json(r#"{"redirect_uri":1}"#),
        case(
            "tools initiate: redirect_uri missing",
            "POST",
            format!("{t}/{ta}/initiate-oauth"),
            Unprocessable,
        )
        .key(a)
        .json("{}"),
        case(
            "tools initiate: replace_scopes a string",
            "POST",
            format!("{t}/{ta}/initiate-oauth"),
            Unprocessable,
        )
        .key(a)
        .json(json!({"redirect_uri": REDIRECT, "replace_scopes": "yes"}).to_string()),
        case(
            "tools initiate: scopes a number",
            "POST",
            format!("{t}/{ta}/initiate-oauth"),
            Unprocessable,
        )
        .key(a)
        .json(json!({"redirect_uri": REDIRECT, "scopes": 7}).to_string()),
        case(
            "tools initiate: scope token with a quote",
            "POST",
            format!("{t}/{ta}/initiate-oauth"),
            Unprocessable,
        )
        .key(a)
        .json(json!({"redirect_uri": REDIRECT, "scopes": ["a\"b"]}).to_string()),
        case(
            "tools initiate: wrong project_key in the body",
            "POST",
            format!("{t}/{ta}/initiate-oauth"),
            Detail(401),
        )
        .json(json!({"redirect_uri": REDIRECT, "project_key": "lk_ak_x.y"}).to_string()),
        case(
            "tools initiate: repeated key",
            "POST",
            format!("{t}/{ta}/initiate-oauth"),
            Unprocessable,
        )
        .key(a)
        .json(format!(
            r#"{{"redirect_uri":"{REDIRECT}","redirect_uri":"https://evil.example/cb"}}"#
        )),
        case(
            "tools complete: unknown state (CSRF)",
            "POST",
            format!("{t}/{ta}/complete-oauth"),
            Unprocessable,
        )
        .key(a)
        .json(r#"{"code":"c","state":"nope"}"#),
        case(
            "tools complete: state with control characters",
            "POST",
            format!("{t}/{ta}/complete-oauth"),
            Unprocessable,
        )
        .key(a)
        .json(r#"{"code":"c","state":"\u0000\n"}"#),
        case(
            "tools complete: code missing",
            "POST",
            format!("{t}/{ta}/complete-oauth"),
            Unprocessable,
        )
        .key(a)
        .json(r#"{"state":"s"}"#),
        case(
            "tools complete: code a number",
            "POST",
            format!("{t}/{ta}/complete-oauth"),
            Unprocessable,
        )
        .key(a)
        .json(r#"{"code":1,"state":"s"}"#),
        case(
            "tools complete: another project's tool",
            "POST",
            format!("{t}/{tb}/complete-oauth"),
            Detail(404),
        )
        .key(a)
        .json(r#"{"code":"c","state":"s"}"#),
        case(
            "tools complete: no key",
            "POST",
            format!("{t}/{ta}/complete-oauth"),
            Unprocessable,
        )
        .json(r#"{"code":"c","state":"s"}"#),
        case(
            "tools mcp: another project's tool",
            "POST",
            format!("{t}/{tb}/mcp"),
            Detail(404),
        )
        .key(a)
        .json(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
        case("tools mcp: no key", "POST", format!("{t}/{ta}/mcp"), Detail(401))
            .json(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
        case(
            "tools mcp: unknown tool",
            "GET",
            format!("{t}/tl_nope/mcp"),
            Detail(404),
        )
        .key(a),
    ]);
    c
}

async fn send(app: &TestApp, c: &Case) -> (u16, HeaderMap, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = if c.path.starts_with("http") {
        c.path.clone()
    } else {
        app.url(&c.path)
    };
    let mut headers = HeaderMap::new();
    for (k, v) in &c.headers {
        headers.append(HeaderName::from_static(k), HeaderValue::from_bytes(v).unwrap());
    }
    let res = client
        .request(reqwest::Method::from_bytes(c.method.as_bytes()).unwrap(), url)
        .headers(headers)
        .body(c.body.clone())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.text().await.unwrap())
}

/// Check one answer against what the case wants; `Err` says what differs.
fn check(want: &Want, status: u16, headers: &HeaderMap, text: &str) -> Result<(), String> {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let expect_status = |s: u16| {
        if status == s {
            Ok(())
        } else {
            Err(format!("status {status}, want {s}"))
        }
    };
    match want {
        Want::OAuth(s, code) => {
            expect_status(*s)?;
            if body["error"] != *code {
                return Err(format!("error {}, want {code}", body["error"]));
            }
            if body["error_description"].as_str().is_none_or(|d| d.is_empty()) {
                return Err("no error_description".into());
            }
            if !h("cache-control").contains("no-store") {
                return Err("no Cache-Control: no-store".into());
            }
        }
        Want::Vault(s, code) => {
            expect_status(*s)?;
            if body["error"]["code"] != *code {
                return Err(format!("error.code {}, want {code}", body["error"]["code"]));
            }
            if body["error"]["message"].as_str().is_none_or(|m| m.is_empty()) {
                return Err("no error.message".into());
            }
            if h("x-latchkey-error") != "1" {
                return Err("no X-Latchkey-Error: 1".into());
            }
        }
        Want::Detail(s) => {
            expect_status(*s)?;
            if body["detail"].as_str().is_none_or(|d| d.is_empty()) {
                return Err("no detail string".into());
            }
            if h("x-latchkey-error") != "1" {
                return Err("no X-Latchkey-Error: 1".into());
            }
        }
        Want::Unprocessable => {
            expect_status(422)?;
            let ok = body["detail"].as_array().is_some_and(|d| {
                !d.is_empty()
                    && d.iter()
                        .all(|e| e["loc"].is_array() && e["msg"].is_string() && e["type"].is_string())
            });
            if !ok {
                return Err("detail is not [{loc, msg, type}]".into());
            }
        }
        Want::Page(s) => {
            expect_status(*s)?;
            if !h("content-type").starts_with("text/html") {
                return Err(format!("content type {}, want an HTML page", h("content-type")));
            }
        }
        Want::RedirectError(code) => {
            if !(300..400).contains(&status) {
                return Err(format!("status {status}, want a redirect"));
            }
            let loc = url::Url::parse(&h("location")).map_err(|_| format!("location {}", h("location")))?;
            if !loc.as_str().starts_with(REDIRECT) {
                return Err(format!("redirected to {loc}"));
            }
            let q: std::collections::HashMap<_, _> = loc.query_pairs().into_owned().collect();
            if q.get("error").map(String::as_str) != Some(*code) {
                return Err(format!("error {:?}, want {code}", q.get("error")));
            }
        }
        Want::Json(s, v) => {
            expect_status(*s)?;
            if body != *v {
                return Err(format!("body {body}, want {v}"));
            }
        }
    }
    // No answer to hostile input echoes a secret we hold or a stack trace.
    if text.contains("panicked") || text.contains("RUST_BACKTRACE") {
        return Err("a panic reached the wire".into());
    }
    Ok(())
}

async fn run(app: &TestApp, cases: &[Case]) -> Vec<String> {
    let mut failures = Vec::new();
    for c in cases {
        let before = snapshot(app).await;
        let (status, headers, text) = send(app, c).await;
        let after = snapshot(app).await;
        let mut why = check(&c.want, status, &headers, &text).err();
        if before != after && why.is_none() {
            why = Some(format!(
                "the table changed ({} items before, {} after)",
                before.len(),
                after.len()
            ));
        }
        if let Some(why) = why {
            let short: String = text.chars().take(300).collect();
            failures.push(format!("{}: {why}; got {status} {short}", c.name));
        }
    }
    failures
}

/// Every case of the suite (counted in tests/README.md): bad input gets a clear error in its API
/// family's shape and changes nothing.
#[tokio::test]
async fn hostile_input_gets_a_clear_error_and_changes_nothing() {
    let w = world().await;
    let mut cases = oauth_cases(&w);
    cases.extend(register_cases());
    cases.extend(browser_cases(&w));
    cases.extend(vault_cases(&w));
    cases.extend(tool_cases(&w));
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names are unique");
    let failures = run(&w.app, &cases).await;
    eprintln!("hostile input: {} cases, {} failed", cases.len(), failures.len());
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(cases.len() >= 150, "{} cases", cases.len());
}

/// Expired credentials (the clock moved past their lifetime) are refused and change nothing: an
/// authorization code after 60 s (RFC 6749 §4.1.2), a pending session's state, a consumed tool state.
#[tokio::test]
async fn expired_credentials_are_refused_and_change_nothing() {
    use Want::*;
    let w = world().await;
    let (_, code) = w.app.seed_code(&w.pub_id, "openid").await;
    w.app.server.state.clock.advance(24 * 3600);
    let p = &w.pub_id;
    let cases = vec![
        case(
            "expired code (RFC 6749 §4.1.2)",
            "POST",
            "/oauth/2.1/token",
            OAuth(400, "invalid_grant"),
        )
        .form(format!(
            "client_id={p}&grant_type=authorization_code&code={code}&redirect_uri={REDIRECT}&code_verifier={VERIFIER}"
        )),
        case(
            "expired session is still readable by its project only",
            "GET",
            format!("/v1/identity/sessions/{}", w.session_b),
            Vault(404, "not_found"),
        )
        .key(&w.a.api_key),
        case(
            "expired access token is inactive",
            "POST",
            "/oauth/2.1/introspect",
            Json(200, json!({"active": false})),
        )
        .basic(&w.rs_id, &w.rs_secret)
        .form(format!("token={}", w.access_token)),
        case(
            "revoking an expired token changes nothing",
            "POST",
            "/oauth/2.1/revoke",
            Json(200, json!({})),
        )
        .form(format!("client_id={p}&token={}", w.access_token)),
    ];
    let failures = run(&w.app, &cases).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
