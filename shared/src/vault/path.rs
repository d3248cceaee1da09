//! Proxy target building: the caller supplies a path (and query) under the provider's API base, and
//! can never choose the host. Every form that could escape the base is refused rather than cleaned:
//! dot segments (plain or percent-encoded), empty segments (`//host`), encoded slashes and
//! backslashes, absolute URLs, `@`, backslashes, control characters and whitespace.

use percent_encoding::percent_decode_str;
use url::Url;

/// Longest path + query we forward.
pub const MAX_TARGET_LEN: usize = 4096;

/// Why a proxy path was refused (public text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadPath(pub String);

fn bad(msg: &str) -> BadPath {
    BadPath(msg.to_string())
}

/// Check one raw (still percent-encoded) path segment.
fn check_segment(raw: &str) -> Result<(), BadPath> {
    if raw.is_empty() {
        return Err(bad("the path must not contain empty segments (//)"));
    }
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| bad("the path must be UTF-8 after percent-decoding"))?;
    if decoded == "." || decoded == ".." {
        return Err(bad("the path must not contain . or .. segments (encoded or not)"));
    }
    if decoded.contains('/') || decoded.contains('\\') {
        return Err(bad("the path must not contain encoded slashes or backslashes"));
    }
    if decoded.chars().any(|c| c.is_control()) {
        return Err(bad("the path must not contain control characters"));
    }
    Ok(())
}

/// The upstream URL for `raw_path` (the part of the request path after `/v1/proxy/{provider}/`,
/// still percent-encoded) and `raw_query` under `base` (which ends with `/`). `host` optionally
/// picks one of `allowed_hosts` instead of the base's host (same scheme, port and path).
pub fn upstream_url(
    base: &Url,
    allowed_hosts: &[String],
    host: Option<&str>,
    raw_path: &str,
    raw_query: Option<&str>,
) -> Result<Url, BadPath> {
    if raw_path.is_empty() {
        return Err(bad("name an API path after /v1/proxy/{provider}/"));
    }
    if raw_path.len() + raw_query.map_or(0, str::len) > MAX_TARGET_LEN {
        return Err(bad("the path and query are longer than 4096 characters"));
    }
    // Characters that have no business in a relative API path: they could start an authority,
    // a scheme, a fragment, or be read differently by another URL parser.
    if raw_path.bytes().any(|b| {
        b <= 0x20
            || b == 0x7f
            || b >= 0x80
            || matches!(
                b,
                b'\\' | b'@' | b'#' | b'?' | b'"' | b'<' | b'>' | b'`' | b'{' | b'}' | b'|' | b'^'
            )
    }) {
        return Err(bad(
            "the path must not contain spaces, control characters, backslashes, @, # or other unsafe characters",
        ));
    }
    if raw_path.starts_with('/') {
        return Err(bad(
            "the path must be relative to the provider's API base (no leading /)",
        ));
    }
    let first = raw_path.split('/').next().unwrap_or("");
    if first.contains(':') {
        return Err(bad("the path must not be an absolute URL"));
    }
    let segments: Vec<&str> = raw_path.split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        // A trailing slash (empty last segment) is a legitimate API path.
        if seg.is_empty() && i > 0 && i == segments.len() - 1 {
            continue;
        }
        check_segment(seg)?;
    }
    if let Some(q) = raw_query {
        if q.bytes().any(|b| b < 0x20 || b == 0x7f || b == b'#' || b == b' ') {
            return Err(bad("the query must not contain control characters, spaces or #"));
        }
    }
    let mut base = base.clone();
    if let Some(h) = host {
        if !allowed_hosts.iter().any(|a| a.eq_ignore_ascii_case(h)) {
            return Err(bad("X-Latchkey-Api-Host must be one of the provider's API hosts"));
        }
        base.set_host(Some(h))
            .map_err(|_| bad("X-Latchkey-Api-Host is not a host name"))?;
    }
    let mut target = format!("{}{}", base.as_str(), raw_path);
    if let Some(q) = raw_query.filter(|q| !q.is_empty()) {
        target.push('?');
        target.push_str(q);
    }
    let url = Url::parse(&target).map_err(|_| bad("the path does not form a valid URL"))?;
    // Belt and braces: whatever the parser did, the result must stay on the base's origin and path.
    if url.scheme() != base.scheme()
        || url.host_str() != base.host_str()
        || url.port_or_known_default() != base.port_or_known_default()
        || !url.path().starts_with(base.path())
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(bad("the path escapes the provider's API base"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://www.googleapis.com/").unwrap()
    }

    fn ok(path: &str, query: Option<&str>) -> String {
        upstream_url(&base(), &[], None, path, query).unwrap().to_string()
    }

    fn refused(path: &str) {
        assert!(
            upstream_url(&base(), &[], None, path, None).is_err(),
            "{path} must be refused"
        );
    }

    #[test]
    fn paths_append_to_the_base() {
        assert_eq!(
            ok("gmail/v1/users/me/profile", None),
            "https://www.googleapis.com/gmail/v1/users/me/profile"
        );
        assert_eq!(
            ok("drive/v3/files", Some("q=name%3D%27x%27&pageSize=10")),
            "https://www.googleapis.com/drive/v3/files?q=name%3D%27x%27&pageSize=10"
        );
        assert_eq!(ok("repos/o/r/", None), "https://www.googleapis.com/repos/o/r/");
        assert_eq!(
            ok("files/a%20b.txt", None),
            "https://www.googleapis.com/files/a%20b.txt"
        );
        let nested = Url::parse("https://api.example.com/v2/").unwrap();
        assert_eq!(
            upstream_url(&nested, &[], None, "me", None).unwrap().as_str(),
            "https://api.example.com/v2/me"
        );
    }

    #[test]
    fn traversal_and_host_escapes_are_refused() {
        for p in [
            "../admin",
            "a/../../b",
            "a/./b",
            "%2e%2e/x",
            "%2E%2E/x",
            ".%2e/x",
            "a/%2e/b",
            "a%2Fb",
            "a%2fb/c",
            "a%5cb",
            "/evil.invalid",
            "/",
            "",
            "https://evil.invalid/x",
            "https:%2F%2Fevil.invalid",
            "//evil.invalid/x",
            "a//b",
            "user@evil.invalid",
            "a\\b",
            "..\\x",
            "a\r\nHost: evil",
            "a%0d%0aX-Injected: 1",
            "a%00b",
            "a b",
            "a#frag",
            "a?x=1",
            "caf\u{e9}",
        ] {
            refused(p);
        }
    }

    #[test]
    fn only_the_providers_own_hosts_may_be_picked() {
        let hosts = vec!["gmail.googleapis.com".to_string()];
        let u = upstream_url(&base(), &hosts, Some("gmail.googleapis.com"), "gmail/v1/x", None).unwrap();
        assert_eq!(u.as_str(), "https://gmail.googleapis.com/gmail/v1/x");
        assert!(upstream_url(&base(), &hosts, Some("evil.invalid"), "x", None).is_err());
        assert!(upstream_url(&base(), &hosts, Some("169.254.169.254"), "x", None).is_err());
    }

    #[test]
    fn queries_with_control_characters_are_refused() {
        assert!(upstream_url(&base(), &[], None, "x", Some("a=1\r\nb")).is_err());
        assert!(upstream_url(&base(), &[], None, "x", Some("a=1#b")).is_err());
        assert!(upstream_url(&base(), &[], None, &"a/".repeat(3000), None).is_err());
    }
}
