//! Vault projects and their API keys as items (the types and key formats are `domain::project`'s).
//!
//! | item | pk | sk |
//! |---|---|---|
//! | project | `PROJECT#<project_id>` | `PROJECT` |
//! | API key (by id, for listing and revoking) | `PROJECT#<project_id>` | `APIKEY#<key_id>` |
//! | API key (by hash, for authenticating) | `APIKEY#<sha256(key)>` | `APIKEY` |
//!
//! A project's partition also holds its provider configurations (`store::providers`).

use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem};

use super::item::FromItem;
use super::keys::Key;
use super::{build_err, put_new_item, Item, Store, StoreError, Transaction};
use crate::crypto::secret;
use crate::domain::project::{new_api_key, new_project_id, ApiKeyRecord};

/// Partition prefix of a project's items.
pub const PROJECT_PREFIX: &str = "PROJECT#";

pub fn project_key(project_id: &str) -> Key {
    Key {
        pk: format!("{PROJECT_PREFIX}{project_id}"),
        sk: "PROJECT".into(),
    }
}

pub fn project_api_key(project_id: &str, key_id: &str) -> Key {
    Key {
        pk: format!("{PROJECT_PREFIX}{project_id}"),
        sk: format!("APIKEY#{key_id}"),
    }
}

pub fn api_key_key(key_hash: &str) -> Key {
    Key {
        pk: format!("APIKEY#{key_hash}"),
        sk: "APIKEY".into(),
    }
}

impl FromItem for ApiKeyRecord {
    /// Read the by-hash item.
    fn from_item(item: &Item) -> Result<Self, StoreError> {
        Ok(ApiKeyRecord {
            project_id: item.req_s("project_id")?.to_string(),
            key_id: item.req_s("key_id")?.to_string(),
            created_at: item.n("created_at").unwrap_or(0),
        })
    }
}

/// Why a new API key was refused: its project does not exist.
#[derive(Clone, Copy, Debug)]
struct NoSuchProject;

impl Store {
    /// Create a project with its first API key. Returns (project_id, key_id, api_key); the key is
    /// shown once and only its SHA-256 is stored.
    pub async fn create_project(&self, name: &str, now: i64) -> Result<(String, String, String), StoreError> {
        let project_id = new_project_id();
        let project = Item::with_key(&project_key(&project_id))
            .set_s("type", "project")
            .set_s("name", name)
            .set_n("created_at", now);
        let (key_id, key) = new_api_key(&project_id);
        let tx = Transaction::new()
            .item(put_new_item(self, project)?)
            .items(self.api_key_items(&project_id, &key_id, &key, now)?);
        self.transact_all(tx).await?;
        Ok((project_id, key_id, key))
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
        let tx = Transaction::new()
            .guard(
                TransactWriteItem::builder().condition_check(check).build(),
                NoSuchProject,
            )
            .items(self.api_key_items(project_id, &key_id, &key, now)?);
        match self.transact(tx).await? {
            Ok(()) => Ok((key_id, key)),
            Err(NoSuchProject) => Err(StoreError::ConditionFailed),
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
            .scan_prefix(PROJECT_PREFIX, now)
            .await?
            .into_iter()
            .filter(|i| i.s("sk") == Some("PROJECT"))
            .filter_map(|i| {
                Some((
                    i.s("pk")?.trim_start_matches(PROJECT_PREFIX).to_string(),
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
        self.query_partition(&format!("{PROJECT_PREFIX}{project_id}"), now)
            .await
    }

    pub async fn project_exists(&self, project_id: &str, now: i64) -> Result<bool, StoreError> {
        Ok(self.get(&project_key(project_id), now).await?.is_some())
    }
}
