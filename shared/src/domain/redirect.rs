//! Redirect URIs: what a client may register (RFC 6749 §3.1.2, OAuth 2.1 §2.3.1, RFC 8252 §7) and the
//! operator's allow policy.

use url::Url;

/// Longest redirect URI we accept.
pub const MAX_REDIRECT_URI_LEN: usize = 2000;

/// Schemes never accepted as private-use schemes (RFC 8252 §7.1 is about app-claimed schemes only).
const DANGEROUS_SCHEMES: &[&str] = &[
    "javascript",
    "data",
    "vbscript",
    "file",
    "about",
    "blob",
    "filesystem",
    "view-source",
    "ftp",
    "ws",
    "wss",
    "intent",
    "mailto",
    "tel",
    "sms",
    "chrome",
    "chrome-extension",
    "moz-extension",
    "jar",
    "resource",
];

/// A syntactically acceptable redirect URI (absolute, no fragment, no user info, safe scheme).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirectUri {
    raw: String,
    url: Url,
}

/// What kind of redirect URI it is, for the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectKind {
    /// `https://…` on a non-loopback host.
    Https,
    /// `http://` (or https) on 127.0.0.1, [::1] or localhost: RFC 8252 §7.3 loopback redirect.
    Loopback,
    /// A native app's private-use URI scheme (RFC 8252 §7.1), e.g. `com.example.app:/cb` or `cursor://…`.
    PrivateUse,
}

impl RedirectUri {
    /// Parse a redirect URI a client registers or sends; the error is a public description.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() || raw.len() > MAX_REDIRECT_URI_LEN {
            return Err(format!("redirect URI must be 1 to {MAX_REDIRECT_URI_LEN} characters"));
        }
        if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("redirect URI must not contain spaces or control characters".into());
        }
        if raw.contains('\\') || has_dot_segment(raw) {
            return Err("redirect URI must not contain backslashes or dot segments (. or ..)".into());
        }
        let url = Url::parse(raw).map_err(|_| "redirect URI must be an absolute URI".to_string())?;
        if url.fragment().is_some() || raw.contains('#') {
            return Err("redirect URI must not contain a fragment".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("redirect URI must not contain user info".into());
        }
        let scheme = url.scheme();
        if scheme == "https" && url.host().is_none() {
            return Err("https redirect URI must name a host".into());
        }
        if scheme == "http" && !crate::net::is_loopback_host(&url) {
            return Err(
                "http redirect URIs are only allowed on a loopback host (127.0.0.1, [::1] or localhost); use https"
                    .into(),
            );
        }
        if DANGEROUS_SCHEMES.contains(&scheme) {
            return Err(format!("redirect URI scheme \"{scheme}\" is not allowed"));
        }
        Ok(RedirectUri {
            raw: raw.to_string(),
            url,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn kind(&self) -> RedirectKind {
        match self.url.scheme() {
            "http" => RedirectKind::Loopback,
            "https" if crate::net::is_loopback_host(&self.url) => RedirectKind::Loopback,
            "https" => RedirectKind::Https,
            _ => RedirectKind::PrivateUse,
        }
    }

    /// Does a redirect URI sent at /authorize match this registered one? Exact string match, except that
    /// a loopback redirect may use any port (RFC 8252 §7.3).
    pub fn matches(&self, presented: &str) -> bool {
        if self.raw == presented {
            return true;
        }
        if self.kind() != RedirectKind::Loopback {
            return false;
        }
        // Loopback: the same string once the port is removed from both (no other normalisation:
        // case, dot segments, `127.1` and the like do not match).
        if RedirectUri::parse(presented).is_err() {
            return false;
        }
        strip_port(&self.raw) == strip_port(presented)
    }
}

/// The URI with the `:port` of its authority removed, as a string.
fn strip_port(raw: &str) -> String {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return raw.to_string();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = match authority.rfind(':') {
        Some(i) if authority[i + 1..].bytes().all(|b| b.is_ascii_digit()) && !authority[i..].contains(']') => {
            &authority[..i]
        }
        _ => authority,
    };
    format!("{scheme}://{host}{tail}")
}

/// Does the path contain a `.` or `..` segment, literally or percent-encoded? Such URIs resolve
/// elsewhere than their text says, which would defeat prefix policies and exact matching.
fn has_dot_segment(raw: &str) -> bool {
    let after_scheme = raw.split_once(':').map(|(_, r)| r).unwrap_or(raw);
    let path = after_scheme.split(['?', '#']).next().unwrap_or("");
    let lower = path.to_ascii_lowercase().replace("%2e", ".");
    lower.split('/').skip(1).any(|seg| seg == "." || seg == "..")
}

/// One entry of the operator's allow list.
#[derive(Clone, Debug, PartialEq, Eq)]
enum PolicyEntry {
    Loopback,
    Https,
    PrivateUse,
    Exact(String),
    /// Matches URIs starting with this prefix; the prefix always ends in `/`.
    Prefix(String),
}

/// Which redirect URIs the operator allows (`LATCHKEY_ALLOWED_REDIRECT_URIS`): a comma-separated list of
/// `loopback`, `https`, `private-use`, exact URIs, and prefixes written `https://host/path/*`.
/// The default is `loopback,https,private-use`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirectPolicy {
    entries: Vec<PolicyEntry>,
}

impl Default for RedirectPolicy {
    fn default() -> Self {
        RedirectPolicy {
            entries: vec![PolicyEntry::Loopback, PolicyEntry::Https, PolicyEntry::PrivateUse],
        }
    }
}

impl RedirectPolicy {
    /// Parse the configuration string.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            entries.push(match item {
                "loopback" => PolicyEntry::Loopback,
                "https" => PolicyEntry::Https,
                "private-use" => PolicyEntry::PrivateUse,
                other => {
                    if let Some(prefix) = other.strip_suffix('*') {
                        if !prefix.ends_with('/') || prefix.contains('*') {
                            return Err(format!("\"{other}\": a wildcard must follow a '/' at the end"));
                        }
                        RedirectUri::parse(prefix.trim_end_matches('/')).map_err(|e| format!("\"{other}\": {e}"))?;
                        PolicyEntry::Prefix(prefix.to_string())
                    } else {
                        RedirectUri::parse(other).map_err(|e| format!("\"{other}\": {e}"))?;
                        PolicyEntry::Exact(other.to_string())
                    }
                }
            });
        }
        if entries.is_empty() {
            return Err("the list is empty".into());
        }
        Ok(RedirectPolicy { entries })
    }

    /// Is this (already parsed) redirect URI allowed?
    pub fn allows(&self, uri: &RedirectUri) -> bool {
        let kind = uri.kind();
        self.entries.iter().any(|e| match e {
            PolicyEntry::Loopback => kind == RedirectKind::Loopback,
            PolicyEntry::Https => kind == RedirectKind::Https,
            PolicyEntry::PrivateUse => kind == RedirectKind::PrivateUse,
            PolicyEntry::Exact(x) => x == uri.as_str(),
            PolicyEntry::Prefix(p) => uri.as_str().starts_with(p.as_str()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth21_2_3_1_accepts_https_loopback_and_private_use() {
        for ok in [
            "https://claude.ai/api/mcp/auth_callback",
            "http://127.0.0.1:33418/callback",
            "http://localhost:6274/oauth/callback",
            "http://[::1]/cb",
            "cursor://anysphere.cursor-retrieval/oauth/callback",
            "com.example.app:/oauth2redirect",
        ] {
            assert!(RedirectUri::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_fragment_plain_http_and_script_schemes() {
        for bad in [
            "http://example.com/cb",
            "https://example.com/cb#frag",
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "intent://x#Intent;end",
            "mailto:a@example.com",
            "https://a.example/a/../b",
            "/relative",
            "not a url",
            "https://user:pw@example.com/cb",
            "",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rfc8252_7_3_loopback_any_port() {
        let r = RedirectUri::parse("http://127.0.0.1/callback").unwrap();
        assert!(r.matches("http://127.0.0.1:51234/callback"));
        assert!(!r.matches("http://127.0.0.1:51234/other"));
        assert!(!r.matches("http://localhost:51234/callback"));
        assert!(!r.matches("http://127.1:51234/callback"));
        assert!(!r.matches("http://127.0.0.1:51234/x/../callback"));
        assert!(!r.matches("http://127.0.0.1:51234/Callback"));
        let v6 = RedirectUri::parse("http://[::1]/cb").unwrap();
        assert!(v6.matches("http://[::1]:8000/cb"));
        let l = RedirectUri::parse("http://localhost/cb").unwrap();
        assert!(!l.matches("http://LOCALHOST:80/cb"));
        let h = RedirectUri::parse("https://app.example.com/cb").unwrap();
        assert!(h.matches("https://app.example.com/cb"));
        assert!(!h.matches("https://app.example.com:444/cb"));
        assert!(!h.matches("https://app.example.com/cb?x=1"));
    }

    #[test]
    fn policy_entries() {
        let p =
            RedirectPolicy::parse("loopback, https://app.example.com/oauth/*, https://claude.ai/api/mcp/auth_callback")
                .unwrap();
        let ok = |s: &str| p.allows(&RedirectUri::parse(s).unwrap());
        assert!(ok("http://127.0.0.1:9/cb"));
        assert!(ok("https://app.example.com/oauth/cb"));
        assert!(ok("https://claude.ai/api/mcp/auth_callback"));
        assert!(!ok("https://app.example.com.evil.example/oauth/cb"));
        assert!(!ok("https://evil.example/cb"));
        assert!(!ok("cursor://x/cb"));
        for escape in [
            "https://app.example.com/oauth/../admin/cb",
            "https://app.example.com/oauth/%2e%2e/admin",
            "https://app.example.com/oauth/%2E./admin",
            "https://app.example.com/oauth/..\\admin",
            "https://app.example.com/oauth/./cb",
        ] {
            assert!(RedirectUri::parse(escape).is_err(), "{escape}");
        }
        assert!(RedirectPolicy::parse("https://app.example.com*").is_err());
        assert!(RedirectPolicy::parse("").is_err());
        assert!(RedirectPolicy::parse("http://example.com/").is_err());
        assert!(RedirectPolicy::default().allows(&RedirectUri::parse("cursor://x/cb").unwrap()));
    }
}
