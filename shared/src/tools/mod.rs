//! OAuth for remote MCP servers ("tools"): latchkey discovers a server's authorization server,
//! becomes its client (pre-registered credentials, its own Client ID Metadata Document, or dynamic
//! registration), runs the authorization code flow for the app, holds the tokens sealed, refreshes
//! them single-flight (the vault's rule), and forwards MCP requests with the bearer attached.
//! latchkey chooses the scopes to ask for (`scopes`) and follows a server to another
//! authorization server (`migration`), so an app keeps neither scope books nor registrations.

pub mod connect;
pub mod discovery;
pub mod fetch;
pub mod forward;
pub mod migration;
pub mod registration;
pub mod scopes;

use std::collections::BTreeMap;

use http::StatusCode;
use lambda_http::Request;
use serde_json::{json, Map, Value};

use self::fetch::FetchError;
use crate::domain::connection::ConnectionStatus;
use crate::domain::project::project_of_key;
use crate::domain::tool::{is_tool_id, ToolRecord, ToolTokens};
use crate::error::{FieldError, ToolError};
use crate::store::{FromItem, Item, StoreError};
use crate::vault::providers::{RevokeSpec, RevokeStyle, TokenAuthMethod, TokenFormat};
use crate::vault::token_client::TokenClient;
use crate::vault::PresentedKey;

/// Most redirect URIs a tool may register.
pub const MAX_REDIRECT_URIS: usize = 10;
/// Most metadata (authorization server + protected resource) kept in a tool's item.
pub const MAX_KEPT_METADATA: usize = 100 * 1024;

/// Is this much metadata more than a tool's item keeps (DynamoDB items hold 400 KB)?
pub fn metadata_too_large(as_metadata: &Map<String, Value>, resource_metadata: Option<&Map<String, Value>>) -> bool {
    let size = |m: &Map<String, Value>| Value::Object(m.clone()).to_string().len();
    size(as_metadata) + resource_metadata.map_or(0, size) > MAX_KEPT_METADATA
}

/// A discovery failure at registration: a refused URL or document is the caller's 400, anything
/// else the server's 502.
pub fn discovery_error(e: FetchError) -> ToolError {
    match e {
        FetchError::Refused(why) => detail(StatusCode::BAD_REQUEST, format!("server_url refused: {why}")),
        other => detail(StatusCode::BAD_GATEWAY, format!("Discovery failed: {other}")),
    }
}

/// An error in the reference's `{"detail": …}` shape with this status.
pub fn detail(status: StatusCode, text: impl Into<String>) -> ToolError {
    ToolError::Status(status, text.into())
}

/// 500 with a generic message (the cause goes to the log).
pub fn internal() -> ToolError {
    ToolError::internal()
}

/// A store failure as a tool error, naming the step for the log (`From<StoreError>`: 503 when busy).
pub fn store_error(what: &str, e: StoreError) -> ToolError {
    e.context(&format!("tools: {what}")).into()
}

/// 404 `Tool not found` (also for another project's tool).
pub fn not_found() -> ToolError {
    detail(StatusCode::NOT_FOUND, "Tool not found")
}

/// FastAPI-style field checks over a JSON body, collecting every problem.
pub struct Fields<'a> {
    body: &'a Map<String, Value>,
    pub errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    /// Checks over `body`, with no problem found yet.
    pub fn new(body: &'a Map<String, Value>) -> Self {
        Fields {
            body,
            errors: Vec::new(),
        }
    }

    fn err(&mut self, name: &str, msg: &str, kind: &str) {
        self.errors.push(FieldError {
            loc: vec!["body".into(), name.into()],
            msg: msg.into(),
            kind: kind.into(),
        });
    }

    /// A required, non-empty string.
    pub fn required(&mut self, name: &str) -> Option<String> {
        match self.body.get(name) {
            None | Some(Value::Null) => {
                self.err(name, "field required", "value_error.missing");
                None
            }
            Some(Value::String(s)) if s.is_empty() => {
                self.err(
                    name,
                    "ensure this value has at least 1 characters",
                    "value_error.any_str.min_length",
                );
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.err(name, "str type expected", "type_error.str");
                None
            }
        }
    }

    /// An optional string (`null` is absent).
    pub fn optional(&mut self, name: &str) -> Option<String> {
        match self.body.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.err(name, "str type expected", "type_error.str");
                None
            }
        }
    }

    /// An optional list of strings (a space-separated string is accepted too).
    pub fn string_list(&mut self, name: &str) -> Option<Vec<String>> {
        match self.body.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => {
                let out: Option<Vec<String>> = a.iter().map(|v| v.as_str().map(str::to_string)).collect();
                if out.is_none() {
                    self.err(name, "str type expected", "type_error.str");
                }
                out
            }
            Some(Value::String(s)) => Some(s.split(' ').filter(|x| !x.is_empty()).map(str::to_string).collect()),
            Some(_) => {
                self.err(name, "value is not a valid list", "type_error.list");
                None
            }
        }
    }

    /// An optional JSON boolean (strictly: `"yes"` or `1` is refused).
    pub fn boolean(&mut self, name: &str) -> Option<bool> {
        match self.body.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.err(name, "value is not a valid boolean", "value_error.strictbool");
                None
            }
        }
    }

    /// Record a problem with a field found by the caller's own check.
    pub fn invalid(&mut self, name: &str, msg: &str) {
        self.err(name, msg, "value_error");
    }

    /// 422 with every problem found, if any.
    pub fn finish(self) -> Result<(), ToolError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ToolError::Validation(self.errors))
        }
    }
}

/// The JSON object body (422 in FastAPI's shape when it is not one; 413 past the cap).
pub fn json_body(req: &Request) -> Result<Map<String, Value>, ToolError> {
    let bytes = crate::http::request::body(req).map_err(|b| detail(b.status, b.message))?;
    let decode = |msg: &str| {
        ToolError::Validation(vec![FieldError {
            loc: vec!["body".into()],
            msg: msg.into(),
            kind: "value_error.jsondecode".into(),
        }])
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ToolError::Validation(vec![FieldError {
            loc: vec!["body".into()],
            msg: "field required".into(),
            kind: "value_error.missing".into(),
        }]));
    }
    match crate::http::request::parse_strict_json(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ToolError::Validation(vec![FieldError {
            loc: vec!["body".into()],
            msg: "value is not a valid dict".into(),
            kind: "type_error.dict".into(),
        }])),
        Err(m) => Err(decode(&m)),
    }
}

/// The project key: `X-API-Key`, else `project_key` in the body (as the reference sends it).
pub fn presented_key(req: &Request, body_key: Option<&str>) -> Result<PresentedKey, ToolError> {
    let invalid = || detail(StatusCode::UNAUTHORIZED, "Invalid project key");
    if req.headers().contains_key("x-api-key") {
        return PresentedKey::from_request(req).map_err(|_| invalid());
    }
    let key = body_key.ok_or_else(invalid)?;
    let project = project_of_key(key).ok_or_else(invalid)?;
    Ok(PresentedKey {
        project_id: project.to_string(),
        hash: crate::crypto::secret::hash(key),
    })
}

/// Check the key item read in the caller's batch.
pub fn verify_key(key: &PresentedKey, item: Option<&Item>) -> Result<(), ToolError> {
    key.verify(item).map(|_| ()).map_err(|e| match e.status {
        StatusCode::UNAUTHORIZED => detail(StatusCode::UNAUTHORIZED, "Invalid project key"),
        _ => internal(),
    })
}

/// The tool read in the caller's batch, if it belongs to the key's project (else 404).
pub fn owned_tool(key: &PresentedKey, item: Option<&Item>) -> Result<ToolRecord, ToolError> {
    let tool = item
        .map(ToolRecord::from_item)
        .transpose()
        .map_err(|e| store_error("reading a tool", e))?
        .ok_or_else(not_found)?;
    if tool.project_id != key.project_id {
        return Err(not_found());
    }
    Ok(tool)
}

/// latchkey as the tool's client at its authorization server: the token endpoint and revocation
/// endpoint (RFC 7009) it advertises (RFC 8414), the registered authentication method, and the
/// RFC 8707 `resource` on every token request. The vault's refresh (single-flight,
/// keep-old-refresh-token, reauthorization) runs on it unchanged.
pub fn token_client(tool: &ToolRecord) -> TokenClient {
    let endpoint = |n: &str| tool.metadata.get(n).and_then(Value::as_str).map(str::to_string);
    let auth_method = match tool.token_auth_method.as_str() {
        "client_secret_post" => TokenAuthMethod::ClientSecretPost,
        "none" => TokenAuthMethod::None,
        _ => TokenAuthMethod::ClientSecretBasic,
    };
    TokenClient {
        client_id: tool.client_id.clone(),
        sealed_secret: tool.sealed_secret.clone(),
        secret_context: crate::domain::context::tool_secret_context(&tool.project_id, &tool.tool_id),
        token_url: endpoint("token_endpoint").unwrap_or_default(),
        auth_method,
        request_format: TokenFormat::Form,
        response_path: None,
        extra_params: BTreeMap::from([("resource".to_string(), tool.resource.clone())]),
        revoke: endpoint("revocation_endpoint").map(|url| RevokeSpec {
            style: RevokeStyle::Rfc7009,
            url,
            method: None,
        }),
    }
}

/// The Client ID Metadata Document latchkey serves for a tool.
pub fn client_metadata_document(tool: &ToolRecord, base: &str) -> Value {
    json!({
        "client_id": client_metadata_url(base, &tool.tool_id),
        "client_name": format!("latchkey ({})", tool.name),
        "redirect_uris": tool.redirect_uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

/// The URL of the Client ID Metadata Document latchkey serves for a tool (its `client_id` there).
pub fn client_metadata_url(base: &str, tool_id: &str) -> String {
    format!("{base}/tools/{tool_id}/client-metadata.json")
}

/// The tool's public view: discovered metadata and connection status, never a token or secret.
pub fn tool_json(tool: &ToolRecord, tokens: Option<&ToolTokens>) -> Value {
    let connection = match tokens {
        None => json!({"status": "not_connected"}),
        Some(c) => {
            let status = if c.status == ConnectionStatus::Active {
                "connected"
            } else {
                "reauthorization_required"
            };
            let mut v = json!({"status": status, "scopes": c.scopes, "connected_at": crate::clock::iso8601(c.created_at), "updated_at": crate::clock::iso8601(c.updated_at)});
            if let Some(e) = c.expires_at {
                v["access_token_expires_at"] = json!(crate::clock::iso8601(e));
            }
            v
        }
    };
    json!({
        "tool_id": tool.tool_id,
        "name": tool.name,
        "server_url": tool.server_url,
        "resource": tool.resource,
        "authorization_server": tool.issuer,
        "authorization_server_metadata": tool.metadata,
        "resource_metadata": tool.resource_metadata,
        "client_id": tool.client_id,
        "client_registration": tool.registration,
        "token_endpoint_auth_method": tool.token_auth_method,
        "redirect_uris": tool.redirect_uris,
        "scopes": tool.scopes,
        "last_challenge_scope": tool.challenge_scope,
        "previous_authorization_servers": tool.other_clients.keys().collect::<Vec<_>>(),
        "connection": connection,
        "created_at": crate::clock::iso8601(tool.created_at),
    })
}

/// The success envelope of the reference.
pub fn success(tool_id: &str, text: &str) -> Value {
    json!({"is_success": true, "item_id": tool_id, "detail": text, "error": {}})
}

/// The tool id from a path pattern, 404 when malformed.
pub fn tool_id_from(pattern: &str, req: &Request) -> Result<String, ToolError> {
    let path = crate::http::request::raw_path(req);
    crate::http::path::path_params(pattern, path)
        .and_then(|p| p.first().map(|s| s.to_string()))
        .filter(|t| is_tool_id(t))
        .ok_or_else(not_found)
}

/// A redirect URI the app may use: absolute, http(s) or a private-use scheme, no fragment.
pub fn check_redirect_uri(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|_| "redirect_uri must be an absolute URI".to_string())?;
    if url.fragment().is_some() {
        return Err("redirect_uri must not have a fragment".into());
    }
    if matches!(
        url.scheme(),
        "javascript" | "data" | "file" | "vbscript" | "blob" | "about"
    ) {
        return Err("redirect_uri uses a scheme that is not allowed".into());
    }
    if raw.len() > 2048 {
        return Err("redirect_uri is longer than 2048 characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(method: &str, metadata: Value) -> ToolRecord {
        ToolRecord {
            tool_id: "tl_1".into(),
            project_id: "prj_1".into(),
            name: "t".into(),
            server_url: "https://mcp.example/mcp".into(),
            resource: "https://mcp.example/mcp".into(),
            issuer: "https://as.example".into(),
            metadata: metadata.as_object().cloned().unwrap_or_default(),
            resource_metadata: None,
            client_id: "c1".into(),
            sealed_secret: vec![1, 2, 3],
            token_auth_method: method.into(),
            registration: "dynamic".into(),
            redirect_uris: Vec::new(),
            scopes: Vec::new(),
            challenge_scope: None,
            other_clients: Default::default(),
            created_at: 0,
        }
    }

    #[test]
    fn rfc8707_2_a_tools_token_client_sends_its_resource_and_registered_method() {
        let t = tool(
            "client_secret_post",
            json!({"token_endpoint": "https://as.example/token", "revocation_endpoint": "https://as.example/revoke"}),
        );
        let c = token_client(&t);
        assert_eq!(c.token_url, "https://as.example/token");
        assert_eq!(c.auth_method, TokenAuthMethod::ClientSecretPost);
        assert_eq!(c.request_format, TokenFormat::Form);
        assert_eq!(
            c.extra_params.get("resource").map(String::as_str),
            Some("https://mcp.example/mcp")
        );
        assert_eq!(c.client_id, "c1");
        assert_eq!(c.sealed_secret, vec![1, 2, 3]);
        assert_eq!(
            c.secret_context,
            crate::domain::context::provider_context("prj_1", "tool:tl_1"),
            "the secret stays sealed under the provider name tool:<tool_id>"
        );
        let revoke = c.revoke.expect("RFC 7009 endpoint advertised");
        assert_eq!(
            (revoke.style, revoke.url.as_str()),
            (RevokeStyle::Rfc7009, "https://as.example/revoke")
        );
        let public = token_client(&tool("none", json!({})));
        assert_eq!(public.auth_method, TokenAuthMethod::None);
        assert!(public.revoke.is_none());
        assert_eq!(
            token_client(&tool("client_secret_basic", json!({}))).auth_method,
            TokenAuthMethod::ClientSecretBasic
        );
    }
}
