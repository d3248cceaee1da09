//! Forwarding to a provider's API or an MCP server with the token latchkey holds: send with the
//! access token, refresh once (single-flight, `refresh`) when it has expired or the upstream
//! answers 401, and retry; then relay the upstream answer as ours (status, allow-listed headers, the
//! body within the cap; an event stream read for a bounded window). Used by the vault proxy and by
//! tool forwarding.

use http::{HeaderMap, HeaderValue, StatusCode};
use lambda_http::{Body, Response};

use super::open_tokens;
use super::refresh::{self, needs_refresh, upstream_failure, Holder};
use super::token_client::TokenClient;
use super::upstream::UpstreamError;
use crate::domain::connection::HeldTokens;
use crate::error::VaultError;
use crate::state::AppState;

/// Largest request body forwarded, and largest upstream body returned: what a Lambda response
/// can carry once base64-encoded (6 MB payload limit).
pub const MAX_PROXY_BODY: usize = 4 * 1024 * 1024;

/// Response headers passed back (an allow-list: never `set-cookie` or hop-by-hop headers).
const RETURNED_RESPONSE_HEADERS: &[&str] = &[
    "content-type",
    "content-language",
    "content-disposition",
    "etag",
    "last-modified",
    "link",
    "location",
    "retry-after",
    "cache-control",
    "www-authenticate",
];

/// Why a forward with the held token failed.
#[derive(Debug)]
pub enum ForwardError {
    /// The refresh failed (refused, unreachable, another caller's refresh too slow): callers may
    /// look further (a tool's server may have moved to another authorization server).
    Refresh(VaultError),
    /// Opening the held tokens or sending the request failed.
    Send(VaultError),
}

impl From<ForwardError> for VaultError {
    fn from(e: ForwardError) -> Self {
        match e {
            ForwardError::Refresh(e) | ForwardError::Send(e) => e,
        }
    }
}

/// Send the request `build` makes for an access token, with the token `holder` holds (state
/// `held`): refreshed first when it has expired at `now`, and refreshed once more with one retry
/// when the upstream answers 401 (RFC 6750 §3.1 `invalid_token`). Without a refresh token there is
/// nothing to refresh with: the upstream's own answer (a 401 and its `WWW-Authenticate`) is returned
/// as it is. `label` names the upstream in the log.
pub async fn send_with_held_token(
    state: &AppState,
    client: &TokenClient,
    holder: &Holder,
    held: HeldTokens,
    now: i64,
    label: &str,
    build: impl Fn(&str) -> reqwest::RequestBuilder,
) -> Result<reqwest::Response, ForwardError> {
    let mut held = held;
    let mut tokens = open_tokens(state, &holder.context, &held.sealed_tokens)
        .await
        .map_err(ForwardError::Send)?;
    let mut refreshed = false;
    if needs_refresh(&held, now) && tokens.refresh_token.is_some() {
        (held, tokens) = refresh::refresh(state, client, holder, &held, &tokens)
            .await
            .map_err(ForwardError::Refresh)?;
        refreshed = true;
    }
    loop {
        let res = build(&tokens.access_token)
            .send()
            .await
            .map_err(|e| ForwardError::Send(upstream_failure(&UpstreamError::from_reqwest(e))))?;
        if res.status() == StatusCode::UNAUTHORIZED && !refreshed && tokens.refresh_token.is_some() {
            // The upstream no longer accepts the token (revoked or expired early): refresh once.
            tracing::info!(upstream = %label, "forward: the upstream answered 401; refreshing");
            (held, tokens) = refresh::refresh(state, client, holder, &held, &tokens)
                .await
                .map_err(ForwardError::Refresh)?;
            refreshed = true;
            continue;
        }
        return Ok(res);
    }
}

fn is_textual(content_type: &str) -> bool {
    let ct = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    ct.starts_with("text/")
        || ct == "application/json"
        || ct.ends_with("+json")
        || ct == "application/xml"
        || ct.ends_with("+xml")
        || ct == "application/javascript"
        || ct == "application/x-www-form-urlencoded"
}

/// The upstream response as ours: status, the allow-listed headers (plus `extra`), the body up to
/// `MAX_PROXY_BODY`.
///
/// With `sse_window`, an event stream is read for at most that long and returned with the events
/// complete so far (the stream's end, to the client: it reconnects with `Last-Event-ID`), since a
/// buffered Lambda response cannot stay open.
pub async fn relay(
    mut res: reqwest::Response,
    extra: &[&'static str],
    sse_window: Option<std::time::Duration>,
) -> Result<Response<Body>, VaultError> {
    let status = res.status();
    let mut headers = HeaderMap::new();
    for name in RETURNED_RESPONSE_HEADERS.iter().chain(extra) {
        for v in res.headers().get_all(*name) {
            headers.append(*name, v.clone());
        }
    }
    for (name, v) in res.headers() {
        if name.as_str().starts_with("x-ratelimit-") {
            headers.append(name.clone(), v.clone());
        }
    }
    if res.content_length().is_some_and(|n| n as usize > MAX_PROXY_BODY) {
        return Err(too_large());
    }
    let is_stream = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("text/event-stream"));
    let deadline = sse_window
        .filter(|_| is_stream)
        .map(|w| tokio::time::Instant::now() + w);
    let mut body = Vec::new();
    loop {
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, res.chunk()).await {
                Ok(r) => r,
                Err(_) => {
                    // Window over: keep only complete events.
                    let end = body.windows(2).rposition(|w| w == b"\n\n").map_or(0, |i| i + 2);
                    body.truncate(end);
                    break;
                }
            },
            None => res.chunk().await,
        };
        match next {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_PROXY_BODY {
                    return Err(too_large());
                }
            }
            Ok(None) => break,
            Err(e) => return Err(upstream_failure(&UpstreamError::from_reqwest(e))),
        }
    }
    let textual = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_textual);
    let body = if body.is_empty() {
        Body::Empty
    } else if textual {
        match String::from_utf8(body) {
            Ok(s) => Body::Text(s),
            Err(e) => Body::Binary(e.into_bytes()),
        }
    } else {
        Body::Binary(body)
    };
    let mut out = Response::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out.headers_mut()
        .insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    Ok(out)
}

fn too_large() -> VaultError {
    VaultError::new(
        StatusCode::BAD_GATEWAY,
        "upstream_response_too_large",
        format!("the provider's response is larger than {MAX_PROXY_BODY} bytes"),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn textual_content_types() {
        for t in [
            "application/json",
            "text/html; charset=utf-8",
            "application/problem+json",
            "application/atom+xml",
        ] {
            assert!(super::is_textual(t), "{t}");
        }
        for t in ["image/png", "application/octet-stream", "application/pdf"] {
            assert!(!super::is_textual(t), "{t}");
        }
    }
}
