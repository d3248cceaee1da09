//! `GET /v1/identity/users/{user_id}/connections`: a user's connections (never a token).
//! `DELETE /v1/identity/users/{user_id}/connections/{provider}`: revoke at the provider where it
//! documents how, then delete.

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::clock::iso8601;
use crate::domain::connection::Connection;
use crate::error::VaultError;
use crate::http::path::path_params;
use crate::http::response;
use crate::state::AppState;
use crate::store::{connections, providers, FromItem};
use crate::vault::{self, PresentedKey};

const LIST: &str = "/v1/identity/users/{user_id}/connections";
const ONE: &str = "/v1/identity/users/{user_id}/connections/{provider}";

/// `GET` a user's connections, or `DELETE` one (revoked at the provider first, RFC 7009 where it has it).
pub async fn handle(state: &AppState, req: Request) -> Response<Body> {
    let path = crate::http::request::raw_path(&req).to_string();
    let res = if let Some(p) = path_params(LIST, &path) {
        if req.method() == Method::GET {
            list(state, &req, p[0]).await
        } else {
            Err(vault::not_allowed("GET"))
        }
    } else if let Some(p) = path_params(ONE, &path) {
        if req.method() == Method::DELETE {
            delete(state, &req, p[0], p[1]).await
        } else {
            Err(vault::not_allowed("DELETE"))
        }
    } else {
        return response::not_found();
    };
    res.unwrap_or_else(|e| e.response())
}

/// A connection as the vault API shows it: provider, scopes, status, who and when; never a token.
pub fn connection_json(c: &Connection) -> serde_json::Value {
    let mut v = json!({
        "provider": c.provider,
        "scopes": c.scopes,
        "status": c.status.as_str(),
        "connected_at": iso8601(c.created_at),
        "updated_at": iso8601(c.updated_at),
    });
    if let Some(a) = &c.account_id {
        v["account_id"] = json!(a);
    }
    if let Some(e) = &c.email {
        v["email"] = json!(e);
    }
    if let Some(x) = c.expires_at {
        v["expires_at"] = json!(iso8601(x));
    }
    v
}

async fn list(state: &AppState, req: &Request, raw_user: &str) -> Result<Response<Body>, VaultError> {
    let key = PresentedKey::from_request(req)?;
    let user_id = vault::path_segment(raw_user)?;
    vault::check_user_id(&user_id)?;
    let now = state.clock.now();
    key.check(state, now).await?;
    let mut conns = state
        .store
        .list_connections(&key.project_id, &user_id, now)
        .await
        .map_err(|e| vault::store_error("listing connections", e))?;
    conns.sort_by(|a, b| a.provider.cmp(&b.provider));
    Ok(response::json(
        StatusCode::OK,
        &json!({
            "user_id": user_id,
            "connections": conns.iter().map(connection_json).collect::<Vec<_>>(),
        }),
    ))
}

async fn delete(
    state: &AppState,
    req: &Request,
    raw_user: &str,
    raw_provider: &str,
) -> Result<Response<Body>, VaultError> {
    let key = PresentedKey::from_request(req)?;
    let user_id = vault::path_segment(raw_user)?;
    vault::check_user_id(&user_id)?;
    let provider_name = vault::path_segment(raw_provider)?;
    vault::check_provider_name(&provider_name)?;
    let now = state.clock.now();
    let items = state
        .store
        .get_many(
            &[
                key.store_key(),
                connections::connection_key(&key.project_id, &user_id, &provider_name),
                providers::provider_key(&key.project_id, &provider_name),
            ],
            now,
        )
        .await
        .map_err(|e| vault::store_error("reading the connection", e))?;
    key.verify(items[0].as_ref())?;
    let Some(conn) = items[1]
        .as_ref()
        .map(Connection::from_item)
        .transpose()
        .map_err(|e| vault::store_error("reading a connection", e))?
    else {
        return Err(vault::not_connected(&provider_name));
    };
    // Revoke upstream first (best effort: a provider outage must not keep a user connected here).
    let revoked = match vault::resolve_provider(state, &key.project_id, &provider_name, items[2].as_ref()) {
        Ok(provider) => {
            let holder = vault::refresh::Holder::connection(&conn);
            vault::revoke_upstream(state, &provider.token_client(), &holder, &conn.sealed_tokens).await
        }
        Err(_) => false,
    };
    let deleted = state
        .store
        .delete_connection(&key.project_id, &user_id, &provider_name)
        .await
        .map_err(|e| vault::store_error("deleting a connection", e))?;
    if !deleted {
        return Err(vault::not_connected(&provider_name));
    }
    tracing::info!(project = %key.project_id, provider = %provider_name, revoked, "vault: connection deleted");
    let event = crate::domain::webhook::Event::new(
        crate::domain::webhook::EventType::ConnectionDeleted,
        &key.project_id,
        now,
        &[("user_id", &user_id), ("provider", &provider_name)],
    );
    state.events.emit(&state.store, event, now).await;
    Ok(response::json(
        StatusCode::OK,
        &json!({"deleted": true, "provider": provider_name, "revoked_upstream": revoked}),
    ))
}
