//! A server that moves to another authorization server (MCP SEP-2352, *Authorization Server
//! Binding*, a MUST for 2026-07-28 clients): when its protected resource metadata (RFC 9728) no
//! longer lists the authorization server a tool uses — checked at every initiate-oauth, and after a
//! refresh fails at forwarding — latchkey discovers the one it lists (RFC 8414), becomes its client
//! (credentials it holds for that very issuer, else its Client ID Metadata Document, else RFC 7591
//! registration; never another issuer's credentials), and replaces the tool's authorization server
//! and client in place, deleting the tokens the old authorization server issued in the same
//! transaction so they are never sent to the new one. The tool keeps its `tool_id`; the app only
//! authorizes again.

use http::StatusCode;

use super::discovery::{self, ResourceFound};
use super::fetch::FetchError;
use super::registration::{self, ClientChoice};
use super::{detail, scopes};
use crate::domain::tool::{ToolClient, ToolRecord, MAX_OTHER_CLIENTS};
use crate::error::ToolError;
use crate::state::AppState;
use crate::store::FromItem;

/// The authorization server the tool should use now, when it is not the one it uses (`None`: no
/// move).
pub fn moved_to(tool: &ToolRecord, found: &ResourceFound) -> Option<String> {
    discovery::choose_authorization_server(&found.authorization_servers, &tool.issuer)
        .filter(|i| *i != tool.issuer)
        .map(str::to_string)
}

/// Keep the client latchkey had at the old issuer under that issuer, drop the new issuer's from
/// the kept ones (it becomes current), and keep at most [`MAX_OTHER_CLIENTS`], dropping latchkey's
/// own registrations (which it can make again) before an operator's.
pub fn keep_clients_by_issuer(tool: &mut ToolRecord, new_issuer: &str, new_client: ToolClient) {
    let old = tool.client();
    if !old.client_id.is_empty() {
        tool.other_clients.insert(tool.issuer.clone(), old);
    }
    tool.other_clients.remove(new_issuer);
    while tool.other_clients.len() > MAX_OTHER_CLIENTS {
        let drop = tool
            .other_clients
            .iter()
            .find(|(_, c)| c.registration != "preregistered")
            .or_else(|| tool.other_clients.iter().next())
            .map(|(k, _)| k.clone());
        match drop {
            Some(k) => tool.other_clients.remove(&k),
            None => break,
        };
    }
    tool.issuer = new_issuer.to_string();
    tool.set_client(new_client);
}

fn refused(issuer: &str, e: FetchError) -> ToolError {
    detail(
        StatusCode::BAD_GATEWAY,
        format!("The server moved to the authorization server {issuer}, which could not be used: {e}"),
    )
}

/// Move `tool` to `issuer` (see the module text). `base` is latchkey's public URL (for its metadata
/// document); `redirect_uri` the one the app is initiating with, registered when the tool names no
/// redirect URIs of its own.
pub async fn move_tool(
    state: &AppState,
    tool: &ToolRecord,
    found: &ResourceFound,
    issuer: &str,
    base: &str,
    redirect_uri: Option<&str>,
) -> Result<ToolRecord, ToolError> {
    let allow = state.config.allow_loopback_outbound;
    let metadata = discovery::authorization_server(&state.upstream, issuer, found.has_resource_metadata, allow)
        .await
        .map_err(|e| refused(issuer, e))?;
    if super::metadata_too_large(&metadata, found.resource_metadata.as_ref()) {
        return Err(detail(
            StatusCode::BAD_GATEWAY,
            "The server's metadata documents are larger than 100 KB together; latchkey does not keep them",
        ));
    }
    let redirect_uris = if tool.redirect_uris.is_empty() {
        redirect_uri.map(|r| vec![r.to_string()]).unwrap_or_default()
    } else {
        tool.redirect_uris.clone()
    };
    let known = registration::known_client(tool, issuer);
    let document_usable = (base.starts_with("https://") || allow) && !redirect_uris.is_empty();
    let choice = match registration::client_registration_priority(known.as_ref(), &metadata, document_usable) {
        ClientChoice::Dynamic if redirect_uris.is_empty() => ClientChoice::Impossible,
        c => c,
    };
    let client = match choice {
        ClientChoice::Known(c) => c,
        ClientChoice::MetadataDocument => ToolClient {
            client_id: super::client_metadata_url(base, &tool.tool_id),
            sealed_secret: Vec::new(),
            token_auth_method: "none".into(),
            registration: "client_metadata_document".into(),
        },
        ClientChoice::Dynamic => {
            let offline = scopes::offline_access_allowed(&metadata);
            let supported = found.scopes_supported();
            let reg_scope = scopes::registration_scope(
                &tool.scopes,
                tool.challenge_scope.as_deref().or(found.challenge_scope.as_deref()),
                supported.as_deref(),
                offline,
            );
            let (client_id, secret, method) =
                registration::register_client(state, &metadata, &tool.name, &redirect_uris, &reg_scope).await?;
            let sealed_secret = match secret {
                Some(s) => registration::seal_secret(state, &tool.project_id, &tool.tool_id, &s).await?,
                None => Vec::new(),
            };
            ToolClient {
                client_id,
                sealed_secret,
                token_auth_method: method,
                registration: "dynamic".into(),
            }
        }
        ClientChoice::Impossible => {
            return Err(detail(
                StatusCode::CONFLICT,
                format!(
                    "The server moved to the authorization server {issuer}; latchkey holds no client credentials for it and cannot register itself there (it supports neither client metadata documents nor dynamic registration, or the tool has no redirect URI)"
                ),
            ))
        }
    };
    let mut moved = tool.clone();
    keep_clients_by_issuer(&mut moved, issuer, client);
    moved.metadata = metadata;
    moved.resource = found.resource.clone();
    moved.resource_metadata = found.resource_metadata.clone();
    moved.redirect_uris = redirect_uris;
    let stored = state
        .store
        .migrate_tool(&tool.issuer, &moved)
        .await
        .map_err(|e| super::store_error("moving a tool", e))?;
    if !stored {
        // Another request moved it first: use what it stored, if it moved to the same place.
        let now = state.clock.now();
        let current = state
            .store
            .get(&crate::store::tools::tool_key(&tool.tool_id), now)
            .await
            .map_err(|e| super::store_error("reading a tool", e))?
            .map(|i| ToolRecord::from_item(&i))
            .transpose()
            .map_err(|e| super::store_error("reading a tool", e))?
            .ok_or_else(super::not_found)?;
        if current.issuer != issuer {
            return Err(detail(
                StatusCode::SERVICE_UNAVAILABLE,
                "The tool changed while latchkey was moving it to its new authorization server; retry",
            ));
        }
        return Ok(current);
    }
    tracing::info!(
        tool = %tool.tool_id,
        from = %tool.issuer,
        to = %issuer,
        registration = %moved.registration,
        "tools: the server moved to another authorization server; the tool follows it"
    );
    Ok(moved)
}

/// After a refresh failed at forwarding: has the server moved to another authorization server? If
/// so, move the tool (its old tokens deleted) and return it; `None` when it has not moved or the
/// move cannot be made here (initiate-oauth, which has a redirect URI, checks again).
pub async fn follow_after_refresh_failure(state: &AppState, tool: &ToolRecord, base: &str) -> Option<ToolRecord> {
    let found =
        match discovery::discover_resource(&state.upstream, &tool.server_url, state.config.allow_loopback_outbound)
            .await
        {
            Ok(f) => f,
            Err(e) => {
                tracing::info!(tool = %tool.tool_id, error = %e, "tools: re-reading the server's metadata failed");
                return None;
            }
        };
    let issuer = moved_to(tool, &found)?;
    match move_tool(state, tool, &found, &issuer, base, None).await {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::info!(tool = %tool.tool_id, error = ?e, "tools: following the server to its new authorization server failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::Map;

    use super::*;

    fn client(id: &str, registration: &str) -> ToolClient {
        ToolClient {
            client_id: id.into(),
            sealed_secret: if registration == "client_metadata_document" {
                Vec::new()
            } else {
                vec![1, 2, 3]
            },
            token_auth_method: "client_secret_basic".into(),
            registration: registration.into(),
        }
    }

    fn tool(issuer: &str, current: ToolClient) -> ToolRecord {
        let mut t = ToolRecord {
            tool_id: "tl_x".into(),
            project_id: "prj_x".into(),
            name: "t".into(),
            server_url: "https://mcp.example/mcp".into(),
            resource: "https://mcp.example/mcp".into(),
            issuer: issuer.into(),
            metadata: Map::new(),
            resource_metadata: None,
            client_id: String::new(),
            sealed_secret: Vec::new(),
            token_auth_method: String::new(),
            registration: String::new(),
            redirect_uris: Vec::new(),
            scopes: Vec::new(),
            challenge_scope: None,
            other_clients: BTreeMap::new(),
            created_at: 0,
        };
        t.set_client(current);
        t
    }

    fn found(listed: &[&str]) -> ResourceFound {
        ResourceFound {
            resource: "https://mcp.example/mcp".into(),
            resource_metadata: None,
            authorization_servers: listed.iter().map(|s| s.to_string()).collect(),
            has_resource_metadata: true,
            challenge_scope: None,
        }
    }

    #[test]
    fn sep_2352_a_server_that_no_longer_lists_the_tools_issuer_has_moved() {
        let t = tool("https://as1", client("c1", "dynamic"));
        assert_eq!(moved_to(&t, &found(&["https://as1"])), None);
        assert_eq!(
            moved_to(&t, &found(&["https://as2", "https://as1"])),
            None,
            "still listed"
        );
        assert_eq!(moved_to(&t, &found(&["https://as2"])).as_deref(), Some("https://as2"));
    }

    #[test]
    fn sep_2352_credentials_are_kept_by_issuer_and_never_cross() {
        let mut t = tool("https://as1", client("operator", "preregistered"));
        keep_clients_by_issuer(&mut t, "https://as2", client("dcr-at-as2", "dynamic"));
        assert_eq!(t.issuer, "https://as2");
        assert_eq!(t.client_id, "dcr-at-as2");
        assert_eq!(t.other_clients["https://as1"].client_id, "operator");
        assert_eq!(
            registration::known_client(&t, "https://as1").unwrap().client_id,
            "operator"
        );
        assert_eq!(registration::known_client(&t, "https://as3"), None);
        // Back to as1: the operator's credentials are current again, as2's kept under as2.
        let back = registration::known_client(&t, "https://as1").unwrap();
        keep_clients_by_issuer(&mut t, "https://as1", back);
        assert_eq!(t.client_id, "operator");
        assert_eq!(t.registration, "preregistered");
        assert_eq!(t.other_clients.keys().collect::<Vec<_>>(), vec!["https://as2"]);
        // Latchkey's own registrations go first when too many are kept; the operator's stay.
        for i in 3..10 {
            let next = format!("https://as{i}");
            keep_clients_by_issuer(&mut t, &next, client(&format!("dcr{i}"), "dynamic"));
        }
        assert!(t.other_clients.len() <= MAX_OTHER_CLIENTS);
        assert_eq!(t.other_clients["https://as1"].client_id, "operator");
    }
}
