//! OAuth for remote MCP servers ("tools"): latchkey discovers a server's authorization server,
//! becomes its client (pre-registered credentials, its own Client ID Metadata Document, or dynamic
//! registration), runs the authorization code flow for the app, holds the tokens sealed, refreshes
//! them single-flight (the vault's rule), and forwards MCP requests with the bearer attached.
//! latchkey chooses the scopes to ask for (`scopes`) and follows a server to another
//! authorization server (`migration`), so an app keeps neither scope books nor registrations.

pub mod connect;
pub mod discovery;
pub mod fetch;
pub mod migration;
pub mod registration;
pub mod scopes;

use std::collections::BTreeMap;

use http::StatusCode;
use lambda_http::Request;
use serde_json::{json, Map, Value};

use self::fetch::FetchError;
use crate::domain::connection::{Connection, ConnectionStatus};
use crate::domain::project::project_of_key;
use crate::domain::provider::ProviderConfig;
use crate::domain::tool::{is_tool_id, ToolRecord};
use crate::error::{FieldError, ToolError};
use crate::store::{FromItem, Item, StoreError};
use crate::vault::providers::{ProviderSpec, RevokeSpec, RevokeStyle, TokenAuthMethod, TokenFormat};
use crate::vault::{PresentedKey, ResolvedProvider};

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

pub fn detail(status: StatusCode, text: impl Into<String>) -> ToolError {
    ToolError::Status(status, text.into())
}

pub fn internal() -> ToolError {
    detail(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
}

pub fn store_error(what: &str, e: StoreError) -> ToolError {
    tracing::error!(error = %e, "tools: {what}");
    match e {
        StoreError::Busy => detail(StatusCode::SERVICE_UNAVAILABLE, "The store is busy; retry shortly"),
        _ => internal(),
    }
}

pub fn not_found() -> ToolError {
    detail(StatusCode::NOT_FOUND, "Tool not found")
}

/// FastAPI-style field checks over a JSON body, collecting every problem.
pub struct Fields<'a> {
    body: &'a Map<String, Value>,
    pub errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
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

    pub fn invalid(&mut self, name: &str, msg: &str) {
        self.err(name, msg, "value_error");
    }

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

/// The provider name under which a tool's client secret is sealed.
pub fn secret_provider_name(tool_id: &str) -> String {
    format!("tool:{tool_id}")
}

/// A tool as a vault provider, so the vault's refresh (single-flight, keep-old-refresh-token,
/// reauthorization) runs unchanged; every token request carries the RFC 8707 `resource`.
pub fn as_provider(tool: &ToolRecord) -> ResolvedProvider {
    let endpoint = |n: &str| {
        tool.metadata
            .get(n)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let method = match tool.token_auth_method.as_str() {
        "client_secret_post" => TokenAuthMethod::ClientSecretPost,
        "none" => TokenAuthMethod::None,
        _ => TokenAuthMethod::ClientSecretBasic,
    };
    let revoke = tool
        .metadata
        .get("revocation_endpoint")
        .and_then(Value::as_str)
        .map(|u| RevokeSpec {
            style: RevokeStyle::Rfc7009,
            url: u.to_string(),
            method: None,
        });
    let spec = ProviderSpec {
        display_name: tool.name.clone(),
        authorize_url: endpoint("authorization_endpoint"),
        token_url: endpoint("token_endpoint"),
        api_base_url: tool.server_url.clone(),
        api_hosts: Vec::new(),
        api_headers: BTreeMap::new(),
        default_scopes: tool.scopes.clone(),
        scope_separator: " ".into(),
        scope_param: "scope".into(),
        token_auth_method: method,
        token_request_format: TokenFormat::Form,
        token_response_path: None,
        pkce: true,
        authorize_params: BTreeMap::new(),
        api_base_url_from_token: None,
        account: None,
        revoke,
        extra_token_params: BTreeMap::from([("resource".to_string(), tool.resource.clone())]),
        refresh: String::new(),
        docs: Vec::new(),
    };
    let config = ProviderConfig {
        project_id: tool.project_id.clone(),
        provider: secret_provider_name(&tool.tool_id),
        base: None,
        overrides: Map::new(),
        client_id: tool.client_id.clone(),
        sealed_secret: tool.sealed_secret.clone(),
        updated_at: tool.created_at,
    };
    ResolvedProvider { config, spec }
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

pub fn client_metadata_url(base: &str, tool_id: &str) -> String {
    format!("{base}/tools/{tool_id}/client-metadata.json")
}

/// The tool's public view: discovered metadata and connection status, never a token or secret.
pub fn tool_json(tool: &ToolRecord, tokens: Option<&Connection>) -> Value {
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
