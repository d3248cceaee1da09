//! A fake OAuth 2.0 provider on loopback that plays Google for the vault tests: an authorize
//! endpoint that approves (or denies) at once, a token endpoint with PKCE, client authentication,
//! refresh (rotating or not) and revocation, and API routes that check the bearer token.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};

pub const CLIENT_ID: &str = "fake-client-id";
pub const CLIENT_SECRET: &str = "fake-client-secret-value";

/// How the fake behaves; tests change it between steps.
#[derive(Clone, Debug)]
pub struct Behaviour {
    /// Authorize answers `error=<this>` instead of a code.
    pub deny: Option<String>,
    /// `expires_in` of access tokens (None: omitted).
    pub expires_in: Option<i64>,
    /// Refresh responses carry a new refresh token (rotation).
    pub rotate_refresh: bool,
    /// Delay before answering a refresh (makes concurrent refreshes overlap).
    pub refresh_delay: Duration,
    /// Client authentication the token endpoint expects.
    pub basic_auth: bool,
    /// Scope reported in token responses (None: omitted).
    pub scope: Option<String>,
    /// API routes answer 401 whatever the token.
    pub reject_api: bool,
    /// The code exchange issues no refresh token (GitHub OAuth apps, Notion, …).
    pub no_refresh_token: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            deny: None,
            expires_in: Some(3600),
            rotate_refresh: true,
            refresh_delay: Duration::from_millis(0),
            basic_auth: false,
            scope: Some("openid email".into()),
            reject_api: false,
            no_refresh_token: false,
        }
    }
}

#[derive(Clone, Debug)]
struct CodeGrant {
    redirect_uri: String,
    challenge: Option<String>,
    user: String,
}

#[derive(Default)]
pub struct FakeState {
    pub behaviour: Behaviour,
    codes: HashMap<String, CodeGrant>,
    /// access token → user
    pub access: HashMap<String, String>,
    /// refresh token → user
    pub refresh: HashMap<String, String>,
    pub next: u64,
    pub code_exchanges: u64,
    pub refreshes: u64,
    pub revocations: Vec<String>,
    pub api_calls: u64,
    /// The user the next authorize approves as.
    pub next_user: String,
    /// Headers of the last echo call.
    pub last_echo_headers: Vec<(String, String)>,
}

#[derive(Clone)]
pub struct FakeProvider {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<FakeState>>,
}

impl FakeProvider {
    pub async fn start() -> FakeProvider {
        let state = Arc::new(Mutex::new(FakeState {
            next_user: "fake-user-1".into(),
            ..Default::default()
        }));
        let app = Router::new()
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/revoke", post(revoke))
            .route("/api/me", get(me))
            .route("/api/slow", get(slow))
            .route("/api/big", get(big))
            .route("/api/binary", get(binary))
            .route("/api/echo/{*rest}", any(echo))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        FakeProvider { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn set(&self, f: impl FnOnce(&mut Behaviour)) {
        f(&mut self.state.lock().unwrap().behaviour);
    }

    pub fn refreshes(&self) -> u64 {
        self.state.lock().unwrap().refreshes
    }

    /// Forget every access token (the provider revoked them early): API calls answer 401.
    pub fn drop_access_tokens(&self) {
        self.state.lock().unwrap().access.clear();
    }

    /// Revoke every refresh token: refreshes answer `invalid_grant`.
    pub fn drop_refresh_tokens(&self) {
        self.state.lock().unwrap().refresh.clear();
    }

    /// The provider overrides for `provider set` pointing a catalogue entry at this fake.
    pub fn overrides(&self) -> serde_json::Map<String, Value> {
        let v = json!({
            "display_name": "Fake Google",
            "authorize_url": self.url("/authorize"),
            "token_url": self.url("/token"),
            "api_base_url": self.url("/api/"),
            "revoke": {"style": "rfc7009", "url": self.url("/revoke")},
            "account": {"url": self.url("/api/me"), "id_field": "id", "email_field": "email"},
            "api_hosts": [],
        });
        v.as_object().unwrap().clone()
    }
}

async fn authorize(State(s): State<Arc<Mutex<FakeState>>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut st = s.lock().unwrap();
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return (StatusCode::BAD_REQUEST, "unknown client").into_response();
    }
    let (Some(redirect), Some(state)) = (q.get("redirect_uri"), q.get("state")) else {
        return (StatusCode::BAD_REQUEST, "missing redirect_uri or state").into_response();
    };
    let mut target = url::Url::parse(redirect).unwrap();
    if let Some(err) = st.behaviour.deny.clone() {
        target
            .query_pairs_mut()
            .append_pair("error", &err)
            .append_pair("error_description", "The user said no")
            .append_pair("state", state);
        return Redirect::to(target.as_str()).into_response();
    }
    if let Some(m) = q.get("code_challenge_method") {
        if m != "S256" {
            return (StatusCode::BAD_REQUEST, "S256 only").into_response();
        }
    }
    st.next += 1;
    let code = format!("code-{}", st.next);
    let user = st.next_user.clone();
    st.codes.insert(
        code.clone(),
        CodeGrant {
            redirect_uri: redirect.clone(),
            challenge: q.get("code_challenge").cloned(),
            user,
        },
    );
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", state);
    Redirect::to(target.as_str()).into_response()
}

fn oauth_error(code: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": code}))).into_response()
}

fn client_ok(st: &FakeState, headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    if st.behaviour.basic_auth {
        let expected = format!("Basic {}", STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}")));
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
    } else {
        form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
            && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
    }
}

fn issue(st: &mut FakeState, user: &str, with_refresh: bool) -> Value {
    st.next += 1;
    let n = st.next;
    let access = format!("fake-at-{n}-{}", URL_SAFE_NO_PAD.encode(n.to_be_bytes()));
    st.access.insert(access.clone(), user.to_string());
    let mut body = json!({"access_token": access, "token_type": "Bearer"});
    if let Some(e) = st.behaviour.expires_in {
        body["expires_in"] = json!(e);
    }
    if let Some(sc) = &st.behaviour.scope {
        body["scope"] = json!(sc);
    }
    if with_refresh {
        let refresh = format!("fake-rt-{n}");
        st.refresh.insert(refresh.clone(), user.to_string());
        body["refresh_token"] = json!(refresh);
    }
    body
}

async fn token(
    State(s): State<Arc<Mutex<FakeState>>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let delay = {
        let st = s.lock().unwrap();
        if !client_ok(&st, &headers, &form) {
            return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client"}))).into_response();
        }
        st.behaviour.refresh_delay
    };
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let mut st = s.lock().unwrap();
            let Some(grant) = form.get("code").and_then(|c| st.codes.remove(c)) else {
                return oauth_error("invalid_grant");
            };
            if form.get("redirect_uri") != Some(&grant.redirect_uri) {
                return oauth_error("invalid_grant");
            }
            if let Some(ch) = &grant.challenge {
                let Some(v) = form.get("code_verifier") else {
                    return oauth_error("invalid_grant");
                };
                if &URL_SAFE_NO_PAD.encode(sha256(v.as_bytes())) != ch {
                    return oauth_error("invalid_grant");
                }
            }
            st.code_exchanges += 1;
            let with_refresh = !st.behaviour.no_refresh_token;
            let body = issue(&mut st, &grant.user, with_refresh);
            Json(body).into_response()
        }
        Some("refresh_token") => {
            tokio::time::sleep(delay).await;
            let mut st = s.lock().unwrap();
            st.refreshes += 1;
            let Some(rt) = form.get("refresh_token").cloned() else {
                return oauth_error("invalid_request");
            };
            let Some(user) = st.refresh.get(&rt).cloned() else {
                return oauth_error("invalid_grant");
            };
            let rotate = st.behaviour.rotate_refresh;
            if rotate {
                st.refresh.remove(&rt);
            }
            let body = issue(&mut st, &user, rotate);
            Json(body).into_response()
        }
        _ => oauth_error("unsupported_grant_type"),
    }
}

async fn revoke(
    State(s): State<Arc<Mutex<FakeState>>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut st = s.lock().unwrap();
    if !client_ok(&st, &headers, &form) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client"}))).into_response();
    }
    if let Some(t) = form.get("token") {
        st.revocations.push(t.clone());
        if let Some(user) = st.refresh.remove(t) {
            st.access.retain(|_, u| *u != user);
        }
        st.access.remove(t);
    }
    StatusCode::OK.into_response()
}

fn bearer_user(st: &FakeState, headers: &HeaderMap) -> Option<String> {
    if st.behaviour.reject_api {
        return None;
    }
    let t = headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ")?;
    st.access.get(t).cloned()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [("www-authenticate", "Bearer error=\"invalid_token\"")],
        Json(json!({"error": "invalid_token"})),
    )
        .into_response()
}

async fn me(State(s): State<Arc<Mutex<FakeState>>>, headers: HeaderMap) -> Response {
    let mut st = s.lock().unwrap();
    st.api_calls += 1;
    match bearer_user(&st, &headers) {
        Some(user) => Json(json!({"id": user, "email": format!("{user}@example.com")})).into_response(),
        None => unauthorized(),
    }
}

async fn slow(State(s): State<Arc<Mutex<FakeState>>>) -> Response {
    let _ = s;
    tokio::time::sleep(Duration::from_secs(5)).await;
    Json(json!({"slow": true})).into_response()
}

async fn big() -> Response {
    (
        [("content-type", "application/octet-stream")],
        vec![b'x'; 5 * 1024 * 1024],
    )
        .into_response()
}

async fn binary() -> Response {
    (
        [("content-type", "image/png")],
        vec![0x89, b'P', b'N', b'G', 0, 0xff, 0xfe],
    )
        .into_response()
}

async fn echo(
    State(s): State<Arc<Mutex<FakeState>>>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let mut st = s.lock().unwrap();
    st.api_calls += 1;
    let Some(user) = bearer_user(&st, &headers) else {
        return unauthorized();
    };
    st.last_echo_headers = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    (
        StatusCode::OK,
        [
            ("set-cookie", "upstream=1"),
            ("x-ratelimit-remaining", "42"),
            ("etag", "\"v1\""),
        ],
        Json(json!({
            "user": user,
            "method": method.as_str(),
            "path": uri.path(),
            "query": uri.query(),
            "headers": st.last_echo_headers.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
            "body": String::from_utf8_lossy(&body),
        })),
    )
        .into_response()
}

/// S256 computed independently of latchkey's PKCE helper, so a bug there cannot hide here.
fn sha256(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}
