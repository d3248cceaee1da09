//! Dynamic client registration (RFC 7591): validate the metadata a client sends and decide the
//! registered client, how long it lives unused and which registrations are the same one (issue 12
//! item 8). Pure: the handler generates ids and the flow (`authz::client::register`) stores the result.

use serde_json::{Map, Value};

use super::metadata::{AUTH_METHODS, GRANT_TYPES};
use super::scope;
use crate::domain::client::ClientMetadata;
use crate::domain::redirect::{RedirectPolicy, RedirectUri};
use crate::error::{OAuthError, OAuthErrorCode};

/// Most redirect URIs one client may register.
pub const MAX_REDIRECT_URIS: usize = 20;
/// Longest free-text metadata value (names, ids, versions).
pub const MAX_TEXT_LEN: usize = 256;

fn meta_err(msg: impl Into<String>) -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidClientMetadata, msg)
}

fn redirect_err(msg: impl Into<String>) -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidRedirectUri, msg)
}

fn opt_text(body: &Map<String, Value>, name: &str) -> Result<Option<String>, OAuthError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= MAX_TEXT_LEN && !s.chars().any(char::is_control) => {
            Ok(Some(s.clone()))
        }
        Some(Value::String(_)) => Err(meta_err(format!(
            "{name} must be at most {MAX_TEXT_LEN} characters without control characters"
        ))),
        Some(_) => Err(meta_err(format!("{name} must be a string"))),
    }
}

fn opt_https_url(body: &Map<String, Value>, name: &str) -> Result<Option<String>, OAuthError> {
    let Some(v) = opt_text_long(body, name)? else {
        return Ok(None);
    };
    match url::Url::parse(&v) {
        Ok(u) if u.scheme() == "https" && u.host().is_some() && !v.contains(char::is_whitespace) => {
            Ok(Some(u.to_string()))
        }
        _ => Err(meta_err(format!("{name} must be an https URL"))),
    }
}

fn opt_text_long(body: &Map<String, Value>, name: &str) -> Result<Option<String>, OAuthError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= 2000 && !s.chars().any(char::is_control) => Ok(Some(s.clone())),
        Some(_) => Err(meta_err(format!(
            "{name} must be a string of at most 2000 characters without control characters"
        ))),
    }
}

fn string_list(body: &Map<String, Value>, name: &str, max: usize) -> Result<Option<Vec<String>>, OAuthError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => {
            if items.len() > max {
                return Err(meta_err(format!("{name} may hold at most {max} values")));
            }
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) => out.push(s.clone()),
                    _ => return Err(meta_err(format!("{name} must be an array of strings"))),
                }
            }
            Ok(Some(out))
        }
        Some(_) => Err(meta_err(format!("{name} must be an array of strings"))),
    }
}

/// Validate a registration request body (RFC 7591 §2, §3.2.2) against the operator's policy. The
/// `scope` is only parsed here; which of its values are kept is [`scope::registrable`]'s decision,
/// made by the caller, which knows the declared scopes.
pub fn validate_registration(body: &Map<String, Value>, policy: &RedirectPolicy) -> Result<ClientMetadata, OAuthError> {
    // redirect_uris: required for the authorization_code grant.
    let redirect_uris = match body.get("redirect_uris") {
        None | Some(Value::Null) => return Err(redirect_err("redirect_uris is required")),
        Some(Value::Array(items)) => {
            if items.is_empty() {
                return Err(redirect_err("redirect_uris must contain at least one URI"));
            }
            if items.len() > MAX_REDIRECT_URIS {
                return Err(redirect_err(format!(
                    "at most {MAX_REDIRECT_URIS} redirect_uris may be registered"
                )));
            }
            let mut out: Vec<String> = Vec::new();
            for item in items {
                let Value::String(raw) = item else {
                    return Err(redirect_err("redirect_uris must be an array of strings"));
                };
                let uri = RedirectUri::parse(raw).map_err(redirect_err)?;
                if !policy.allows(&uri) {
                    return Err(redirect_err(
                        "redirect URI is not allowed by this server's redirect URI policy",
                    ));
                }
                if !out.contains(raw) {
                    out.push(raw.clone());
                }
            }
            out
        }
        Some(_) => return Err(redirect_err("redirect_uris must be an array of strings")),
    };

    let token_endpoint_auth_method = match opt_text(body, "token_endpoint_auth_method")? {
        None => "client_secret_basic".to_string(),
        Some(m) if AUTH_METHODS.contains(&m.as_str()) => m,
        Some(_) => {
            return Err(meta_err(format!(
                "token_endpoint_auth_method must be one of {}",
                AUTH_METHODS.join(", ")
            )))
        }
    };

    let grant_types =
        string_list(body, "grant_types", 8)?.unwrap_or_else(|| GRANT_TYPES.iter().map(|s| s.to_string()).collect());
    if grant_types.is_empty() {
        return Err(meta_err("grant_types must not be empty"));
    }
    if let Some(bad) = grant_types.iter().find(|g| !GRANT_TYPES.contains(&g.as_str())) {
        return Err(meta_err(format!(
            "grant type \"{}\" is not supported; use authorization_code and refresh_token",
            truncate(bad)
        )));
    }
    if !grant_types.iter().any(|g| g == "authorization_code") {
        return Err(meta_err("grant_types must include authorization_code"));
    }

    let response_types = string_list(body, "response_types", 8)?.unwrap_or_else(|| vec!["code".into()]);
    if response_types.is_empty() || response_types.iter().any(|r| r != "code") {
        return Err(meta_err(
            "response_types must be [\"code\"]; implicit and hybrid flows are not supported",
        ));
    }

    let scope = match opt_text_long(body, "scope")? {
        None => None,
        Some(s) if s.is_empty() => None,
        Some(s) => Some(scope::parse(&s).map_err(meta_err)?.join(" ")),
    };

    let application_type = match opt_text(body, "application_type")? {
        None => "web".to_string(),
        Some(t) if t == "web" || t == "native" => t,
        Some(_) => return Err(meta_err("application_type must be web or native")),
    };

    let contacts = string_list(body, "contacts", 10)?.unwrap_or_default();
    if contacts
        .iter()
        .any(|c| c.chars().count() > MAX_TEXT_LEN || c.chars().any(char::is_control))
    {
        return Err(meta_err(
            "contacts entries must be at most 256 characters without control characters",
        ));
    }

    Ok(ClientMetadata {
        redirect_uris,
        token_endpoint_auth_method,
        grant_types,
        response_types,
        scope,
        application_type,
        client_name: opt_text(body, "client_name")?,
        client_uri: opt_https_url(body, "client_uri")?,
        logo_uri: opt_https_url(body, "logo_uri")?,
        tos_uri: opt_https_url(body, "tos_uri")?,
        policy_uri: opt_https_url(body, "policy_uri")?,
        contacts,
        software_id: opt_text(body, "software_id")?,
        software_version: opt_text(body, "software_version")?,
    })
}

/// Issue 12 item 8: when a new dynamic registration expires unless a code is redeemed for it first,
/// `window` seconds after `now`; `None` when the window is 0 (unused registrations never expire).
pub fn unused_until(now: i64, window: i64) -> Option<i64> {
    (window > 0).then(|| now + window)
}

/// Issue 12 item 8: the dedup key of a registration, the SHA-256 (hex) of the canonical JSON of its
/// accepted metadata (keys sorted, arrays in the order sent, `software_id` and `software_version`
/// included). Public clients only: a confidential client never shares a registration, each gets its
/// own secret. Two public registrations with one key are the same client (anyone may use a public
/// client's id; it has no secret to protect), so the second gets the first one's `client_id`.
pub fn dedup_key(meta: &ClientMetadata) -> Option<String> {
    if meta.is_confidential() {
        return None;
    }
    let mut canonical = String::from("dcr-v1:");
    write_canonical(&Value::Object(meta.to_json()), &mut canonical);
    Some(crate::crypto::secret::hash(&canonical))
}

/// JSON with object keys sorted at every level and no insignificant whitespace.
fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// What an identical public registration does with the live one it found (issue 12 item 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Duplicate {
    /// Answer with it unchanged: it was used already (it no longer expires), or the window is off.
    AsIs,
    /// Answer with it and give it (and its dedup item) a fresh window: it now expires then.
    Extend(i64),
}

/// The live registration found has `unused_until` (`None`: used); the window is `window` seconds.
pub fn on_duplicate(unused_until: Option<i64>, now: i64, window: i64) -> Duplicate {
    match (unused_until, self::unused_until(now, window)) {
        (Some(_), Some(until)) => Duplicate::Extend(until),
        _ => Duplicate::AsIs,
    }
}

/// Quote at most 64 characters of client input back in an error.
fn truncate(s: &str) -> String {
    crate::domain::shown(s, 64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(body: Value) -> Result<ClientMetadata, OAuthError> {
        validate_registration(body.as_object().unwrap(), &RedirectPolicy::default())
    }

    fn code_of(body: Value) -> &'static str {
        check(body).unwrap_err().code.as_str()
    }

    #[test]
    fn issue12_8_unused_registrations_expire_after_the_window_unless_it_is_off() {
        assert_eq!(unused_until(1_000, 86_400), Some(87_400));
        assert_eq!(unused_until(1_000, 0), None);
        // A live duplicate: an unused one gets a fresh window, a used one (or window off) is left alone.
        assert_eq!(on_duplicate(Some(5_000), 2_000, 600), Duplicate::Extend(2_600));
        assert_eq!(on_duplicate(None, 2_000, 600), Duplicate::AsIs);
        assert_eq!(on_duplicate(Some(5_000), 2_000, 0), Duplicate::AsIs);
    }

    #[test]
    fn issue12_8_identical_public_metadata_shares_a_dedup_key_confidential_never() {
        let a = check(json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none", "client_name": "Tool", "software_id": "tool", "software_version": "1.0"})).unwrap();
        // Same metadata, keys in another order, defaults spelled out: the same key.
        let b = check(json!({"software_version": "1.0", "software_id": "tool", "client_name": "Tool", "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none", "redirect_uris": ["http://127.0.0.1/cb"]})).unwrap();
        let key = dedup_key(&a).unwrap();
        assert_eq!(key.len(), 64);
        assert_eq!(dedup_key(&b), Some(key.clone()));
        for different in [
            json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none", "client_name": "Tool", "software_id": "tool", "software_version": "1.1"}),
            json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none", "client_name": "Tool", "software_id": "tool"}),
            json!({"redirect_uris": ["http://127.0.0.1/cb2"], "token_endpoint_auth_method": "none", "client_name": "Tool", "software_id": "tool", "software_version": "1.0"}),
            json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none", "client_name": "Tool", "software_id": "tool", "software_version": "1.0", "scope": "openid"}),
        ] {
            assert_ne!(
                dedup_key(&check(different.clone()).unwrap()),
                Some(key.clone()),
                "{different}"
            );
        }
        let confidential = check(json!({"redirect_uris": ["http://127.0.0.1/cb"], "client_name": "Tool"})).unwrap();
        assert_eq!(dedup_key(&confidential), None);
    }

    #[test]
    fn rfc7591_2_defaults() {
        let m = check(json!({"redirect_uris": ["http://127.0.0.1:3000/cb"]})).unwrap();
        assert_eq!(m.token_endpoint_auth_method, "client_secret_basic");
        assert!(m.is_confidential());
        assert_eq!(m.grant_types, vec!["authorization_code", "refresh_token"]);
        assert_eq!(m.response_types, vec!["code"]);
        assert_eq!(m.application_type, "web");
        assert_eq!(m.scope, None);
        let m = check(json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "none", "scope": "openid email", "client_name": "Inspector"})).unwrap();
        assert!(!m.is_confidential());
        assert_eq!(m.to_json()["client_name"], "Inspector");
    }

    #[test]
    fn rfc7591_3_2_2_invalid_redirect_uri() {
        for body in [
            json!({}),
            json!({"redirect_uris": []}),
            json!({"redirect_uris": "https://a.example/cb"}),
            json!({"redirect_uris": [42]}),
            json!({"redirect_uris": ["not a url"]}),
            json!({"redirect_uris": ["http://example.com/cb"]}),
            json!({"redirect_uris": ["https://a.example/cb#x"]}),
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            json!({"redirect_uris": vec!["https://a.example/cb"; 21]}),
        ] {
            assert_eq!(code_of(body.clone()), "invalid_redirect_uri", "{body}");
        }
        let strict = RedirectPolicy::parse("https://app.example.com/*").unwrap();
        let e = validate_registration(
            json!({"redirect_uris": ["https://evil.example/cb"]})
                .as_object()
                .unwrap(),
            &strict,
        )
        .unwrap_err();
        assert_eq!(e.code, OAuthErrorCode::InvalidRedirectUri);
    }

    #[test]
    fn rfc7591_3_2_2_invalid_client_metadata() {
        let r = json!(["https://a.example/cb"]);
        for body in [
            json!({"redirect_uris": r, "grant_types": ["client_credentials"]}),
            json!({"redirect_uris": r, "grant_types": ["refresh_token"]}),
            json!({"redirect_uris": r, "grant_types": []}),
            json!({"redirect_uris": r, "grant_types": "authorization_code"}),
            json!({"redirect_uris": r, "response_types": ["token"]}),
            json!({"redirect_uris": r, "response_types": ["code", "id_token"]}),
            json!({"redirect_uris": r, "token_endpoint_auth_method": "private_key_jwt"}),
            json!({"redirect_uris": r, "token_endpoint_auth_method": 5}),
            json!({"redirect_uris": r, "scope": "openid  email"}),
            json!({"redirect_uris": r, "application_type": "desktop"}),
            json!({"redirect_uris": r, "client_name": "x".repeat(300)}),
            json!({"redirect_uris": r, "client_uri": "javascript:alert(1)"}),
            json!({"redirect_uris": r, "client_uri": "https://a.example/\tx"}),
            json!({"redirect_uris": r, "contacts": ["a\u{0}b"]}),
        ] {
            assert_eq!(code_of(body.clone()), "invalid_client_metadata", "{body}");
        }
    }
}
