//! Registered OAuth clients as items (the record is `domain::client::ClientRecord`).
//!
//! | item | pk | sk |
//! |---|---|---|
//! | client | `CLIENT#<client_id>` | `CLIENT` |
//! | public registration's dedup item | `DCR#<sha256(canonical metadata)>` | `DCR` |
//!
//! A dynamically registered client carries a `ttl` until its first use (issue 12 item 8): the token
//! transaction that first redeems a code for it removes the `ttl` from it and from its dedup item
//! ([`first_use`]). The dedup item names the client (`client_id`, `created_at`) and always has the
//! client's `ttl` (both set, extended and removed together), so a public registration with identical
//! metadata finds the live client in the same transaction that would have stored a new one.

use aws_sdk_dynamodb::types::{Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};

use super::item::{FromItem, Item};
use super::keys;
use super::{build_err, n, put_new_item, s, Store, StoreError, Transaction, TTL_ATTR};
use crate::domain::client::{ClientMetadata, ClientRecord, Registered};
use crate::domain::grant::FirstUse;

fn client_item(client: &ClientRecord) -> Item {
    let m = &client.metadata;
    Item::with_key(&keys::client(&client.client_id))
        .set_s("type", "client")
        .set_s("client_id", &client.client_id)
        .set_opt_s("secret_hash", client.secret_hash.clone())
        .set_s("auth_method", &m.token_endpoint_auth_method)
        .set_list("redirect_uris", &m.redirect_uris)
        .set_list("grant_types", &m.grant_types)
        .set_opt_s("scope", m.scope.clone())
        .set_s("metadata", serde_json::Value::Object(m.to_json()).to_string())
        .set_n("created_at", client.created_at)
        .set_opt_n("fresh_until", client.fresh_until)
        .set_opt_s("dedup", client.dedup.clone())
        .set_opt_n(TTL_ATTR, client.unused_until)
}

/// The dedup item of a public registration.
fn registration_item(client: &ClientRecord, dedup: &str) -> Item {
    Item::with_key(&keys::registration(dedup))
        .set_s("type", "registration")
        .set_s("client_id", &client.client_id)
        .set_n("created_at", client.created_at)
        .set_opt_n(TTL_ATTR, client.unused_until)
}

impl FromItem for Registered {
    fn from_item(item: &Item) -> Result<Self, StoreError> {
        Ok(Registered {
            client_id: item.req_s("client_id")?.to_string(),
            issued_at: item.n("created_at").unwrap_or(0),
            unused_until: item.n(TTL_ATTR),
        })
    }
}

/// Why a registration's window was not extended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtendRefused {
    /// The client was used meanwhile: it no longer expires.
    Used,
    /// The client is gone (deleted, or expired meanwhile).
    Gone,
    /// The dedup item names another client now.
    Moved,
}

/// The token transaction's items for a client's first use: its `ttl` removed (it must still exist and
/// not have expired; a concurrent first use already removed it, which is fine), and its dedup item's
/// with it. Refused with `refusal` when the client or its dedup item is gone.
pub(crate) fn first_use<R: Clone>(
    store: &Store,
    first: &FirstUse,
    now: i64,
    tx: Transaction<R>,
    refusal: R,
) -> Result<Transaction<R>, StoreError> {
    let client = Update::builder()
        .table_name(store.table())
        .set_key(Some(keys::client(&first.client_id).to_map()))
        .update_expression("REMOVE #ttl")
        .condition_expression("attribute_exists(pk) AND (attribute_not_exists(#ttl) OR #ttl > :now)")
        .expression_attribute_names("#ttl", TTL_ATTR)
        .expression_attribute_values(":now", n(now))
        .build()
        .map_err(build_err)?;
    let mut tx = tx.guard(TransactWriteItem::builder().update(client).build(), refusal.clone());
    if let Some(dedup) = &first.dedup {
        let registration = Update::builder()
            .table_name(store.table())
            .set_key(Some(keys::registration(dedup).to_map()))
            .update_expression("REMOVE #ttl")
            .condition_expression("client_id = :cid")
            .expression_attribute_names("#ttl", TTL_ATTR)
            .expression_attribute_values(":cid", s(&first.client_id))
            .build()
            .map_err(build_err)?;
        tx = tx.guard(TransactWriteItem::builder().update(registration).build(), refusal);
    }
    Ok(tx)
}

impl FromItem for ClientRecord {
    fn from_item(item: &Item) -> Result<Self, StoreError> {
        let doc: serde_json::Value = serde_json::from_str(item.req_s("metadata")?)
            .map_err(|e| StoreError::Malformed(format!("client metadata: {e}")))?;
        let doc = doc
            .as_object()
            .ok_or_else(|| StoreError::Malformed("client metadata".into()))?;
        let metadata: ClientMetadata = serde_json::from_value(serde_json::Value::Object(doc.clone()))
            .map_err(|e| StoreError::Malformed(format!("client metadata: {e}")))?;
        // A metadata-document client's `ttl` is how long it is kept, not an unused-registration window.
        let document = item.s("source") == Some("metadata_document");
        Ok(ClientRecord {
            client_id: item.req_s("client_id")?.to_string(),
            secret_hash: item.s("secret_hash").map(str::to_string),
            metadata,
            created_at: item.n("created_at").unwrap_or(0),
            fresh_until: item.n("fresh_until"),
            unused_until: if document { None } else { item.n(TTL_ATTR) },
            dedup: item.s("dedup").map(str::to_string),
        })
    }
}

impl Store {
    /// Store a new client (fails if the id exists). One round trip.
    pub async fn put_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        self.put_new(client_item(client), client.created_at).await
    }

    /// Store a new public registration and its dedup item in one transaction (one round trip). The
    /// dedup item must be absent, expired, or name `stale` (a client found gone). `Ok(Err(found))`:
    /// a live registration with identical metadata exists, and nothing was written.
    pub async fn put_registration(
        &self,
        client: &ClientRecord,
        dedup: &str,
        stale: Option<&str>,
        now: i64,
    ) -> Result<Result<(), Registered>, StoreError> {
        let mut condition = String::from("attribute_not_exists(pk) OR #ttl <= :now");
        let mut put = Put::builder()
            .table_name(self.table())
            .set_item(Some(registration_item(client, dedup).into_map()))
            .expression_attribute_names("#ttl", TTL_ATTR)
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(stale) = stale {
            condition.push_str(" OR client_id = :stale");
            put = put.expression_attribute_values(":stale", s(stale));
        }
        let put = put.condition_expression(condition).build().map_err(build_err)?;
        let tx = Transaction::new()
            .item(put_new_item(self, client_item(client))?)
            .guard(TransactWriteItem::builder().put(put).build(), ());
        match self.transact_returning(tx).await? {
            Ok(()) => Ok(Ok(())),
            Err(((), Some(old))) => Registered::from_item(&old).map(Err),
            Err(((), None)) => Err(StoreError::Malformed("registration: refused without an item".into())),
        }
    }

    /// Give an unused registration a fresh window: the client's and its dedup item's `ttl` become
    /// `until`, in one transaction (one round trip). The client must still be unused and live, and
    /// the dedup item must name it.
    pub async fn extend_registration(
        &self,
        client_id: &str,
        dedup: &str,
        until: i64,
        now: i64,
    ) -> Result<Result<(), ExtendRefused>, StoreError> {
        let client = Update::builder()
            .table_name(self.table())
            .set_key(Some(keys::client(client_id).to_map()))
            .update_expression("SET #ttl = :until")
            .condition_expression("#ttl > :now")
            .expression_attribute_names("#ttl", TTL_ATTR)
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_err)?;
        let registration = Update::builder()
            .table_name(self.table())
            .set_key(Some(keys::registration(dedup).to_map()))
            .update_expression("SET #ttl = :until")
            .condition_expression("client_id = :cid")
            .expression_attribute_names("#ttl", TTL_ATTR)
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":cid", s(client_id))
            .build()
            .map_err(build_err)?;
        let tx = Transaction::new()
            .guard(TransactWriteItem::builder().update(client).build(), true)
            .guard(TransactWriteItem::builder().update(registration).build(), false);
        Ok(match self.transact_returning(tx).await? {
            Ok(()) => Ok(()),
            // The client's condition: used if it still exists without a `ttl`, else gone.
            Err((true, Some(old))) if old.get(TTL_ATTR).is_none() => Err(ExtendRefused::Used),
            Err((true, _)) => Err(ExtendRefused::Gone),
            Err((false, _)) => Err(ExtendRefused::Moved),
        })
    }

    /// Delete a public registration's dedup item if it still names `client_id`. One round trip.
    pub async fn forget_registration(&self, dedup: &str, client_id: &str) -> Result<(), StoreError> {
        let res = self
            .client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(keys::registration(dedup).to_map()))
            .condition_expression("client_id = :cid")
            .expression_attribute_values(":cid", s(client_id))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if super::is_condition_failed(&e) => Ok(()),
            Err(e) => Err(StoreError::Service(format!(
                "DeleteItem: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            ))),
        }
    }

    /// Store (or replace) a client read from its metadata document. The item lives as long as a
    /// refresh token could, so token requests keep finding it; `fresh_until` says when authorize
    /// fetches the document again.
    pub async fn put_document_client(&self, client: &ClientRecord, ttl: i64) -> Result<(), StoreError> {
        let item = client_item(client)
            .set_n(super::TTL_ATTR, ttl)
            .set_s("source", "metadata_document");
        self.put(item).await?;
        Ok(())
    }

    /// Load a client. One round trip.
    pub async fn get_client(&self, client_id: &str, now: i64) -> Result<Option<ClientRecord>, StoreError> {
        match self.get(&keys::client(client_id), now).await? {
            Some(item) => ClientRecord::from_item(&item).map(Some),
            None => Ok(None),
        }
    }

    /// Every registered client (a scan: admin use only).
    pub async fn list_clients(&self, now: i64) -> Result<Vec<ClientRecord>, StoreError> {
        self.scan_prefix(keys::CLIENT_PREFIX, now)
            .await?
            .iter()
            .map(ClientRecord::from_item)
            .collect()
    }
}
