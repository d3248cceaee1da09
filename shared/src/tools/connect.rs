//! Connecting a tool: the authorization code flow at its authorization server, with PKCE S256
//! (RFC 7636) and the RFC 8707 `resource`, in two calls — `initiate` (the Selise Blocks reference's
//! initiate-oauth) and `complete` (its complete-oauth). The handler parses the request and renders
//! what these return; the decisions that need no I/O (`check_issuer`, `exchange_error`) are pure
//! and unit-tested here.
//!
//! Initiate probes the server unauthenticated and reads its resource metadata each time: the
//! challenge's scope feeds the scope choice (`scopes`), and a server that moved to another
//! authorization server takes the tool with it first (`migration`). 2 DynamoDB round trips (project
//! key, tool and tokens in one batch read; the state) plus the probe, and a transaction when the
//! tool moves.
//!
//! Complete consumes the state before anything else, checks the authorization response's `iss`
//! (RFC 9207) and that the flow started at the tool's current authorization server (SEP-2352),
//! opens the verifier, exchanges the code, and stores the tokens sealed. ≤ 3 DynamoDB round trips
//! (project key + tool in one batch read; consume the state; store the tokens) plus the exchange.

use http::StatusCode;

use super::scopes::{self, ScopeInputs};
use super::{detail, discovery, internal, migration, owned_tool, store_error, verify_key};
use crate::crypto::secret;
use crate::domain::context::{tool_connection_context, tool_state_context};
use crate::domain::tool::{ToolRecord, ToolState, ToolTokens, STATE_TTL};
use crate::error::{FieldError, ToolError};
use crate::oauth::pkce;
use crate::state::AppState;
use crate::store::connections::tool_tokens_key;
use crate::store::tools as tstore;
use crate::store::FromItem;
use crate::vault::upstream::{self, UpstreamError};
use crate::vault::PresentedKey;

/// The encryption context of a flow's sealed PKCE verifier: the hash of its `state`.
/// An unknown, used, expired or foreign `state` (the reference's CSRF answer, 422).
pub fn state_mismatch() -> ToolError {
    ToolError::Validation(vec![FieldError {
        loc: vec!["body".into(), "state".into()],
        msg: "State parameter does not match. Possible CSRF attack.".into(),
        kind: "value_error.csrf".into(),
    }])
}

/// What initiate-oauth asks for.
#[derive(Clone, Copy, Debug)]
pub struct Initiate<'a> {
    pub redirect_uri: &'a str,
    /// The scopes the app names (`None`: latchkey chooses, `scopes::scopes_to_request`).
    pub scopes: Option<&'a [String]>,
    /// Ask for exactly `scopes`, not joined with what the tool holds.
    pub replace_scopes: bool,
}

/// A flow just started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Initiated {
    /// Where the app sends its user (RFC 6749 §4.1.1).
    pub authorization_url: String,
    pub state: String,
    pub expires_at: i64,
}

/// Start the flow for `tool_id`. `base` is latchkey's public URL (for its metadata document,
/// should the tool move).
pub async fn initiate(
    state: &AppState,
    key: &PresentedKey,
    tool_id: &str,
    ask: Initiate<'_>,
    base: &str,
    now: i64,
) -> Result<Initiated, ToolError> {
    // Round trip 1: the project key, the tool and its tokens (what it holds).
    let items = state
        .store
        .get_many(
            &[key.store_key(), tstore::tool_key(tool_id), tool_tokens_key(tool_id)],
            now,
        )
        .await
        .map_err(|e| store_error("reading a tool", e))?;
    verify_key(key, items[0].as_ref())?;
    let mut tool = owned_tool(key, items[1].as_ref())?;
    if !tool.redirect_uris.is_empty() && !tool.redirect_uris.iter().any(|r| r == ask.redirect_uri) {
        return Err(ToolError::Validation(vec![FieldError {
            loc: vec!["body".into(), "redirect_uri".into()],
            msg: "redirect_uri is not one of the tool's redirect_uris".into(),
            kind: "value_error".into(),
        }]));
    }
    let granted = items[2]
        .as_ref()
        .map(ToolTokens::from_item)
        .transpose()
        .map_err(|e| store_error("reading tool tokens", e))?
        .map(|c| c.scopes)
        .unwrap_or_default();
    // The server as it is now: its challenge, and the authorization server it lists.
    let found = discovery::discover_resource(&state.upstream, &tool.server_url, state.config.allow_loopback_outbound)
        .await
        .map_err(|e| detail(StatusCode::BAD_GATEWAY, format!("Discovery failed: {e}")))?;
    if let Some(issuer) = migration::moved_to(&tool, &found) {
        tool = migration::move_tool(state, &tool, &found, &issuer, base, Some(ask.redirect_uri)).await?;
    }
    let supported = found.scopes_supported();
    let scopes = scopes::scopes_to_request(&ScopeInputs {
        given: ask.scopes,
        replace: ask.replace_scopes,
        granted: &granted,
        recorded_challenge: tool.challenge_scope.as_deref(),
        probed_challenge: found.challenge_scope.as_deref(),
        configured: &tool.scopes,
        scopes_supported: supported.as_deref(),
        offline_access: scopes::offline_access_allowed(&tool.metadata),
    });
    let state_value = secret::random_token("", 32);
    let verifier = secret::random_token("", 48);
    let sealed = crate::vault::keyring(state)
        .map_err(|_| internal())?
        .encrypt(&tool_state_context(&state_value), verifier.as_bytes())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "tools: sealing a verifier failed");
            internal()
        })?;
    let expires_at = now + STATE_TTL;
    // Round trip 2: the state.
    state
        .store
        .put_tool_state(
            &state_value,
            &ToolState {
                tool_id: tool_id.to_string(),
                project_id: key.project_id.clone(),
                redirect_uri: ask.redirect_uri.to_string(),
                scopes: scopes.clone(),
                issuer: Some(tool.issuer.clone()),
                sealed_verifier: sealed,
                expires_at,
            },
            now,
        )
        .await
        .map_err(|e| store_error("storing a state", e))?;
    let endpoint = tool
        .metadata
        .get("authorization_endpoint")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let mut url = url::Url::parse(endpoint).map_err(|_| internal())?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &tool.client_id)
            .append_pair("redirect_uri", ask.redirect_uri)
            .append_pair("state", &state_value)
            .append_pair("code_challenge", &pkce::challenge_for(&verifier))
            .append_pair("code_challenge_method", "S256")
            .append_pair("resource", &tool.resource);
        if !scopes.is_empty() {
            q.append_pair("scope", &scopes.join(" "));
        }
    }
    Ok(Initiated {
        authorization_url: url.into(),
        state: state_value,
        expires_at,
    })
}

/// What complete-oauth carries: the authorization response's `code`, `state` and (RFC 9207) `iss`.
#[derive(Clone, Copy, Debug)]
pub struct Completion<'a> {
    pub code: &'a str,
    pub state: &'a str,
    pub iss: Option<&'a str>,
}

/// RFC 9207 §2.4 and SEP-2352, before the code is used: the flow must have started at the tool's
/// current authorization server (`started_at`, absent for flows stored before it was kept), and the
/// response's `iss` must be that server's — required when its metadata advertises
/// `authorization_response_iss_parameter_supported`, compared exactly whenever given.
pub fn check_issuer(tool: &ToolRecord, started_at: Option<&str>, iss: Option<&str>) -> Result<(), ToolError> {
    // SEP-2352: a code from the authorization server the tool left is never sent to its new one.
    if started_at.is_some_and(|i| i != tool.issuer) {
        return Err(detail(
            StatusCode::BAD_REQUEST,
            "The server moved to another authorization server after this flow started; run initiate-oauth again (the code was not used)",
        ));
    }
    let advertised = tool.advertises_iss();
    match iss {
        Some(i) if i != tool.issuer => Err(detail(
            StatusCode::BAD_REQUEST,
            "The authorization response's iss is not the tool's authorization server (RFC 9207); the code was not used",
        )),
        None if advertised => Err(detail(
            StatusCode::BAD_REQUEST,
            "The authorization server identifies its responses (RFC 9207): pass the iss parameter the redirect carried; the code was not used",
        )),
        _ => Ok(()),
    }
}

/// A failed code exchange (RFC 6749 §5.2) in the reference's shapes: `invalid_grant` is the app's
/// 400, another refusal 401, a slow or unreachable authorization server 504 / 502.
pub fn exchange_error(e: UpstreamError) -> ToolError {
    match e {
        UpstreamError::Rejected { code, .. } if code == "invalid_grant" => {
            detail(StatusCode::BAD_REQUEST, "Invalid or expired authorization code")
        }
        UpstreamError::Rejected { code, status } => detail(
            StatusCode::UNAUTHORIZED,
            format!("The authorization server rejected the token exchange ({code}, HTTP {status})"),
        ),
        UpstreamError::Timeout => detail(
            StatusCode::GATEWAY_TIMEOUT,
            "The authorization server did not answer in time",
        ),
        UpstreamError::Refused(r) => detail(
            StatusCode::BAD_GATEWAY,
            format!("The authorization server's address is not allowed: {r}"),
        ),
        UpstreamError::Unavailable(_) => {
            detail(StatusCode::BAD_GATEWAY, "The authorization server could not be reached")
        }
    }
}

/// Finish the flow for `tool_id`: the tokens are stored sealed, replacing any the tool held.
pub async fn complete(
    state: &AppState,
    key: &PresentedKey,
    tool_id: &str,
    response: Completion<'_>,
    now: i64,
) -> Result<(), ToolError> {
    // Round trip 1: the project key and the tool.
    let items = state
        .store
        .get_many(&[key.store_key(), tstore::tool_key(tool_id)], now)
        .await
        .map_err(|e| store_error("reading a tool", e))?;
    verify_key(key, items[0].as_ref())?;
    let tool = owned_tool(key, items[1].as_ref())?;
    // Round trip 2: consume the state, whatever happens next.
    let st = state
        .store
        .take_tool_state(response.state, &tool.tool_id, &key.project_id, now)
        .await
        .map_err(|e| store_error("consuming a state", e))?
        .ok_or_else(state_mismatch)?;
    check_issuer(&tool, st.issuer.as_deref(), response.iss)?;
    // Mix-up (RFC 9700 §4.4): a response without `iss` could come from another tool's authorization
    // server sharing this redirect URI. When any tool of the project on this redirect URI has a
    // server that sends `iss`, it is required here too (one Query, only on this path).
    if response.iss.is_none() && !tool.advertises_iss() {
        let shared = state
            .store
            .redirect_uri_requires_iss(&tool.project_id, &st.redirect_uri, now)
            .await
            .map_err(|e| store_error("reading the redirect URI's tools", e))?;
        if shared {
            return Err(detail(
                StatusCode::BAD_REQUEST,
                "Another tool of this project uses this redirect URI with an authorization server that identifies its responses (RFC 9207): pass the iss parameter the redirect carried, or give this tool its own redirect URI; the code was not used",
            ));
        }
    }
    let verifier = crate::vault::keyring(state)
        .map_err(|_| internal())?
        .decrypt(&tool_state_context(response.state), &st.sealed_verifier)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "tools: opening a verifier failed");
            internal()
        })?;
    let verifier = String::from_utf8(verifier).map_err(|_| internal())?;
    let client = super::token_client(&tool);
    let creds = crate::vault::credentials(state, &client)
        .await
        .map_err(|_| internal())?;
    let tokens = upstream::exchange_code(
        &state.upstream,
        &client,
        &creds,
        response.code,
        &st.redirect_uri,
        Some(&verifier),
        state.config.allow_loopback_outbound,
    )
    .await
    .map_err(|e| {
        tracing::info!(tool = %tool_id, error = %e, "tools: code exchange failed");
        exchange_error(e)
    })?;
    let sealed = crate::vault::seal_tokens(
        state,
        &tool_connection_context(&key.project_id, tool_id),
        &crate::vault::Tokens {
            access_token: tokens.access_token.clone(),
            refresh_token: tokens.refresh_token.clone(),
        },
    )
    .await
    .map_err(|_| internal())?;
    let held = ToolTokens::new(
        &key.project_id,
        tool_id,
        crate::vault::granted_scopes(tokens.scope.as_deref(), &st.scopes),
        sealed,
        tokens.expires_in.map(|s| now + s),
        now,
    );
    // Round trip 3: store the tokens.
    state
        .store
        .put_tool_tokens(&held, now)
        .await
        .map_err(|e| store_error("storing tool tokens", e))?;
    tracing::info!(tool = %tool_id, "tools: OAuth completed");
    let event = crate::domain::webhook::Event::new(
        crate::domain::webhook::EventType::ToolConnected,
        &key.project_id,
        now,
        &[("tool_id", tool_id)],
    );
    state.events.emit(&state.store, event, now).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    fn tool(advertises_iss: bool) -> ToolRecord {
        let mut metadata = Map::new();
        metadata.insert("issuer".into(), json!("https://as.example"));
        if advertises_iss {
            metadata.insert("authorization_response_iss_parameter_supported".into(), json!(true));
        }
        ToolRecord {
            tool_id: "tool_1".into(),
            project_id: "prj_1".into(),
            name: "t".into(),
            server_url: "https://mcp.example/mcp".into(),
            resource: "https://mcp.example/mcp".into(),
            issuer: "https://as.example".into(),
            metadata,
            resource_metadata: None,
            client_id: "c".into(),
            sealed_secret: Vec::new(),
            token_auth_method: "none".into(),
            registration: "dynamic".into(),
            redirect_uris: Vec::new(),
            scopes: Vec::new(),
            challenge_scope: None,
            other_clients: Default::default(),
            created_at: 0,
        }
    }

    fn status(r: Result<(), ToolError>) -> Option<StatusCode> {
        match r {
            Ok(()) => None,
            Err(ToolError::Status(s, _)) => Some(s),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rfc9207_2_4_iss_must_name_the_tools_authorization_server() {
        let t = tool(false);
        assert_eq!(
            status(check_issuer(&t, Some("https://as.example"), Some("https://as.example"))),
            None
        );
        assert_eq!(
            status(check_issuer(
                &t,
                Some("https://as.example"),
                Some("https://evil.example")
            )),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            status(check_issuer(&t, Some("https://as.example"), None)),
            None,
            "not advertised: optional"
        );
    }

    #[test]
    fn rfc9207_2_4_iss_is_required_when_the_server_advertises_it() {
        let t = tool(true);
        assert_eq!(status(check_issuer(&t, None, None)), Some(StatusCode::BAD_REQUEST));
        assert_eq!(status(check_issuer(&t, None, Some("https://as.example"))), None);
    }

    #[test]
    fn sep2352_a_flow_started_at_the_old_authorization_server_is_refused() {
        let t = tool(false);
        match check_issuer(&t, Some("https://old-as.example"), Some("https://as.example")) {
            Err(ToolError::Status(s, m)) => {
                assert_eq!(s, StatusCode::BAD_REQUEST);
                assert!(m.contains("moved to another authorization server"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            status(check_issuer(&t, None, None)),
            None,
            "flows stored before the issuer was kept"
        );
    }

    #[test]
    fn rfc6749_5_2_exchange_errors_map_to_the_reference_shapes() {
        let rejected = |code: &str| UpstreamError::Rejected {
            status: 400,
            code: code.into(),
        };
        assert!(
            matches!(exchange_error(rejected("invalid_grant")), ToolError::Status(s, _) if s == StatusCode::BAD_REQUEST)
        );
        assert!(
            matches!(exchange_error(rejected("invalid_client")), ToolError::Status(s, m) if s == StatusCode::UNAUTHORIZED && m.contains("invalid_client"))
        );
        assert!(
            matches!(exchange_error(UpstreamError::Timeout), ToolError::Status(s, _) if s == StatusCode::GATEWAY_TIMEOUT)
        );
        assert!(
            matches!(exchange_error(UpstreamError::Unavailable("x".into())), ToolError::Status(s, _) if s == StatusCode::BAD_GATEWAY)
        );
    }

    #[test]
    fn csrf_answer_is_the_references_422_shape() {
        let ToolError::Validation(errors) = state_mismatch() else {
            panic!("expected a validation error");
        };
        assert_eq!(errors[0].kind, "value_error.csrf");
        assert_eq!(errors[0].loc, vec!["body".to_string(), "state".to_string()]);
    }
}
