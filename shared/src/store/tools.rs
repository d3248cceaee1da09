//! Remote MCP servers ("tools") a project registered, and their OAuth state in flight, as items (the
//! types are `domain::tool`'s).
//!
//! | item | pk | sk |
//! |---|---|---|
//! | tool | `TOOL#<tool_id>` | `TOOL` |
//! | tool tokens | `TOOL#<tool_id>` | `TOKENS` (`domain::tool::ToolTokens`: `type` `tool_tokens`, `project_id`, `provider` `mcp`, and the token attributes every token-holding item has, `store::connections`) |
//! | OAuth state (single use) | `TSTATE#<sha256(state)>` | `TSTATE` |
//! | redirect URI served by an RFC 9207 server | `ISSREDIR#<project_id>#<sha256(redirect_uri)>` | `TOOL#<tool_id>` |
//!
//! A tool whose authorization server advertises `authorization_response_iss_parameter_supported`
//! has one `ISSREDIR` marker per redirect URI, written and deleted with the tool (create, migrate,
//! delete). complete-oauth without `iss`, for a tool whose own server does not send it, reads the
//! redirect URI's partition (one Query, limit 1): any marker there means `iss` is required (mix-up
//! defence, RFC 9700 §4.4).
//!
//! Attributes of a tool item beyond its discovery results:
//!
//! | attribute | what |
//! |---|---|
//! | `issuer` | the authorization server the tool uses now; `client_id`, `client_secret` (B, sealed; absent for a public client), `token_auth_method` and `registration` are latchkey's client *at that issuer* |
//! | `other_clients` (M) | latchkey's clients at authorization servers the tool used before, keyed by issuer: `{client_id, client_secret (B, sealed), token_endpoint_auth_method, registration}` (MCP SEP-2352: credentials are bound to the issuer that issued them; reused only if the server moves back to it) |
//! | `challenge_scope` | the `scope` of the latest `Bearer` challenge (401 or 403) the server sent through forwarding that named one |
//! | `scopes` (L) | the scopes the app configured at registration (empty: the server's choice at each initiate) |
//!
//! A state item also keeps the `issuer` its flow was started at: complete-oauth exchanges the code only
//! while the tool still uses that authorization server.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use serde_json::{Map, Value};

use super::connections::{tool_tokens_key, TokensUpsert};
use super::item::FromItem;
use super::keys::Key;
use super::{build_err, s, Item, Store, StoreError, Transaction, TTL_ATTR};
use crate::crypto::secret;
use crate::domain::connection::HeldTokens;
use crate::domain::tool::{ToolClient, ToolRecord, ToolState, ToolTokens, TOOL_TOKENS_PROVIDER};

pub fn tool_key(tool_id: &str) -> Key {
    Key {
        pk: format!("TOOL#{tool_id}"),
        sk: "TOOL".into(),
    }
}

pub fn tool_state_key(state: &str) -> Key {
    Key {
        pk: format!("TSTATE#{}", secret::hash(state)),
        sk: "TSTATE".into(),
    }
}

fn client_attr(client: &ToolClient) -> AttributeValue {
    let mut m = std::collections::HashMap::from([
        ("client_id".to_string(), s(&client.client_id)),
        ("token_endpoint_auth_method".to_string(), s(&client.token_auth_method)),
        ("registration".to_string(), s(&client.registration)),
    ]);
    if !client.sealed_secret.is_empty() {
        m.insert(
            "client_secret".into(),
            AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(client.sealed_secret.clone())),
        );
    }
    AttributeValue::M(m)
}

fn client_from_attr(v: &AttributeValue) -> Option<ToolClient> {
    let m = v.as_m().ok()?;
    let text = |n: &str| m.get(n).and_then(|v| v.as_s().ok()).cloned();
    Some(ToolClient {
        client_id: text("client_id")?,
        sealed_secret: m
            .get("client_secret")
            .and_then(|v| v.as_b().ok())
            .map(|b| b.as_ref().to_vec())
            .unwrap_or_default(),
        token_auth_method: text("token_endpoint_auth_method")?,
        registration: text("registration")?,
    })
}

fn iss_marker_pk(project_id: &str, redirect_uri: &str) -> String {
    format!("ISSREDIR#{project_id}#{}", crate::crypto::secret::hash(redirect_uri))
}

fn iss_marker_key(project_id: &str, redirect_uri: &str, tool_id: &str) -> Key {
    Key {
        pk: iss_marker_pk(project_id, redirect_uri),
        sk: format!("TOOL#{tool_id}"),
    }
}

fn iss_marker_item(project_id: &str, redirect_uri: &str, tool_id: &str) -> Item {
    Item::with_key(&iss_marker_key(project_id, redirect_uri, tool_id)).set_s("type", "iss_redirect")
}

/// The marker writes for a tool's current authorization server: a put per redirect URI when it
/// sends `iss`, else a delete per redirect URI (a migration may leave such a server).
fn iss_marker_writes(store: &Store, tool: &ToolRecord) -> Result<Vec<TransactWriteItem>, StoreError> {
    tool.redirect_uris
        .iter()
        .map(|uri| {
            if tool.advertises_iss() {
                Put::builder()
                    .table_name(store.table())
                    .set_item(Some(iss_marker_item(&tool.project_id, uri, &tool.tool_id).into_map()))
                    .build()
                    .map(|p| TransactWriteItem::builder().put(p).build())
                    .map_err(build_err)
            } else {
                Delete::builder()
                    .table_name(store.table())
                    .set_key(Some(iss_marker_key(&tool.project_id, uri, &tool.tool_id).to_map()))
                    .build()
                    .map(|d| TransactWriteItem::builder().delete(d).build())
                    .map_err(build_err)
            }
        })
        .collect()
}

fn tool_item(tool: &ToolRecord) -> Item {
    let mut item = Item::with_key(&tool_key(&tool.tool_id))
        .set_s("type", "tool")
        .set_s("project_id", &tool.project_id)
        .set_s("name", &tool.name)
        .set_s("server_url", &tool.server_url)
        .set_s("resource", &tool.resource)
        .set_s("issuer", &tool.issuer)
        .set_s("metadata", Value::Object(tool.metadata.clone()).to_string())
        .set_s("client_id", &tool.client_id)
        .set_s("token_auth_method", &tool.token_auth_method)
        .set_s("registration", &tool.registration)
        .set_list("redirect_uris", &tool.redirect_uris)
        .set_list("scopes", &tool.scopes)
        .set_n("created_at", tool.created_at);
    if let Some(rm) = &tool.resource_metadata {
        item = item.set_s("resource_metadata", Value::Object(rm.clone()).to_string());
    }
    if !tool.sealed_secret.is_empty() {
        item = item.set_b("client_secret", tool.sealed_secret.clone());
    }
    item = item.set_opt_s("challenge_scope", tool.challenge_scope.clone());
    if !tool.other_clients.is_empty() {
        let mut map = item.into_map();
        map.insert(
            "other_clients".into(),
            AttributeValue::M(
                tool.other_clients
                    .iter()
                    .map(|(issuer, c)| (issuer.clone(), client_attr(c)))
                    .collect(),
            ),
        );
        item = Item::from(map);
    }
    item
}

impl FromItem for ToolRecord {
    fn from_item(item: &Item) -> Result<Self, StoreError> {
        let obj = |name: &str| -> Result<Option<Map<String, Value>>, StoreError> {
            match item.s(name) {
                None => Ok(None),
                Some(raw) => match serde_json::from_str::<Value>(raw) {
                    Ok(Value::Object(m)) => Ok(Some(m)),
                    _ => Err(StoreError::Malformed(format!("tool {name}"))),
                },
            }
        };
        Ok(ToolRecord {
            tool_id: item.req_s("pk")?.trim_start_matches("TOOL#").to_string(),
            project_id: item.req_s("project_id")?.to_string(),
            name: item.req_s("name")?.to_string(),
            server_url: item.req_s("server_url")?.to_string(),
            resource: item.req_s("resource")?.to_string(),
            issuer: item.req_s("issuer")?.to_string(),
            metadata: obj("metadata")?.unwrap_or_default(),
            resource_metadata: obj("resource_metadata")?,
            client_id: item.req_s("client_id")?.to_string(),
            sealed_secret: item.b("client_secret").map(<[u8]>::to_vec).unwrap_or_default(),
            token_auth_method: item.req_s("token_auth_method")?.to_string(),
            registration: item.req_s("registration")?.to_string(),
            redirect_uris: item.list("redirect_uris"),
            scopes: item.list("scopes"),
            challenge_scope: item.s("challenge_scope").map(str::to_string),
            other_clients: match item.get("other_clients") {
                None => BTreeMap::new(),
                Some(AttributeValue::M(m)) => m
                    .iter()
                    .map(|(issuer, v)| {
                        client_from_attr(v)
                            .map(|c| (issuer.clone(), c))
                            .ok_or_else(|| StoreError::Malformed("tool other_clients".into()))
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(StoreError::Malformed("tool other_clients".into())),
            },
            created_at: item.n("created_at").unwrap_or(0),
        })
    }
}

/// Why a tool's migration was refused: another request changed its authorization server first.
#[derive(Clone, Copy, Debug)]
struct Moved;

impl FromItem for ToolTokens {
    fn from_item(item: &Item) -> Result<Self, StoreError> {
        let tool_id = item
            .req_s("pk")?
            .strip_prefix("TOOL#")
            .ok_or_else(|| StoreError::Malformed("tool tokens key".into()))?
            .to_string();
        let held = HeldTokens::from_item(item)?;
        Ok(ToolTokens {
            tool_id,
            project_id: item.req_s("project_id")?.to_string(),
            scopes: held.scopes,
            status: held.status,
            sealed_tokens: held.sealed_tokens,
            expires_at: held.expires_at,
            version: held.version,
            refresh_lock: held.refresh_lock,
            created_at: item.n("created_at").unwrap_or(0),
            updated_at: item.n("updated_at").unwrap_or(0),
        })
    }
}

impl Store {
    /// The update that stores (or replaces) a tool's tokens: the same attributes a connection's
    /// item has, `provider` `mcp`, no account.
    fn tool_tokens_upsert(&self, tokens: &ToolTokens, now: i64) -> Result<Update, StoreError> {
        self.tokens_upsert(
            TokensUpsert {
                key: tool_tokens_key(&tokens.tool_id),
                kind: "tool_tokens",
                project_id: &tokens.project_id,
                provider: TOOL_TOKENS_PROVIDER,
                scopes: &tokens.scopes,
                sealed_tokens: &tokens.sealed_tokens,
                expires_at: tokens.expires_at,
                account_id: None,
                email: None,
                api_base_url: None,
            },
            now,
        )
    }

    /// Store (or replace) a tool's tokens (complete-oauth), active at a new version.
    pub async fn put_tool_tokens(&self, tokens: &ToolTokens, now: i64) -> Result<(), StoreError> {
        let upsert = TransactWriteItem::builder()
            .update(self.tool_tokens_upsert(tokens, now)?)
            .build();
        self.transact_all(Transaction::new().item(upsert)).await
    }

    /// A tool's tokens, if it holds any.
    pub async fn get_tool_tokens(&self, tool_id: &str, now: i64) -> Result<Option<ToolTokens>, StoreError> {
        self.get(&tool_tokens_key(tool_id), now)
            .await?
            .map(|i| ToolTokens::from_item(&i))
            .transpose()
    }

    /// Store a new tool, with its `ISSREDIR` markers when its server sends `iss`, in one
    /// transaction.
    pub async fn put_tool(&self, tool: &ToolRecord, _now: i64) -> Result<(), StoreError> {
        let mut tx = Transaction::new().item(super::put_new_item(self, tool_item(tool))?);
        if tool.advertises_iss() {
            for uri in &tool.redirect_uris {
                let marker = Put::builder()
                    .table_name(self.table())
                    .set_item(Some(iss_marker_item(&tool.project_id, uri, &tool.tool_id).into_map()))
                    .build()
                    .map_err(build_err)?;
                tx = tx.item(TransactWriteItem::builder().put(marker).build());
            }
        }
        self.transact_all(tx).await
    }

    /// Does any tool of `project_id` using `redirect_uri` have an authorization server that sends
    /// `iss`? One Query (limit 1).
    pub async fn redirect_uri_requires_iss(
        &self,
        project_id: &str,
        redirect_uri: &str,
        _now: i64,
    ) -> Result<bool, StoreError> {
        let page = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(&iss_marker_pk(project_id, redirect_uri)))
            .limit(1)
            .send()
            .await
            .map_err(|e| StoreError::Service(format!("Query: {}", aws_sdk_dynamodb::error::DisplayErrorContext(e))))?;
        Ok(page.count() > 0)
    }

    pub async fn put_tool_state(&self, state: &str, st: &ToolState, now: i64) -> Result<(), StoreError> {
        let item = Item::with_key(&tool_state_key(state))
            .set_s("type", "tool_state")
            .set_s("tool_id", &st.tool_id)
            .set_s("project_id", &st.project_id)
            .set_s("redirect_uri", &st.redirect_uri)
            .set_list("scopes", &st.scopes)
            .set_opt_s("issuer", st.issuer.clone())
            .set_b("verifier", st.sealed_verifier.clone())
            .set_n(TTL_ATTR, st.expires_at);
        self.put_new(item, now).await
    }

    /// Consume a state issued for this tool and project (single use whatever happens next; `None`
    /// if unknown, used, expired, or another tool's or project's — which stays usable by its owner).
    pub async fn take_tool_state(
        &self,
        state: &str,
        tool_id: &str,
        project_id: &str,
        now: i64,
    ) -> Result<Option<ToolState>, StoreError> {
        let res = self
            .client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(tool_state_key(state).to_map()))
            .condition_expression("attribute_exists(pk) AND #ttl > :now AND tool_id = :tool AND project_id = :project")
            .expression_attribute_names("#ttl", TTL_ATTR)
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":tool", AttributeValue::S(tool_id.to_string()))
            .expression_attribute_values(":project", AttributeValue::S(project_id.to_string()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await;
        let item = match res {
            Ok(out) => out.attributes.map(Item::from),
            Err(e)
                if e.as_service_error()
                    .map(|s| s.is_conditional_check_failed_exception())
                    .unwrap_or(false) =>
            {
                None
            }
            Err(e) => {
                return Err(StoreError::Service(format!(
                    "DeleteItem: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(e)
                )))
            }
        };
        Ok(item.and_then(|i| {
            Some(ToolState {
                tool_id: i.s("tool_id")?.to_string(),
                project_id: i.s("project_id")?.to_string(),
                redirect_uri: i.s("redirect_uri")?.to_string(),
                scopes: i.list("scopes"),
                issuer: i.s("issuer").map(str::to_string),
                sealed_verifier: i.b("verifier")?.to_vec(),
                expires_at: i.n(TTL_ATTR).unwrap_or(0),
            })
        }))
    }

    /// Record the `scope` of the server's latest challenge: one UpdateItem (callers write only when
    /// it changed); nothing when the tool was deleted meanwhile.
    pub async fn record_challenge_scope(&self, tool_id: &str, scope: &str) -> Result<(), StoreError> {
        let res = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(tool_key(tool_id).to_map()))
            .update_expression("SET challenge_scope = :scope")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":scope", s(scope))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .map(|s| s.is_conditional_check_failed_exception())
                    .unwrap_or(false) =>
            {
                Ok(())
            }
            Err(e) => Err(StoreError::Service(format!(
                "UpdateItem: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            ))),
        }
    }

    /// Move a tool to another authorization server (MCP SEP-2352): the tool item replaced, only if
    /// it still uses `from_issuer`, and its tokens (issued by the old authorization server) deleted,
    /// in one transaction. `Ok(false)` when another request changed the tool first.
    pub async fn migrate_tool(&self, from_issuer: &str, tool: &ToolRecord) -> Result<bool, StoreError> {
        let markers = iss_marker_writes(self, tool)?;
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(tool_item(tool).into_map()))
            .condition_expression("issuer = :from")
            .expression_attribute_values(":from", s(from_issuer))
            .build()
            .map_err(build_err)?;
        let delete = Delete::builder()
            .table_name(self.table())
            .set_key(Some(tool_tokens_key(&tool.tool_id).to_map()))
            .build()
            .map_err(build_err)?;
        let mut tx = Transaction::new()
            .guard(TransactWriteItem::builder().put(put).build(), Moved)
            .item(TransactWriteItem::builder().delete(delete).build());
        for m in markers {
            tx = tx.item(m);
        }
        match self.transact(tx).await? {
            Ok(()) => Ok(true),
            Err(Moved) => Ok(false),
        }
    }

    /// Delete a tool and everything in its partition (its tokens). `false` if there was none.
    pub async fn delete_tool(&self, tool_id: &str, now: i64) -> Result<bool, StoreError> {
        let items = self.query_partition(&format!("TOOL#{tool_id}"), now).await?;
        if items.is_empty() {
            return Ok(false);
        }
        // The tool's ISSREDIR markers, if any (deleting an absent one is harmless).
        let markers: Vec<Key> = items
            .iter()
            .filter(|i| i.s("type") == Some("tool"))
            .flat_map(|i| {
                let project = i.s("project_id").unwrap_or_default().to_string();
                i.list("redirect_uris")
                    .into_iter()
                    .map(move |uri| iss_marker_key(&project, &uri, tool_id))
            })
            .collect();
        for key in markers {
            self.delete(&key).await?;
        }
        for item in items {
            if let (Some(pk), Some(sk)) = (item.s("pk"), item.s("sk")) {
                self.delete(&Key {
                    pk: pk.to_string(),
                    sk: sk.to_string(),
                })
                .await?;
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_item_keeps_clients_by_issuer_and_the_challenge_scope() {
        let mut tool = ToolRecord {
            tool_id: "tl_abc".into(),
            project_id: "prj_x".into(),
            name: "t".into(),
            server_url: "https://mcp.example/mcp".into(),
            resource: "https://mcp.example/mcp".into(),
            issuer: "https://as2.example".into(),
            metadata: Map::new(),
            resource_metadata: None,
            client_id: "dcr-at-as2".into(),
            sealed_secret: vec![9, 9],
            token_auth_method: "client_secret_basic".into(),
            registration: "dynamic".into(),
            redirect_uris: vec!["https://app.example/cb".into()],
            scopes: Vec::new(),
            challenge_scope: Some("files:write".into()),
            other_clients: BTreeMap::new(),
            created_at: 1,
        };
        assert_eq!(ToolRecord::from_item(&tool_item(&tool)).unwrap(), tool);
        tool.other_clients.insert(
            "https://as1.example".into(),
            ToolClient {
                client_id: "operator".into(),
                sealed_secret: vec![1, 2, 3],
                token_auth_method: "client_secret_post".into(),
                registration: "preregistered".into(),
            },
        );
        tool.other_clients.insert(
            "https://as0.example".into(),
            ToolClient {
                client_id: "https://latchkey.example/tools/tl_abc/client-metadata.json".into(),
                sealed_secret: Vec::new(),
                token_auth_method: "none".into(),
                registration: "client_metadata_document".into(),
            },
        );
        let item = tool_item(&tool);
        assert!(item.get("other_clients").is_some());
        assert_eq!(ToolRecord::from_item(&item).unwrap(), tool);
    }

    fn offline_store() -> Store {
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .build();
        Store::new(aws_sdk_dynamodb::Client::from_conf(conf), "latchkey-test")
    }

    #[test]
    fn tool_tokens_items_keep_the_shape_they_had_as_connections() {
        // An item as complete-oauth wrote it when tool tokens were a `Connection` with a `tool_id`.
        let item = Item::with_key(&tool_tokens_key("tl_1"))
            .set_s("type", "tool_tokens")
            .set_s("project_id", "prj_1")
            .set_s("provider", "mcp")
            .set_list("scopes", &["a".to_string(), "b".to_string()])
            .set_s("status", "active")
            .set_b("tokens", vec![1, 2, 3])
            .set_n("expires_at", 100)
            .set_n("version", 3)
            .set_n("created_at", 1)
            .set_n("updated_at", 2);
        let t = ToolTokens::from_item(&item).unwrap();
        assert_eq!(
            t,
            ToolTokens {
                tool_id: "tl_1".into(),
                project_id: "prj_1".into(),
                scopes: vec!["a".into(), "b".into()],
                status: crate::domain::connection::ConnectionStatus::Active,
                sealed_tokens: vec![1, 2, 3],
                expires_at: Some(100),
                version: 3,
                refresh_lock: None,
                created_at: 1,
                updated_at: 2,
            }
        );
        // And it is written the same way: a connection's upsert, `provider` `mcp`, no account.
        let store = offline_store();
        let update = store.tool_tokens_upsert(&t, 50).unwrap();
        assert_eq!(
            update.update_expression(),
            "SET #type = :conn_type, project_id = :project, provider = :provider, scopes = :scopes, #status = :active, tokens = :tokens, updated_at = :now, created_at = if_not_exists(created_at, :now), version = if_not_exists(version, :zero) + :one, health = :health, due = :due, expires_at = :exp REMOVE refresh_lock, refresh_owner, account_id, email, api_base_url"
        );
        let values = update.expression_attribute_values().unwrap();
        assert_eq!(values[":conn_type"], s("tool_tokens"));
        assert_eq!(values[":provider"], s("mcp"));
        assert_eq!(values[":project"], s("prj_1"));
        // In the health index while active, due when its access token expires.
        assert_eq!(values[":health"], s("due"));
        assert_eq!(values[":due"], super::super::n(100));
        assert_eq!(update.key()["pk"], s("TOOL#tl_1"));
        assert_eq!(update.key()["sk"], s("TOKENS"));
    }
}
