//! Calls to a provider's OAuth endpoints: code exchange, refresh, revocation and the "who connected"
//! lookup. Every call goes through the guarded outbound client (`net::guarded_client`); token
//! values never reach a log line or an error message.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{Map, Value};
use url::Url;

use super::providers::{ProviderSpec, RevokeStyle, TokenAuthMethod, TokenFormat};
use super::token_client::TokenClient;
use crate::net::{self, Refused};

/// Time allowed for a token, revocation or account call.
pub const OAUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest access-token lifetime we believe.
pub const MAX_EXPIRES_IN: i64 = 10 * 365 * 86_400;
/// Largest token or account response we read.
pub const MAX_OAUTH_RESPONSE: usize = 64 * 1024;

/// latchkey's credentials at a provider.
#[derive(Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// What a token endpoint gave us. `Debug` hides the tokens.
#[derive(Clone)]
pub struct TokenSet {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: Option<i64>,
    pub scope: Option<String>,
    /// The whole (top-level) response, for provider-specific fields such as Salesforce's
    /// `instance_url`. Holds tokens: never log it.
    pub raw: Map<String, Value>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Why a provider call failed. Display text is safe for logs.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The provider answered with an OAuth error code (`invalid_grant`, …).
    #[error("the provider refused: {code} (HTTP {status})")]
    Rejected { status: u16, code: String },
    /// The outbound guard refused the provider's address.
    #[error("the provider's address is not allowed: {0}")]
    Refused(Refused),
    #[error("the provider did not answer in time")]
    Timeout,
    /// Network failure or an answer we could not use (detail for the log).
    #[error("the provider could not be reached or answered unusably: {0}")]
    Unavailable(String),
}

impl UpstreamError {
    /// Classify a reqwest error (guard refusal, timeout, other).
    pub fn from_reqwest(e: reqwest::Error) -> Self {
        if let Some(r) = net::refused_by_guard(&e) {
            return UpstreamError::Refused(r);
        }
        if e.is_timeout() {
            return UpstreamError::Timeout;
        }
        // `without_url`: the URL may carry a query we built; keep the log free of it.
        UpstreamError::Unavailable(e.without_url().to_string())
    }
}

/// Check a URL against the guard (IP-literal hosts) before sending.
pub fn precheck(url: &Url, allow_loopback: bool) -> Result<(), UpstreamError> {
    net::check_url_host(url, allow_loopback).map_err(UpstreamError::Refused)
}

/// A dotted path (`authed_user.id`) into a JSON value.
pub fn pluck<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, key| cur.get(key))
}

/// A JSON scalar as text (ids are numbers at some providers).
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn basic(creds: &ClientCredentials) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(&creds.client_id), enc(&creds.client_secret)))
    )
}

async fn read_capped(mut res: reqwest::Response, cap: usize) -> Result<Vec<u8>, UpstreamError> {
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(UpstreamError::from_reqwest)? {
        body.extend_from_slice(&chunk);
        if body.len() > cap {
            return Err(UpstreamError::Unavailable(format!("response larger than {cap} bytes")));
        }
    }
    Ok(body)
}

/// Parse a token-endpoint body: JSON, or form-encoded (GitHub's default without `Accept`).
fn parse_token_body(body: &[u8]) -> Option<Map<String, Value>> {
    if let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(body) {
        return Some(m);
    }
    let text = std::str::from_utf8(body).ok()?;
    if !text.contains('=') {
        return None;
    }
    Some(
        url::form_urlencoded::parse(text.as_bytes())
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect(),
    )
}

/// POST to the token endpoint with client authentication as the client is registered.
async fn token_request(
    http: &reqwest::Client,
    client: &TokenClient,
    creds: &ClientCredentials,
    params: &[(&str, &str)],
    allow_loopback: bool,
) -> Result<TokenSet, UpstreamError> {
    let url = Url::parse(&client.token_url).map_err(|_| UpstreamError::Unavailable("token_url is not a URL".into()))?;
    precheck(&url, allow_loopback)?;
    let mut all: Vec<(&str, &str)> = params.to_vec();
    let mut req = http
        .post(url)
        .timeout(OAUTH_TIMEOUT)
        .header("accept", "application/json");
    for (k, v) in &client.extra_params {
        all.push((k, v));
    }
    match client.auth_method {
        TokenAuthMethod::ClientSecretPost => {
            all.push(("client_id", &creds.client_id));
            all.push(("client_secret", &creds.client_secret));
        }
        TokenAuthMethod::ClientSecretBasic => {
            req = req.header("authorization", basic(creds));
        }
        TokenAuthMethod::None => all.push(("client_id", &creds.client_id)),
    }
    req = match client.request_format {
        TokenFormat::Form => req
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_encode(&all)),
        TokenFormat::Json => {
            let obj: Map<String, Value> = all
                .iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect();
            req.header("content-type", "application/json")
                .body(Value::Object(obj).to_string())
        }
    };
    let res = req.send().await.map_err(UpstreamError::from_reqwest)?;
    let status = res.status().as_u16();
    let body = read_capped(res, MAX_OAUTH_RESPONSE).await?;
    let Some(doc) = parse_token_body(&body) else {
        return Err(UpstreamError::Unavailable(format!(
            "token endpoint answered {status} with a body that is neither JSON nor a form"
        )));
    };
    // OAuth errors (RFC 6749 §5.2), and Slack's `{"ok": false, "error": …}` with HTTP 200.
    let error_code = doc.get("error").and_then(Value::as_str).map(str::to_string);
    if !(200..300).contains(&status) || error_code.is_some() || doc.get("ok") == Some(&Value::Bool(false)) {
        let code = error_code
            .filter(|c| {
                c.len() <= 64
                    && c.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
            })
            .unwrap_or_else(|| "invalid_response".into());
        return Err(UpstreamError::Rejected { status, code });
    }
    let root = Value::Object(doc.clone());
    let holder = match &client.response_path {
        Some(p) => pluck(&root, p).and_then(Value::as_object).cloned().unwrap_or_default(),
        None => doc.clone(),
    };
    let access_token = holder
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| UpstreamError::Unavailable("token response has no access_token".into()))?
        .to_string();
    let expires_in = match holder.get("expires_in") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .filter(|n| *n > 0)
    // Ten years at most: an absurd value must not overflow `now + expires_in`.
    .map(|n| n.min(MAX_EXPIRES_IN));
    Ok(TokenSet {
        access_token,
        refresh_token: holder
            .get("refresh_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        expires_in,
        scope: holder.get("scope").and_then(Value::as_str).map(str::to_string),
        raw: doc,
    })
}

/// Exchange an authorization code (RFC 6749 §4.1.3; with PKCE, RFC 7636 §4.5).
pub async fn exchange_code(
    http: &reqwest::Client,
    client: &TokenClient,
    creds: &ClientCredentials,
    code: &str,
    redirect_uri: &str,
    verifier: Option<&str>,
    allow_loopback: bool,
) -> Result<TokenSet, UpstreamError> {
    let mut params = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
    ];
    if let Some(v) = verifier {
        params.push(("code_verifier", v));
    }
    token_request(http, client, creds, &params, allow_loopback).await
}

/// Refresh an access token (RFC 6749 §6).
pub async fn refresh(
    http: &reqwest::Client,
    client: &TokenClient,
    creds: &ClientCredentials,
    refresh_token: &str,
    allow_loopback: bool,
) -> Result<TokenSet, UpstreamError> {
    token_request(
        http,
        client,
        creds,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)],
        allow_loopback,
    )
    .await
}

/// Who connected: `(account_id, email)` from the token response or the provider's account URL.
/// Best effort: a failure is logged and yields `(None, None)`.
pub async fn account(
    http: &reqwest::Client,
    spec: &ProviderSpec,
    tokens: &TokenSet,
    allow_loopback: bool,
) -> (Option<String>, Option<String>) {
    let Some(acct) = &spec.account else {
        return (None, None);
    };
    let doc = if acct.from_token {
        Value::Object(tokens.raw.clone())
    } else {
        let Some(Ok(url)) = acct.url.as_deref().map(Url::parse) else {
            return (None, None);
        };
        if precheck(&url, allow_loopback).is_err() {
            return (None, None);
        }
        let mut req = http
            .get(url)
            .timeout(OAUTH_TIMEOUT)
            .bearer_auth(&tokens.access_token)
            .header("accept", "application/json");
        for (k, v) in &spec.api_headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let res = match req.send().await {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                tracing::info!(status = r.status().as_u16(), "vault: account lookup refused");
                return (None, None);
            }
            Err(e) => {
                tracing::info!(error = %UpstreamError::from_reqwest(e), "vault: account lookup failed");
                return (None, None);
            }
        };
        match read_capped(res, MAX_OAUTH_RESPONSE).await {
            Ok(b) => serde_json::from_slice(&b).unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    };
    let field = |f: &Option<String>| f.as_deref().and_then(|p| pluck(&doc, p)).and_then(scalar_text);
    let clip = |s: String| s.chars().take(256).collect::<String>();
    (field(&acct.id_field).map(clip), field(&acct.email_field).map(clip))
}

/// Revoke tokens where the client says how (RFC 7009, or the provider's own way). `Ok(true)` when
/// it confirmed, `Ok(false)` when there is no revocation endpoint.
pub async fn revoke(
    http: &reqwest::Client,
    client: &TokenClient,
    creds: &ClientCredentials,
    access_token: &str,
    refresh_token: Option<&str>,
    allow_loopback: bool,
) -> Result<bool, UpstreamError> {
    let Some(r) = &client.revoke else {
        return Ok(false);
    };
    let raw_url = match r.style {
        RevokeStyle::GithubGrant => {
            let id: String = url::form_urlencoded::byte_serialize(creds.client_id.as_bytes()).collect();
            r.url.replace("{client_id}", &id)
        }
        _ => r.url.clone(),
    };
    let url = Url::parse(&raw_url).map_err(|_| UpstreamError::Unavailable("revoke url is not a URL".into()))?;
    precheck(&url, allow_loopback)?;
    let req = match r.style {
        RevokeStyle::Rfc7009 => {
            // Revoking the refresh token revokes the grant at providers that tie them (RFC 7009 §2.1).
            let token = refresh_token.unwrap_or(access_token);
            let mut params = vec![("token", token)];
            let mut req = http.post(url);
            match client.auth_method {
                TokenAuthMethod::ClientSecretPost => {
                    params.push(("client_id", &creds.client_id));
                    params.push(("client_secret", &creds.client_secret));
                }
                TokenAuthMethod::ClientSecretBasic => req = req.header("authorization", basic(creds)),
                TokenAuthMethod::None => params.push(("client_id", &creds.client_id)),
            }
            match client.request_format {
                TokenFormat::Form => req
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form_encode(&params)),
                TokenFormat::Json => {
                    let obj: Map<String, Value> = params
                        .iter()
                        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                        .collect();
                    req.header("content-type", "application/json")
                        .body(Value::Object(obj).to_string())
                }
            }
        }
        RevokeStyle::Bearer => {
            let method = r
                .method
                .as_deref()
                .and_then(|m| reqwest::Method::from_bytes(m.as_bytes()).ok())
                .unwrap_or(reqwest::Method::POST);
            http.request(method, url).bearer_auth(access_token)
        }
        RevokeStyle::GithubGrant => http
            .delete(url)
            .header("authorization", basic(creds))
            .header("content-type", "application/json")
            .body(serde_json::json!({ "access_token": access_token }).to_string()),
    };
    let res = req
        .timeout(OAUTH_TIMEOUT)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(UpstreamError::from_reqwest)?;
    let status = res.status();
    if status.is_success() {
        Ok(true)
    } else {
        Err(UpstreamError::Rejected {
            status: status.as_u16(),
            code: "revocation_refused".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bodies_parse_as_json_or_form() {
        let j = parse_token_body(br#"{"access_token":"a","expires_in":3600}"#).unwrap();
        assert_eq!(j["access_token"], "a");
        let f = parse_token_body(b"access_token=a&scope=repo%2Cuser&token_type=bearer").unwrap();
        assert_eq!(f["scope"], "repo,user");
        assert!(parse_token_body(b"<html>").is_none());
    }

    #[test]
    fn pluck_follows_dotted_paths() {
        let v = serde_json::json!({"authed_user": {"id": "U1", "n": 5}});
        assert_eq!(pluck(&v, "authed_user.id"), Some(&Value::String("U1".into())));
        assert_eq!(scalar_text(pluck(&v, "authed_user.n").unwrap()), Some("5".into()));
        assert!(pluck(&v, "nope.id").is_none());
    }

    #[test]
    fn debug_output_hides_tokens_and_secrets() {
        let t = TokenSet {
            access_token: "ya29.secret-access".into(),
            refresh_token: Some("1//secret-refresh".into()),
            expires_in: Some(10),
            scope: None,
            raw: Map::new(),
        };
        let c = ClientCredentials {
            client_id: "id".into(),
            client_secret: "the-client-secret".into(),
        };
        let out = format!("{t:?} {c:?}");
        assert!(
            !out.contains("secret-access") && !out.contains("secret-refresh") && !out.contains("the-client-secret")
        );
    }

    #[test]
    fn basic_credentials_are_form_encoded() {
        let c = ClientCredentials {
            client_id: "a b".into(),
            client_secret: "x:y".into(),
        };
        assert_eq!(basic(&c), format!("Basic {}", STANDARD.encode("a+b:x%3Ay")));
    }
}
