//! Dynamic client registration (RFC 7591): validate the metadata a client sends and decide the
//! registered client. Pure: the handler generates ids and stores the result.

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

/// Quote at most 64 characters of client input back in an error.
fn truncate(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
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
