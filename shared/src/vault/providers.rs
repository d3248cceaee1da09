//! The provider catalogue: data, not code. `providers.json` describes each well-known provider
//! (endpoints, API base, scopes, client authentication, PKCE, the quirks needed for a refresh token);
//! a project's provider configuration names a catalogue entry and may override any field, or defines
//! a custom provider with every required field.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

/// The catalogue as shipped in the binary.
pub const CATALOGUE_JSON: &str = include_str!("providers.json");

/// How latchkey authenticates to a provider's token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuthMethod {
    ClientSecretPost,
    ClientSecretBasic,
    /// A public client (a tool registered through a Client ID Metadata Document): `client_id` only.
    None,
}

/// Body format of token requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenFormat {
    #[default]
    Form,
    Json,
}

/// How to learn who connected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    /// GET this with the bearer token (absent with `from_token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Read the fields from the token response instead.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_token: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_field: Option<String>,
}

/// How to revoke a connection at the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeStyle {
    /// RFC 7009: POST form `token=…` with client authentication.
    Rfc7009,
    /// Call the URL with the access token as a bearer.
    Bearer,
    /// GitHub: DELETE `/applications/{client_id}/grant` with Basic client credentials.
    GithubGrant,
}

/// Where and how to revoke (RFC 7009, or the provider's own way).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeSpec {
    pub style: RevokeStyle,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

/// Everything latchkey needs to run OAuth against one provider and proxy its API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    pub display_name: String,
    pub authorize_url: String,
    pub token_url: String,
    pub api_base_url: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub api_headers: BTreeMap<String, String>,
    pub default_scopes: Vec<String>,
    pub scope_separator: String,
    #[serde(default = "default_scope_param")]
    pub scope_param: String,
    pub token_auth_method: TokenAuthMethod,
    #[serde(default)]
    pub token_request_format: TokenFormat,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_response_path: Option<String>,
    pub pkce: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub authorize_params: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base_url_from_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke: Option<RevokeSpec>,
    /// Parameters added to every token request (`TokenClient::extra_params`). Not in the catalogue.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_token_params: BTreeMap<String, String>,
    #[serde(default)]
    pub refresh: String,
    #[serde(default)]
    pub docs: Vec<String>,
}

fn default_scope_param() -> String {
    "scope".into()
}

/// The catalogue entries as JSON objects (parsed once).
pub fn catalogue() -> &'static Map<String, Value> {
    static CATALOGUE: OnceLock<Map<String, Value>> = OnceLock::new();
    CATALOGUE.get_or_init(|| match serde_json::from_str::<Value>(CATALOGUE_JSON) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    })
}

/// Names of the catalogue's providers, sorted.
pub fn names() -> Vec<&'static str> {
    catalogue().keys().map(String::as_str).collect()
}

/// The effective spec: the catalogue entry `base` (if any) with `overrides` (a JSON object of spec
/// fields) laid over it, validated. `allow_loopback_http` permits `http://` URLs on loopback hosts
/// (the embedded default and tests).
pub fn resolve(
    base: Option<&str>,
    overrides: &Map<String, Value>,
    allow_loopback_http: bool,
) -> Result<ProviderSpec, String> {
    let mut doc = match base {
        Some(name) => catalogue()
            .get(name)
            .and_then(Value::as_object)
            .cloned()
            .ok_or_else(|| format!("{name} is not in the provider catalogue"))?,
        None => Map::new(),
    };
    for (k, v) in overrides {
        doc.insert(k.clone(), v.clone());
    }
    let spec: ProviderSpec =
        serde_json::from_value(Value::Object(doc)).map_err(|e| format!("provider configuration: {e}"))?;
    spec.validate(allow_loopback_http)?;
    Ok(spec)
}

/// Check a provider URL: https (or http on loopback where allowed), a host, no user info or fragment.
pub fn check_url(field: &str, raw: &str, allow_loopback_http: bool) -> Result<Url, String> {
    use crate::net::UrlShape;
    crate::net::outbound_url(raw, allow_loopback_http).map_err(|shape| match shape {
        UrlShape::NotUrl => format!("{field} is not a valid URL"),
        UrlShape::NotHttp | UrlShape::NotHttps => format!("{field} must be an https URL"),
        UrlShape::NoHost | UrlShape::UserInfo | UrlShape::Fragment => {
            format!("{field} must have a host and no user info or fragment")
        }
    })
}

impl ProviderSpec {
    /// Structural checks a configuration must pass before it is stored or used.
    pub fn validate(&self, allow_loopback_http: bool) -> Result<(), String> {
        check_url("authorize_url", &self.authorize_url, allow_loopback_http)?;
        check_url("token_url", &self.token_url, allow_loopback_http)?;
        let base = check_url("api_base_url", &self.api_base_url, allow_loopback_http)?;
        if !base.path().ends_with('/') || base.query().is_some() {
            return Err("api_base_url must end with / and have no query".into());
        }
        if let Some(r) = &self.revoke {
            check_url("revoke.url", &r.url, allow_loopback_http)?;
        }
        if let Some(AccountSpec { url: Some(u), .. }) = &self.account {
            check_url("account.url", u, allow_loopback_http)?;
        }
        for h in &self.api_hosts {
            if h.is_empty() || !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') {
                return Err(format!("api_hosts entry {h:?} is not a host name"));
            }
        }
        if self.scope_separator != " " && self.scope_separator != "," {
            return Err("scope_separator must be a space or a comma".into());
        }
        for s in &self.default_scopes {
            if !crate::domain::scope::is_scope_token(s) {
                return Err(format!("default scope {s:?} is not a valid scope"));
            }
        }
        for (k, v) in &self.api_headers {
            if http::HeaderName::from_bytes(k.as_bytes()).is_err() || http::HeaderValue::from_str(v).is_err() {
                return Err(format!("api_headers entry {k:?} is not a valid header"));
            }
        }
        Ok(())
    }

    /// The scope string for an authorize request.
    pub fn join_scopes(&self, scopes: &[String]) -> String {
        scopes.join(&self.scope_separator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::provider::is_valid_name;

    #[test]
    fn every_catalogue_entry_resolves_and_is_https() {
        let names = names();
        for required in [
            "google",
            "github",
            "microsoft",
            "slack",
            "notion",
            "linear",
            "atlassian",
            "dropbox",
            "gitlab",
            "salesforce",
            "hubspot",
            "zoom",
        ] {
            assert!(names.contains(&required), "catalogue lacks {required}");
        }
        for name in names {
            assert!(is_valid_name(name), "{name}");
            let spec = resolve(Some(name), &Map::new(), false).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!spec.docs.is_empty(), "{name} cites its documentation");
            assert!(!spec.refresh.is_empty(), "{name} says how refresh works");
        }
    }

    #[test]
    fn google_asks_for_a_refresh_token() {
        let g = resolve(Some("google"), &Map::new(), false).unwrap();
        assert_eq!(
            g.authorize_params.get("access_type").map(String::as_str),
            Some("offline")
        );
        assert!(g.pkce);
    }

    #[test]
    fn overrides_replace_fields_and_are_validated() {
        let mut o = Map::new();
        o.insert("token_url".into(), Value::String("http://127.0.0.1:9/token".into()));
        assert!(
            resolve(Some("google"), &o, false).is_err(),
            "http refused in production"
        );
        let g = resolve(Some("google"), &o, true).unwrap();
        assert_eq!(g.token_url, "http://127.0.0.1:9/token");
        o.insert("token_url".into(), Value::String("http://example.invalid/token".into()));
        assert!(resolve(Some("google"), &o, true).is_err(), "http only on loopback");
        o.insert(
            "token_url".into(),
            Value::String("https://u:p@example.invalid/token".into()),
        );
        assert!(resolve(Some("google"), &o, true).is_err(), "no user info");
        let mut bad = Map::new();
        bad.insert("tokn_url".into(), Value::String("https://x.invalid/".into()));
        assert!(resolve(Some("google"), &bad, false).is_err(), "unknown field refused");
        assert!(resolve(Some("nope"), &Map::new(), false).is_err());
        assert!(
            resolve(None, &Map::new(), false).is_err(),
            "custom providers need every field"
        );
    }
}
