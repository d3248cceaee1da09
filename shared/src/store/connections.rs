//! Connections as items (`domain::connection::Connection`), and what every item holding tokens
//! shares — a user's connection, a tool's tokens (`store::tools`): the token upsert and the refresh
//! lease, by key and version (`domain::connection::HeldTokens`).
//!
//! | item | pk | sk |
//! |---|---|---|
//! | connection | `CONN#<project_id>#<user_id>` | `PROVIDER#<provider>` |
//! | tool tokens | `TOOL#<tool_id>` | `TOKENS` (in the tool's partition; `provider` `mcp`; see `store::tools`) |
//!
//! Every token write bumps `version`; a refresh takes a lease (`refresh_lock` until, `refresh_owner`)
//! at the version it read, so one refresher calls the provider and the others wait for the version to
//! move.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Update};

use super::item::FromItem;
use super::keys::Key;
use super::{build_err, is_condition_failed, n, s, Item, Store, StoreError};
use crate::crypto::secret;
use crate::domain::connection::{Connection, ConnectionStatus, HeldTokens};

/// How long one refresher holds a connection's refresh lease: longer than the provider call's
/// 10 s limit plus sealing and the write.
pub const REFRESH_LEASE: i64 = 20;

/// Partition prefix of a user's connections.
pub const CONN_PREFIX: &str = "CONN#";

/// Project ids contain no `#`, so the user id after it is unambiguous.
pub fn connection_key(project_id: &str, user_id: &str, provider: &str) -> Key {
    Key {
        pk: format!("{CONN_PREFIX}{project_id}#{user_id}"),
        sk: format!("PROVIDER#{provider}"),
    }
}

/// Where a tool's tokens live: in the tool's partition.
pub fn tool_tokens_key(tool_id: &str) -> Key {
    Key {
        pk: format!("TOOL#{tool_id}"),
        sk: "TOKENS".into(),
    }
}

/// The key of a connection's item.
pub fn key_of(conn: &Connection) -> Key {
    connection_key(&conn.project_id, &conn.user_id, &conn.provider)
}

impl FromItem for Connection {
    fn from_item(item: &Item) -> Result<Self, StoreError> {
        let pk = item.req_s("pk")?;
        let rest = pk
            .strip_prefix(CONN_PREFIX)
            .ok_or_else(|| StoreError::Malformed("connection key".into()))?;
        let (project_id, user_id) = rest
            .split_once('#')
            .ok_or_else(|| StoreError::Malformed("connection key".into()))?;
        let held = HeldTokens::from_item(item)?;
        Ok(Connection {
            project_id: project_id.to_string(),
            user_id: user_id.to_string(),
            provider: item.req_s("provider")?.to_string(),
            scopes: held.scopes,
            account_id: item.s("account_id").map(str::to_string),
            email: item.s("email").map(str::to_string),
            status: held.status,
            sealed_tokens: held.sealed_tokens,
            expires_at: held.expires_at,
            api_base_url: item.s("api_base_url").map(str::to_string),
            version: held.version,
            refresh_lock: held.refresh_lock,
            created_at: item.n("created_at").unwrap_or(0),
            updated_at: item.n("updated_at").unwrap_or(0),
        })
    }
}

/// The attributes every token-holding item has (a connection's, a tool's tokens).
impl FromItem for HeldTokens {
    fn from_item(item: &Item) -> Result<Self, StoreError> {
        Ok(HeldTokens {
            status: item.req_status()?,
            scopes: item.list("scopes"),
            sealed_tokens: item
                .b("tokens")
                .ok_or_else(|| StoreError::Malformed("connection tokens".into()))?
                .to_vec(),
            expires_at: item.n("expires_at"),
            version: item.n("version").unwrap_or(0),
            refresh_lock: item.n("refresh_lock"),
        })
    }
}

/// What a token upsert writes: the item's kind and owner, the tokens, and the identity attributes
/// (each removed when `None`).
pub(super) struct TokensUpsert<'a> {
    pub key: Key,
    /// `connection` or `tool_tokens`.
    pub kind: &'a str,
    pub project_id: &'a str,
    pub provider: &'a str,
    pub scopes: &'a [String],
    pub sealed_tokens: &'a [u8],
    pub expires_at: Option<i64>,
    pub account_id: Option<&'a str>,
    pub email: Option<&'a str>,
    pub api_base_url: Option<&'a str>,
}

impl Store {
    /// The update that stores (or replaces) a connection's tokens and identity, bumping its version
    /// and dropping any refresh lease.
    pub(super) fn connection_upsert(&self, conn: &Connection, now: i64) -> Result<Update, StoreError> {
        self.tokens_upsert(
            TokensUpsert {
                key: key_of(conn),
                kind: "connection",
                project_id: &conn.project_id,
                provider: &conn.provider,
                scopes: &conn.scopes,
                sealed_tokens: &conn.sealed_tokens,
                expires_at: conn.expires_at,
                account_id: conn.account_id.as_deref(),
                email: conn.email.as_deref(),
                api_base_url: conn.api_base_url.as_deref(),
            },
            now,
        )
    }

    /// The update that stores (or replaces) an item's tokens, active, bumping its version and
    /// dropping any refresh lease.
    pub(super) fn tokens_upsert(&self, u: TokensUpsert<'_>, now: i64) -> Result<Update, StoreError> {
        let mut set = vec![
            "#type = :conn_type",
            "project_id = :project",
            "provider = :provider",
            "scopes = :scopes",
            "#status = :active",
            "tokens = :tokens",
            "updated_at = :now",
            "created_at = if_not_exists(created_at, :now)",
            "version = if_not_exists(version, :zero) + :one",
            "health = :health",
            "due = :due",
        ];
        let mut values: HashMap<String, AttributeValue> = HashMap::from([
            (":conn_type".to_string(), s(u.kind)),
            (":project".to_string(), s(u.project_id)),
            (":provider".to_string(), s(u.provider)),
            (
                ":scopes".to_string(),
                AttributeValue::L(u.scopes.iter().map(|x| s(x)).collect()),
            ),
            (":active".to_string(), s(ConnectionStatus::Active.as_str())),
            (
                ":tokens".to_string(),
                AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(u.sealed_tokens.to_vec())),
            ),
            (":now".to_string(), n(now)),
            (":zero".to_string(), n(0)),
            (":one".to_string(), n(1)),
        ]);
        values.extend(super::webhooks::health_values(u.expires_at, now).map(|(k, v)| (k.to_string(), v)));
        let mut remove = vec!["refresh_lock", "refresh_owner"];
        for (attr, assign, placeholder, value) in [
            ("account_id", "account_id = :account", ":account", u.account_id),
            ("email", "email = :email", ":email", u.email),
            ("api_base_url", "api_base_url = :api_base", ":api_base", u.api_base_url),
        ] {
            match value {
                Some(v) => {
                    values.insert(placeholder.to_string(), s(v));
                    set.push(assign);
                }
                None => remove.push(attr),
            }
        }
        match u.expires_at {
            Some(e) => {
                values.insert(":exp".into(), n(e));
                set.push("expires_at = :exp");
            }
            None => remove.push("expires_at"),
        }
        let expr = format!("SET {} REMOVE {}", set.join(", "), remove.join(", "));
        Update::builder()
            .table_name(self.table())
            .set_key(Some(u.key.to_map()))
            .update_expression(expr)
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#type", "type")
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(build_err)
    }

    /// Store (or replace) a connection outside a session (sign-in tokens kept as a connection), in
    /// one UpdateItem that also answers whether the connection it replaced had failed
    /// (`reauthorization_required`): the caller emits `connection.recovered` then.
    pub async fn put_connection(&self, conn: &Connection, now: i64) -> Result<bool, StoreError> {
        let u = self.connection_upsert(conn, now)?;
        let out = self
            .client()
            .update_item()
            .table_name(u.table_name())
            .set_key(Some(u.key().clone()))
            .update_expression(u.update_expression())
            .set_condition_expression(u.condition_expression().map(str::to_string))
            .set_expression_attribute_names(u.expression_attribute_names().cloned())
            .set_expression_attribute_values(u.expression_attribute_values().cloned())
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedOld)
            .send()
            .await
            .map_err(|e| super::service_error("UpdateItem", e))?;
        let old = out.attributes.map(Item::from);
        Ok(old.and_then(|i| i.status::<ConnectionStatus>()) == Some(ConnectionStatus::ReauthorizationRequired))
    }

    /// The token-holding state of the item at `key` (a connection's or a tool's tokens).
    pub async fn get_held(&self, key: &Key, now: i64) -> Result<Option<HeldTokens>, StoreError> {
        self.get(key, now).await?.map(|i| HeldTokens::from_item(&i)).transpose()
    }

    pub async fn get_connection(
        &self,
        project_id: &str,
        user_id: &str,
        provider: &str,
        now: i64,
    ) -> Result<Option<Connection>, StoreError> {
        self.get(&connection_key(project_id, user_id, provider), now)
            .await?
            .map(|i| Connection::from_item(&i))
            .transpose()
    }

    /// Every connection of a user.
    pub async fn list_connections(
        &self,
        project_id: &str,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<Connection>, StoreError> {
        self.query_partition(&format!("{CONN_PREFIX}{project_id}#{user_id}"), now)
            .await?
            .iter()
            .map(Connection::from_item)
            .collect()
    }

    /// Delete a connection; `false` if there was none.
    pub async fn delete_connection(&self, project_id: &str, user_id: &str, provider: &str) -> Result<bool, StoreError> {
        let res = self
            .client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(connection_key(project_id, user_id, provider).to_map()))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(StoreError::Service(format!(
                "DeleteItem: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            ))),
        }
    }

    /// Move held tokens' next health check (the `health` index) to `due` — they have nothing to
    /// refresh with, or could not be refreshed now — unless they changed since `version`.
    pub async fn push_due(&self, key: &Key, version: i64, due: i64) -> Result<(), StoreError> {
        self.update_held(
            key,
            version,
            "SET due = :due",
            "version = :v AND attribute_exists(health)",
            vec![(":due", n(due))],
        )
        .await
        .map(|_| ())
    }

    async fn update_held(
        &self,
        key: &Key,
        version: i64,
        update: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, StoreError> {
        let mut req = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key.to_map()))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_values(":v", n(version));
        if update.contains("#status") || condition.contains("#status") {
            req = req.expression_attribute_names("#status", "status");
        }
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

    /// Take the refresh lease on the tokens at `key` at `version`: only one caller wins while the
    /// lease lasts; the others wait for the version to move. The winner gets the lease's owner
    /// value, which its later writes must present (a caller whose lease expired cannot clobber
    /// the next holder's).
    pub async fn claim_refresh(&self, key: &Key, version: i64, now: i64) -> Result<Option<String>, StoreError> {
        let owner = secret::random_token("", 12);
        let won = self
            .update_held(
                key,
                version,
                "SET refresh_lock = :until, refresh_owner = :owner",
                "version = :v AND #status = :active AND (attribute_not_exists(refresh_lock) OR refresh_lock < :now)",
                vec![
                    (":until", n(now + REFRESH_LEASE)),
                    (":now", n(now)),
                    (":active", s(ConnectionStatus::Active.as_str())),
                    (":owner", s(&owner)),
                ],
            )
            .await?;
        Ok(won.then_some(owner))
    }

    /// Write refreshed tokens (the lease holder only); bumps the version and drops the lease.
    #[allow(clippy::too_many_arguments)]
    pub async fn store_refreshed(
        &self,
        key: &Key,
        version: i64,
        owner: &str,
        sealed_tokens: Vec<u8>,
        expires_at: Option<i64>,
        scopes: Option<&[String]>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut set = vec![
            "tokens = :t",
            "version = version + :one",
            "updated_at = :now",
            "health = :health",
            "due = :due",
        ];
        let mut values = vec![
            (
                ":t",
                AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(sealed_tokens)),
            ),
            (":one", n(1)),
            (":now", n(now)),
            (":owner", s(owner)),
        ];
        values.extend(super::webhooks::health_values(expires_at, now));
        let mut remove = vec!["refresh_lock", "refresh_owner"];
        match expires_at {
            Some(e) => {
                set.push("expires_at = :exp");
                values.push((":exp", n(e)));
            }
            None => remove.push("expires_at"),
        }
        if let Some(sc) = scopes {
            set.push("scopes = :scopes");
            values.push((":scopes", AttributeValue::L(sc.iter().map(|x| s(x)).collect())));
        }
        let expr = format!("SET {} REMOVE {}", set.join(", "), remove.join(", "));
        self.update_held(key, version, &expr, "version = :v AND refresh_owner = :owner", values)
            .await
    }

    /// The provider refused the refresh token: the user must connect again. Only the lease holder
    /// (`owner`) may mark it.
    pub async fn mark_reauthorization_required(
        &self,
        key: &Key,
        version: i64,
        owner: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.update_held(
            key,
            version,
            "SET #status = :reauth, version = version + :one, updated_at = :now REMOVE refresh_lock, refresh_owner, health, due",
            "version = :v AND refresh_owner = :owner",
            vec![
                (":reauth", s(ConnectionStatus::ReauthorizationRequired.as_str())),
                (":one", n(1)),
                (":now", n(now)),
                (":owner", s(owner)),
            ],
        )
        .await
    }

    /// Give the lease back without changing the tokens (the provider was unreachable).
    pub async fn release_refresh(&self, key: &Key, version: i64, owner: &str) -> Result<bool, StoreError> {
        self.update_held(
            key,
            version,
            "REMOVE refresh_lock, refresh_owner",
            "version = :v AND refresh_owner = :owner",
            vec![(":owner", s(owner))],
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_formats() {
        assert_eq!(connection_key("prj_a", "u#1", "google").pk, "CONN#prj_a#u#1");
        assert_eq!(connection_key("prj_a", "u#1", "google").sk, "PROVIDER#google");
        assert_eq!(tool_tokens_key("tl_a").pk, "TOOL#tl_a");
        assert_eq!(tool_tokens_key("tl_a").sk, "TOKENS");
    }
}
