//! How latchkey becomes a client of a tool's authorization server, in the order the MCP
//! authorization spec's *Client Registration* section gives (pre-registered information, then a
//! Client ID Metadata Document, then RFC 7591 dynamic registration), and what binds those
//! credentials to the issuer that issued them (MCP SEP-2352, *Authorization Server Binding*).

use http::StatusCode;
use serde_json::{json, Map, Value};

use super::fetch;
use super::{detail, discovery_error};
use crate::domain::tool::{ToolClient, ToolRecord};
use crate::error::ToolError;
use crate::state::AppState;

/// How latchkey will be the client of one authorization server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientChoice {
    /// Credentials it already holds for this very issuer (the operator's, or its own from before).
    Known(ToolClient),
    /// Its Client ID Metadata Document URL as `client_id` (portable across authorization servers).
    MetadataDocument,
    /// RFC 7591 registration at the `registration_endpoint`.
    Dynamic,
    /// None of these is possible.
    Impossible,
}

/// MCP *Client Registration* priority, per issuer (SEP-2352: credentials are used only at the issuer
/// they were issued for, so `known` must be this issuer's): held credentials, else a metadata
/// document when the authorization server advertises `client_id_metadata_document_supported` and
/// latchkey's document URL can be fetched (https, or loopback in `serve`), else dynamic registration
/// when it has a `registration_endpoint`.
pub fn client_registration_priority(
    known: Option<&ToolClient>,
    as_metadata: &Map<String, Value>,
    document_url_usable: bool,
) -> ClientChoice {
    if let Some(c) = known {
        return ClientChoice::Known(c.clone());
    }
    if as_metadata.get("client_id_metadata_document_supported") == Some(&Value::Bool(true)) && document_url_usable {
        return ClientChoice::MetadataDocument;
    }
    if as_metadata
        .get("registration_endpoint")
        .and_then(Value::as_str)
        .is_some()
    {
        return ClientChoice::Dynamic;
    }
    ClientChoice::Impossible
}

/// The credentials latchkey holds for `issuer`: the current ones if the tool uses that issuer, else
/// the ones kept from when it did. Never another issuer's.
pub fn known_client(tool: &ToolRecord, issuer: &str) -> Option<ToolClient> {
    if tool.issuer == issuer {
        return Some(tool.client());
    }
    tool.other_clients.get(issuer).cloned()
}

/// Seal a client secret for a tool (context `kind=provider_secret, provider=tool:<id>`).
pub async fn seal_secret(
    state: &AppState,
    project_id: &str,
    tool_id: &str,
    secret: &str,
) -> Result<Vec<u8>, ToolError> {
    if secret.is_empty() {
        return Ok(Vec::new());
    }
    crate::vault::keyring(state)
        .map_err(|_| super::internal())?
        .encrypt(
            &crate::domain::context::tool_secret_context(project_id, tool_id),
            secret.as_bytes(),
        )
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "tools: sealing a client secret failed");
            super::internal()
        })
}

/// Become the authorization server's client by dynamic registration (RFC 7591): `(client_id,
/// client_secret, token_endpoint_auth_method)`.
pub async fn register_client(
    state: &AppState,
    as_metadata: &Map<String, Value>,
    name: &str,
    redirect_uris: &[String],
    scopes: &[String],
) -> Result<(String, Option<String>, String), ToolError> {
    let Some(endpoint) = as_metadata.get("registration_endpoint").and_then(Value::as_str) else {
        return Err(detail(
            StatusCode::BAD_REQUEST,
            "The authorization server supports neither client metadata documents nor dynamic registration; give client_id (and client_secret) registered with it",
        ));
    };
    let allow = state.config.allow_loopback_outbound;
    let url = fetch::check_url(endpoint, allow).map_err(discovery_error)?;
    let supported: Vec<String> = as_metadata
        .get("token_endpoint_auth_methods_supported")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_else(|| vec!["client_secret_basic".into()]);
    let method = ["client_secret_basic", "client_secret_post", "none"]
        .into_iter()
        .find(|m| supported.iter().any(|s| s == m))
        .unwrap_or("client_secret_basic");
    let mut doc = json!({
        "client_name": format!("latchkey ({name})"),
        "application_type": "web",
        "redirect_uris": redirect_uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": method,
    });
    if !scopes.is_empty() {
        doc["scope"] = json!(scopes.join(" "));
    }
    let body = doc.to_string();
    let res = fetch::send(&state.upstream, url, allow, |c, u| {
        c.post(u)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(body.clone())
    })
    .await
    .map_err(discovery_error)?;
    if !(200..300).contains(&res.status) {
        return Err(detail(
            StatusCode::BAD_GATEWAY,
            format!("Dynamic client registration was refused (HTTP {})", res.status),
        ));
    }
    let reg: Value = serde_json::from_slice(&res.body)
        .map_err(|_| detail(StatusCode::BAD_GATEWAY, "Dynamic client registration answered unusably"))?;
    let client_id = reg
        .get("client_id")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            detail(
                StatusCode::BAD_GATEWAY,
                "Dynamic client registration returned no client_id",
            )
        })?
        .to_string();
    let secret = reg.get("client_secret").and_then(Value::as_str).map(str::to_string);
    let method = reg
        .get("token_endpoint_auth_method")
        .and_then(Value::as_str)
        .unwrap_or(if secret.is_some() { method } else { "none" })
        .to_string();
    Ok((client_id, secret, method))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn mcp_client_registration_priority_known_then_metadata_document_then_dynamic() {
        let known = ToolClient {
            client_id: "operator".into(),
            sealed_secret: Vec::new(),
            token_auth_method: "none".into(),
            registration: "preregistered".into(),
        };
        let both =
            m(json!({"client_id_metadata_document_supported": true, "registration_endpoint": "https://as/register"}));
        assert_eq!(
            client_registration_priority(Some(&known), &both, true),
            ClientChoice::Known(known.clone())
        );
        assert_eq!(
            client_registration_priority(None, &both, true),
            ClientChoice::MetadataDocument
        );
        assert_eq!(
            client_registration_priority(None, &both, false),
            ClientChoice::Dynamic,
            "a document URL the authorization server cannot fetch"
        );
        assert_eq!(
            client_registration_priority(None, &m(json!({"client_id_metadata_document_supported": true})), false),
            ClientChoice::Impossible
        );
        assert_eq!(
            client_registration_priority(None, &m(json!({})), true),
            ClientChoice::Impossible
        );
    }
}
