//! Token-vault items: projects and their API keys, provider configurations, auth sessions and their
//! single-use `state`, and connections (a user's encrypted provider tokens).
//!
//! | item | pk | sk |
//! |---|---|---|
//! | project | `PROJECT#<project_id>` | `PROJECT` |
//! | API key (by id, for listing and revoking) | `PROJECT#<project_id>` | `APIKEY#<key_id>` |
//! | API key (by hash, for authenticating) | `APIKEY#<sha256(key)>` | `APIKEY` |
//! | provider configuration | `PROJECT#<project_id>` | `PROVIDER#<provider>` |
//! | auth session | `VSESSION#<session_id>` | `VSESSION` |
//! | session state (single use) | `VSTATE#<sha256(state)>` | `VSTATE` |
//! | connection | `CONN#<project_id>#<user_id>` | `PROVIDER#<provider>` |

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem, Update};
use serde_json::{Map, Value};

use super::keys::Key;
use super::{build_err, n, put_new_item, s, Item, Store, StoreError, TTL_ATTR};
use crate::crypto::secret;

/// Prefix of API keys: `lk_ak_<project_id>.<secret>`.
pub const API_KEY_PREFIX: &str = "lk_ak_";
/// How long an auth session can be completed.
pub const SESSION_TTL: i64 = 300;
/// How long a finished or expired session stays readable by its status endpoint.
pub const SESSION_RETENTION: i64 = 7 * 86_400;
/// How long one refresher holds a connection's refresh lease: longer than the provider call's
/// 10 s limit plus sealing and the write.
pub const REFRESH_LEASE: i64 = 20;

pub fn project_key(project_id: &str) -> Key {
    Key {
        pk: format!("PROJECT#{project_id}"),
        sk: "PROJECT".into(),
    }
}

pub fn project_api_key(project_id: &str, key_id: &str) -> Key {
    Key {
        pk: format!("PROJECT#{project_id}"),
        sk: format!("APIKEY#{key_id}"),
    }
}

pub fn api_key_key(key_hash: &str) -> Key {
    Key {
        pk: format!("APIKEY#{key_hash}"),
        sk: "APIKEY".into(),
    }
}

pub fn provider_key(project_id: &str, provider: &str) -> Key {
    Key {
        pk: format!("PROJECT#{project_id}"),
        sk: format!("PROVIDER#{provider}"),
    }
}

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

/// Project ids contain no `#`, so the user id after it is unambiguous.
pub fn connection_key(project_id: &str, user_id: &str, provider: &str) -> Key {
    Key {
        pk: format!("CONN#{project_id}#{user_id}"),
        sk: format!("PROVIDER#{provider}"),
    }
}

/// A new project id: `prj_` and 16 base64url characters.
pub fn new_project_id() -> String {
    secret::random_token("prj_", 12)
}

/// A new API key for a project and its public id.
pub fn new_api_key(project_id: &str) -> (String, String) {
    let key_id = secret::random_token("ak_", 9);
    let key = format!("{API_KEY_PREFIX}{project_id}.{}", secret::random_token("", 32));
    (key_id, key)
}

/// The project an API key claims (checked against the stored hash before anything is trusted).
pub fn project_of_key(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(API_KEY_PREFIX)?;
    let (project, secret) = rest.split_once('.')?;
    let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (project.starts_with("prj_") && ok(project) && ok(secret) && key.len() <= 128).then_some(project)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub project_id: String,
    pub key_id: String,
    pub created_at: i64,
}

impl ApiKeyRecord {
    pub fn from_item(item: &Item) -> Result<Self, StoreError> {
        Ok(ApiKeyRecord {
            project_id: item.req_s("project_id")?.to_string(),
            key_id: item.req_s("key_id")?.to_string(),
            created_at: item.n("created_at").unwrap_or(0),
        })
    }
}

/// A project's configuration of one provider.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderConfig {
    pub project_id: String,
    pub provider: String,
    /// The catalogue entry it builds on; `None` for a custom provider.
    pub base: Option<String>,
    /// Spec fields laid over the catalogue entry (or every field of a custom provider).
    pub overrides: Map<String, Value>,
    pub client_id: String,
    /// The client secret, sealed by the keyring (context `provider_context`).
    pub sealed_secret: Vec<u8>,
    pub updated_at: i64,
}

impl ProviderConfig {
    fn to_item(&self) -> Item {
        Item::with_key(&provider_key(&self.project_id, &self.provider))
            .set_s("type", "provider")
            .set_s("project_id", &self.project_id)
            .set_s("provider", &self.provider)
            .set_opt_s("base", self.base.clone())
            .set_s("overrides", Value::Object(self.overrides.clone()).to_string())
            .set_s("client_id", &self.client_id)
            .set_b("client_secret", self.sealed_secret.clone())
            .set_n("updated_at", self.updated_at)
    }

    pub fn from_item(item: &Item) -> Result<Self, StoreError> {
        let overrides = match serde_json::from_str::<Value>(item.req_s("overrides")?) {
            Ok(Value::Object(m)) => m,
            _ => return Err(StoreError::Malformed("provider overrides".into())),
        };
        Ok(ProviderConfig {
            project_id: item.req_s("project_id")?.to_string(),
            provider: item.req_s("provider")?.to_string(),
            base: item.s("base").map(str::to_string),
            overrides,
            client_id: item.req_s("client_id")?.to_string(),
            sealed_secret: item
                .b("client_secret")
                .ok_or_else(|| StoreError::Malformed("provider client_secret".into()))?
                .to_vec(),
            updated_at: item.n("updated_at").unwrap_or(0),
        })
    }
}

/// An auth session: one user connecting one provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultSession {
    pub session_id: String,
    pub project_id: String,
    pub user_id: String,
    pub provider: String,
    pub scopes: Vec<String>,
    /// `pending`, `complete` or `error` as stored; `expired` is derived from `expires_at`.
    pub status: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub expires_at: i64,
    pub created_at: i64,
}

impl VaultSession {
    fn to_item(&self) -> Item {
        Item::with_key(&session_key(&self.session_id))
            .set_s("type", "vault_session")
            .set_s("project_id", &self.project_id)
            .set_s("user_id", &self.user_id)
            .set_s("provider", &self.provider)
            .set_list("scopes", &self.scopes)
            .set_s("status", &self.status)
            .set_n("expires_at", self.expires_at)
            .set_n("created_at", self.created_at)
            .set_n(TTL_ATTR, self.expires_at + SESSION_RETENTION)
    }

    pub fn from_item(item: &Item) -> Result<Self, StoreError> {
        let pk = item.req_s("pk")?;
        Ok(VaultSession {
            session_id: pk.trim_start_matches("VSESSION#").to_string(),
            project_id: item.req_s("project_id")?.to_string(),
            user_id: item.req_s("user_id")?.to_string(),
            provider: item.req_s("provider")?.to_string(),
            scopes: item.list("scopes"),
            status: item.req_s("status")?.to_string(),
            error_code: item.s("error_code").map(str::to_string),
            error_message: item.s("error_message").map(str::to_string),
            expires_at: item.n("expires_at").unwrap_or(0),
            created_at: item.n("created_at").unwrap_or(0),
        })
    }

    /// The status an app sees at `now`.
    pub fn status_at(&self, now: i64) -> &str {
        if self.status == "pending" && now >= self.expires_at {
            "expired"
        } else {
            &self.status
        }
    }
}

/// What the callback needs, stored under the hash of the session's `state`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultState {
    pub session_id: String,
    pub project_id: String,
    pub user_id: String,
    pub provider: String,
    pub scopes: Vec<String>,
    /// The PKCE verifier sealed by the keyring (absent for providers without PKCE).
    pub sealed_verifier: Option<Vec<u8>>,
    pub redirect_uri: String,
    pub expires_at: i64,
}

impl VaultState {
    fn to_item(&self, state: &str) -> Item {
        let mut item = Item::with_key(&state_key(state))
            .set_s("type", "vault_state")
            .set_s("session_id", &self.session_id)
            .set_s("project_id", &self.project_id)
            .set_s("user_id", &self.user_id)
            .set_s("provider", &self.provider)
            .set_list("scopes", &self.scopes)
            .set_s("redirect_uri", &self.redirect_uri)
            .set_n(TTL_ATTR, self.expires_at);
        if let Some(v) = &self.sealed_verifier {
            item = item.set_b("verifier", v.clone());
        }
        item
    }

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

/// A user's connection to a provider — or, with `tool_id`, a project's tokens for a remote MCP
/// server ("tool"). Tokens are sealed together (`sealed_tokens`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// Set for a tool's tokens (`TOOL#<tool_id>` / `TOKENS`); `user_id` is then empty and
    /// `provider` is `mcp`.
    pub tool_id: Option<String>,
    pub project_id: String,
    pub user_id: String,
    pub provider: String,
    pub scopes: Vec<String>,
    pub account_id: Option<String>,
    pub email: Option<String>,
    /// `active` or `reauthorization_required`.
    pub status: String,
    pub sealed_tokens: Vec<u8>,
    /// When the access token expires (epoch seconds), if the provider said.
    pub expires_at: Option<i64>,
    /// A per-connection API base (Salesforce's `instance_url`).
    pub api_base_url: Option<String>,
    /// Bumped by every token write: refreshes are conditional on it.
    pub version: i64,
    /// A refresher's lease (epoch seconds) while a refresh is in flight.
    pub refresh_lock: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Where a tool's tokens live: in the tool's partition.
pub fn tool_tokens_key(tool_id: &str) -> Key {
    Key {
        pk: format!("TOOL#{tool_id}"),
        sk: "TOKENS".into(),
    }
}

impl Connection {
    /// The item's key.
    pub fn key(&self) -> Key {
        match &self.tool_id {
            Some(t) => tool_tokens_key(t),
            None => connection_key(&self.project_id, &self.user_id, &self.provider),
        }
    }

    /// The encryption context of its sealed tokens: the record's identity.
    pub fn context(&self) -> crate::crypto::EncryptionContext {
        match &self.tool_id {
            Some(t) => crate::crypto::envelope::context([
                ("kind", "tool_connection"),
                ("project", &self.project_id),
                ("tool", t),
            ]),
            None => crate::vault::connection_context(&self.project_id, &self.user_id, &self.provider),
        }
    }

    pub fn from_item(item: &Item) -> Result<Self, StoreError> {
        let pk = item.req_s("pk")?;
        let (tool_id, project_id, user_id) = if let Some(tool) = pk.strip_prefix("TOOL#") {
            (
                Some(tool.to_string()),
                item.req_s("project_id")?.to_string(),
                String::new(),
            )
        } else {
            let rest = pk
                .strip_prefix("CONN#")
                .ok_or_else(|| StoreError::Malformed("connection key".into()))?;
            let (p, u) = rest
                .split_once('#')
                .ok_or_else(|| StoreError::Malformed("connection key".into()))?;
            (None, p.to_string(), u.to_string())
        };
        Ok(Connection {
            tool_id,
            project_id,
            user_id,
            provider: item.req_s("provider")?.to_string(),
            scopes: item.list("scopes"),
            account_id: item.s("account_id").map(str::to_string),
            email: item.s("email").map(str::to_string),
            status: item.req_s("status")?.to_string(),
            sealed_tokens: item
                .b("tokens")
                .ok_or_else(|| StoreError::Malformed("connection tokens".into()))?
                .to_vec(),
            expires_at: item.n("expires_at"),
            api_base_url: item.s("api_base_url").map(str::to_string),
            version: item.n("version").unwrap_or(0),
            refresh_lock: item.n("refresh_lock"),
            created_at: item.n("created_at").unwrap_or(0),
            updated_at: item.n("updated_at").unwrap_or(0),
        })
    }
}

fn is_condition_failed<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|s| s.code())
        .map(|c| c == "ConditionalCheckFailedException")
        .unwrap_or(false)
}

/// Why a vault transaction was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The condition of the item at this index failed.
    Condition(usize),
}

impl Store {
    /// Run a transaction; `Ok(Err(Refused::Condition(i)))` when item `i`'s condition failed.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Result<(), Refused>, StoreError> {
        for attempt in 0..4u32 {
            let e = match self
                .client()
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await
            {
                Ok(_) => return Ok(Ok(())),
                Err(e) => e,
            };
            if let Some(TransactWriteItemsError::TransactionCanceledException(c)) = e.as_service_error() {
                let reasons = c.cancellation_reasons();
                if let Some(i) = reasons.iter().position(|r| r.code() == Some("ConditionalCheckFailed")) {
                    return Ok(Err(Refused::Condition(i)));
                }
                if reasons.iter().any(|r| r.code() == Some("TransactionConflict")) && attempt < 3 {
                    tokio::time::sleep(std::time::Duration::from_millis(10 << attempt)).await;
                    continue;
                }
            }
            return Err(StoreError::Service(format!(
                "TransactWriteItems: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            )));
        }
        Err(StoreError::Busy)
    }

    /// Create a project with its first API key. Returns (project_id, key_id, api_key); the key is
    /// shown once and only its SHA-256 is stored.
    pub async fn create_project(&self, name: &str, now: i64) -> Result<(String, String, String), StoreError> {
        let project_id = new_project_id();
        let project = Item::with_key(&project_key(&project_id))
            .set_s("type", "project")
            .set_s("name", name)
            .set_n("created_at", now);
        let (key_id, key) = new_api_key(&project_id);
        let mut items = vec![put_new_item(self, project)?];
        items.extend(self.api_key_items(&project_id, &key_id, &key, now)?);
        match self.transact(items).await? {
            Ok(()) => Ok((project_id, key_id, key)),
            Err(_) => Err(StoreError::ConditionFailed),
        }
    }

    fn api_key_items(
        &self,
        project_id: &str,
        key_id: &str,
        key: &str,
        now: i64,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let hash = secret::hash(key);
        let by_id = Item::with_key(&project_api_key(project_id, key_id))
            .set_s("type", "api_key")
            .set_s("key_hash", &hash)
            .set_n("created_at", now);
        let by_hash = Item::with_key(&api_key_key(&hash))
            .set_s("type", "api_key")
            .set_s("project_id", project_id)
            .set_s("key_id", key_id)
            .set_n("created_at", now);
        Ok(vec![put_new_item(self, by_id)?, put_new_item(self, by_hash)?])
    }

    /// A new API key for an existing project: (key_id, key). `ConditionFailed` if no such project.
    pub async fn create_api_key(&self, project_id: &str, now: i64) -> Result<(String, String), StoreError> {
        let (key_id, key) = new_api_key(project_id);
        let check = ConditionCheck::builder()
            .table_name(self.table())
            .set_key(Some(project_key(project_id).to_map()))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(build_err)?;
        let mut items = vec![TransactWriteItem::builder().condition_check(check).build()];
        items.extend(self.api_key_items(project_id, &key_id, &key, now)?);
        match self.transact(items).await? {
            Ok(()) => Ok((key_id, key)),
            Err(_) => Err(StoreError::ConditionFailed),
        }
    }

    /// Revoke an API key by its id; `false` if the project has no such key.
    pub async fn revoke_api_key(&self, project_id: &str, key_id: &str, now: i64) -> Result<bool, StoreError> {
        let Some(item) = self.get(&project_api_key(project_id, key_id), now).await? else {
            return Ok(false);
        };
        let hash = item.req_s("key_hash")?.to_string();
        self.delete(&api_key_key(&hash)).await?;
        self.delete(&project_api_key(project_id, key_id)).await?;
        Ok(true)
    }

    /// Every project: (project_id, name, created_at). A scan: admin commands only.
    pub async fn list_projects(&self, now: i64) -> Result<Vec<(String, String, i64)>, StoreError> {
        let mut out: Vec<_> = self
            .scan_prefix("PROJECT#", now)
            .await?
            .into_iter()
            .filter(|i| i.s("sk") == Some("PROJECT"))
            .filter_map(|i| {
                Some((
                    i.s("pk")?.trim_start_matches("PROJECT#").to_string(),
                    i.s("name").unwrap_or("").to_string(),
                    i.n("created_at").unwrap_or(0),
                ))
            })
            .collect();
        out.sort_by_key(|p| p.2);
        Ok(out)
    }

    /// A project's items: its API key ids and provider configurations.
    pub async fn project_items(&self, project_id: &str, now: i64) -> Result<Vec<Item>, StoreError> {
        self.query_partition(&format!("PROJECT#{project_id}"), now).await
    }

    pub async fn project_exists(&self, project_id: &str, now: i64) -> Result<bool, StoreError> {
        Ok(self.get(&project_key(project_id), now).await?.is_some())
    }

    pub async fn put_provider(&self, config: &ProviderConfig) -> Result<(), StoreError> {
        self.put(config.to_item()).await
    }

    pub async fn get_provider(
        &self,
        project_id: &str,
        provider: &str,
        now: i64,
    ) -> Result<Option<ProviderConfig>, StoreError> {
        self.get(&provider_key(project_id, provider), now)
            .await?
            .map(|i| ProviderConfig::from_item(&i))
            .transpose()
    }

    /// Write a new session and its state in one transaction.
    pub async fn put_session(&self, session: &VaultSession, state: &str, st: &VaultState) -> Result<(), StoreError> {
        let items = vec![
            put_new_item(self, session.to_item())?,
            put_new_item(self, st.to_item(state))?,
        ];
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(_) => Err(StoreError::ConditionFailed),
        }
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
            .expression_attribute_values(":error", s("error"))
            .expression_attribute_values(":pending", s("pending"))
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

    /// The update that stores (or replaces) a connection's tokens and identity, bumping its version
    /// and dropping any refresh lease.
    fn connection_upsert(&self, conn: &Connection, now: i64) -> Result<Update, StoreError> {
        let key = conn.key();
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
        ];
        let mut values: HashMap<String, AttributeValue> = HashMap::from([
            (
                ":conn_type".to_string(),
                s(if conn.tool_id.is_some() {
                    "tool_tokens"
                } else {
                    "connection"
                }),
            ),
            (":project".to_string(), s(&conn.project_id)),
            (":provider".to_string(), s(&conn.provider)),
            (
                ":scopes".to_string(),
                AttributeValue::L(conn.scopes.iter().map(|x| s(x)).collect()),
            ),
            (":active".to_string(), s("active")),
            (
                ":tokens".to_string(),
                AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(conn.sealed_tokens.clone())),
            ),
            (":now".to_string(), n(now)),
            (":zero".to_string(), n(0)),
            (":one".to_string(), n(1)),
        ]);
        let mut remove = vec!["refresh_lock", "refresh_owner"];
        for (attr, assign, placeholder, value) in [
            (
                "account_id",
                "account_id = :account",
                ":account",
                conn.account_id.as_deref(),
            ),
            ("email", "email = :email", ":email", conn.email.as_deref()),
            (
                "api_base_url",
                "api_base_url = :api_base",
                ":api_base",
                conn.api_base_url.as_deref(),
            ),
        ] {
            match value {
                Some(v) => {
                    values.insert(placeholder.to_string(), s(v));
                    set.push(assign);
                }
                None => remove.push(attr),
            }
        }
        match conn.expires_at {
            Some(e) => {
                values.insert(":exp".into(), n(e));
                set.push("expires_at = :exp");
            }
            None => remove.push("expires_at"),
        }
        let expr = format!("SET {} REMOVE {}", set.join(", "), remove.join(", "));
        Update::builder()
            .table_name(self.table())
            .set_key(Some(key.to_map()))
            .update_expression(expr)
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#type", "type")
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(build_err)
    }

    /// Store (or replace) a connection outside a session (sign-in tokens kept as a connection).
    pub async fn put_connection(&self, conn: &Connection, now: i64) -> Result<(), StoreError> {
        let items = vec![TransactWriteItem::builder()
            .update(self.connection_upsert(conn, now)?)
            .build()];
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(_) => Err(StoreError::ConditionFailed),
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
            .expression_attribute_values(":complete", s("complete"))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(build_err)?;
        let items = vec![
            TransactWriteItem::builder().update(upsert).build(),
            TransactWriteItem::builder().update(session).build(),
        ];
        Ok(self.transact(items).await?.is_ok())
    }

    /// A connection (or tool tokens) by its key.
    pub async fn get_connection_at(&self, key: &Key, now: i64) -> Result<Option<Connection>, StoreError> {
        self.get(key, now).await?.map(|i| Connection::from_item(&i)).transpose()
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
        self.query_partition(&format!("CONN#{project_id}#{user_id}"), now)
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

    async fn update_connection(
        &self,
        conn: &Connection,
        update: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, StoreError> {
        let mut req = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(conn.key().to_map()))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_values(":v", n(conn.version));
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

    /// Take the refresh lease on a connection at `conn.version`: only one caller wins while the
    /// lease lasts; the others wait for the version to move. The winner gets the lease's owner
    /// value, which its later writes must present (a caller whose lease expired cannot clobber
    /// the next holder's).
    pub async fn claim_refresh(&self, conn: &Connection, now: i64) -> Result<Option<String>, StoreError> {
        let owner = secret::random_token("", 12);
        let won = self
            .update_connection(
                conn,
                "SET refresh_lock = :until, refresh_owner = :owner",
                "version = :v AND #status = :active AND (attribute_not_exists(refresh_lock) OR refresh_lock < :now)",
                vec![
                    (":until", n(now + REFRESH_LEASE)),
                    (":now", n(now)),
                    (":active", s("active")),
                    (":owner", s(&owner)),
                ],
            )
            .await?;
        Ok(won.then_some(owner))
    }

    /// Write refreshed tokens (the lease holder only); bumps the version and drops the lease.
    pub async fn store_refreshed(
        &self,
        conn: &Connection,
        owner: &str,
        sealed_tokens: Vec<u8>,
        expires_at: Option<i64>,
        scopes: Option<&[String]>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut set = vec!["tokens = :t", "version = version + :one", "updated_at = :now"];
        let mut values = vec![
            (
                ":t",
                AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(sealed_tokens)),
            ),
            (":one", n(1)),
            (":now", n(now)),
            (":owner", s(owner)),
        ];
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
        self.update_connection(conn, &expr, "version = :v AND refresh_owner = :owner", values)
            .await
    }

    /// The provider refused the refresh token: the user must connect again. Only the lease holder
    /// (`owner`) may mark it.
    pub async fn mark_reauthorization_required(
        &self,
        conn: &Connection,
        owner: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.update_connection(
            conn,
            "SET #status = :reauth, version = version + :one, updated_at = :now REMOVE refresh_lock, refresh_owner",
            "version = :v AND refresh_owner = :owner",
            vec![
                (":reauth", s("reauthorization_required")),
                (":one", n(1)),
                (":now", n(now)),
                (":owner", s(owner)),
            ],
        )
        .await
    }

    /// Give the lease back without changing the tokens (the provider was unreachable).
    pub async fn release_refresh(&self, conn: &Connection, owner: &str) -> Result<bool, StoreError> {
        self.update_connection(
            conn,
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
    fn api_keys_name_their_project() {
        let pid = new_project_id();
        let (key_id, key) = new_api_key(&pid);
        assert!(key_id.starts_with("ak_"));
        assert!(key.starts_with("lk_ak_prj_"));
        assert_eq!(project_of_key(&key), Some(pid.as_str()));
        for bad in [
            "",
            "lk_ak_",
            "lk_ak_prj_x",
            "lk_ak_prj_x.",
            "lk_ak_.abc",
            "lk_at_prj_x.abc",
            "lk_ak_prj_x.a#b",
            "lk_ak_other.abc",
        ] {
            assert_eq!(project_of_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn key_formats() {
        assert_eq!(connection_key("prj_a", "u#1", "google").pk, "CONN#prj_a#u#1");
        assert_eq!(connection_key("prj_a", "u#1", "google").sk, "PROVIDER#google");
        assert!(state_key("abc").pk.starts_with("VSTATE#ba7816bf"));
        assert_eq!(session_key("vs_1").pk, "VSESSION#vs_1");
    }
}
