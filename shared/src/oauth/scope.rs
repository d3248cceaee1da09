//! OAuth scopes (RFC 6749 §3.3): space-delimited, case-sensitive tokens of printable ASCII, and the
//! scope model. Pure: callers pass the configured base scopes and the scopes resource servers declare.
//!
//! - **Base scopes** (`LATCHKEY_SCOPES`, default `openid profile email offline_access`) are valid with
//!   every resource.
//! - **Declared scopes** are what a resource server (an MCP server) declares; they are valid at
//!   authorize for that resource, and at registration because some resource server declares them.
//! - **`offline_access`** belongs to the grant, not to a resource: any client registered with the
//!   `refresh_token` grant may ask for it, whatever the resource declares.
//! - A client's registered `scope` records what it said it would use; it does not cap what it may
//!   ask for later. MCP clients register with the scope of the first challenge and step up to more
//!   of the same server's scopes without registering again (MCP authorization, scope challenge
//!   handling), and a self-asserted registration value is no security boundary: the user's consent
//!   for the exact scopes is.

use crate::domain::scope::is_scope_token;

/// Parse a `scope` string into its tokens, rejecting malformed or duplicate tokens.
pub fn parse(raw: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for tok in raw.split(' ') {
        if tok.is_empty() {
            return Err("scope must be scope tokens separated by single spaces".into());
        }
        if !is_scope_token(tok) {
            return Err("scope contains a character outside RFC 6749 §3.3 scope-token".into());
        }
        if !out.iter().any(|t| t == tok) {
            out.push(tok.to_string());
        }
    }
    Ok(out)
}

/// The scope that asks for a refresh token (OpenID Connect Core §11; MCP 2026-07-28).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Quote at most 64 characters of client input back in an error.
fn shown(s: &str) -> String {
    crate::domain::shown(s, 64)
}

/// RFC 7591 §2 (`scope`): "the authorization server MAY … replace the requested scope values". Keep
/// the tokens of an already parsed registration `scope` that are base scopes or declared by some
/// resource server, in the order given; `None` if none is left.
pub fn registrable(requested: &str, base: &[String], declared: &[String]) -> Option<String> {
    let kept: Vec<&str> = requested
        .split(' ')
        .filter(|t| !t.is_empty())
        .filter(|t| base.iter().any(|b| b == t) || declared.iter().any(|d| d == t))
        .collect();
    (!kept.is_empty()).then(|| kept.join(" "))
}

/// Does a registration `scope` name anything beyond the base scopes (so the declared-scope registry
/// must be read to decide it)?
pub fn names_beyond_base(requested: &str, base: &[String]) -> bool {
    requested
        .split(' ')
        .any(|t| !t.is_empty() && !base.iter().any(|b| b == t))
}

/// What the authorization server knows when deciding a request's scope.
#[derive(Clone, Copy, Debug)]
pub struct ScopeContext<'a> {
    /// The base scopes (`LATCHKEY_SCOPES`).
    pub base: &'a [String],
    /// The scopes the named resource server declares.
    pub resource: &'a [String],
    /// The client's registered `scope`, if any.
    pub client: Option<&'a str>,
    /// Did the client register the `refresh_token` grant?
    pub refresh_grant: bool,
}

impl ScopeContext<'_> {
    /// Is one scope token valid for this client and resource?
    pub fn allows(&self, token: &str) -> bool {
        self.resource.iter().any(|r| r == token)
            || (self.base.iter().any(|b| b == token) && (token != OFFLINE_ACCESS || self.refresh_grant))
    }
}

/// RFC 6749 §3.3 at the authorization endpoint: the scope to grant, or why the request is
/// `invalid_scope`. Asked scopes must each be declared by the named resource or be a base scope
/// (`offline_access` only with the refresh grant). No `scope` (RFC 6749 §3.3 "the authorization
/// server MUST either process the request using a pre-defined default value…") means the resource's
/// declared scopes; for a resource that declares none, the client's registered scope within what is
/// valid, else every valid base scope.
pub fn decide(requested: Option<&str>, ctx: &ScopeContext<'_>) -> Result<String, String> {
    match requested.filter(|s| !s.is_empty()) {
        Some(raw) => {
            let asked = parse(raw)?;
            if let Some(bad) = asked.iter().find(|a| !ctx.allows(a)) {
                if bad == OFFLINE_ACCESS && ctx.base.iter().any(|b| b == OFFLINE_ACCESS) {
                    return Err(format!(
                        "scope \"{OFFLINE_ACCESS}\" needs the refresh_token grant, which this client did not register"
                    ));
                }
                return Err(format!(
                    "scope \"{}\" is not available to this client and resource (the resource server does not declare it and it is not a base scope)",
                    shown(bad)
                ));
            }
            Ok(asked.join(" "))
        }
        None if !ctx.resource.is_empty() => Ok(ctx.resource.join(" ")),
        None => {
            let registered: Option<Vec<&str>> = ctx.client.map(|c| c.split(' ').filter(|t| ctx.allows(t)).collect());
            match registered.filter(|r| !r.is_empty()) {
                Some(r) => Ok(r.join(" ")),
                None => Ok(ctx
                    .base
                    .iter()
                    .filter(|b| ctx.allows(b))
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(" ")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn base() -> Vec<String> {
        v(&["openid", "profile", "email", "offline_access"])
    }

    #[test]
    fn rfc7591_2_registration_keeps_base_and_declared_scopes_and_drops_the_rest() {
        let declared = v(&["mcp:tools", "mcp:admin"]);
        assert_eq!(
            registrable("mcp:tools offline_access", &base(), &declared).as_deref(),
            Some("mcp:tools offline_access")
        );
        assert_eq!(
            registrable("mcp:tools nowhere:declared email", &base(), &declared).as_deref(),
            Some("mcp:tools email")
        );
        assert_eq!(registrable("nowhere", &base(), &declared), None);
        assert!(!names_beyond_base("openid email offline_access", &base()));
        assert!(names_beyond_base("openid mcp:tools", &base()));
    }

    #[test]
    fn rfc6749_3_3_a_resource_servers_declared_scopes_are_valid_for_it() {
        let rs = v(&["mcp:tools", "mcp:admin"]);
        let b = base();
        let ctx = ScopeContext {
            base: &b,
            resource: &rs,
            client: Some("mcp:tools"),
            refresh_grant: true,
        };
        // What the Python SDK asks: the challenge's scope plus offline_access.
        assert_eq!(
            decide(Some("mcp:tools offline_access"), &ctx).unwrap(),
            "mcp:tools offline_access"
        );
        // Step-up beyond the registered scope: the consent page, not the registration, decides.
        assert_eq!(
            decide(Some("mcp:tools mcp:admin"), &ctx).unwrap(),
            "mcp:tools mcp:admin"
        );
        assert_eq!(
            decide(Some("openid profile email"), &ctx).unwrap(),
            "openid profile email"
        );
        // No scope: the resource's declared scopes.
        assert_eq!(decide(None, &ctx).unwrap(), "mcp:tools mcp:admin");
        assert_eq!(decide(Some(""), &ctx).unwrap(), "mcp:tools mcp:admin");
    }

    #[test]
    fn rfc6749_3_3_invalid_scope_for_another_resources_scope_or_an_unknown_one() {
        let rs = v(&["mcp:tools"]);
        let b = base();
        let ctx = ScopeContext {
            base: &b,
            resource: &rs,
            client: None,
            refresh_grant: true,
        };
        let e = decide(Some("mcp:tools files:write"), &ctx).unwrap_err();
        assert!(e.contains("\"files:write\""), "{e}");
        assert!(decide(Some("admin"), &ctx).is_err());
        assert!(decide(Some("mcp:tools  email"), &ctx).is_err());
    }

    #[test]
    fn mcp_offline_access_belongs_to_the_grant_not_the_resource() {
        let rs = v(&["mcp:tools"]);
        let b = base();
        let with = ScopeContext {
            base: &b,
            resource: &rs,
            client: None,
            refresh_grant: true,
        };
        assert_eq!(decide(Some("offline_access"), &with).unwrap(), "offline_access");
        let without = ScopeContext {
            refresh_grant: false,
            ..with
        };
        let e = decide(Some("mcp:tools offline_access"), &without).unwrap_err();
        assert!(e.contains("refresh_token grant"), "{e}");
        // An operator who removed offline_access from the base scopes does not offer it.
        let no_offline = v(&["openid"]);
        let ctx = ScopeContext {
            base: &no_offline,
            ..with
        };
        assert!(decide(Some("offline_access"), &ctx).is_err());
    }

    #[test]
    fn rfc6749_3_3_default_scope_for_a_resource_that_declares_none() {
        let b = base();
        let ctx = ScopeContext {
            base: &b,
            resource: &[],
            client: None,
            refresh_grant: true,
        };
        assert_eq!(decide(None, &ctx).unwrap(), "openid profile email offline_access");
        let ctx = ScopeContext {
            client: Some("openid"),
            ..ctx
        };
        assert_eq!(decide(None, &ctx).unwrap(), "openid");
        let ctx = ScopeContext {
            client: None,
            refresh_grant: false,
            ..ctx
        };
        assert_eq!(decide(None, &ctx).unwrap(), "openid profile email");
        assert!(decide(Some("mcp:tools"), &ctx).is_err());
    }

    #[test]
    fn rfc6749_3_3_scope_tokens() {
        assert_eq!(parse("openid email").unwrap(), vec!["openid", "email"]);
        assert_eq!(parse("a a").unwrap(), vec!["a"]);
        assert!(parse("").is_err());
        assert!(parse("a  b").is_err());
        assert!(parse("a\"b").is_err());
        assert!(parse("a\\b").is_err());
        assert!(parse("é").is_err());
    }
}
