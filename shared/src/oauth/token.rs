//! Token endpoint decisions (RFC 6749 §4.1.3, §6; OAuth 2.1 §4.3; RFC 7636 §4.6; RFC 8707 §2.2).
//! Pure: given the parsed request and the stored records, say what happens.

use crate::domain::grant::{CodeRecord, Grant, TokenRecord};
use crate::error::{OAuthError, OAuthErrorCode};
use crate::oauth::{pkce, scope};

fn invalid_grant(msg: &str) -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidGrant, msg)
}

/// What to do with a code redemption.
#[derive(Debug, PartialEq, Eq)]
pub enum CodeDecision {
    Issue,
    /// The code was already used: refuse and revoke the grant (OAuth 2.1 §4.1.3, RFC 6749 §10.5).
    ReplayRevoke,
}

/// Check an `authorization_code` redemption against its code and grant.
pub fn check_code(
    client_id: &str,
    grant: &Grant,
    code: &CodeRecord,
    redirect_uri: Option<&str>,
    verifier: &str,
    resource: Option<&str>,
    now: i64,
) -> Result<CodeDecision, OAuthError> {
    if grant.client_id != client_id {
        return Err(invalid_grant("the code was issued to another client"));
    }
    if code.used {
        return Ok(CodeDecision::ReplayRevoke);
    }
    if code.expires_at <= now {
        return Err(invalid_grant("the code is invalid or expired"));
    }
    // OAuth 2.1 §4.1.3: required when the authorization request sent it, and then identical; when
    // it did not (one registered URI), optional, but still the one the code was issued for if sent.
    match redirect_uri {
        Some(r) if r == code.redirect_uri => {}
        Some(_) => return Err(invalid_grant("redirect_uri does not match the authorization request")),
        None if !code.redirect_uri_sent => {}
        None => {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidRequest,
                "missing required parameter \"redirect_uri\" (the authorization request sent it)",
            ))
        }
    }
    if let Some(r) = resource {
        if r != grant.resource {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidTarget,
                "resource does not match the authorization request",
            ));
        }
    }
    if !pkce::verify(verifier, &code.code_challenge) {
        return Err(invalid_grant("code_verifier does not match the code_challenge"));
    }
    Ok(CodeDecision::Issue)
}

/// What to do with a refresh.
#[derive(Debug, PartialEq, Eq)]
pub enum RefreshDecision {
    /// Rotate. `supersede`: the presented token was already rotated, within the grace window (a
    /// retry, or a second tab), and this is the hash of its live successor, which the new token
    /// replaces (marked rotated in the same write), so one token never has two live chains.
    Rotate { supersede: Option<String>, scope: String },
    /// A rotated token presented after the grace window (or one whose successor is unknown):
    /// refuse and revoke the grant.
    ReuseRevoke,
}

/// Check a `refresh_token` grant (RFC 6749 §6; OAuth 2.1 §4.3.1 rotation).
pub fn check_refresh(
    client_id: &str,
    token: &TokenRecord,
    requested_scope: Option<&str>,
    resource: Option<&str>,
    grace_seconds: i64,
    now: i64,
) -> Result<RefreshDecision, OAuthError> {
    if token.client_id != client_id {
        return Err(invalid_grant("the refresh token was issued to another client"));
    }
    let supersede = match (token.rotated_at, &token.successor) {
        (None, _) => None,
        (Some(at), Some(successor)) if grace_seconds > 0 && now - at <= grace_seconds => Some(successor.clone()),
        // Past the window, or a rotated token with no successor on record: reuse.
        (Some(_), _) => return Ok(RefreshDecision::ReuseRevoke),
    };
    if let Some(r) = resource {
        if r != token.resource {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidTarget,
                "resource does not match the grant",
            ));
        }
    }
    let scope = match requested_scope.filter(|s| !s.is_empty()) {
        None => token.scope.clone(),
        Some(req) => {
            let asked = scope::parse(req).map_err(|m| OAuthError::new(OAuthErrorCode::InvalidScope, m))?;
            let granted: Vec<&str> = token.scope.split(' ').collect();
            if asked.iter().any(|s| !granted.contains(&s.as_str())) {
                return Err(OAuthError::new(
                    OAuthErrorCode::InvalidScope,
                    "scope exceeds the scope originally granted",
                ));
            }
            asked.join(" ")
        }
    };
    Ok(RefreshDecision::Rotate { supersede, scope })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            grant_id: "g".into(),
            client_id: "c".into(),
            sub: "u".into(),
            username: "u@example.com".into(),
            resource: "https://mcp.example.com/mcp".into(),
            scope: "openid email".into(),
            created_at: 0,
            client_name: None,
            client_host: None,
            last_used: None,
        }
    }

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn code() -> CodeRecord {
        CodeRecord {
            redirect_uri: "http://127.0.0.1/cb".into(),
            redirect_uri_sent: true,
            code_challenge: CHALLENGE.into(),
            expires_at: 100,
            used: false,
        }
    }

    #[test]
    fn rfc6749_4_1_3_code_checks() {
        let ok = check_code("c", &grant(), &code(), Some("http://127.0.0.1/cb"), VERIFIER, None, 50);
        assert_eq!(ok.unwrap(), CodeDecision::Issue);
        let e = |r: Result<CodeDecision, OAuthError>| r.unwrap_err().code.as_str();
        assert_eq!(
            e(check_code(
                "x",
                &grant(),
                &code(),
                Some("http://127.0.0.1/cb"),
                VERIFIER,
                None,
                50
            )),
            "invalid_grant"
        );
        assert_eq!(
            e(check_code(
                "c",
                &grant(),
                &code(),
                Some("http://127.0.0.1/cb"),
                VERIFIER,
                None,
                100
            )),
            "invalid_grant"
        );
        assert_eq!(
            e(check_code(
                "c",
                &grant(),
                &code(),
                Some("http://127.0.0.1/other"),
                VERIFIER,
                None,
                50
            )),
            "invalid_grant"
        );
        assert_eq!(
            e(check_code("c", &grant(), &code(), None, VERIFIER, None, 50)),
            "invalid_request"
        );
        assert_eq!(
            e(check_code(
                "c",
                &grant(),
                &code(),
                Some("http://127.0.0.1/cb"),
                VERIFIER,
                Some("https://other.example"),
                50
            )),
            "invalid_target"
        );
        let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX";
        assert_eq!(
            e(check_code(
                "c",
                &grant(),
                &code(),
                Some("http://127.0.0.1/cb"),
                wrong,
                None,
                50
            )),
            "invalid_grant"
        );
        let mut used = code();
        used.used = true;
        assert_eq!(
            check_code("c", &grant(), &used, Some("http://127.0.0.1/cb"), VERIFIER, None, 50).unwrap(),
            CodeDecision::ReplayRevoke
        );
    }

    #[test]
    fn oauth21_4_1_3_redirect_uri_is_required_only_when_sent_at_authorize() {
        let mut omitted = code();
        omitted.redirect_uri_sent = false;
        // Not sent at authorize: may be left out, and if sent must still be the code's.
        assert_eq!(
            check_code("c", &grant(), &omitted, None, VERIFIER, None, 50).unwrap(),
            CodeDecision::Issue
        );
        assert_eq!(
            check_code("c", &grant(), &omitted, Some("http://127.0.0.1/cb"), VERIFIER, None, 50).unwrap(),
            CodeDecision::Issue
        );
        let e = check_code("c", &grant(), &omitted, Some("http://127.0.0.1/x"), VERIFIER, None, 50).unwrap_err();
        assert_eq!(e.code, OAuthErrorCode::InvalidGrant);
        // Sent at authorize: required.
        let e = check_code("c", &grant(), &code(), None, VERIFIER, None, 50).unwrap_err();
        assert_eq!(e.code, OAuthErrorCode::InvalidRequest);
        assert!(e.description.contains("redirect_uri"), "{}", e.description);
    }

    fn rt(rotated_at: Option<i64>) -> TokenRecord {
        TokenRecord {
            grant_id: "g".into(),
            client_id: "c".into(),
            sub: "u".into(),
            username: "u".into(),
            resource: "https://mcp.example.com/mcp".into(),
            scope: "openid email".into(),
            issued_at: 0,
            expires_at: 1000,
            rotated_at,
            successor: rotated_at.map(|_| "next-hash".into()),
        }
    }

    #[test]
    fn oauth21_4_3_1_rotation_grace_and_reuse() {
        assert_eq!(
            check_refresh("c", &rt(None), None, None, 10, 50).unwrap(),
            RefreshDecision::Rotate {
                supersede: None,
                scope: "openid email".into()
            }
        );
        assert_eq!(
            check_refresh("c", &rt(Some(45)), None, None, 10, 50).unwrap(),
            RefreshDecision::Rotate {
                supersede: Some("next-hash".into()),
                scope: "openid email".into()
            }
        );
        assert_eq!(
            check_refresh("c", &rt(Some(30)), None, None, 10, 50).unwrap(),
            RefreshDecision::ReuseRevoke
        );
        assert_eq!(
            check_refresh("c", &rt(Some(50)), None, None, 0, 50).unwrap(),
            RefreshDecision::ReuseRevoke
        );
        assert_eq!(
            check_refresh("x", &rt(None), None, None, 10, 50)
                .unwrap_err()
                .code
                .as_str(),
            "invalid_grant"
        );
    }

    #[test]
    fn oauth21_4_3_1_a_retry_within_the_grace_window_supersedes_the_one_live_successor() {
        // Within the window the decision names the successor to supersede, never a second chain.
        let Ok(RefreshDecision::Rotate { supersede, .. }) = check_refresh("c", &rt(Some(45)), None, None, 10, 55)
        else {
            panic!("expected a rotation");
        };
        assert_eq!(supersede.as_deref(), Some("next-hash"));
        // A rotated token with no successor on record cannot be re-rotated without forking: reuse.
        let mut orphan = rt(Some(45));
        orphan.successor = None;
        assert_eq!(
            check_refresh("c", &orphan, None, None, 10, 50).unwrap(),
            RefreshDecision::ReuseRevoke
        );
    }

    #[test]
    fn rfc6749_6_scope_may_narrow_but_not_grow() {
        assert_eq!(
            check_refresh("c", &rt(None), Some("email"), None, 10, 50).unwrap(),
            RefreshDecision::Rotate {
                supersede: None,
                scope: "email".into()
            }
        );
        assert_eq!(
            check_refresh("c", &rt(None), Some("email admin"), None, 10, 50)
                .unwrap_err()
                .code
                .as_str(),
            "invalid_scope"
        );
        assert_eq!(
            check_refresh("c", &rt(None), None, Some("https://other.example"), 10, 50)
                .unwrap_err()
                .code
                .as_str(),
            "invalid_target"
        );
    }
}
