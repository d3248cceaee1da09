//! Client ID Metadata Documents (the MCP authorization spec's CIMD; draft-ietf-oauth-client-id-metadata-document):
//! a `client_id` that is an https URL names a JSON document, fetched by latchkey, whose `client_id`
//! must equal the URL and whose redirect URIs bind the request. The checks here are pure: the URL,
//! the document, and how long `Cache-Control` lets us trust it. The fetch itself (address guard,
//! size and time caps) is the flow's, `authz::cimd`.

use serde_json::{Map, Value};
use url::Url;

use crate::domain::client::ClientMetadata;
use crate::domain::redirect::RedirectPolicy;
use crate::oauth::client::validate_registration;

/// Freshness when the response says nothing; the longest we honour.
pub const DEFAULT_MAX_AGE: i64 = 300;
/// The longest a document is trusted, whatever `Cache-Control` says.
pub const MAX_MAX_AGE: i64 = 86_400;

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
    use crate::net::UrlShape;
    let url = crate::net::outbound_url(raw, allow_loopback).map_err(|shape| {
        match shape {
            UrlShape::NotUrl | UrlShape::NoHost => "the client_id is not a valid URL",
            UrlShape::NotHttp | UrlShape::NotHttps => "a client_id URL must use https",
            UrlShape::UserInfo | UrlShape::Fragment => "a client_id URL must not have a fragment or user info",
        }
        .to_string()
    })?;
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
