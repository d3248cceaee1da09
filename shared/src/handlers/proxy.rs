//! `ANY /v1/proxy/{provider}/{path+}` with `X-API-Key` and `X-User-Id`: the request goes to the
//! provider's API base + path with the user's token attached; the provider's status, body and
//! content type come back. The caller never chooses the host (`vault::path`). An expired token, or
//! one 401 from the provider, triggers a single-flight refresh and one retry (`vault::forward`).
//!
//! Budget with a valid token: 1 DynamoDB round trip (API key, connection and provider in one
//! batch read) and no KMS call once the connection's data key is cached.

use http::{HeaderMap, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use url::Url;

use crate::domain::connection::{Connection, ConnectionStatus};
use crate::error::VaultError;
use crate::http::path::path_params;
use crate::state::AppState;
use crate::store::{connections, providers, FromItem};
use crate::vault::forward::{relay, send_with_held_token, MAX_PROXY_BODY};
use crate::vault::refresh::{reauthorization_required, upstream_failure, Holder};
use crate::vault::upstream::precheck;
use crate::vault::{self, path, PresentedKey};

const PATTERN: &str = "/v1/proxy/{provider}/{path+}";

/// Request headers never forwarded: hop-by-hop (RFC 9110 §7.6.1), cookies, our own auth and
/// routing headers, and what the HTTP client sets itself.
const DROPPED_REQUEST_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "accept-encoding",
    "cookie",
    "authorization",
    "x-api-key",
    "x-user-id",
    "forwarded",
    "via",
    "x-real-ip",
    "origin",
    "referer",
    "user-agent",
];

fn bad(message: impl Into<String>) -> VaultError {
    VaultError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
}

/// Any method on `/v1/proxy/{provider}/{path+}`: the provider's answer, or the vault's error JSON.
pub async fn handle(state: &AppState, req: Request) -> Response<Body> {
    proxy(state, &req).await.unwrap_or_else(|e| e.response())
}

fn forwarded_headers(req: &Request) -> Result<HeaderMap, VaultError> {
    let mut out = HeaderMap::new();
    for (name, value) in req.headers() {
        let n = name.as_str();
        if DROPPED_REQUEST_HEADERS.contains(&n)
            || n.starts_with("x-forwarded-")
            || n.starts_with("x-amz")
            || n.starts_with("x-latchkey-")
            || n.starts_with("proxy-")
            || n.starts_with("sec-")
        {
            continue;
        }
        // Header injection: no control characters (CR, LF, NUL, …) in anything we pass on.
        if value.as_bytes().iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(bad(format!("header {n} contains control characters")));
        }
        out.append(name.clone(), value.clone());
    }
    Ok(out)
}

fn user_id(req: &Request) -> Result<String, VaultError> {
    let mut values = req.headers().get_all("x-user-id").iter();
    let (Some(v), None) = (values.next(), values.next()) else {
        return Err(bad("send the user's id in one X-User-Id header"));
    };
    // Percent-encoded UTF-8, so every user id a session accepts can be named here.
    let raw = v
        .to_str()
        .map_err(|_| bad("X-User-Id must be ASCII; percent-encode other characters"))?;
    let id = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| bad("X-User-Id must be percent-encoded UTF-8"))?
        .into_owned();
    vault::check_user_id(&id)?;
    Ok(id)
}

fn body_bytes(req: &Request) -> Result<Vec<u8>, VaultError> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > MAX_PROXY_BODY {
        return Err(VaultError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is larger than {MAX_PROXY_BODY} bytes"),
        ));
    }
    Ok(bytes.to_vec())
}

async fn proxy(state: &AppState, req: &Request) -> Result<Response<Body>, VaultError> {
    let raw_path = crate::http::request::raw_path(req);
    let params = path_params(PATTERN, raw_path).ok_or_else(|| bad("use /v1/proxy/{provider}/{path}"))?;
    let (provider_name, rest) = (params[0], params[1]);
    if matches!(*req.method(), Method::CONNECT | Method::TRACE) {
        return Err(VaultError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "CONNECT and TRACE are not proxied",
        ));
    }
    let key = PresentedKey::from_request(req)?;
    vault::check_provider_name(provider_name)?;
    let user_id = user_id(req)?;
    let api_host = match req.headers().get("x-latchkey-api-host") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| bad("X-Latchkey-Api-Host must be a host name"))?
                .to_string(),
        ),
        None => None,
    };
    let raw_query = req.uri().query();
    // Refuse hostile paths before any store read (the real base is only known after it).
    let probe = Url::parse("https://proxy.invalid/").map_err(|_| vault::internal())?;
    path::upstream_url(&probe, &[], None, rest, raw_query).map_err(|e| bad(e.0))?;
    let headers = forwarded_headers(req)?;
    let body = body_bytes(req)?;

    let now = state.clock.now();
    let items = state
        .store
        .get_many(
            &[
                key.store_key(),
                connections::connection_key(&key.project_id, &user_id, provider_name),
                providers::provider_key(&key.project_id, provider_name),
            ],
            now,
        )
        .await
        .map_err(|e| vault::store_error("reading the connection", e))?;
    key.verify(items[0].as_ref())?;
    let provider = vault::resolve_provider(state, &key.project_id, provider_name, items[2].as_ref())?;
    let Some(conn) = items[1]
        .as_ref()
        .map(Connection::from_item)
        .transpose()
        .map_err(|e| vault::store_error("reading a connection", e))?
    else {
        return Err(vault::not_connected(provider_name));
    };
    if conn.status != ConnectionStatus::Active {
        return Err(reauthorization_required(provider_name));
    }
    let base_raw = conn
        .api_base_url
        .clone()
        .unwrap_or_else(|| provider.spec.api_base_url.clone());
    let base = Url::parse(&base_raw).map_err(|_| vault::internal())?;
    let target = path::upstream_url(&base, &provider.spec.api_hosts, api_host.as_deref(), rest, raw_query)
        .map_err(|e| bad(e.0))?;
    precheck(&target, state.config.allow_loopback_outbound).map_err(|e| upstream_failure(&e))?;

    let timeout = std::time::Duration::from_secs(state.config.upstream_timeout_seconds as u64);
    let res = send_with_held_token(
        state,
        &provider.token_client(),
        &Holder::connection(&conn),
        conn.held(),
        now,
        provider_name,
        |access_token| {
            let mut out = state
                .upstream
                .request(req.method().clone(), target.clone())
                .timeout(timeout)
                .headers(headers.clone());
            for (k, v) in &provider.spec.api_headers {
                if !headers.contains_key(k.as_str()) {
                    out = out.header(k.as_str(), v.as_str());
                }
            }
            out = out.bearer_auth(access_token);
            if !body.is_empty() {
                out = out.body(body.clone());
            }
            out
        },
    )
    .await?;
    relay(res, &[], None).await
}
