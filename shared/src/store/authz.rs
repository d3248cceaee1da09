//! Browser-side authorization state as items: pending authorization requests, sign-in sessions,
//! remembered consent and upstream sign-ins in flight (the types are `domain::authz`'s).
//!
//! | item | pk | sk | ttl |
//! |---|---|---|---|
//! | pending request | `AUTHREQ#<request_id>` | `AUTHREQ` | 10 minutes |
//! | browser session | `SESSION#<sha256(session id)>` | `SESSION` | 12 hours |
//! | remembered consent | `CONSENT#<sub>` | `<client_id>#<resource>` | none |
//! | upstream sign-in | `LOGIN#<sha256(state)>` | `LOGIN` | 10 minutes |

use super::item::Item;
use super::keys::Key;
use super::{Store, StoreError, TTL_ATTR};
use crate::crypto::secret;
use crate::domain::authz::{AuthRequest, LoginState, Session, AUTHREQ_TTL, SESSION_ID_PREFIX, SESSION_TTL};

pub fn authreq_key(id: &str) -> Key {
    Key {
        pk: format!("AUTHREQ#{id}"),
        sk: "AUTHREQ".into(),
    }
}
pub fn session_key(session_id: &str) -> Key {
    Key {
        pk: format!("SESSION#{}", secret::hash(session_id)),
        sk: "SESSION".into(),
    }
}
pub fn consent_key(sub: &str, client_id: &str, resource: &str) -> Key {
    Key {
        pk: format!("CONSENT#{sub}"),
        sk: format!("{client_id}#{resource}"),
    }
}

fn authreq_item(req: &AuthRequest, now: i64) -> Item {
    Item::with_key(&authreq_key(&req.id))
        .set_s("type", "authreq")
        .set_s("client_id", &req.client_id)
        .set_opt_s("client_name", req.client_name.clone())
        .set_s("redirect_uri", &req.redirect_uri)
        .set_s("redirect_uri_sent", bool_s(req.redirect_uri_sent))
        .set_s("remember_consent", bool_s(req.remember_consent))
        .set_s("state", &req.state)
        .set_s("code_challenge", &req.code_challenge)
        .set_s("resource", &req.resource)
        .set_s("scope", &req.scope)
        .set_n(TTL_ATTR, now + AUTHREQ_TTL)
}

fn bool_s(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

fn authreq_from_item(id: &str, item: &Item) -> Result<AuthRequest, StoreError> {
    Ok(AuthRequest {
        id: id.to_string(),
        client_id: item.req_s("client_id")?.into(),
        client_name: item.s("client_name").map(str::to_string),
        redirect_uri: item.req_s("redirect_uri")?.into(),
        // Requests stored before these attributes: the strict reading (sent; not remembered).
        redirect_uri_sent: item.s("redirect_uri_sent") != Some("false"),
        remember_consent: item.s("remember_consent") == Some("true"),
        state: item.req_s("state")?.into(),
        code_challenge: item.req_s("code_challenge")?.into(),
        resource: item.req_s("resource")?.into(),
        scope: item.req_s("scope")?.into(),
    })
}

impl Store {
    pub async fn put_authreq(&self, req: &AuthRequest, now: i64) -> Result<(), StoreError> {
        self.put_new(authreq_item(req, now), now).await
    }

    pub async fn get_authreq(&self, id: &str, now: i64) -> Result<Option<AuthRequest>, StoreError> {
        match self.get(&authreq_key(id), now).await? {
            Some(item) => authreq_from_item(id, &item).map(Some),
            None => Ok(None),
        }
    }

    /// Consume a pending request: delete it only if it exists and has not expired. `None` if it was
    /// already used or expired (single use).
    pub async fn take_authreq(&self, id: &str, now: i64) -> Result<Option<AuthRequest>, StoreError> {
        match self.take(&authreq_key(id), now).await? {
            Some(item) => authreq_from_item(id, &item).map(Some),
            None => Ok(None),
        }
    }

    /// Start a browser session; returns the session id for the cookie (only its hash is stored).
    pub async fn create_session(&self, session: &Session, now: i64) -> Result<String, StoreError> {
        let id = secret::new_secret(SESSION_ID_PREFIX);
        let item = Item::with_key(&session_key(&id))
            .set_s("type", "session")
            .set_s("sub", &session.sub)
            .set_s("username", &session.username)
            .set_n("created_at", now)
            .set_n(TTL_ATTR, now + SESSION_TTL);
        self.put_new(item, now).await?;
        Ok(id)
    }

    pub async fn get_session(&self, session_id: &str, now: i64) -> Result<Option<Session>, StoreError> {
        Ok(self.get(&session_key(session_id), now).await?.and_then(|i| {
            Some(Session {
                sub: i.s("sub")?.to_string(),
                username: i.s("username")?.to_string(),
            })
        }))
    }

    /// Remember that `sub` approved `scopes` for this client and resource.
    pub async fn remember_consent(
        &self,
        sub: &str,
        client_id: &str,
        resource: &str,
        scope: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let item = Item::with_key(&consent_key(sub, client_id, resource))
            .set_s("type", "consent")
            .set_s("scope", scope)
            .set_n("updated_at", now);
        self.put(item).await?;
        Ok(())
    }

    /// Forget that `sub` approved this client and resource, so the client must ask again
    /// (revoking a grant does this). Idempotent.
    pub async fn forget_consent(&self, sub: &str, client_id: &str, resource: &str) -> Result<(), StoreError> {
        self.delete(&consent_key(sub, client_id, resource)).await
    }

    /// Delete a browser session (sign out). Idempotent.
    pub async fn delete_session(&self, session_id: &str) -> Result<(), StoreError> {
        self.delete(&session_key(session_id)).await
    }

    /// The scopes `sub` already approved for this client and resource.
    pub async fn remembered_consent(
        &self,
        sub: &str,
        client_id: &str,
        resource: &str,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        Ok(self
            .get(&consent_key(sub, client_id, resource), now)
            .await?
            .and_then(|i| i.s("scope").map(|s| s.split(' ').map(str::to_string).collect()))
            .unwrap_or_default())
    }
}

/// An upstream sign-in in flight: `LOGIN#<sha256(state)>` / `LOGIN`, 10 minutes.
pub fn login_key(state: &str) -> Key {
    Key {
        pk: format!("LOGIN#{}", secret::hash(state)),
        sk: "LOGIN".into(),
    }
}

impl Store {
    pub async fn put_login(&self, state: &str, login: &LoginState, now: i64) -> Result<(), StoreError> {
        let item = Item::with_key(&login_key(state))
            .set_s("type", "login")
            .set_s("request_id", &login.request_id)
            .set_s("nonce", &login.nonce)
            .set_b("verifier", login.sealed_verifier.clone())
            .set_s("browser_hash", &login.browser_hash)
            .set_n(TTL_ATTR, now + AUTHREQ_TTL);
        self.put_new(item, now).await
    }

    /// Consume an upstream sign-in by its `state` (single use; `None` if unknown, used or expired).
    pub async fn take_login(&self, state: &str, now: i64) -> Result<Option<LoginState>, StoreError> {
        Ok(self.take(&login_key(state), now).await?.and_then(|i| {
            Some(LoginState {
                request_id: i.s("request_id")?.to_string(),
                nonce: i.s("nonce")?.to_string(),
                sealed_verifier: i.b("verifier")?.to_vec(),
                browser_hash: i.s("browser_hash")?.to_string(),
            })
        }))
    }
}
