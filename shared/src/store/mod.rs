//! The single-table DynamoDB repository (aws-sdk-dynamodb). The same code runs against DynamoDB in AWS
//! and against the in-process emulator locally and in tests.
//!
//! Rules: every read treats `ttl <= now` as absent (DynamoDB deletes expired items lazily); single-use
//! and race rules are conditional writes, never read-then-write.
//!
//! The store knows the domain types (`crate::domain`) and nothing above them: each module maps one
//! kind of record to and from items (its key formats in its `//!` table) and runs its queries —
//! `grants`, `clients`, `authz` (browser sign-in state), `resource_servers`, `projects` (and API
//! keys), `providers`, `auth_sessions`, `connections`, `tools`. `transact` runs every transaction
//! (typed refusals, conflicts retried); `error` says how a failure answers on each wire.

pub mod auth_sessions;
pub mod authz;
pub mod clients;
pub mod connections;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod error;
pub mod grants;
pub mod item;
pub mod keys;
pub mod projects;
pub mod providers;
pub mod resource_servers;
pub mod table;
pub mod tools;
pub mod transact;
pub mod webhooks;

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_dynamodb::Client;

pub use error::{Context, StoreError};
pub use item::{FromItem, Item};
pub use transact::Transaction;

/// Name of the TTL attribute (epoch seconds), enabled on the table.
pub const TTL_ATTR: &str = "ttl";

fn service_error<E, R>(op: &str, e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Service(format!("{op}: {}", aws_sdk_dynamodb::error::DisplayErrorContext(e)))
}

/// A string attribute value.
pub(crate) fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

/// A number attribute value.
pub(crate) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn build_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Service(format!("building request: {e}"))
}

/// A transaction item that puts `item`, which must not exist yet.
pub(crate) fn put_new_item(
    store: &Store,
    item: Item,
) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StoreError> {
    let put = aws_sdk_dynamodb::types::Put::builder()
        .table_name(store.table())
        .set_item(Some(item.into_map()))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .map_err(build_err)?;
    Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder().put(put).build())
}

/// Did a single-item write fail on its condition?
pub(crate) fn is_condition_failed<E, R>(e: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|s| s.code())
        .map(|c| c == "ConditionalCheckFailedException")
        .unwrap_or(false)
}

/// The repository: a DynamoDB client, the table name, and this process's cache of the scopes
/// resource servers declare (see [`resource_servers::DeclaredScopes`]).
#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: String,
    declared: resource_servers::DeclaredScopesCache,
    /// `latchkey serve`'s cache of `get_many` answers over the embedded database (`embedded`'s docs).
    #[cfg(feature = "embedded")]
    read_cache: Option<std::sync::Arc<embedded::ReadCache>>,
}

/// Is this item expired at `now`? Items without a `ttl` never expire.
pub fn is_expired(item: &Item, now: i64) -> bool {
    match item.get(TTL_ATTR) {
        Some(AttributeValue::N(n)) => n.parse::<i64>().map(|t| t <= now).unwrap_or(false),
        _ => false,
    }
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Store {
            client,
            table: table.into(),
            declared: Default::default(),
            #[cfg(feature = "embedded")]
            read_cache: None,
        }
    }

    /// Reuse `get_many`'s answers while the embedded database has not changed.
    #[cfg(feature = "embedded")]
    pub fn with_read_cache(mut self, cache: std::sync::Arc<embedded::ReadCache>) -> Self {
        self.read_cache = Some(cache);
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Strongly consistent read of one item; an expired item is `None`. One round trip.
    pub async fn get(&self, key: &keys::Key, now: i64) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.to_map()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| service_error("GetItem", e))?;
        Ok(out.item.map(Item::from).filter(|item| !is_expired(item, now)))
    }

    /// Write an item that must not exist yet, where an expired item DynamoDB has not yet deleted counts
    /// as absent (`attribute_not_exists(pk) OR ttl <= now`). One round trip.
    pub async fn put_new(&self, item: Item, now: i64) -> Result<(), StoreError> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item.into_map()))
            .condition_expression("attribute_not_exists(pk) OR #ttl <= :now")
            .expression_attribute_names("#ttl", TTL_ATTR)
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .map(|s| s.is_conditional_check_failed_exception())
                    .unwrap_or(false) =>
            {
                Err(StoreError::ConditionFailed)
            }
            Err(e) => Err(service_error("PutItem", e)),
        }
    }

    /// Write an item, replacing any existing one. One round trip.
    pub async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item.into_map()))
            .send()
            .await
            .map_err(|e| service_error("PutItem", e))?;
        Ok(())
    }

    /// Consume an item: delete it only if it exists and has not expired, returning what it held.
    /// `None` if it was absent, already taken or expired (single use by a conditional write).
    pub async fn take(&self, key: &keys::Key, now: i64) -> Result<Option<Item>, StoreError> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key.to_map()))
            .condition_expression("attribute_exists(pk) AND #ttl > :now")
            .expression_attribute_names("#ttl", TTL_ATTR)
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await;
        match res {
            Ok(out) => Ok(out.attributes.map(Item::from)),
            Err(e)
                if e.as_service_error()
                    .map(|s| s.is_conditional_check_failed_exception())
                    .unwrap_or(false) =>
            {
                Ok(None)
            }
            Err(e) => Err(service_error("DeleteItem", e)),
        }
    }

    /// Delete an item (no condition). One round trip.
    pub async fn delete(&self, key: &keys::Key) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key.to_map()))
            .send()
            .await
            .map_err(|e| service_error("DeleteItem", e))?;
        Ok(())
    }

    /// Every live item under one partition key, following pagination.
    pub async fn query_partition(&self, pk: &str, now: i64) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_string()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| service_error("Query", e))?;
            out.extend(
                page.items
                    .unwrap_or_default()
                    .into_iter()
                    .map(Item::from)
                    .filter(|i| !is_expired(i, now)),
            );
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Every live item whose partition key starts with `prefix` (a scan: admin commands only).
    pub async fn scan_prefix(&self, prefix: &str, now: i64) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(pk, :p)")
                .expression_attribute_values(":p", AttributeValue::S(prefix.to_string()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| service_error("Scan", e))?;
            out.extend(
                page.items
                    .unwrap_or_default()
                    .into_iter()
                    .map(Item::from)
                    .filter(|i| !is_expired(i, now)),
            );
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Read several items of one table in one round trip (BatchGetItem, strongly consistent).
    /// Expired items are absent. Unprocessed keys (throttling) are retried.
    pub async fn get_many(&self, keys: &[keys::Key], now: i64) -> Result<Vec<Option<Item>>, StoreError> {
        #[cfg(feature = "embedded")]
        let live = |items: &[Option<Item>]| -> Vec<Option<Item>> {
            items
                .iter()
                .map(|i| i.as_ref().filter(|i| !is_expired(i, now)).cloned())
                .collect()
        };
        #[cfg(feature = "embedded")]
        let cached = self
            .read_cache
            .as_ref()
            .and_then(|cache| cache.version().map(|version| (cache, version)));
        #[cfg(feature = "embedded")]
        if let Some((cache, version)) = &cached {
            if let Some(items) = cache.get(keys, *version) {
                return Ok(live(&items));
            }
        }
        let items = self.read_many(keys).await?;
        #[cfg(feature = "embedded")]
        if let Some((cache, version)) = cached {
            let items = std::sync::Arc::new(items);
            cache.put(keys, version, std::sync::Arc::clone(&items));
            return Ok(live(&items));
        }
        Ok(items.into_iter().map(|i| i.filter(|i| !is_expired(i, now))).collect())
    }

    /// `get_many`'s round trip: the items as read, expired or not.
    async fn read_many(&self, keys: &[keys::Key]) -> Result<Vec<Option<Item>>, StoreError> {
        let mut found: HashMap<(String, String), Item> = HashMap::new();
        let mut pending: Vec<HashMap<String, AttributeValue>> = keys.iter().map(keys::Key::to_map).collect();
        for _ in 0..4 {
            if pending.is_empty() {
                break;
            }
            let ka = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(build_err)?;
            let out = self
                .client()
                .batch_get_item()
                .request_items(self.table(), ka)
                .send()
                .await
                .map_err(|e| {
                    StoreError::Service(format!(
                        "BatchGetItem: {}",
                        aws_sdk_dynamodb::error::DisplayErrorContext(e)
                    ))
                })?;
            for raw in out
                .responses
                .and_then(|mut r| r.remove(self.table()))
                .unwrap_or_default()
            {
                let item = Item::from(raw);
                if let (Some(pk), Some(sk)) = (item.s("pk"), item.s("sk")) {
                    let key = (pk.to_string(), sk.to_string());
                    found.insert(key, item);
                }
            }
            if let Some(mut un) = out.unprocessed_keys {
                if let Some(ka) = un.remove(self.table()) {
                    pending = ka.keys;
                }
            }
        }
        if !pending.is_empty() {
            return Err(StoreError::Service("BatchGetItem: keys left unprocessed".into()));
        }
        Ok(keys
            .iter()
            .map(|k| found.remove(&(k.pk.clone(), k.sk.clone())))
            .collect())
    }
}
