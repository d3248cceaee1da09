//! How latchkey, as an MCP client, finds a remote MCP server's authorization server (MCP
//! authorization spec, 2025-03-26 through 2026-07-28):
//!
//! 1. an unauthenticated MCP request; a 401's `WWW-Authenticate: Bearer resource_metadata="…"`
//!    names the protected resource metadata (RFC 9728), and its `scope` the scopes to ask for;
//! 2. else the RFC 9728 well-known locations: path-suffixed, then root;
//! 3. the metadata's `resource` must be the server's URL, and it names the authorization server;
//! 4. RFC 8414 metadata of that issuer: for an issuer with a path,
//!    `/.well-known/oauth-authorization-server/<path>`, `/.well-known/openid-configuration/<path>`,
//!    `<issuer>/.well-known/openid-configuration`; for a root issuer the first two without a path.
//!    The document's `issuer` must equal the issuer it was fetched for.
//! 5. 2025-03-26 servers without protected resource metadata: the authorization server is the
//!    server's origin, with `/authorize`, `/token` and `/register` when it publishes no metadata.

use serde_json::{json, Map, Value};
use url::Url;

use super::fetch::{self, FetchError};

/// What discovery found.
#[derive(Clone, Debug, PartialEq)]
pub struct Discovered {
    /// The resource the tokens are for (the protected resource metadata's `resource`, or the
    /// server URL).
    pub resource: String,
    /// The protected resource metadata, if the server publishes it.
    pub resource_metadata: Option<Map<String, Value>>,
    pub issuer: String,
    pub metadata: Map<String, Value>,
    /// Scopes the server asked for in its 401 challenge.
    pub challenge_scope: Option<String>,
}

impl Discovered {
    pub fn endpoint(&self, name: &str) -> Option<&str> {
        self.metadata.get(name).and_then(Value::as_str)
    }

    /// Scopes to ask for when the app names none: the challenge's, else the resource's
    /// `scopes_supported`.
    pub fn default_scopes(&self) -> Vec<String> {
        if let Some(s) = &self.challenge_scope {
            return s.split(' ').filter(|x| !x.is_empty()).map(str::to_string).collect();
        }
        self.resource_metadata
            .as_ref()
            .and_then(|m| m.get("scopes_supported"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    }
}

/// Parameters of a `Bearer` challenge (`WWW-Authenticate`), lower-cased names.
pub fn bearer_params(header: &str) -> Option<Vec<(String, String)>> {
    let rest = header.trim();
    let (scheme, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut out = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if rest.is_empty() {
            break;
        }
        let Some(eq) = rest.find('=') else { break };
        let name = rest[..eq].trim().to_ascii_lowercase();
        rest = &rest[eq + 1..];
        let value;
        if let Some(q) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            value = v;
            rest = &q[end.min(q.len())..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        out.push((name, value));
    }
    Some(out)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The RFC 9728 well-known locations for a server URL: path-suffixed, then root.
pub fn resource_metadata_urls(server: &Url) -> Vec<Url> {
    let mut out = Vec::new();
    let path = server.path().trim_end_matches('/');
    let mut root = server.clone();
    root.set_query(None);
    root.set_fragment(None);
    if !path.is_empty() {
        let mut u = root.clone();
        u.set_path(&format!("/.well-known/oauth-protected-resource{path}"));
        out.push(u);
    }
    let mut u = root;
    u.set_path("/.well-known/oauth-protected-resource");
    out.push(u);
    out
}

/// The RFC 8414 / OpenID Connect discovery locations for an issuer, in the order MCP clients try.
pub fn authorization_server_metadata_urls(issuer: &Url) -> Vec<Url> {
    let path = issuer.path().trim_end_matches('/');
    let mut origin = issuer.clone();
    origin.set_query(None);
    origin.set_fragment(None);
    let at = |p: String| {
        let mut u = origin.clone();
        u.set_path(&p);
        u
    };
    if path.is_empty() {
        vec![
            at("/.well-known/oauth-authorization-server".into()),
            at("/.well-known/openid-configuration".into()),
        ]
    } else {
        vec![
            at(format!("/.well-known/oauth-authorization-server{path}")),
            at(format!("/.well-known/openid-configuration{path}")),
            at(format!("{path}/.well-known/openid-configuration")),
        ]
    }
}

/// Does the protected resource metadata's `resource` cover the server URL? The same origin, and
/// the server's path within the resource's path (a server at `/mcp` may be described by a resource
/// at the origin, as several servers publish it); anything else is metadata for another resource
/// (RFC 9728 §3.3, §7.3) and is refused.
pub fn resource_covers(resource: &str, server: &Url) -> bool {
    let Ok(r) = Url::parse(resource) else {
        return false;
    };
    if r.scheme() != server.scheme()
        || r.host_str() != server.host_str()
        || r.port_or_known_default() != server.port_or_known_default()
    {
        return false;
    }
    if r.fragment().is_some() || r.query().is_some() {
        return false;
    }
    let rp = r.path().trim_end_matches('/');
    let sp = server.path().trim_end_matches('/');
    rp.is_empty() || sp == rp || sp.starts_with(&format!("{rp}/"))
}

/// Run discovery for `server_url`.
pub async fn discover(
    http: &reqwest::Client,
    server_url: &str,
    allow_loopback: bool,
) -> Result<Discovered, FetchError> {
    let server = fetch::check_url(server_url, allow_loopback)?;

    // 1. An unauthenticated MCP request.
    let probe = fetch::send(http, server.clone(), allow_loopback, |c, u| {
        c.post(u)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(
                json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                    "protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": {"name": "latchkey", "version": env!("CARGO_PKG_VERSION")}}})
                .to_string(),
            )
    })
    .await?;
    let challenge = probe
        .www_authenticate
        .iter()
        .find_map(|h| bearer_params(h))
        .unwrap_or_default();
    let challenge_scope = param(&challenge, "scope").map(str::to_string);
    let mut candidates = Vec::new();
    if let Some(rm) = param(&challenge, "resource_metadata") {
        candidates.push(fetch::check_url(rm, allow_loopback)?);
    }
    candidates.extend(resource_metadata_urls(&server));

    // 2. Protected resource metadata.
    let mut resource_metadata = None;
    for url in &candidates {
        if let Some(doc) = fetch::get_json(http, url, allow_loopback).await? {
            resource_metadata = Some(doc);
            break;
        }
    }

    let (issuer, resource) = match &resource_metadata {
        Some(rm) => {
            let resource = rm
                .get("resource")
                .and_then(Value::as_str)
                .ok_or_else(|| FetchError::Refused("the protected resource metadata has no resource".into()))?
                .to_string();
            // 3. The metadata must describe this server (RFC 9728 §3.3, §7.3).
            if !resource_covers(&resource, &server) {
                return Err(FetchError::Refused(format!(
                    "the protected resource metadata is for {resource}, not {server}"
                )));
            }
            let issuer = rm
                .get("authorization_servers")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().find_map(Value::as_str))
                .ok_or_else(|| {
                    FetchError::Refused("the protected resource metadata names no authorization server".into())
                })?
                .to_string();
            (issuer, resource)
        }
        None => {
            // 5. 2025-03-26: the authorization server is the server's origin.
            let mut origin = server.clone();
            origin.set_path("");
            origin.set_query(None);
            (origin.as_str().trim_end_matches('/').to_string(), server.to_string())
        }
    };
    let issuer_url = fetch::check_url(&issuer, allow_loopback)?;

    // 4. Authorization server metadata, whose issuer must be the one we looked for.
    let mut metadata = None;
    for url in authorization_server_metadata_urls(&issuer_url) {
        if let Some(doc) = fetch::get_json(http, &url, allow_loopback).await? {
            // RFC 8414 §3.3: identical, not normalised.
            let got = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
            if got != issuer {
                return Err(FetchError::Refused(format!(
                    "the authorization server metadata at {url} names issuer {got:?}, not {issuer}"
                )));
            }
            metadata = Some(doc);
            break;
        }
    }
    let metadata = match (metadata, &resource_metadata) {
        (Some(m), _) => m,
        (None, None) => {
            // 2025-03-26 default endpoints.
            let mut m = Map::new();
            m.insert("issuer".into(), json!(issuer));
            m.insert("authorization_endpoint".into(), json!(format!("{issuer}/authorize")));
            m.insert("token_endpoint".into(), json!(format!("{issuer}/token")));
            m.insert("registration_endpoint".into(), json!(format!("{issuer}/register")));
            m
        }
        (None, Some(_)) => {
            return Err(FetchError::Refused(format!(
                "the authorization server {issuer} publishes no metadata"
            )))
        }
    };
    for name in ["authorization_endpoint", "token_endpoint"] {
        let v = metadata
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| FetchError::Refused(format!("the authorization server metadata has no {name}")))?;
        fetch::check_url(v, allow_loopback)?;
    }
    let mut metadata = metadata;
    // Endpoints latchkey may call later must pass the same checks; drop an unusable optional one
    // (a client secret and refresh token must never go to it).
    for name in ["revocation_endpoint", "registration_endpoint"] {
        if let Some(v) = metadata.get(name).and_then(Value::as_str) {
            if fetch::check_url(v, allow_loopback).is_err() {
                metadata.remove(name);
            }
        }
    }
    if let Some(methods) = metadata
        .get("code_challenge_methods_supported")
        .and_then(Value::as_array)
    {
        if !methods.iter().any(|m| m == "S256") {
            return Err(FetchError::Refused(
                "the authorization server does not support PKCE S256".into(),
            ));
        }
    }
    Ok(Discovered {
        resource,
        resource_metadata,
        issuer,
        metadata,
        challenge_scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_parse() {
        let p = bearer_params(
            r#"Bearer error="insufficient_scope", scope="files:read files:write", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#,
        )
        .unwrap();
        assert_eq!(param(&p, "error"), Some("insufficient_scope"));
        assert_eq!(param(&p, "scope"), Some("files:read files:write"));
        assert_eq!(
            param(&p, "resource_metadata"),
            Some("https://mcp.example.com/.well-known/oauth-protected-resource/mcp")
        );
        let p = bearer_params(r#"Bearer realm="x\"y", error=invalid_token"#).unwrap();
        assert_eq!(param(&p, "realm"), Some("x\"y"));
        assert_eq!(param(&p, "error"), Some("invalid_token"));
        assert!(bearer_params("Basic realm=x").is_none());
        assert_eq!(bearer_params("Bearer").unwrap(), vec![]);
    }

    #[test]
    fn resource_metadata_must_describe_this_server() {
        let s = Url::parse("http://localhost:3000/mcp").unwrap();
        assert!(resource_covers("http://localhost:3000/mcp", &s));
        assert!(resource_covers("http://localhost:3000", &s));
        assert!(resource_covers("http://localhost:3000/", &s));
        assert!(!resource_covers("https://evil.example.com/mcp", &s));
        assert!(!resource_covers("http://localhost:3001/mcp", &s));
        assert!(!resource_covers("http://localhost:3000/other", &s));
        assert!(!resource_covers("http://localhost:3000/mc", &s));
        assert!(!resource_covers("not a url", &s));
        let nested = Url::parse("https://api.example.com/v1/mcp/").unwrap();
        assert!(resource_covers("https://api.example.com/v1", &nested));
    }

    #[test]
    fn well_known_locations() {
        let s = Url::parse("https://mcp.example.com/public/mcp").unwrap();
        let urls: Vec<String> = resource_metadata_urls(&s).iter().map(Url::to_string).collect();
        assert_eq!(
            urls,
            vec![
                "https://mcp.example.com/.well-known/oauth-protected-resource/public/mcp",
                "https://mcp.example.com/.well-known/oauth-protected-resource",
            ]
        );
        let root = Url::parse("https://auth.example.com").unwrap();
        let urls: Vec<String> = authorization_server_metadata_urls(&root)
            .iter()
            .map(Url::to_string)
            .collect();
        assert_eq!(
            urls,
            vec![
                "https://auth.example.com/.well-known/oauth-authorization-server",
                "https://auth.example.com/.well-known/openid-configuration",
            ]
        );
        let path = Url::parse("https://auth.example.com/tenant1").unwrap();
        let urls: Vec<String> = authorization_server_metadata_urls(&path)
            .iter()
            .map(Url::to_string)
            .collect();
        assert_eq!(
            urls,
            vec![
                "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
                "https://auth.example.com/.well-known/openid-configuration/tenant1",
                "https://auth.example.com/tenant1/.well-known/openid-configuration",
            ]
        );
    }
}
