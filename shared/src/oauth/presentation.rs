//! What the consent page may truthfully say about who is asking and what they would get. Pure: the
//! caller passes the pending request's fields, the stored client (if any) and the resource server's
//! scope descriptions.
//!
//! - **Names are claims.** A client registered by anyone (dynamic registration, RFC 7591) or named by a
//!   metadata document we have not verified is *unverified*: its name is shown as given, beside the
//!   hosts of its redirect URI and of its `client_uri`/`logo_uri`, never as an endorsement. A client
//!   named by an https Client ID Metadata Document whose document latchkey fetched and checked shows
//!   that document's host as its verified domain (MCP security best practices: make dynamically
//!   registered clients recognisable on consent).
//! - **Never an empty promise.** Each scope is described in words: the operator's for a resource
//!   server's declared scopes, built-in words for the base scopes; with no scope at all, the page says
//!   plainly that the app may use the resource on the user's behalf.

use url::Url;

use crate::domain::client::ClientMetadata;
use crate::domain::resource::ScopeDescriptions;

/// Who is asking, as the consent page may show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientPresentation {
    /// The name the client gave (registration or its document), if any.
    pub claimed_name: Option<String>,
    /// The host of an https metadata document latchkey fetched and checked; `None` means unverified.
    pub verified_domain: Option<String>,
    /// Where the user is sent after deciding (the redirect URI's host, or `scheme:` for an app's
    /// private-use scheme).
    pub redirect_host: String,
    /// The host of the client's `client_uri`, if it gave one.
    pub client_uri_host: Option<String>,
    /// The host of the client's `logo_uri`, if it gave one.
    pub logo_uri_host: Option<String>,
}

impl ClientPresentation {
    pub fn is_verified(&self) -> bool {
        self.verified_domain.is_some()
    }
}

/// The host of a URI (`scheme:` when it has none, e.g. `cursor://…` without a host); empty if it is
/// not a URI.
pub fn host_of(uri: &str) -> String {
    Url::parse(uri)
        .ok()
        .and_then(|u| {
            u.host_str()
                .filter(|h| !h.is_empty())
                .map(str::to_string)
                .or_else(|| Some(format!("{}:", u.scheme())))
        })
        .unwrap_or_default()
}

/// The https host of a URI, if it is one (a `client_uri` or `logo_uri` we only name, never fetch).
fn web_host(uri: Option<&str>) -> Option<String> {
    let url = Url::parse(uri?).ok()?;
    matches!(url.scheme(), "https" | "http")
        .then(|| url.host_str().map(str::to_string))
        .flatten()
        .filter(|h| !h.is_empty())
}

/// Present the client of a pending request. `stored` is the client record's metadata as latchkey
/// keeps it: for a metadata-document client it exists only once the document was fetched and
/// checked. Verified only for an https document client that latchkey has fetched.
pub fn present_client(
    client_id: &str,
    claimed_name: Option<&str>,
    redirect_uri: &str,
    stored: Option<&ClientMetadata>,
) -> ClientPresentation {
    let verified_domain = Url::parse(client_id)
        .ok()
        .filter(|u| u.scheme() == "https" && stored.is_some())
        .and_then(|u| u.host_str().map(str::to_string))
        .filter(|h| !h.is_empty());
    let claimed_name = claimed_name
        .or_else(|| stored.and_then(|m| m.client_name.as_deref()))
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    ClientPresentation {
        claimed_name,
        verified_domain,
        redirect_host: host_of(redirect_uri),
        client_uri_host: web_host(stored.and_then(|m| m.client_uri.as_deref())),
        logo_uri_host: web_host(stored.and_then(|m| m.logo_uri.as_deref())),
    }
}

/// One scope on the consent page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeLine {
    pub scope: String,
    /// What it lets the app do; `None` when neither the operator nor latchkey describes it.
    pub words: Option<String>,
}

/// Each requested scope with its words: the resource server's description of a scope it declares,
/// else the built-in words of a base scope.
pub fn describe_scopes(scope: &str, declared: &ScopeDescriptions) -> Vec<ScopeLine> {
    scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| ScopeLine {
            scope: s.to_string(),
            words: declared
                .get(s)
                .cloned()
                .or_else(|| crate::domain::scope::in_words(s).map(str::to_string)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(name: Option<&str>, client_uri: Option<&str>, logo_uri: Option<&str>) -> ClientMetadata {
        ClientMetadata {
            redirect_uris: vec!["https://app.example.com/cb".into()],
            token_endpoint_auth_method: "none".into(),
            grant_types: vec!["authorization_code".into()],
            response_types: vec!["code".into()],
            scope: None,
            application_type: "web".into(),
            client_name: name.map(str::to_string),
            client_uri: client_uri.map(str::to_string),
            logo_uri: logo_uri.map(str::to_string),
            tos_uri: None,
            policy_uri: None,
            contacts: vec![],
            software_id: None,
            software_version: None,
        }
    }

    #[test]
    fn mcp_security_dcr_client_is_unverified_with_its_hosts() {
        let m = metadata(
            Some("Claude Desktop"),
            Some("https://evil.example/about"),
            Some("https://cdn.example/logo.png"),
        );
        let p = present_client(
            "lkc_abc",
            Some("Claude Desktop"),
            "http://127.0.0.1:7777/callback",
            Some(&m),
        );
        assert!(!p.is_verified());
        assert_eq!(p.claimed_name.as_deref(), Some("Claude Desktop"));
        assert_eq!(p.redirect_host, "127.0.0.1");
        assert_eq!(p.client_uri_host.as_deref(), Some("evil.example"));
        assert_eq!(p.logo_uri_host.as_deref(), Some("cdn.example"));
    }

    #[test]
    fn cimd_https_document_fetched_is_verified_by_its_host() {
        let m = metadata(Some("Example App"), None, None);
        let id = "https://app.example.com/oauth/client.json";
        let p = present_client(id, Some("Example App"), "https://app.example.com/cb", Some(&m));
        assert_eq!(p.verified_domain.as_deref(), Some("app.example.com"));
        // Not fetched (no stored record), or not https: unverified.
        assert!(!present_client(id, Some("Example App"), "https://app.example.com/cb", None).is_verified());
        let local = "http://127.0.0.1:9/client.json";
        assert!(!present_client(local, None, "http://127.0.0.1:9/cb", Some(&m)).is_verified());
    }

    #[test]
    fn blank_names_and_odd_uris_are_left_out() {
        let m = metadata(Some("  "), Some("javascript:alert(1)"), Some("not a uri"));
        let p = present_client("lkc_x", None, "cursor://anysphere.cursor-retrieval/oauth", Some(&m));
        assert_eq!(p.claimed_name, None);
        assert_eq!(p.client_uri_host, None);
        assert_eq!(p.logo_uri_host, None);
        assert_eq!(p.redirect_host, "anysphere.cursor-retrieval");
        assert_eq!(host_of("com.example.app:/oauth2redirect"), "com.example.app:");
    }

    #[test]
    fn scopes_have_operator_words_then_built_in_words() {
        let declared: ScopeDescriptions = [("mcp:tools".to_string(), "Run this server's tools".to_string())].into();
        let lines = describe_scopes("openid mcp:tools offline_access email mcp:admin", &declared);
        let words: Vec<Option<&str>> = lines.iter().map(|l| l.words.as_deref()).collect();
        assert_eq!(words[0], crate::domain::scope::in_words("openid"));
        assert_eq!(words[1], Some("Run this server's tools"));
        assert!(words[2].unwrap().starts_with("Stay connected when you are away"));
        assert_eq!(words[3], Some("See your email address"));
        assert_eq!(words[4], None);
        assert!(describe_scopes("", &declared).is_empty());
    }
}
