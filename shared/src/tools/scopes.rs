//! Which scopes latchkey asks a tool's authorization server for, so that an app never keeps scope
//! books of its own:
//!
//! - MCP authorization, *Scope Selection Strategy* (2025-11-25): the `scope` of the server's
//!   `WWW-Authenticate` challenge, else the resource metadata's `scopes_supported` (RFC 9728 §2),
//!   else no `scope` parameter. The challenge is the latest one forwarding saw (a 401, or a 403
//!   `insufficient_scope` asking for a step-up), else the one latchkey gets by probing the server
//!   at initiate; scopes the app configured for the tool come before `scopes_supported`.
//! - MCP SEP-2350 (re-authorization): the union of what the tool already holds and what is asked
//!   for now, so a step-up keeps what was granted (unless the app asks to replace).
//! - MCP SEP-2207 (`offline_access`): asked for only when the authorization server lists it in
//!   `scopes_supported` and the client may use the refresh grant; it belongs to the grant, not to
//!   the resource, so a held `offline_access` is not carried to an authorization server that does
//!   not offer it.

use serde_json::{Map, Value};

/// The scope that asks for a refresh token (OpenID Connect Core §11).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Split a space-delimited `scope` value (RFC 6749 §3.3).
pub fn split(scope: &str) -> Vec<String> {
    scope.split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// What the choice is made from.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScopeInputs<'a> {
    /// `scopes` in the initiate-oauth body.
    pub given: Option<&'a [String]>,
    /// `replace_scopes` in the body: ask for exactly this choice, not its union with `granted`.
    pub replace: bool,
    /// What the tool's current tokens were granted.
    pub granted: &'a [String],
    /// The `scope` of the latest challenge forwarding saw.
    pub recorded_challenge: Option<&'a str>,
    /// The `scope` of the 401 challenge to latchkey's own unauthenticated probe.
    pub probed_challenge: Option<&'a str>,
    /// The scopes the app configured when it registered the tool.
    pub configured: &'a [String],
    /// The resource metadata's `scopes_supported`.
    pub scopes_supported: Option<&'a [String]>,
    /// Whether `offline_access` may be asked for ([`offline_access_allowed`]).
    pub offline_access: bool,
}

fn push_new(out: &mut Vec<String>, scopes: impl IntoIterator<Item = String>) {
    for s in scopes {
        if !out.contains(&s) {
            out.push(s);
        }
    }
}

/// MCP *Scope Selection Strategy* when the app names no scopes: the latest challenge's scope, else
/// the probe's, else the app's configured scopes, else the resource's `scopes_supported`, else
/// none.
pub fn scope_selection_strategy(i: &ScopeInputs) -> Vec<String> {
    let challenge = [i.recorded_challenge, i.probed_challenge]
        .into_iter()
        .flatten()
        .map(split)
        .find(|s| !s.is_empty());
    challenge
        .or_else(|| (!i.configured.is_empty()).then(|| i.configured.to_vec()))
        .or_else(|| i.scopes_supported.filter(|s| !s.is_empty()).map(<[String]>::to_vec))
        .unwrap_or_default()
}

/// The scopes of an authorization request (the `scope` parameter; empty: omit it): the app's
/// `scopes`, else the [`scope_selection_strategy`]; joined with what the tool holds (SEP-2350)
/// unless `replace`; `offline_access` added to a non-empty choice of latchkey's when allowed
/// (SEP-2207).
pub fn scopes_to_request(i: &ScopeInputs) -> Vec<String> {
    let chosen = match i.given {
        Some(g) => g.to_vec(),
        None => scope_selection_strategy(i),
    };
    let mut out = Vec::new();
    if !i.replace {
        push_new(
            &mut out,
            i.granted
                .iter()
                .filter(|s| i.offline_access || s.as_str() != OFFLINE_ACCESS)
                .cloned(),
        );
    }
    push_new(&mut out, chosen);
    if i.given.is_none() && i.offline_access && !out.is_empty() {
        push_new(&mut out, [OFFLINE_ACCESS.to_string()]);
    }
    out
}

/// SEP-2207: the authorization server lists `offline_access` in `scopes_supported`, and the client
/// may use the refresh grant (latchkey registers both grants; an authorization server whose
/// `grant_types_supported` lacks `refresh_token` issues none).
pub fn offline_access_allowed(as_metadata: &Map<String, Value>) -> bool {
    let lists = |name: &str, value: &str| {
        as_metadata
            .get(name)
            .and_then(Value::as_array)
            .map(|a| a.iter().any(|v| v == value))
    };
    lists("scopes_supported", OFFLINE_ACCESS) == Some(true)
        && lists("grant_types_supported", "refresh_token") != Some(false)
}

/// The `scope` latchkey registers with (RFC 7591 §2): every scope it may later ask for (the app's,
/// the challenge's, the resource's), so a step-up is not refused as outside the registration.
pub fn registration_scope(
    configured: &[String],
    challenge: Option<&str>,
    scopes_supported: Option<&[String]>,
    offline_access: bool,
) -> Vec<String> {
    let mut out = configured.to_vec();
    push_new(&mut out, challenge.map(split).unwrap_or_default());
    push_new(&mut out, scopes_supported.unwrap_or_default().iter().cloned());
    if offline_access && !out.is_empty() {
        push_new(&mut out, [OFFLINE_ACCESS.to_string()]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn scope_selection_strategy_challenge_then_configured_then_scopes_supported_then_none() {
        let supported = v(&["mcp:basic", "mcp:read"]);
        let configured = v(&["app:scope"]);
        let mut i = ScopeInputs {
            recorded_challenge: Some("mcp:write"),
            probed_challenge: Some("mcp:basic"),
            configured: &configured,
            scopes_supported: Some(&supported),
            ..Default::default()
        };
        assert_eq!(scopes_to_request(&i), v(&["mcp:write"]), "the latest challenge first");
        i.recorded_challenge = Some("  ");
        assert_eq!(scopes_to_request(&i), v(&["mcp:basic"]), "then the probe's");
        i.probed_challenge = None;
        assert_eq!(scopes_to_request(&i), v(&["app:scope"]), "then the app's");
        i.configured = &[];
        assert_eq!(scopes_to_request(&i), supported, "then scopes_supported");
        i.scopes_supported = Some(&[]);
        assert!(scopes_to_request(&i).is_empty(), "else omit scope");
        i.scopes_supported = None;
        i.offline_access = true;
        assert!(
            scopes_to_request(&i).is_empty(),
            "offline_access alone is not added to an omitted scope"
        );
    }

    #[test]
    fn sep_2350_reauthorization_asks_for_the_union_unless_replacing() {
        let granted = v(&["mcp:basic", "offline_access"]);
        let given = v(&["mcp:write"]);
        let mut i = ScopeInputs {
            granted: &granted,
            recorded_challenge: Some("mcp:write"),
            offline_access: true,
            ..Default::default()
        };
        assert_eq!(scopes_to_request(&i), v(&["mcp:basic", "offline_access", "mcp:write"]));
        i.given = Some(&given);
        assert_eq!(scopes_to_request(&i), v(&["mcp:basic", "offline_access", "mcp:write"]));
        i.replace = true;
        assert_eq!(scopes_to_request(&i), v(&["mcp:write"]), "exactly the app's scopes");
        i.given = None;
        assert_eq!(
            scopes_to_request(&i),
            v(&["mcp:write", "offline_access"]),
            "the strategy's choice alone"
        );
    }

    #[test]
    fn sep_2207_offline_access_is_the_grants_not_carried_where_not_offered() {
        let granted = v(&["mcp:basic", "offline_access"]);
        let i = ScopeInputs {
            granted: &granted,
            probed_challenge: Some("mcp:basic"),
            offline_access: false,
            ..Default::default()
        };
        assert_eq!(scopes_to_request(&i), v(&["mcp:basic"]));
        let m = |v: serde_json::Value| v.as_object().unwrap().clone();
        assert!(offline_access_allowed(&m(
            json!({"scopes_supported": ["a", "offline_access"]})
        )));
        assert!(offline_access_allowed(&m(
            json!({"scopes_supported": ["offline_access"], "grant_types_supported": ["authorization_code", "refresh_token"]})
        )));
        assert!(!offline_access_allowed(&m(
            json!({"scopes_supported": ["offline_access"], "grant_types_supported": ["authorization_code"]})
        )));
        assert!(!offline_access_allowed(&m(json!({"scopes_supported": ["a"]}))));
        assert!(!offline_access_allowed(&m(json!({}))));
    }

    #[test]
    fn rfc7591_registration_scope_covers_later_step_ups() {
        let supported = v(&["read", "write"]);
        assert_eq!(
            registration_scope(&v(&["app"]), Some("read admin"), Some(&supported), true),
            v(&["app", "read", "admin", "write", "offline_access"])
        );
        assert!(registration_scope(&[], None, None, true).is_empty());
    }
}
