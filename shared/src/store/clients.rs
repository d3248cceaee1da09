//! Registered OAuth clients as items: `CLIENT#<client_id>` / `CLIENT` (the record is
//! `domain::client::ClientRecord`).

use super::item::{FromItem, Item};
use super::keys;
use super::{Store, StoreError};
use crate::domain::client::{ClientMetadata, ClientRecord};

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
        Ok(ClientRecord {
            client_id: item.req_s("client_id")?.to_string(),
            secret_hash: item.s("secret_hash").map(str::to_string),
            metadata,
            created_at: item.n("created_at").unwrap_or(0),
            fresh_until: item.n("fresh_until"),
        })
    }
}

impl Store {
    /// Store a new client (fails if the id exists). One round trip.
    pub async fn put_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        self.put_new(client_item(client), client.created_at).await
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
