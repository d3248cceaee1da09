//! Vault auth sessions and their single-use `state` as items (the types are
//! `domain::auth_session`'s).
//!
//! | item | pk | sk | ttl |
//! |---|---|---|---|
//! | auth session | `VSESSION#<session_id>` | `VSESSION` | `expires_at` + 7 days |
//! | session state (single use) | `VSTATE#<sha256(state)>` | `VSTATE` | `expires_at` (5 minutes) |
//!
//! A session and its state are written in one transaction; completing a session writes the user's
//! connection and marks the session complete in one transaction (`store::connections` builds the
//! connection's update).

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};

use super::item::FromItem;
use super::keys::Key;
use super::{build_err, is_condition_failed, n, put_new_item, s, Item, Store, StoreError, Transaction, TTL_ATTR};
use crate::crypto::secret;
use crate::domain::auth_session::{SessionStatus, VaultSession, VaultState, SESSION_RETENTION};
use crate::domain::connection::Connection;

pub fn session_key(session_id: &str) -> Key {
    Key {
        pk: format!("VSESSION#{session_id}"),
        sk: "VSESSION".into(),
    }
}

pub fn state_key(state: &str) -> Key {
    Key {
        pk: format!("VSTATE#{}", secret::hash(state)),
        sk: "VSTATE".into(),
    }
}

fn session_item(session: &VaultSession) -> Item {
    Item::with_key(&session_key(&session.session_id))
        .set_s("type", "vault_session")
        .set_s("project_id", &session.project_id)
        .set_s("user_id", &session.user_id)
        .set_s("provider", &session.provider)
        .set_list("scopes", &session.scopes)
        .set_s("status", session.status.as_str())
        .set_n("expires_at", session.expires_at)
        .set_n("created_at", session.created_at)
        .set_n(TTL_ATTR, session.expires_at + SESSION_RETENTION)
}

impl FromItem for VaultSession {
    fn from_item(item: &Item) -> Result<Self, StoreError> {
        let pk = item.req_s("pk")?;
        Ok(VaultSession {
            session_id: pk.trim_start_matches("VSESSION#").to_string(),
            project_id: item.req_s("project_id")?.to_string(),
            user_id: item.req_s("user_id")?.to_string(),
            provider: item.req_s("provider")?.to_string(),
            scopes: item.list("scopes"),
            status: item.req_status()?,
            error_code: item.s("error_code").map(str::to_string),
            error_message: item.s("error_message").map(str::to_string),
            expires_at: item.n("expires_at").unwrap_or(0),
            created_at: item.n("created_at").unwrap_or(0),
        })
    }
}

fn state_item(st: &VaultState, state: &str) -> Item {
    let mut item = Item::with_key(&state_key(state))
        .set_s("type", "vault_state")
        .set_s("session_id", &st.session_id)
        .set_s("project_id", &st.project_id)
        .set_s("user_id", &st.user_id)
        .set_s("provider", &st.provider)
        .set_list("scopes", &st.scopes)
        .set_s("redirect_uri", &st.redirect_uri)
        .set_n(TTL_ATTR, st.expires_at);
    if let Some(v) = &st.sealed_verifier {
        item = item.set_b("verifier", v.clone());
    }
    item
}

impl FromItem for VaultState {
    fn from_item(item: &Item) -> Result<Self, StoreError> {
        Ok(VaultState {
            session_id: item.req_s("session_id")?.to_string(),
            project_id: item.req_s("project_id")?.to_string(),
            user_id: item.req_s("user_id")?.to_string(),
            provider: item.req_s("provider")?.to_string(),
            scopes: item.list("scopes"),
            sealed_verifier: item.b("verifier").map(<[u8]>::to_vec),
            redirect_uri: item.req_s("redirect_uri")?.to_string(),
            expires_at: item.n(TTL_ATTR).unwrap_or(0),
        })
    }
}

/// Why completing a session was refused: it is no longer pending (completed, failed or expired).
#[derive(Clone, Copy, Debug)]
struct NotPending;

impl Store {
    /// Write a new session and its state in one transaction.
    pub async fn put_session(&self, session: &VaultSession, state: &str, st: &VaultState) -> Result<(), StoreError> {
        let tx = Transaction::new()
            .item(put_new_item(self, session_item(session))?)
            .item(put_new_item(self, state_item(st, state))?);
        self.transact_all(tx).await
    }

    /// Consume a session's state (single use; `None` if unknown, used or expired).
    pub async fn take_state(&self, state: &str, now: i64) -> Result<Option<VaultState>, StoreError> {
        self.take(&state_key(state), now)
            .await?
            .map(|i| VaultState::from_item(&i))
            .transpose()
    }

    /// Mark a pending session failed with the provider's (or our) error. `false` if it was not pending.
    pub async fn fail_session(&self, session_id: &str, code: &str, message: &str) -> Result<bool, StoreError> {
        let res = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(session_key(session_id).to_map()))
            .update_expression("SET #status = :error, error_code = :code, error_message = :msg")
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":error", s(SessionStatus::Error.as_str()))
            .expression_attribute_values(":pending", s(SessionStatus::Pending.as_str()))
            .expression_attribute_values(":code", s(code))
            .expression_attribute_values(":msg", s(message))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(StoreError::Service(format!(
                "UpdateItem: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            ))),
        }
    }

    /// Store (or replace) a connection's tokens and mark its session complete, in one transaction.
    /// `Ok(false)` if the session was no longer pending.
    pub async fn complete_session(&self, session_id: &str, conn: &Connection, now: i64) -> Result<bool, StoreError> {
        let upsert = self.connection_upsert(conn, now)?;
        let session = Update::builder()
            .table_name(self.table())
            .set_key(Some(session_key(session_id).to_map()))
            .update_expression("SET #status = :complete")
            .condition_expression("#status = :pending AND expires_at > :now")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":complete", s(SessionStatus::Complete.as_str()))
            .expression_attribute_values(":pending", s(SessionStatus::Pending.as_str()))
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(build_err)?;
        let tx = Transaction::new()
            .item(TransactWriteItem::builder().update(upsert).build())
            .guard(TransactWriteItem::builder().update(session).build(), NotPending);
        match self.transact(tx).await? {
            Ok(()) => Ok(true),
            Err(NotPending) => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_formats() {
        assert!(state_key("abc").pk.starts_with("VSTATE#ba7816bf"));
        assert_eq!(session_key("vs_1").pk, "VSESSION#vs_1");
    }
}
