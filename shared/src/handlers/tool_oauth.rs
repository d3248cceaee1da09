//! `POST /tools/{tool_id}/initiate-oauth` and `POST /tools/{tool_id}/complete-oauth`, in the Selise
//! Blocks reference's shapes: this handler parses the body (FastAPI-style 422 for bad fields) and
//! renders; the flow is `tools::connect`.
//!
//! Initiate takes the reference's `{redirect_uri, scopes?, project_key}` and `replace_scopes`.
//! Complete takes the reference's `{code, state, project_key}` and, per RFC 9207, the `iss` of the
//! authorization response (required when the authorization server advertises it, compared exactly
//! when given).

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::clock::iso8601;
use crate::error::ToolError;
use crate::http::{request, response};
use crate::state::AppState;
use crate::tools::connect::{self, Completion, Initiate};
use crate::tools::{self, detail, Fields};

/// `POST /tools/{tool_id}/initiate-oauth`: the authorization URL for the app's user.
pub async fn initiate(state: &AppState, req: Request) -> Response<Body> {
    if req.method() != Method::POST {
        return detail(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed; use POST").response();
    }
    initiate_flow(state, &req).await.unwrap_or_else(|e| e.response())
}

async fn initiate_flow(state: &AppState, req: &Request) -> Result<Response<Body>, ToolError> {
    let tool_id = tools::tool_id_from("/tools/{tool_id}/initiate-oauth", req)?;
    let body = tools::json_body(req)?;
    let mut f = Fields::new(&body);
    let project_key = f.optional("project_key");
    let redirect_uri = f.required("redirect_uri");
    let given = f.string_list("scopes");
    let replace = f.boolean("replace_scopes").unwrap_or(false);
    if let Some(r) = &redirect_uri {
        if let Err(why) = tools::check_redirect_uri(r) {
            f.invalid("redirect_uri", &why);
        }
    }
    if let Some(list) = &given {
        if list.len() > 50 || !list.iter().all(|s| crate::domain::scope::is_scope_token(s)) {
            f.invalid("scopes", "scopes must be at most 50 valid scope tokens");
        }
    }
    let key = tools::presented_key(req, project_key.as_deref());
    if key.is_err() && project_key.is_none() {
        f.required("project_key");
    }
    f.finish()?;
    let key = key?;
    let redirect_uri = redirect_uri.unwrap_or_default();
    let base = request::public_base(&state.config, req);
    let ask = Initiate {
        redirect_uri: &redirect_uri,
        scopes: given.as_deref(),
        replace_scopes: replace,
    };
    let started = connect::initiate(state, &key, &tool_id, ask, &base, state.clock.now()).await?;
    Ok(response::json(
        StatusCode::OK,
        &json!({
            "authorization_url": started.authorization_url,
            "state": started.state,
            "expires_at": iso8601(started.expires_at),
            "item_id": tool_id,
        }),
    ))
}

/// `POST /tools/{tool_id}/complete-oauth`: exchange the code and keep the tokens.
pub async fn complete(state: &AppState, req: Request) -> Response<Body> {
    if req.method() != Method::POST {
        return detail(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed; use POST").response();
    }
    complete_flow(state, &req).await.unwrap_or_else(|e| e.response())
}

async fn complete_flow(state: &AppState, req: &Request) -> Result<Response<Body>, ToolError> {
    let tool_id = tools::tool_id_from("/tools/{tool_id}/complete-oauth", req)?;
    let body = tools::json_body(req)?;
    let mut f = Fields::new(&body);
    let code = f.required("code");
    let state_value = f.required("state");
    // RFC 9207: the `iss` the authorization response carried (not in the reference's body).
    let iss = f.optional("iss");
    let project_key = if req.headers().contains_key("x-api-key") {
        f.optional("project_key")
    } else {
        f.required("project_key")
    };
    if code.as_ref().is_some_and(|c| c.len() > 4096) {
        f.invalid("code", "code is longer than 4096 characters");
    }
    if state_value.as_ref().is_some_and(|s| s.len() > 512) {
        f.invalid("state", "state is longer than 512 characters");
    }
    f.finish()?;
    let (code, state_value) = (code.unwrap_or_default(), state_value.unwrap_or_default());
    let key = tools::presented_key(req, project_key.as_deref())?;
    let response = Completion {
        code: &code,
        state: &state_value,
        iss: iss.as_deref(),
    };
    connect::complete(state, &key, &tool_id, response, state.clock.now()).await?;
    Ok(response::json(
        StatusCode::OK,
        &tools::success(&tool_id, "OAuth flow completed successfully"),
    ))
}
