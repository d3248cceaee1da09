//! The token vault: an app (authenticated by a project API key) connects its users to upstream
//! providers through just-in-time auth sessions; latchkey holds each user's provider tokens sealed by
//! the keyring and attaches them to proxied API calls, refreshing them once however many callers
//! race on an expired token.

pub mod forward;
pub mod path;
pub mod providers;
pub mod refresh;
pub mod signin;
pub mod token_client;
pub mod upstream;

use http::StatusCode;
use lambda_http::Request;
use serde::{Deserialize, Serialize};

use crate::crypto::{secret, EncryptionContext, Keyring};
use crate::domain::context::provider_context;
use crate::domain::project::{project_of_key, ApiKeyRecord};
use crate::domain::provider::ProviderConfig;
use crate::error::VaultError;
use crate::state::AppState;
use crate::store::keys::Key;
use crate::store::projects::api_key_key;
use crate::store::{FromItem, Item, StoreError};
use providers::ProviderSpec;
use token_client::TokenClient;
use upstream::ClientCredentials;

/// Longest user id (bytes).
pub const MAX_USER_ID: usize = 256;

/// A store failure as a vault error, naming the step for the log (`From<StoreError>`: 503 when busy).
pub fn store_error(what: &str, e: StoreError) -> VaultError {
    e.context(&format!("vault: {what}")).into()
}

/// 500 `internal_error` with a generic message (the cause goes to the log).
pub fn internal() -> VaultError {
    VaultError::internal()
}

/// The API key a request presents: its claimed project and its hash (checked against the store by
/// the caller's batch read). 401 when missing or malformed.
pub struct PresentedKey {
    pub project_id: String,
    pub hash: String,
}

impl PresentedKey {
    /// The key in the request's one `X-API-Key` header; 401 when missing, repeated or malformed.
    pub fn from_request(req: &Request) -> Result<Self, VaultError> {
        let mut values = req.headers().get_all("x-api-key").iter();
        let (Some(v), None) = (values.next(), values.next()) else {
            return Err(VaultError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_api_key",
                "send your project's API key in one X-API-Key header",
            ));
        };
        let key = v.to_str().unwrap_or("").trim();
        let Some(project) = project_of_key(key) else {
            return Err(invalid_key());
        };
        Ok(PresentedKey {
            project_id: project.to_string(),
            hash: secret::hash(key),
        })
    }

    /// The key of the stored item for this API key (by its hash).
    pub fn store_key(&self) -> Key {
        api_key_key(&self.hash)
    }

    /// Check the stored key item read in the same batch: it must exist and name the same project.
    pub fn verify(&self, item: Option<&Item>) -> Result<ApiKeyRecord, VaultError> {
        let rec = item
            .map(ApiKeyRecord::from_item)
            .transpose()
            .map_err(|e| store_error("reading an API key", e))?
            .ok_or_else(invalid_key)?;
        if rec.project_id != self.project_id {
            return Err(invalid_key());
        }
        Ok(rec)
    }

    /// Read the stored key item and check it (one round trip), for an endpoint with nothing else
    /// to read in the same batch.
    pub async fn check(&self, state: &AppState, now: i64) -> Result<ApiKeyRecord, VaultError> {
        let item = state
            .store
            .get(&self.store_key(), now)
            .await
            .map_err(|e| store_error("reading the API key", e))?;
        self.verify(item.as_ref())
    }
}

fn invalid_key() -> VaultError {
    VaultError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
        "the API key is not valid (unknown, malformed or revoked)",
    )
}

/// A user id: 1–256 bytes, no control characters.
pub fn check_user_id(user_id: &str) -> Result<(), VaultError> {
    if user_id.is_empty() || user_id.len() > MAX_USER_ID {
        return Err(VaultError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("user_id must be 1 to {MAX_USER_ID} bytes"),
        ));
    }
    if user_id.trim() != user_id {
        return Err(VaultError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "user_id must not start or end with whitespace",
        ));
    }
    if user_id.chars().any(char::is_control) {
        return Err(VaultError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "user_id must not contain control characters",
        ));
    }
    Ok(())
}

/// A provider name from a request: valid syntax, else 404 (no such provider).
pub fn check_provider_name(name: &str) -> Result<(), VaultError> {
    if crate::domain::provider::is_valid_name(name) {
        Ok(())
    } else {
        Err(unknown_provider(name))
    }
}

/// 404 `unknown_provider`, naming the catalogue.
pub fn unknown_provider(name: &str) -> VaultError {
    let shown = crate::domain::shown(name, 40);
    VaultError::new(
        StatusCode::NOT_FOUND,
        "unknown_provider",
        format!(
            "{shown:?} is not a provider of this project; the catalogue has {}",
            providers::names().join(", ")
        ),
    )
}

/// 404 for a user with no connection to `provider`.
pub fn not_connected(provider: &str) -> VaultError {
    VaultError::new(
        StatusCode::NOT_FOUND,
        "not_connected",
        format!("the user has no {provider} connection; create an auth session first"),
    )
}

/// The command an operator runs to configure `provider` for `project_id`.
pub fn not_configured(project_id: &str, provider: &str) -> VaultError {
    VaultError::new(
        StatusCode::CONFLICT,
        "provider_not_configured",
        format!(
            "{provider} is not configured for this project; run `latchkey provider set --project {project_id} {provider} --client-id <id> --client-secret <secret>`"
        ),
    )
}

/// A project's provider: its configuration read in a batch, resolved against the catalogue.
pub struct ResolvedProvider {
    pub config: ProviderConfig,
    pub spec: ProviderSpec,
}

impl ResolvedProvider {
    /// latchkey as this project's client at the provider's token endpoint.
    pub fn token_client(&self) -> TokenClient {
        TokenClient {
            client_id: self.config.client_id.clone(),
            sealed_secret: self.config.sealed_secret.clone(),
            secret_context: provider_context(&self.config.project_id, &self.config.provider),
            token_url: self.spec.token_url.clone(),
            auth_method: self.spec.token_auth_method,
            request_format: self.spec.token_request_format,
            response_path: self.spec.token_response_path.clone(),
            extra_params: self.spec.extra_token_params.clone(),
            revoke: self.spec.revoke.clone(),
        }
    }
}

/// Resolve a provider item read in the caller's batch. Unknown names are 404, catalogue names
/// without configuration 409 naming the CLI command.
pub fn resolve_provider(
    state: &AppState,
    project_id: &str,
    provider: &str,
    item: Option<&Item>,
) -> Result<ResolvedProvider, VaultError> {
    let Some(item) = item else {
        return Err(if providers::catalogue().contains_key(provider) {
            not_configured(project_id, provider)
        } else {
            unknown_provider(provider)
        });
    };
    let config = ProviderConfig::from_item(item).map_err(|e| store_error("reading a provider", e))?;
    let spec = providers::resolve(
        config.base.as_deref(),
        &config.overrides,
        state.config.allow_loopback_outbound,
    )
    .map_err(|why| {
        tracing::error!(provider, reason = %why, "vault: stored provider configuration is unusable");
        VaultError::new(
            StatusCode::CONFLICT,
            "provider_misconfigured",
            format!("{provider} is configured for this project but its configuration is not usable here; run `latchkey provider set` again"),
        )
    })?;
    Ok(ResolvedProvider { config, spec })
}

/// The keyring, or 500 when this process has none (`LATCHKEY_KMS_KEY_ID` unset).
pub fn keyring(state: &AppState) -> Result<&Keyring, VaultError> {
    state.keyring.as_deref().ok_or_else(|| {
        tracing::error!("vault: no keyring configured (LATCHKEY_KMS_KEY_ID)");
        internal()
    })
}

/// latchkey's credentials at a token endpoint (opens the sealed secret; cached data key after the
/// first call).
pub async fn credentials(state: &AppState, client: &TokenClient) -> Result<ClientCredentials, VaultError> {
    if client.sealed_secret.is_empty() {
        // A public client (no secret).
        return Ok(ClientCredentials {
            client_id: client.client_id.clone(),
            client_secret: String::new(),
        });
    }
    let secret = keyring(state)?
        .decrypt(&client.secret_context, &client.sealed_secret)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "vault: opening a provider secret failed");
            internal()
        })?;
    Ok(ClientCredentials {
        client_id: client.client_id.clone(),
        client_secret: String::from_utf8(secret).map_err(|_| internal())?,
    })
}

/// A connection's tokens, sealed together. `Debug` hides them.
#[derive(Clone, Serialize, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("has_refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

/// Seal tokens under `ctx` (AES-256-GCM, a data key from the keyring).
pub async fn seal_tokens(state: &AppState, ctx: &EncryptionContext, tokens: &Tokens) -> Result<Vec<u8>, VaultError> {
    let plain = serde_json::to_vec(tokens).map_err(|_| internal())?;
    keyring(state)?.encrypt(ctx, &plain).await.map_err(|e| {
        tracing::error!(error = %e, "vault: sealing tokens failed");
        internal()
    })
}

/// Open tokens sealed under `ctx`.
pub async fn open_tokens(state: &AppState, ctx: &EncryptionContext, sealed: &[u8]) -> Result<Tokens, VaultError> {
    let plain = keyring(state)?.decrypt(ctx, sealed).await.map_err(|e| {
        tracing::error!(error = %e, "vault: opening connection tokens failed");
        internal()
    })?;
    serde_json::from_slice(&plain).map_err(|_| internal())
}

/// Revoke the tokens `holder` holds (`sealed_tokens`) where `client` says how (RFC 7009, or the
/// provider's own way). Best effort: `true` when the provider confirmed; failures are logged (a
/// provider outage must not keep anyone connected here).
pub async fn revoke_upstream(
    state: &AppState,
    client: &TokenClient,
    holder: &refresh::Holder,
    sealed_tokens: &[u8],
) -> bool {
    if client.revoke.is_none() {
        return false;
    }
    let (Ok(tokens), Ok(creds)) = (
        open_tokens(state, &holder.context, sealed_tokens).await,
        credentials(state, client).await,
    ) else {
        return false;
    };
    match upstream::revoke(
        &state.upstream,
        client,
        &creds,
        &tokens.access_token,
        tokens.refresh_token.as_deref(),
        state.config.allow_loopback_outbound,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(provider = %holder.provider, error = %e, "revocation at the provider failed");
            false
        }
    }
}

/// Scopes granted: what the provider reported (split on space or comma), else what we asked for.
pub fn granted_scopes(reported: Option<&str>, requested: &[String]) -> Vec<String> {
    match reported {
        Some(s) if !s.trim().is_empty() => s
            .split([' ', ','])
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect(),
        _ => requested.to_vec(),
    }
}

/// Percent-decode one path segment (a user id or provider in the URL).
pub fn path_segment(raw: &str) -> Result<String, VaultError> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| {
            VaultError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "path segments must be UTF-8",
            )
        })
}

/// 405 `method_not_allowed`, naming the methods the path answers (in the message and `Allow`).
pub fn not_allowed(allow: &'static str) -> VaultError {
    VaultError {
        allow: Some(allow),
        ..VaultError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("use {allow}"),
        )
    }
}

/// A request's JSON object body, or the vault's error for it: 413 `body_too_large`, else 400
/// `invalid_request` (not JSON, not an object, wrong content type).
pub fn json_body(req: &Request) -> Result<serde_json::Map<String, serde_json::Value>, VaultError> {
    crate::http::request::json_object(req).map_err(|b| {
        let code = if b.status == StatusCode::PAYLOAD_TOO_LARGE {
            "body_too_large"
        } else {
            "invalid_request"
        };
        VaultError::new(b.status, code, b.message)
    })
}

/// `connection.created`, and `connection.recovered` when the connection it replaces had failed.
pub async fn emit_connected(
    state: &AppState,
    project_id: &str,
    user_id: &str,
    provider: &str,
    was_failed: bool,
    now: i64,
) {
    use crate::domain::webhook::{Event, EventType};
    let data = [("user_id", user_id), ("provider", provider)];
    let created = Event::new(EventType::ConnectionCreated, project_id, now, &data);
    state.events.emit(&state.store, created, now).await;
    if was_failed {
        let recovered = Event::new(EventType::ConnectionRecovered, project_id, now, &data);
        state.events.emit(&state.store, recovered, now).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids() {
        assert!(check_user_id("alice@example.com").is_ok());
        assert!(check_user_id("ユーザー 1 / #x").is_ok());
        assert!(check_user_id("").is_err());
        assert!(check_user_id(&"x".repeat(257)).is_err());
        assert!(check_user_id(&"x".repeat(256)).is_ok());
        assert!(check_user_id("a\nb").is_err());
        assert!(check_user_id("a\u{0}b").is_err());
        assert!(check_user_id(" a").is_err());
        assert!(check_user_id("a ").is_err());
    }

    #[test]
    fn scopes_reported_or_requested() {
        let req = vec!["a".to_string()];
        assert_eq!(granted_scopes(Some("x y"), &req), vec!["x", "y"]);
        assert_eq!(granted_scopes(Some("repo,user"), &req), vec!["repo", "user"]);
        assert_eq!(granted_scopes(None, &req), vec!["a"]);
        assert_eq!(granted_scopes(Some(""), &req), vec!["a"]);
    }

    #[test]
    fn rfc6749_2_3_1_a_providers_token_client_is_its_spec_and_the_projects_client() {
        let spec = providers::resolve(Some("github"), &serde_json::Map::new(), false).unwrap();
        let p = ResolvedProvider {
            config: ProviderConfig {
                project_id: "prj_1".into(),
                provider: "github".into(),
                base: Some("github".into()),
                overrides: serde_json::Map::new(),
                client_id: "gh-client".into(),
                sealed_secret: vec![9],
                updated_at: 0,
            },
            spec: spec.clone(),
        };
        let c = p.token_client();
        assert_eq!(c.client_id, "gh-client");
        assert_eq!(c.sealed_secret, vec![9]);
        assert_eq!(c.secret_context, provider_context("prj_1", "github"));
        assert_eq!(c.token_url, spec.token_url);
        assert_eq!(c.auth_method, spec.token_auth_method);
        assert_eq!(c.request_format, spec.token_request_format);
        assert_eq!(c.revoke, spec.revoke);
        assert!(c.extra_params.is_empty());
    }

    #[test]
    fn tokens_debug_hides_values() {
        let t = Tokens {
            access_token: "ya29.secret".into(),
            refresh_token: Some("1//secret".into()),
        };
        assert!(!format!("{t:?}").contains("secret"));
    }
}
