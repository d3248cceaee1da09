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
//!
//! Steps 1–3 (`discover_resource`) run again at every initiate-oauth: the challenge's `scope` is
//! the scope to ask for, and a metadata document that no longer lists the tool's authorization
//! server moves the tool to the one it lists (`tools::migration`).

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
    /// An endpoint URL the authorization server metadata names (RFC 8414 §2), if any.
    pub fn endpoint(&self, name: &str) -> Option<&str> {
        self.metadata.get(name).and_then(Value::as_str)
    }
}

/// What the server says about itself (steps 1–3, and 5's authorization server).
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceFound {
    pub resource: String,
    pub resource_metadata: Option<Map<String, Value>>,
    /// The metadata's `authorization_servers` (RFC 9728 §2), in its order; for a 2025-03-26
    /// server without resource metadata, the server's origin.
    pub authorization_servers: Vec<String>,
    /// Whether the server publishes resource metadata (without it, the 2025-03-26 default
    /// endpoints apply to an authorization server that publishes no metadata).
    pub has_resource_metadata: bool,
    /// The `scope` of the server's 401 challenge to an unauthenticated request.
    pub challenge_scope: Option<String>,
}

impl ResourceFound {
    /// The resource metadata's `scopes_supported` (RFC 9728 §2).
    pub fn scopes_supported(&self) -> Option<Vec<String>> {
        self.resource_metadata
            .as_ref()
            .and_then(|m| m.get("scopes_supported"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
    }
}

/// Which of the listed authorization servers to use (RFC 9728 §7.6: the client chooses): the one
/// the tool already uses while the server still lists it, else the first listed. A tool created
/// now has none (`current` empty).
pub fn choose_authorization_server<'a>(listed: &'a [String], current: &'a str) -> Option<&'a str> {
    if !current.is_empty() && listed.iter().any(|i| i == current) {
        return Some(current);
    }
    listed.first().map(String::as_str)
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

/// The `scope` a 401 or 403 response's `Bearer` challenge names (RFC 6750 §3, §3.1
/// `insufficient_scope`; MCP *Scope Challenge Handling*), if any.
pub fn challenge_scope(status: u16, www_authenticate: &[String]) -> Option<String> {
    if status != 401 && status != 403 {
        return None;
    }
    www_authenticate
        .iter()
        .filter_map(|h| bearer_params(h))
        .find_map(|p| param(&p, "scope").map(str::to_string))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
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

/// Read a protected resource metadata document (RFC 9728 §2) fetched for `server`: its
/// `resource`, which must cover the server (§3.3, §7.3), and its `authorization_servers`, in
/// order (at least one). Returns `(authorization_servers, resource)`.
pub fn read_resource_metadata(rm: &Map<String, Value>, server: &Url) -> Result<(Vec<String>, String), FetchError> {
    let resource = rm
        .get("resource")
        .and_then(Value::as_str)
        .ok_or_else(|| FetchError::Refused("the protected resource metadata has no resource".into()))?
        .to_string();
    // 3. The metadata must describe this server (RFC 9728 §3.3, §7.3).
    if !resource_covers(&resource, server) {
        return Err(FetchError::Refused(format!(
            "the protected resource metadata is for {resource}, not {server}"
        )));
    }
    let listed: Vec<String> = rm
        .get("authorization_servers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    if listed.is_empty() {
        return Err(FetchError::Refused(
            "the protected resource metadata names no authorization server".into(),
        ));
    }
    Ok((listed, resource))
}

/// Run discovery for `server_url`: the server's resource metadata, then its (first listed)
/// authorization server's.
pub async fn discover(
    http: &reqwest::Client,
    server_url: &str,
    allow_loopback: bool,
) -> Result<Discovered, FetchError> {
    let found = discover_resource(http, server_url, allow_loopback).await?;
    let issuer = choose_authorization_server(&found.authorization_servers, "")
        .ok_or_else(|| FetchError::Refused("the protected resource metadata names no authorization server".into()))?
        .to_string();
    let metadata = authorization_server(http, &issuer, found.has_resource_metadata, allow_loopback).await?;
    Ok(Discovered {
        resource: found.resource,
        resource_metadata: found.resource_metadata,
        issuer,
        metadata,
        challenge_scope: found.challenge_scope,
    })
}

/// Steps 1–3 (and 5): probe the server unauthenticated, read its protected resource metadata.
pub async fn discover_resource(
    http: &reqwest::Client,
    server_url: &str,
    allow_loopback: bool,
) -> Result<ResourceFound, FetchError> {
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
    let challenge_scope = param(&challenge, "scope")
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string);
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

    let (authorization_servers, resource) = match &resource_metadata {
        Some(rm) => read_resource_metadata(rm, &server)?,
        None => {
            // 5. 2025-03-26: the authorization server is the server's origin.
            let mut origin = server.clone();
            origin.set_path("");
            origin.set_query(None);
            (
                vec![origin.as_str().trim_end_matches('/').to_string()],
                server.to_string(),
            )
        }
    };
    Ok(ResourceFound {
        resource,
        has_resource_metadata: resource_metadata.is_some(),
        resource_metadata,
        authorization_servers,
        challenge_scope,
    })
}

/// Step 4: the RFC 8414 metadata of `issuer`, whose `issuer` must be the one asked for; for a
/// 2025-03-26 server without resource metadata (`has_resource_metadata` false), the default
/// endpoints when the authorization server publishes none.
pub async fn authorization_server(
    http: &reqwest::Client,
    issuer: &str,
    has_resource_metadata: bool,
    allow_loopback: bool,
) -> Result<Map<String, Value>, FetchError> {
    let issuer_url = fetch::check_url(issuer, allow_loopback)?;
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
    let mut metadata = match metadata {
        Some(m) => m,
        None if !has_resource_metadata => {
            // 2025-03-26 default endpoints.
            let mut m = Map::new();
            m.insert("issuer".into(), json!(issuer));
            m.insert("authorization_endpoint".into(), json!(format!("{issuer}/authorize")));
            m.insert("token_endpoint".into(), json!(format!("{issuer}/token")));
            m.insert("registration_endpoint".into(), json!(format!("{issuer}/register")));
            m
        }
        None => {
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
    Ok(metadata)
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
    fn rfc6750_3_1_the_scope_of_a_401_or_403_challenge() {
        let h = |s: &str| vec![s.to_string()];
        assert_eq!(
            challenge_scope(403, &h(r#"Bearer error="insufficient_scope", scope="files:write""#)).as_deref(),
            Some("files:write")
        );
        assert_eq!(
            challenge_scope(401, &h(r#"Bearer scope="a b", resource_metadata="https://x""#)).as_deref(),
            Some("a b")
        );
        assert_eq!(challenge_scope(200, &h(r#"Bearer scope="a""#)), None, "not a challenge");
        assert_eq!(challenge_scope(401, &h(r#"Bearer error="invalid_token""#)), None);
        assert_eq!(challenge_scope(401, &h(r#"Bearer scope="  ""#)), None);
        assert_eq!(challenge_scope(401, &h(r#"Basic realm="x""#)), None);
        assert_eq!(
            challenge_scope(
                401,
                &[r#"Basic realm="x""#.to_string(), r#"Bearer scope="b""#.to_string()]
            )
            .as_deref(),
            Some("b")
        );
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
    fn rfc9728_7_6_the_client_keeps_a_listed_authorization_server_else_takes_the_first() {
        let listed = vec!["https://as1.example".to_string(), "https://as2.example".to_string()];
        assert_eq!(choose_authorization_server(&listed, ""), Some("https://as1.example"));
        assert_eq!(
            choose_authorization_server(&listed, "https://as2.example"),
            Some("https://as2.example")
        );
        assert_eq!(
            choose_authorization_server(&listed, "https://old.example"),
            Some("https://as1.example"),
            "no longer listed: move"
        );
        // Exact comparison (RFC 8414 §3.3): a trailing slash is another issuer.
        assert_eq!(
            choose_authorization_server(&listed, "https://as2.example/"),
            Some("https://as1.example")
        );
        assert_eq!(choose_authorization_server(&[], "https://as1.example"), None);
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
