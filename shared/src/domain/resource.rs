//! Resource servers: the MCP servers that trust latchkey, each named by its canonical resource URL
//! (RFC 8707), which the authorize endpoint validates the `resource` parameter against, and each
//! authenticating to introspection with its own id and secret (`lkrs_…` / `lk_rss_…`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use url::Url;

use crate::crypto::secret;

/// Prefix of resource-server ids (not secret, but recognisable).
pub const RS_ID_PREFIX: &str = "lkrs_";
/// Prefix of resource-server secrets (for secret scanners).
pub const RS_SECRET_PREFIX: &str = "lk_rss_";
/// Longest resource URL we accept (a partition key is at most 2048 bytes).
pub const MAX_RESOURCE_LEN: usize = 1024;

/// Why a string is not an acceptable resource URL.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid resource {given:?}: {reason}")]
pub struct InvalidResource {
    pub given: String,
    pub reason: String,
}

/// A canonical resource URL (RFC 8707 §2): absolute, `https` (or `http` on a loopback host), no
/// fragment, no user info. A trailing slash is dropped only when the path is just `/` (and there is
/// no query), so `https://mcp.example.com/` and `https://mcp.example.com` are the same resource.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Resource(String);

impl Resource {
    /// Parse a resource URL an operator registers: it must already be written in normal form (what
    /// the `url` crate serialises, e.g. lowercase scheme and host, no default port, no dot segments),
    /// so the stored string is exactly the one given, less a root trailing slash. Anything else is
    /// refused with the form to write instead.
    pub fn parse(raw: &str) -> Result<Resource, InvalidResource> {
        let canonical = Self::normalize(raw)?;
        let trimmed_root = raw.strip_suffix('/').is_some_and(|r| r == canonical.0);
        if raw != canonical.0 && !trimmed_root {
            return Err(invalid(
                raw,
                format!("not in canonical form; write it as {}", canonical.0),
            ));
        }
        Ok(canonical)
    }

    /// Parse a resource URL leniently (a `resource` parameter a client presents): any spelling the
    /// WHATWG URL parser normalises to a registered resource names that resource.
    pub fn normalize(raw: &str) -> Result<Resource, InvalidResource> {
        if raw.is_empty() {
            return Err(invalid(raw, "empty".into()));
        }
        if raw.len() > MAX_RESOURCE_LEN {
            return Err(invalid(raw, format!("longer than {MAX_RESOURCE_LEN} characters")));
        }
        let url = Url::parse(raw).map_err(|e| invalid(raw, format!("not an absolute URL ({e})")))?;
        match url.scheme() {
            "https" => {}
            "http" if crate::net::is_loopback_host(&url) => {}
            "http" => {
                return Err(invalid(
                    raw,
                    "http is only allowed on a loopback host (127.0.0.1, [::1] or localhost); use https".into(),
                ))
            }
            other => return Err(invalid(raw, format!("scheme {other:?} is not allowed; use https"))),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid(raw, "no host".into()));
        }
        if url.fragment().is_some() {
            return Err(invalid(raw, "must not contain a fragment (RFC 8707 §2)".into()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(raw, "must not contain user info".into()));
        }
        let mut s = url.as_str().to_string();
        if url.path() == "/" && url.query().is_none() {
            s.pop();
        }
        if s.len() > MAX_RESOURCE_LEN {
            return Err(invalid(raw, format!("longer than {MAX_RESOURCE_LEN} characters")));
        }
        Ok(Resource(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Resource {
    type Err = InvalidResource;

    /// The strict form, [`Resource::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Resource::parse(s)
    }
}

impl AsRef<str> for Resource {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn invalid(raw: &str, reason: String) -> InvalidResource {
    InvalidResource {
        given: raw.to_string(),
        reason,
    }
}

/// A resource server as stored: the secret only as its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceServerRecord {
    pub rs_id: String,
    pub secret_hash: String,
    /// The canonical resource URL (see [`Resource`]); the audience of tokens issued for it.
    pub resource: String,
    /// Scopes this resource server declares (beside the base scopes every resource accepts).
    pub scopes: Vec<String>,
    /// What the operator says each declared scope lets an app do, in words the consent page shows
    /// (`--scope "mcp:tools=Run this server's tools"`); only for declared scopes, possibly none.
    pub scope_descriptions: ScopeDescriptions,
    pub created_at: i64,
}

/// A declared scope's words for the consent page, by scope name.
pub type ScopeDescriptions = BTreeMap<String, String>;

/// Longest scope description we accept, in characters.
pub const MAX_SCOPE_DESCRIPTION: usize = 200;

/// Is `text` an acceptable scope description: 1 to [`MAX_SCOPE_DESCRIPTION`] characters, no
/// control characters, not only spaces? (It is shown HTML-escaped; this keeps it one tidy line.)
pub fn valid_scope_description(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("a scope description must not be empty".into());
    }
    if text.chars().count() > MAX_SCOPE_DESCRIPTION {
        return Err(format!(
            "a scope description is at most {MAX_SCOPE_DESCRIPTION} characters"
        ));
    }
    if text.chars().any(char::is_control) {
        return Err("a scope description must not contain control characters (newlines, tabs)".into());
    }
    Ok(())
}

impl ResourceServerRecord {
    /// Does a presented secret match this resource server's? Constant-time.
    pub fn verify_secret(&self, presented: &str) -> bool {
        secret::verify(presented, &self.secret_hash)
    }
}

/// Could this string be a resource-server id? Cheap refusal of garbage before a round trip.
pub fn plausible_id(rs_id: &str) -> bool {
    rs_id.starts_with(RS_ID_PREFIX)
        && rs_id.len() <= 64
        && rs_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        Resource::parse(raw)
            .unwrap_or_else(|e| panic!("{raw}: {e}"))
            .into_string()
    }

    fn refused(raw: &str) -> String {
        match Resource::parse(raw) {
            Ok(r) => panic!("{raw} accepted as {r}"),
            Err(e) => e.reason,
        }
    }

    #[test]
    fn rfc8707_2_https_and_loopback_http_accepted_as_given() {
        assert_eq!(ok("https://mcp.example.com/mcp"), "https://mcp.example.com/mcp");
        assert_eq!(ok("https://mcp.example.com/mcp/"), "https://mcp.example.com/mcp/");
        assert_eq!(
            ok("https://mcp.example.com:8443/a?b=c"),
            "https://mcp.example.com:8443/a?b=c"
        );
        assert_eq!(ok("http://127.0.0.1:3000/mcp"), "http://127.0.0.1:3000/mcp");
        assert_eq!(ok("http://localhost:3000"), "http://localhost:3000");
        assert_eq!(ok("http://[::1]:3000/mcp"), "http://[::1]:3000/mcp");
    }

    #[test]
    fn root_trailing_slash_dropped_only_for_root_path() {
        assert_eq!(ok("https://mcp.example.com/"), "https://mcp.example.com");
        assert_eq!(ok("https://mcp.example.com"), "https://mcp.example.com");
        assert_eq!(ok("https://mcp.example.com/?q=/"), "https://mcp.example.com/?q=/");
    }

    #[test]
    fn rfc8707_2_refusals() {
        assert!(refused("http://mcp.example.com/mcp").contains("loopback"));
        assert!(refused("https://mcp.example.com/mcp#frag").contains("fragment"));
        assert!(refused("https://mcp.example.com/mcp#").contains("fragment"));
        assert!(refused("mcp.example.com/mcp").contains("absolute URL"));
        assert!(refused("not a url").contains("absolute URL"));
        assert!(refused("javascript:alert(1)").contains("scheme"));
        assert!(refused("ftp://mcp.example.com/").contains("scheme"));
        assert!(refused("https://user:pw@mcp.example.com/").contains("user info"));
        assert!(refused("").contains("empty"));
        assert!(refused(&format!("https://mcp.example.com/{}", "a".repeat(MAX_RESOURCE_LEN))).contains("longer"));
    }

    #[test]
    fn non_canonical_spellings_refused_with_the_form_to_use() {
        for (raw, want) in [
            ("HTTPS://MCP.Example.com/mcp", "https://mcp.example.com/mcp"),
            ("https://mcp.example.com:443/mcp", "https://mcp.example.com/mcp"),
            ("https://mcp.example.com/a/../mcp", "https://mcp.example.com/mcp"),
            (" https://mcp.example.com/mcp", "https://mcp.example.com/mcp"),
            ("https://mcp.example.com/m\ncp", "https://mcp.example.com/mcp"),
        ] {
            let reason = refused(raw);
            assert!(reason.ends_with(want), "{raw}: {reason}");
        }
    }

    #[test]
    fn lenient_normalisation_for_lookups() {
        let n = |s: &str| Resource::normalize(s).unwrap().into_string();
        assert_eq!(n("HTTPS://MCP.Example.com:443/"), "https://mcp.example.com");
        assert_eq!(n("https://mcp.example.com/mcp"), "https://mcp.example.com/mcp");
        assert!(Resource::normalize("http://mcp.example.com/").is_err());
        assert!(Resource::normalize("https://mcp.example.com/#x").is_err());
    }

    #[test]
    fn implausible_ids_need_no_round_trip() {
        assert!(plausible_id(&secret::random_token(RS_ID_PREFIX, 16)));
        assert!(!plausible_id("lkc_abc"));
        assert!(!plausible_id(&format!("lkrs_{}", "a".repeat(64))));
        assert!(!plausible_id("lkrs_a#b"));
    }
}
