//! The one authorization-code issuer (RFC 6749 §4.1.2): a new grant for the signed-in user and the
//! pending request, and its first code, written together. Used by authorize (remembered consent),
//! consent (approval) and the tests that seed codes.

use crate::crypto::secret;
use crate::domain::authz::{AuthRequest, Session};
use crate::domain::grant::{self, CodeRecord, Grant};
use crate::state::AppState;
use crate::store::StoreError;

/// How long a grant item outlives its code when no token is issued from it.
pub const GRANT_TTL_AFTER_CODE: i64 = 3600;

/// A code just issued, and the grant it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCode {
    pub grant_id: String,
    /// The code (RFC 6749 §4.1.2; `lk_ac_` prefixed, single use, `config.code_ttl` seconds).
    pub code: String,
}

/// The host the user knows the client by: its metadata document's (the `client_id` URL), else its
/// redirect URI's (a private-use scheme shows as `scheme:`).
fn client_host(client_id: &str, redirect_uri: &str) -> Option<String> {
    let from = if crate::oauth::cimd::is_document_client_id(client_id) {
        client_id
    } else {
        redirect_uri
    };
    let url = url::Url::parse(from).ok()?;
    Some(match url.host_str() {
        Some(h) => h.to_string(),
        None => format!("{}:", url.scheme()),
    })
}

/// Create the grant for `request` approved by `session`, and its code. One round trip.
pub async fn issue(
    state: &AppState,
    request: &AuthRequest,
    session: &Session,
    now: i64,
) -> Result<IssuedCode, StoreError> {
    let grant_id = secret::random_token("", 16);
    let grant = Grant {
        grant_id: grant_id.clone(),
        client_id: request.client_id.clone(),
        sub: session.sub.clone(),
        username: session.username.clone(),
        resource: request.resource.clone(),
        scope: request.scope.clone(),
        created_at: now,
        client_name: request.client_name.clone(),
        client_host: client_host(&request.client_id, &request.redirect_uri),
        last_used: None,
    };
    let code = grant::new_token(grant::CODE_PREFIX, &grant_id);
    let record = CodeRecord {
        redirect_uri: request.redirect_uri.clone(),
        redirect_uri_sent: request.redirect_uri_sent,
        code_challenge: request.code_challenge.clone(),
        expires_at: now + state.config.code_ttl,
        used: false,
    };
    state
        .store
        .put_grant_with_code(&grant, &code, &record, now + GRANT_TTL_AFTER_CODE)
        .await?;
    tracing::info!(grant_id = %grant_id, client_id = %request.client_id, "authorization code issued");
    Ok(IssuedCode { grant_id, code })
}
