//! `POST /tools` (register a remote MCP server), `GET`/`DELETE /tools/{tool_id}`, and
//! `GET /tools/{tool_id}/client-metadata.json` (the Client ID Metadata Document latchkey serves as
//! the tool's OAuth client).

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::Value;

use crate::domain::tool::{self as tool, ToolRecord, ToolTokens};
use crate::error::ToolError;
use crate::http::{request, response};
use crate::state::AppState;
use crate::store::connections::tool_tokens_key;
use crate::store::tools as tstore;
use crate::store::FromItem;
use crate::tools::registration::{self, ClientChoice};
use crate::tools::{self, detail, discovery, discovery_error, fetch, scopes, Fields};

fn not_allowed(allow: &str) -> ToolError {
    detail(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Method not allowed; use {allow}"),
    )
}

/// `POST /tools`: discover the server (RFC 9728, RFC 8414), become its client, register the tool (201).
pub async fn create(state: &AppState, req: Request) -> Response<Body> {
    if req.method() != Method::POST {
        return not_allowed("POST").response();
    }
    create_tool(state, &req).await.unwrap_or_else(|e| e.response())
}

async fn create_tool(state: &AppState, req: &Request) -> Result<Response<Body>, ToolError> {
    let body = tools::json_body(req)?;
    let mut f = Fields::new(&body);
    let name = f.required("name");
    let server_url = f.required("server_url");
    let scopes = f.string_list("scopes");
    let client_id = f.optional("client_id");
    let client_secret = f.optional("client_secret");
    let redirect_uris = f.string_list("redirect_uris");
    let project_key = f.optional("project_key");
    if let Some(n) = &name {
        if n.len() > 200 || n.chars().any(char::is_control) {
            f.invalid("name", "name must be at most 200 printable characters");
        }
    }
    if let Some(u) = &server_url {
        if u.len() > 2048 {
            f.invalid("server_url", "server_url is longer than 2048 characters");
        }
    }
    if let Some(list) = &redirect_uris {
        if list.len() > tools::MAX_REDIRECT_URIS {
            f.invalid("redirect_uris", "at most 10 redirect URIs");
        }
        for r in list {
            if let Err(why) = tools::check_redirect_uri(r) {
                f.invalid("redirect_uris", &why);
            }
        }
    }
    if let Some(list) = &scopes {
        if list.len() > 50 || !list.iter().all(|s| crate::domain::scope::is_scope_token(s)) {
            f.invalid("scopes", "scopes must be at most 50 valid scope tokens");
        }
    }
    if client_secret.is_some() && client_id.is_none() {
        f.invalid("client_secret", "client_secret needs client_id");
    }
    let key = tools::presented_key(req, project_key.as_deref());
    f.finish()?;
    let key = key?;
    let (name, server_url) = (name.unwrap_or_default(), server_url.unwrap_or_default());
    let allow = state.config.allow_loopback_outbound;
    // Refuse a bad URL before any read or outbound request.
    fetch::check_url(&server_url, allow).map_err(discovery_error)?;
    let now = state.clock.now();
    let item = state
        .store
        .get(&key.store_key(), now)
        .await
        .map_err(|e| tools::store_error("reading the project key", e))?;
    tools::verify_key(&key, item.as_ref())?;

    let found = discovery::discover(&state.upstream, &server_url, allow)
        .await
        .map_err(discovery_error)?;
    // Both documents are kept in the tool's item (DynamoDB items hold 400 KB).
    if tools::metadata_too_large(&found.metadata, found.resource_metadata.as_ref()) {
        return Err(detail(
            StatusCode::BAD_GATEWAY,
            "The server's metadata documents are larger than 100 KB together; latchkey does not keep them",
        ));
    }
    // The app's scopes, if any; otherwise each initiate asks for what the server then declares
    // (tools::scopes).
    let scopes = scopes.unwrap_or_default();
    let redirect_uris = redirect_uris.unwrap_or_default();
    let tool_id = tool::new_tool_id();
    let base = request::public_base(&state.config, req);
    let (client_id, client_secret, method, registration) = match client_id {
        Some(id) => {
            let method = match &client_secret {
                None => "none".to_string(),
                Some(_) => {
                    let supported = found
                        .metadata
                        .get("token_endpoint_auth_methods_supported")
                        .and_then(Value::as_array);
                    let basic_ok = supported.is_none_or(|a| a.iter().any(|m| m == "client_secret_basic"));
                    if basic_ok {
                        "client_secret_basic".into()
                    } else {
                        "client_secret_post".into()
                    }
                }
            };
            (id, client_secret, method, "preregistered")
        }
        None if redirect_uris.is_empty() => {
            return Err(ToolError::Validation(vec![crate::error::FieldError {
                loc: vec!["body".into(), "redirect_uris".into()],
                msg: "redirect_uris is required when latchkey registers itself with the authorization server (no client_id given)".into(),
                kind: "value_error.missing".into(),
            }]))
        }
        None => match registration::client_registration_priority(
            None,
            &found.metadata,
            base.starts_with("https://") || allow,
        ) {
            ClientChoice::MetadataDocument => (
                tools::client_metadata_url(&base, &tool_id),
                None,
                "none".to_string(),
                "client_metadata_document",
            ),
            _ => {
                let supported = found
                    .resource_metadata
                    .as_ref()
                    .and_then(|m| m.get("scopes_supported"))
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect::<Vec<_>>());
                let reg_scope = scopes::registration_scope(
                    &scopes,
                    found.challenge_scope.as_deref(),
                    supported.as_deref(),
                    scopes::offline_access_allowed(&found.metadata),
                );
                let (id, secret, method) =
                    registration::register_client(state, &found.metadata, &name, &redirect_uris, &reg_scope).await?;
                (id, secret, method, "dynamic")
            }
        },
    };
    let sealed_secret = match &client_secret {
        Some(s) => registration::seal_secret(state, &key.project_id, &tool_id, s).await?,
        None => Vec::new(),
    };
    let tool = ToolRecord {
        tool_id: tool_id.clone(),
        project_id: key.project_id.clone(),
        name,
        server_url,
        resource: found.resource.clone(),
        issuer: found.issuer.clone(),
        metadata: found.metadata.clone(),
        resource_metadata: found.resource_metadata.clone(),
        client_id,
        sealed_secret,
        token_auth_method: method,
        registration: registration.into(),
        redirect_uris,
        scopes,
        challenge_scope: None,
        other_clients: Default::default(),
        created_at: now,
    };
    state
        .store
        .put_tool(&tool, now)
        .await
        .map_err(|e| tools::store_error("storing a tool", e))?;
    tracing::info!(project = %key.project_id, tool = %tool_id, registration, "tools: registered");
    let mut out = tools::success(&tool_id, "Tool registered");
    out["tool"] = tools::tool_json(&tool, None);
    Ok(response::json(StatusCode::CREATED, &out))
}

const ONE: &str = "/tools/{tool_id}";

/// `GET` (show) or `DELETE` (revoke at the authorization server, RFC 7009, then delete) `/tools/{tool_id}`.
pub async fn handle(state: &AppState, req: Request) -> Response<Body> {
    let res = match *req.method() {
        Method::GET => show(state, &req).await,
        Method::DELETE => delete(state, &req).await,
        _ => Err(not_allowed("GET, DELETE")),
    };
    res.unwrap_or_else(|e| e.response())
}

/// The project key, the tool (owned by the key's project) and its tokens, in one batch read.
async fn load(state: &AppState, req: &Request) -> Result<(ToolRecord, Option<ToolTokens>), ToolError> {
    let key = tools::presented_key(req, None)?;
    let tool_id = tools::tool_id_from(ONE, req)?;
    let now = state.clock.now();
    let items = state
        .store
        .get_many(
            &[key.store_key(), tstore::tool_key(&tool_id), tool_tokens_key(&tool_id)],
            now,
        )
        .await
        .map_err(|e| tools::store_error("reading a tool", e))?;
    tools::verify_key(&key, items[0].as_ref())?;
    let tool = tools::owned_tool(&key, items[1].as_ref())?;
    let tokens = items[2]
        .as_ref()
        .map(ToolTokens::from_item)
        .transpose()
        .map_err(|e| tools::store_error("reading tool tokens", e))?;
    Ok((tool, tokens))
}

async fn show(state: &AppState, req: &Request) -> Result<Response<Body>, ToolError> {
    let (tool, tokens) = load(state, req).await?;
    Ok(response::json(
        StatusCode::OK,
        &tools::tool_json(&tool, tokens.as_ref()),
    ))
}

async fn delete(state: &AppState, req: &Request) -> Result<Response<Body>, ToolError> {
    let (tool, tokens) = load(state, req).await?;
    let tool_id = tool.tool_id.clone();
    let now = state.clock.now();
    // Revoke at the authorization server where it has an endpoint (best effort).
    if let Some(held) = &tokens {
        let holder = crate::vault::refresh::Holder::tool(held);
        crate::vault::revoke_upstream(state, &tools::token_client(&tool), &holder, &held.sealed_tokens).await;
    }
    state
        .store
        .delete_tool(&tool_id, now)
        .await
        .map_err(|e| tools::store_error("deleting a tool", e))?;
    Ok(response::json(
        StatusCode::OK,
        &tools::success(&tool_id, "Tool deleted"),
    ))
}

/// `GET /tools/{tool_id}/client-metadata.json`: public, fetched by the authorization server.
pub async fn client_metadata(state: &AppState, req: Request) -> Response<Body> {
    if req.method() != Method::GET {
        return not_allowed("GET").response();
    }
    let Ok(tool_id) = tools::tool_id_from("/tools/{tool_id}/client-metadata.json", &req) else {
        return tools::not_found().response();
    };
    let now = state.clock.now();
    let tool = match state.store.get(&tstore::tool_key(&tool_id), now).await {
        Ok(Some(item)) => match ToolRecord::from_item(&item) {
            Ok(t) => t,
            Err(e) => return tools::store_error("reading a tool", e).response(),
        },
        Ok(None) => return tools::not_found().response(),
        Err(e) => return tools::store_error("reading a tool", e).response(),
    };
    if tool.registration != "client_metadata_document" {
        return tools::not_found().response();
    }
    let base = request::public_base(&state.config, &req);
    let mut res = response::json(StatusCode::OK, &tools::client_metadata_document(&tool, &base));
    res.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("public, max-age=300"),
    );
    res.headers_mut().remove(http::header::PRAGMA);
    res
}
