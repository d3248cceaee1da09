//! Route patterns (`/tools/{tool_id}`, `/v1/proxy/{provider}/{path+}`) matched against raw request
//! paths: the router picks an endpoint with them, and handlers read their path parameters.

/// Match a raw request path against a route pattern (`{name}` is one non-empty segment, a final
/// `{name+}` the non-empty rest); the raw (still percent-encoded) parameter values in order.
pub fn path_params<'a>(pattern: &str, path: &'a str) -> Option<Vec<&'a str>> {
    let mut out = Vec::new();
    let mut rest = path;
    let segments: Vec<&str> = pattern.split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        if i > 0 {
            rest = rest.strip_prefix('/')?;
        }
        if seg.starts_with('{') && seg.ends_with("+}") {
            if rest.is_empty() || i != segments.len() - 1 {
                return None;
            }
            out.push(rest);
            return Some(out);
        }
        let end = rest.find('/').unwrap_or(rest.len());
        let (here, tail) = rest.split_at(end);
        if seg.starts_with('{') && seg.ends_with('}') {
            if here.is_empty() {
                return None;
            }
            out.push(here);
        } else if here != *seg {
            return None;
        }
        rest = tail;
    }
    rest.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_segments_and_rest() {
        let p = "/v1/identity/sessions/{session_id}";
        assert_eq!(path_params(p, "/v1/identity/sessions/vs_1"), Some(vec!["vs_1"]));
        assert_eq!(path_params(p, "/v1/identity/sessions/"), None);
        assert_eq!(path_params(p, "/v1/identity/sessions/a/b"), None);
        assert_eq!(path_params(p, "/v1/identity/sessions"), None);
        let q = "/v1/proxy/{provider}/{path+}";
        assert_eq!(
            path_params(q, "/v1/proxy/google/gmail/v1/users/me"),
            Some(vec!["google", "gmail/v1/users/me"])
        );
        assert_eq!(
            path_params(q, "/v1/proxy/google//evil.invalid"),
            Some(vec!["google", "/evil.invalid"])
        );
        assert_eq!(path_params(q, "/v1/proxy/google/"), None);
        assert_eq!(path_params(q, "/v1/proxy/google"), None);
        assert_eq!(
            path_params(
                "/v1/identity/users/{user_id}/connections/{provider}",
                "/v1/identity/users/u%2F1/connections/github"
            ),
            Some(vec!["u%2F1", "github"])
        );
    }
}
