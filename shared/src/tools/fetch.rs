//! Guarded fetches of a remote MCP server's discovery documents: https only (http only to loopback,
//! and only in the embedded default), every address checked by the guard, ≤ 1 MB, 10 s, redirects
//! followed only on the same origin (at most 3).

use std::time::Duration;

use serde_json::{Map, Value};
use url::Url;

use crate::net;

/// Largest discovery document.
pub const MAX_METADATA_BYTES: usize = 1024 * 1024;
/// Time allowed for one discovery request.
pub const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_REDIRECTS: usize = 3;

/// Why a fetch failed (public text, never a token).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Refused(String),
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("{0}")]
    Failed(String),
}

/// Check a URL we are about to fetch (a server URL or a discovered one).
pub fn check_url(raw: &str, allow_loopback: bool) -> Result<Url, FetchError> {
    let url = net::outbound_url(raw, allow_loopback).map_err(|shape| {
        // Every refusal but NotUrl is of a URL that parsed: name it as parsed.
        let parsed = Url::parse(raw);
        let shown = parsed.as_ref().map(Url::to_string).unwrap_or_default();
        FetchError::Refused(match shape {
            net::UrlShape::NotUrl => format!("{raw:?} is not a URL"),
            net::UrlShape::NotHttps => format!("{shown} must use https"),
            net::UrlShape::NotHttp => {
                format!(
                    "the {}: scheme is not allowed",
                    parsed.map(|u| u.scheme().to_string()).unwrap_or_default()
                )
            }
            net::UrlShape::NoHost | net::UrlShape::UserInfo => format!("{shown} must have a host and no user info"),
            net::UrlShape::Fragment => format!("{shown} must not have a fragment"),
        })
    })?;
    net::check_url_host(&url, allow_loopback).map_err(|r| FetchError::Refused(format!("{url}: {r}")))?;
    Ok(url)
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme() && a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
}

/// A response we read whole: status, `WWW-Authenticate` and body.
pub struct Fetched {
    pub status: u16,
    pub www_authenticate: Vec<String>,
    pub body: Vec<u8>,
}

/// Send a request built by `build` to `url` (following same-origin redirects for GET), reading at
/// most `MAX_METADATA_BYTES`.
pub async fn send(
    http: &reqwest::Client,
    url: Url,
    allow_loopback: bool,
    build: impl Fn(&reqwest::Client, Url) -> reqwest::RequestBuilder,
) -> Result<Fetched, FetchError> {
    let mut url = url;
    for _ in 0..=MAX_REDIRECTS {
        check_url(url.as_str(), allow_loopback)?;
        let res = build(http, url.clone()).timeout(TIMEOUT).send().await.map_err(|e| {
            if let Some(r) = net::refused_by_guard(&e) {
                FetchError::Refused(format!("{}: {r}", url.host_str().unwrap_or("")))
            } else if e.is_timeout() {
                FetchError::Failed(format!("{url} did not answer within 10 s"))
            } else {
                FetchError::Failed(format!("{url} could not be reached"))
            }
        })?;
        let status = res.status();
        if status.is_redirection() {
            let next = res
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .and_then(|l| url.join(l).ok())
                .ok_or_else(|| FetchError::Failed(format!("{url} redirected without a location")))?;
            if !same_origin(&url, &next) {
                return Err(FetchError::Refused(format!(
                    "{url} redirected to another host ({}); refused",
                    next.host_str().unwrap_or("")
                )));
            }
            url = next;
            continue;
        }
        let www_authenticate = res
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        if res.content_length().is_some_and(|n| n as usize > MAX_METADATA_BYTES) {
            return Err(FetchError::Refused(format!("{url}: the document is larger than 1 MB")));
        }
        let mut res = res;
        let mut body = Vec::new();
        loop {
            match tokio::time::timeout(TIMEOUT, res.chunk()).await {
                Ok(Ok(Some(c))) => {
                    body.extend_from_slice(&c);
                    if body.len() > MAX_METADATA_BYTES {
                        return Err(FetchError::Refused(format!("{url}: the document is larger than 1 MB")));
                    }
                }
                Ok(Ok(None)) => break,
                Ok(Err(_)) | Err(_) => return Err(FetchError::Failed(format!("{url}: reading the response failed"))),
            }
        }
        return Ok(Fetched {
            status: status.as_u16(),
            www_authenticate,
            body,
        });
    }
    Err(FetchError::Refused(format!("{url}: too many redirects")))
}

/// GET a JSON object. `Ok(None)` for 404/410 (try the next well-known location).
pub async fn get_json(
    http: &reqwest::Client,
    url: &Url,
    allow_loopback: bool,
) -> Result<Option<Map<String, Value>>, FetchError> {
    let f = send(http, url.clone(), allow_loopback, |c, u| {
        c.get(u).header("accept", "application/json")
    })
    .await?;
    match f.status {
        200..=299 => match serde_json::from_slice::<Value>(&f.body) {
            Ok(Value::Object(m)) => Ok(Some(m)),
            _ => Err(FetchError::Failed(format!("{url} did not return a JSON object"))),
        },
        // Not there: the caller tries the next location (servers answer 404, 400 or 401 for unknown
        // well-known paths in practice).
        400..=499 => Ok(None),
        s => Err(FetchError::Status {
            url: url.to_string(),
            status: s,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_must_be_https_or_loopback_http_when_allowed() {
        assert!(check_url("https://mcp.example.invalid/mcp", false).is_ok());
        assert!(check_url("http://127.0.0.1:9/mcp", true).is_ok());
        for (raw, allow) in [
            ("http://127.0.0.1:9/mcp", false),
            ("http://mcp.example.invalid/mcp", true),
            ("https://user:pw@mcp.example.invalid/", false),
            ("ftp://mcp.example.invalid/", false),
            ("file:///etc/passwd", true),
            ("not a url", true),
            ("https://169.254.169.254/latest/meta-data", true),
            ("https://10.0.0.1/mcp", true),
            ("https://[::1]/mcp", false),
            ("https://[fd00::1]/mcp", true),
            ("https://100.64.0.1/mcp", true),
            ("https://mcp.example.invalid/mcp#x", false),
        ] {
            assert!(check_url(raw, allow).is_err(), "{raw} ({allow})");
        }
    }
}
