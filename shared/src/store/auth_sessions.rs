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
//! connection's update). A session with a `return_url` is completed in two steps: the callback parks
//! the connection in the session item (`pending_*` attributes: the tokens sealed for the connection's
//! own context, `connect_hash` = SHA-256 of the one-time `connect_token`, `confirm_by`), and the
//! app's confirmation moves it into the connection item and clears them, in one transaction.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

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
        .set_opt_s("return_url", session.return_url.clone())
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
            return_url: item.s("return_url").map(str::to_string),
            confirm_by: item.n("confirm_by"),
        })
    }
}

/// The connection a session awaiting confirmation holds (its `pending_*` attributes), and the hash
/// of its `connect_token`; `None` when the item holds none.
pub fn pending_connection(item: &Item) -> Option<(Connection, String)> {
    let session = VaultSession::from_item(item).ok()?;
    let hash = item.s("connect_hash")?.to_string();
    let conn = Connection {
        account_id: item.s("pending_account_id").map(str::to_string),
        email: item.s("pending_email").map(str::to_string),
        api_base_url: item.s("pending_api_base_url").map(str::to_string),
        ..Connection::new(
            &session.project_id,
            &session.user_id,
            &session.provider,
            item.list("pending_scopes"),
            item.b("pending_tokens")?.to_vec(),
            item.n("pending_expires_at"),
            session.created_at,
        )
    };
    Some((conn, hash))
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
        .set_opt_s("return_url", st.return_url.clone())
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
            return_url: item.s("return_url").map(str::to_string),
        })
    }
}

/// Why completing a session was refused: it is no longer pending (completed, failed or expired).
#[derive(Clone, Copy, Debug)]
struct NotPending;

/// Why a confirmation was refused: the session is not awaiting one (confirmed already, or never
/// parked), its window passed, or the token is not its token.
#[derive(Clone, Copy, Debug)]
struct NotAwaiting;

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

    /// Park a connection in its session until the app confirms it (`return_url` sessions): the
    /// sealed tokens and identity as `pending_*` attributes, the hash of the `connect_token`, and
    /// `confirm_by`. `Ok(false)` if the session was no longer pending.
    pub async fn await_confirmation(
        &self,
        session_id: &str,
        conn: &Connection,
        connect_hash: &str,
        confirm_by: i64,
        recovers: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut set = vec![
            "pending_recovers = :recovers",
            "#status = :awaiting",
            "pending_tokens = :tokens",
            "pending_scopes = :scopes",
            "connect_hash = :hash",
            "confirm_by = :by",
        ];
        let mut values = vec![
            (":awaiting", s(SessionStatus::AwaitingConfirmation.as_str())),
            (":pending", s(SessionStatus::Pending.as_str())),
            (":tokens", AttributeValue::B(conn.sealed_tokens.clone().into())),
            (":scopes", AttributeValue::L(conn.scopes.iter().map(|x| s(x)).collect())),
            (":hash", s(connect_hash)),
            (":by", n(confirm_by)),
            (":now", n(now)),
            (":recovers", s(if recovers { "true" } else { "false" })),
        ];
        for (expr, placeholder, value) in [
            ("pending_expires_at = :exp", ":exp", conn.expires_at.map(n)),
            (
                "pending_account_id = :account",
                ":account",
                conn.account_id.as_deref().map(s),
            ),
            ("pending_email = :email", ":email", conn.email.as_deref().map(s)),
            (
                "pending_api_base_url = :api",
                ":api",
                conn.api_base_url.as_deref().map(s),
            ),
        ] {
            if let Some(v) = value {
                set.push(expr);
                values.push((placeholder, v));
            }
        }
        let mut req = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(session_key(session_id).to_map()))
            .update_expression(format!("SET {}", set.join(", ")))
            .condition_expression("#status = :pending AND expires_at > :now")
            .expression_attribute_names("#status", "status");
        for (k, v) in values {
            req = req.expression_attribute_values(k, v);
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(StoreError::Service(format!(
                "UpdateItem: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            ))),
        }
    }

    /// The app's confirmation: store the parked connection (replacing any the user held for that
    /// provider) and mark the session complete, clearing the `pending_*` attributes, in one
    /// transaction conditioned on the session still awaiting confirmation with this token's hash
    /// before `confirm_by`. `Ok(false)` if it was not.
    pub async fn confirm_session(
        &self,
        session_id: &str,
        conn: &Connection,
        connect_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let upsert = self.connection_upsert(conn, now)?;
        let session = Update::builder()
            .table_name(self.table())
            .set_key(Some(session_key(session_id).to_map()))
            .update_expression(
                "SET #status = :complete REMOVE pending_tokens, pending_scopes, pending_expires_at, \
                 pending_account_id, pending_email, pending_api_base_url, pending_recovers, connect_hash",
            )
            .condition_expression("#status = :awaiting AND connect_hash = :hash AND confirm_by > :now")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":complete", s(SessionStatus::Complete.as_str()))
            .expression_attribute_values(":awaiting", s(SessionStatus::AwaitingConfirmation.as_str()))
            .expression_attribute_values(":hash", s(connect_hash))
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(build_err)?;
        let tx = Transaction::new()
            .item(TransactWriteItem::builder().update(upsert).build())
            .guard(TransactWriteItem::builder().update(session).build(), NotAwaiting);
        match self.transact(tx).await? {
            Ok(()) => Ok(true),
            Err(NotAwaiting) => Ok(false),
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
