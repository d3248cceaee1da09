//! Fetching a Client ID Metadata Document (draft-ietf-oauth-client-id-metadata-document §4): the
//! host is resolved once, every address checked by the guard (`net::check_ip`), and the request
//! connects to exactly the checked address; at most 5 KB, 5 seconds in all, no redirects. The
//! document's checks are `oauth::cimd`'s.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Map, Value};
use url::Url;

use crate::http::request::parse_strict_json;
use crate::net;
use crate::oauth::cimd::max_age;

/// Largest document we read.
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// Longest we wait for it (resolving, connecting and reading together).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Fetch the document: resolve, check every address with the guard, connect to the checked one.
/// Returns the JSON object and how long it may be trusted. Errors are public descriptions.
pub async fn fetch(url: &Url, allow_loopback: bool) -> Result<(Map<String, Value>, i64), String> {
    // One budget for resolving, connecting and reading.
    tokio::time::timeout(FETCH_TIMEOUT, fetch_inner(url, allow_loopback))
        .await
        .map_err(|_| "the client metadata document took too long".to_string())?
}

async fn fetch_inner(url: &Url, allow_loopback: bool) -> Result<(Map<String, Value>, i64), String> {
    let host = url.host_str().ok_or("the client_id URL has no host")?.to_string();
    let port = url.port_or_known_default().ok_or("the client_id URL has no port")?;
    let lookup_host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    let addrs: Vec<SocketAddr> =
        tokio::time::timeout(FETCH_TIMEOUT, tokio::net::lookup_host((lookup_host.as_str(), port)))
            .await
            .map_err(|_| "the client_id host did not resolve in time".to_string())?
            .map_err(|_| "the client_id host does not resolve".to_string())?
            .collect();
    let first = *addrs.first().ok_or("the client_id host does not resolve")?;
    for a in &addrs {
        net::check_ip(a.ip(), allow_loopback).map_err(|r| format!("the client_id host is not allowed: {r}"))?;
    }
    let client = reqwest::Client::builder()
        .resolve(&host, first)
        .no_proxy()
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|_| "could not fetch the client metadata document".to_string())?;
    let mut res = client
        .get(url.clone())
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                "the client metadata document took too long".to_string()
            } else {
                "could not fetch the client metadata document".to_string()
            }
        })?;
    if !res.status().is_success() {
        return Err(format!(
            "the client metadata document answered {}",
            res.status().as_u16()
        ));
    }
    if res.content_length().is_some_and(|n| n as usize > MAX_DOCUMENT_BYTES) {
        return Err("the client metadata document is larger than 5 KB".into());
    }
    let age = max_age(res.headers().get("cache-control").and_then(|v| v.to_str().ok()));
    let mut body = Vec::new();
    loop {
        match res.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_DOCUMENT_BYTES {
                    return Err("the client metadata document is larger than 5 KB".into());
                }
            }
            Ok(None) => break,
            Err(e) if e.is_timeout() => return Err("the client metadata document took too long".into()),
            Err(_) => return Err("could not read the client metadata document".into()),
        }
    }
    match parse_strict_json(&body)? {
        Value::Object(m) => Ok((m, age)),
        _ => Err("the client metadata document is not a JSON object".into()),
    }
}
