//! Remote MCP servers ("tools") a project registered, and their OAuth state in flight.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | tool | `TOOL#<tool_id>` | `TOOL` |
//! | tool tokens | `TOOL#<tool_id>` | `TOKENS` (a `vault::Connection` with `tool_id`) |
//! | OAuth state (single use) | `TSTATE#<sha256(state)>` | `TSTATE` |

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Value};

use super::keys::Key;
use super::{Item, Store, StoreError, TTL_ATTR};
use crate::crypto::secret;

/// How long an initiated OAuth flow can be completed.
pub const STATE_TTL: i64 = 600;

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

pub fn new_tool_id() -> String {
    secret::random_token("tl_", 12)
}

/// Is this a well-formed tool id (so a lookup is worth a read)?
pub fn is_tool_id(s: &str) -> bool {
    s.len() <= 40 && s.starts_with("tl_") && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A registered remote MCP server.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolRecord {
    pub tool_id: String,
    pub project_id: String,
    pub name: String,
    pub server_url: String,
    /// The resource tokens are requested for (RFC 8707).
    pub resource: String,
    pub issuer: String,
    /// The authorization server's metadata as discovered.
    pub metadata: Map<String, Value>,
    /// The protected resource metadata, if the server publishes it.
    pub resource_metadata: Option<Map<String, Value>>,
    pub client_id: String,
    /// Sealed client secret (context `provider_secret`, provider `tool:<tool_id>`); empty for a
    /// public client.
    pub sealed_secret: Vec<u8>,
    /// `client_secret_basic`, `client_secret_post` or `none`.
    pub token_auth_method: String,
    /// How latchkey became a client: `preregistered`, `client_metadata_document` or `dynamic`.
    pub registration: String,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub created_at: i64,
}

impl ToolRecord {
    fn to_item(&self) -> Item {
        let mut item = Item::with_key(&tool_key(&self.tool_id))
            .set_s("type", "tool")
            .set_s("project_id", &self.project_id)
            .set_s("name", &self.name)
            .set_s("server_url", &self.server_url)
            .set_s("resource", &self.resource)
            .set_s("issuer", &self.issuer)
            .set_s("metadata", Value::Object(self.metadata.clone()).to_string())
            .set_s("client_id", &self.client_id)
            .set_s("token_auth_method", &self.token_auth_method)
            .set_s("registration", &self.registration)
            .set_list("redirect_uris", &self.redirect_uris)
            .set_list("scopes", &self.scopes)
            .set_n("created_at", self.created_at);
        if let Some(rm) = &self.resource_metadata {
            item = item.set_s("resource_metadata", Value::Object(rm.clone()).to_string());
        }
        if !self.sealed_secret.is_empty() {
            item = item.set_b("client_secret", self.sealed_secret.clone());
        }
        item
    }

    pub fn from_item(item: &Item) -> Result<Self, StoreError> {
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
            created_at: item.n("created_at").unwrap_or(0),
        })
    }
}

/// An initiated OAuth flow, stored under the hash of its `state`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolState {
    pub tool_id: String,
    pub project_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    /// The PKCE verifier, sealed (context `kind=tool_state, state=<sha256>`).
    pub sealed_verifier: Vec<u8>,
    pub expires_at: i64,
}

impl Store {
    pub async fn put_tool(&self, tool: &ToolRecord, now: i64) -> Result<(), StoreError> {
        self.put_new(tool.to_item(), now).await
    }

    pub async fn put_tool_state(&self, state: &str, st: &ToolState, now: i64) -> Result<(), StoreError> {
        let item = Item::with_key(&tool_state_key(state))
            .set_s("type", "tool_state")
            .set_s("tool_id", &st.tool_id)
            .set_s("project_id", &st.project_id)
            .set_s("redirect_uri", &st.redirect_uri)
            .set_list("scopes", &st.scopes)
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
                sealed_verifier: i.b("verifier")?.to_vec(),
                expires_at: i.n(TTL_ATTR).unwrap_or(0),
            })
        }))
    }

    /// Delete a tool and everything in its partition (its tokens). `false` if there was none.
    pub async fn delete_tool(&self, tool_id: &str, now: i64) -> Result<bool, StoreError> {
        let items = self.query_partition(&format!("TOOL#{tool_id}"), now).await?;
        if items.is_empty() {
            return Ok(false);
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
