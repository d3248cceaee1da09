//! Client ID Metadata Documents (the MCP authorization spec's CIMD; draft-ietf-oauth-client-id-metadata-document):
//! a `client_id` that is an https URL names a JSON document, fetched by latchkey, whose `client_id`
//! must equal the URL and whose redirect URIs bind the request. The fetch goes through the address
//! guard (`net::check_ip`) on the resolved address and connects to exactly that address; at most
//! 5 KB, 5 seconds, no redirects; `Cache-Control` decides how long the document is trusted.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Map, Value};
use url::{Host, Url};

use crate::http::request::parse_strict_json;
use crate::net;
use crate::oauth::client::{validate_registration, ClientMetadata};
use crate::oauth::redirect::RedirectPolicy;

/// Largest document we read.
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// Longest we wait for it.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Freshness when the response says nothing; the longest we honour.
pub const DEFAULT_MAX_AGE: i64 = 300;
pub const MAX_MAX_AGE: i64 = 86_400;

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Does this `client_id` name a metadata document (rather than a registered client)?
pub fn is_document_client_id(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// Check the URL itself: https (http only to loopback, and only where loopback is allowed), a
/// path, no fragment, user info or dot segments.
pub fn parse_client_id_url(raw: &str, allow_loopback: bool) -> Result<Url, String> {
    if raw.len() > 512 {
        return Err("the client_id URL is longer than 512 characters".into());
    }
    let url = Url::parse(raw).map_err(|_| "the client_id is not a valid URL".to_string())?;
    match url.scheme() {
        "https" => {}
        "http" if allow_loopback && is_loopback(&url) => {}
        _ => return Err("a client_id URL must use https".into()),
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err("a client_id URL must not have a fragment or user info".into());
    }
    if url.path() == "/" || url.path().is_empty() {
        return Err("a client_id URL must have a path".into());
    }
    if url.as_str() != raw {
        return Err("the client_id URL must be in normal form".into());
    }
    Ok(url)
}

/// Seconds the response may be trusted, from `Cache-Control`.
pub fn max_age(cache_control: Option<&str>) -> i64 {
    let Some(cc) = cache_control else {
        return DEFAULT_MAX_AGE;
    };
    let mut age = DEFAULT_MAX_AGE;
    for directive in cc.split(',').map(|d| d.trim().to_ascii_lowercase()) {
        if directive == "no-store" || directive == "no-cache" {
            return 0;
        }
        if let Some(v) = directive.strip_prefix("max-age=") {
            age = v.trim_matches('"').parse::<i64>().unwrap_or(DEFAULT_MAX_AGE);
        }
    }
    age.clamp(0, MAX_MAX_AGE)
}

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

/// Validate a fetched document for `url`: its `client_id` must equal the URL; it is a public client
/// (`none`), and its metadata passes the same checks as dynamic registration.
pub fn metadata_from_document(
    mut doc: Map<String, Value>,
    url: &str,
    policy: &RedirectPolicy,
) -> Result<ClientMetadata, String> {
    if doc.get("client_id").and_then(Value::as_str) != Some(url) {
        return Err("the document's client_id does not equal its URL".into());
    }
    if doc.contains_key("client_secret") {
        return Err("a client metadata document must not contain a client_secret".into());
    }
    match doc.get("token_endpoint_auth_method").and_then(Value::as_str) {
        None => {
            doc.insert("token_endpoint_auth_method".into(), Value::String("none".into()));
        }
        Some("none") => {}
        Some(_) => return Err("only token_endpoint_auth_method none is supported for metadata documents".into()),
    }
    validate_registration(&doc, policy).map_err(|e| e.description)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn client_id_urls() {
        assert!(parse_client_id_url("https://app.example.com/client.json", false).is_ok());
        for bad in [
            "http://app.example.com/client.json",
            "https://app.example.com/",
            "https://app.example.com",
            "https://u@app.example.com/c",
            "https://app.example.com/c#f",
            "https://app.example.com/a/../c",
            "http://127.0.0.1:9/c",
        ] {
            assert!(parse_client_id_url(bad, false).is_err(), "{bad}");
        }
        assert!(parse_client_id_url("http://127.0.0.1:9/c", true).is_ok());
        assert!(parse_client_id_url("http://10.0.0.1/c", true).is_err());
    }

    #[test]
    fn cache_control() {
        assert_eq!(max_age(None), DEFAULT_MAX_AGE);
        assert_eq!(max_age(Some("public, max-age=60")), 60);
        assert_eq!(max_age(Some("no-store")), 0);
        assert_eq!(max_age(Some("max-age=999999")), MAX_MAX_AGE);
    }

    #[test]
    fn document_must_name_itself_and_be_public() {
        let url = "https://app.example.com/client.json";
        let good = json!({"client_id": url, "redirect_uris": ["http://127.0.0.1/cb"], "client_name": "App"});
        let p = RedirectPolicy::default();
        let m = metadata_from_document(good.as_object().unwrap().clone(), url, &p).unwrap();
        assert_eq!(m.token_endpoint_auth_method, "none");
        let mut other = good.clone();
        other["client_id"] = json!("https://evil.example/client.json");
        assert!(metadata_from_document(other.as_object().unwrap().clone(), url, &p).is_err());
        let mut secret = good.clone();
        secret["client_secret"] = json!("x");
        assert!(metadata_from_document(secret.as_object().unwrap().clone(), url, &p).is_err());
        let mut basic = good;
        basic["token_endpoint_auth_method"] = json!("client_secret_basic");
        assert!(metadata_from_document(basic.as_object().unwrap().clone(), url, &p).is_err());
    }
}
