//! Resource servers: the MCP servers that trust latchkey. Each authenticates to the introspection
//! endpoint with its own id and secret, and is named by its canonical resource URL (RFC 8707), which
//! the authorize endpoint validates the `resource` parameter against.
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | resource server | `RS#<rs_id>` | `RS` | `rs_id`, `secret_hash`, `resource`, `scopes`, `scope_descriptions` (map: scope → words for the consent page), `created_at` |
//! | lookup by resource | `RESOURCE#<resource>` | `RS` | the same attributes, copied |
//! | declared scopes | `SCOPES` | `DECLARED` | one list attribute per resource server: `<rs_id>` → its scopes |
//!
//! The record, its lookup item and its entry in the declared-scope registry are written in one
//! transaction and deleted in one transaction, so a resource URL names at most one resource server,
//! authorize needs a single GetItem, and registration learns every declared scope from one GetItem
//! (cached per process for [`DECLARED_SCOPES_TTL`] seconds). No TTL.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem, Update};

use super::item::{FromItem, Item};
use super::keys::Key;
use super::{build_err, put_new_item, Store, StoreError, Transaction};
use crate::crypto::secret;
use crate::domain::resource::{
    plausible_id, Resource, ResourceServerRecord, ScopeDescriptions, RS_ID_PREFIX, RS_SECRET_PREFIX,
};

/// Partition prefix of resource-server records.
pub const RS_PREFIX: &str = "RS#";
/// Partition prefix of the lookup items by resource URL.
pub const RESOURCE_PREFIX: &str = "RESOURCE#";
/// How long a process trusts its copy of the declared-scope registry, in seconds. Registration is the
/// only reader; a scope declared within this window by another process may be left out of a
/// registration's echoed `scope`, which never limits what the client may later ask for.
pub const DECLARED_SCOPES_TTL: i64 = 60;

/// The declared-scope registry: `SCOPES` / `DECLARED`.
pub fn declared_key() -> Key {
    Key {
        pk: "SCOPES".into(),
        sk: "DECLARED".into(),
    }
}

/// Every scope some resource server declares, deduplicated, in a stable order.
pub type DeclaredScopes = Arc<Vec<String>>;

/// This process's copy of the declared-scope registry and when it was read.
#[derive(Clone, Debug, Default)]
pub struct DeclaredScopesCache(Arc<Mutex<Option<(i64, DeclaredScopes)>>>);

impl DeclaredScopesCache {
    fn fresh(&self, now: i64) -> Option<DeclaredScopes> {
        let guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .filter(|(at, _)| now - at < DECLARED_SCOPES_TTL && *at <= now)
            .map(|(_, s)| s.clone())
    }

    fn set(&self, now: i64, scopes: DeclaredScopes) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((now, scopes));
    }

    /// Forget the copy (this process changed a resource server).
    fn clear(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// The union of the registry item's per-resource-server lists.
fn declared_from_item(item: &Item) -> Vec<String> {
    let mut names: Vec<&String> = item.as_map().keys().filter(|k| k.starts_with(RS_ID_PREFIX)).collect();
    names.sort();
    let mut out: Vec<String> = Vec::new();
    for name in names {
        for scope in item.list(name) {
            if !out.contains(&scope) {
                out.push(scope);
            }
        }
    }
    out
}

/// The descriptions of the scopes in `scopes`, the others left out.
fn only_declared(scopes: &[String], descriptions: &ScopeDescriptions) -> ScopeDescriptions {
    descriptions
        .iter()
        .filter(|(k, _)| scopes.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A resource server's record: `RS#<rs_id>` / `RS`.
pub fn rs_key(rs_id: &str) -> Key {
    Key {
        pk: format!("{RS_PREFIX}{rs_id}"),
        sk: "RS".into(),
    }
}

/// The lookup item of a resource URL: `RESOURCE#<resource>` / `RS`.
pub fn resource_key(resource: &Resource) -> Key {
    Key {
        pk: format!("{RESOURCE_PREFIX}{}", resource.as_str()),
        sk: "RS".into(),
    }
}

fn fill(r: &ResourceServerRecord, item: Item, kind: &str) -> Item {
    item.set_s("type", kind)
        .set_s("rs_id", &r.rs_id)
        .set_s("secret_hash", &r.secret_hash)
        .set_s("resource", &r.resource)
        .set_list("scopes", &r.scopes)
        .set_str_map("scope_descriptions", &r.scope_descriptions)
        .set_n("created_at", r.created_at)
}

/// The record item, `RS#<rs_id>` / `RS`.
fn record_item(r: &ResourceServerRecord) -> Item {
    fill(r, Item::with_key(&rs_key(&r.rs_id)), "resource_server")
}

/// The lookup item, `RESOURCE#<resource>` / `RS`, carrying the same fields.
fn lookup_item(r: &ResourceServerRecord) -> Item {
    fill(r, Item::with_key(&lookup_key(r)), "resource_lookup")
}

/// The lookup item's key of a stored record (its `resource` is already canonical).
fn lookup_key(r: &ResourceServerRecord) -> Key {
    Key {
        pk: format!("{RESOURCE_PREFIX}{}", r.resource),
        sk: "RS".into(),
    }
}

impl FromItem for ResourceServerRecord {
    /// Read either item (the record or its lookup copy).
    fn from_item(item: &Item) -> Result<Self, StoreError> {
        Ok(ResourceServerRecord {
            rs_id: item.req_s("rs_id")?.to_string(),
            secret_hash: item.req_s("secret_hash")?.to_string(),
            resource: item.req_s("resource")?.to_string(),
            scopes: item.list("scopes"),
            scope_descriptions: item.str_map("scope_descriptions"),
            created_at: item.n("created_at").unwrap_or(0),
        })
    }
}

/// Why a resource-server transaction was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refused {
    /// The resource URL is already registered (its lookup item exists).
    ResourceTaken,
    /// The resource server was deleted meanwhile (or its lookup item names another one).
    Gone,
}

impl Store {
    /// The transaction item that sets (or, with `None`, removes) one resource server's entry in the
    /// declared-scope registry.
    fn declared_entry(&self, rs_id: &str, scopes: Option<&[String]>) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(self.table())
            .set_key(Some(declared_key().to_map()))
            .expression_attribute_names("#rs", rs_id);
        let update = match scopes {
            Some(scopes) => update
                .update_expression("SET #rs = :scopes, #type = :type")
                .expression_attribute_names("#type", "type")
                .expression_attribute_values(
                    ":scopes",
                    AttributeValue::L(scopes.iter().map(|v| AttributeValue::S(v.clone())).collect()),
                )
                .expression_attribute_values(":type", AttributeValue::S("declared_scopes".into())),
            None => update.update_expression("REMOVE #rs"),
        };
        Ok(TransactWriteItem::builder()
            .update(update.build().map_err(build_err)?)
            .build())
    }

    /// Every scope some resource server declares (the registry item), from this process's copy when
    /// it is younger than [`DECLARED_SCOPES_TTL`]. At most one GetItem.
    pub async fn declared_scopes(&self, now: i64) -> Result<DeclaredScopes, StoreError> {
        if let Some(s) = self.declared.fresh(now) {
            return Ok(s);
        }
        let scopes = Arc::new(
            self.get(&declared_key(), now)
                .await?
                .map(|item| declared_from_item(&item))
                .unwrap_or_default(),
        );
        self.declared.set(now, scopes.clone());
        Ok(scopes)
    }

    /// Register a resource server: a new id and secret, the record and its lookup item written in
    /// one transaction, each only if absent, with its entry in the declared-scope registry. A resource URL already registered is
    /// `StoreError::ConditionFailed` and nothing is written. Returns the record and the secret, which
    /// is not stored and cannot be shown again. One round trip.
    pub async fn create_resource_server(
        &self,
        resource: &Resource,
        scopes: &[String],
        now: i64,
    ) -> Result<(ResourceServerRecord, String), StoreError> {
        self.create_described_resource_server(resource, scopes, &ScopeDescriptions::new(), now)
            .await
    }

    /// [`Store::create_resource_server`] with words for some of its declared scopes (descriptions of
    /// scopes it does not declare are left out). The declared-scope registry keeps only the names.
    pub async fn create_described_resource_server(
        &self,
        resource: &Resource,
        scopes: &[String],
        descriptions: &ScopeDescriptions,
        now: i64,
    ) -> Result<(ResourceServerRecord, String), StoreError> {
        let secret_value = secret::new_secret(RS_SECRET_PREFIX);
        let record = ResourceServerRecord {
            rs_id: secret::random_token(RS_ID_PREFIX, 16),
            secret_hash: secret::hash(&secret_value),
            resource: resource.as_str().to_string(),
            scopes: scopes.to_vec(),
            scope_descriptions: only_declared(scopes, descriptions),
            created_at: now,
        };
        let tx = Transaction::new()
            .item(put_new_item(self, record_item(&record))?)
            .guard(put_new_item(self, lookup_item(&record))?, Refused::ResourceTaken)
            .item(self.declared_entry(&record.rs_id, Some(&record.scopes))?);
        let res = self.transact(tx).await;
        self.declared.clear();
        match res? {
            Ok(()) => Ok((record, secret_value)),
            Err(Refused::ResourceTaken | Refused::Gone) => Err(StoreError::ConditionFailed),
        }
    }

    /// Replace a resource server's declared scopes in place (same id, secret and resource): the
    /// record, its lookup item and its registry entry in one transaction, each record only if it
    /// still belongs to this resource server. `None` if there is no such resource server. Two round
    /// trips (read the record for its resource, then the transaction).
    pub async fn update_resource_server_scopes(
        &self,
        rs_id: &str,
        scopes: &[String],
        now: i64,
    ) -> Result<Option<ResourceServerRecord>, StoreError> {
        self.update_described_resource_server(rs_id, scopes, &ScopeDescriptions::new(), now)
            .await
    }

    /// [`Store::update_resource_server_scopes`] with words for some of the scopes: the scopes and
    /// their descriptions are both replaced (a scope given without words loses its old ones).
    pub async fn update_described_resource_server(
        &self,
        rs_id: &str,
        scopes: &[String],
        descriptions: &ScopeDescriptions,
        now: i64,
    ) -> Result<Option<ResourceServerRecord>, StoreError> {
        let Some(mut record) = self.get_resource_server(rs_id, now).await? else {
            return Ok(None);
        };
        record.scopes = scopes.to_vec();
        record.scope_descriptions = only_declared(scopes, descriptions);
        let described = AttributeValue::M(
            record
                .scope_descriptions
                .iter()
                .map(|(k, v)| (k.clone(), AttributeValue::S(v.clone())))
                .collect(),
        );
        let set = |key: Key| -> Result<TransactWriteItem, StoreError> {
            let update = Update::builder()
                .table_name(self.table())
                .set_key(Some(key.to_map()))
                .update_expression("SET scopes = :scopes, scope_descriptions = :described")
                .condition_expression("rs_id = :id")
                .expression_attribute_values(":described", described.clone())
                .expression_attribute_values(
                    ":scopes",
                    AttributeValue::L(scopes.iter().map(|v| AttributeValue::S(v.clone())).collect()),
                )
                .expression_attribute_values(":id", AttributeValue::S(record.rs_id.clone()))
                .build()
                .map_err(build_err)?;
            Ok(TransactWriteItem::builder().update(update).build())
        };
        let tx = Transaction::new()
            .guard(set(rs_key(&record.rs_id))?, Refused::Gone)
            .guard(set(lookup_key(&record))?, Refused::Gone)
            .item(self.declared_entry(&record.rs_id, Some(scopes))?);
        let res = self.transact(tx).await;
        self.declared.clear();
        match res? {
            Ok(()) => Ok(Some(record)),
            Err(Refused::Gone | Refused::ResourceTaken) => Ok(None),
        }
    }

    /// Load a resource server by id (introspection's Basic user name). One round trip, none for a
    /// string that cannot be an id.
    pub async fn get_resource_server(&self, rs_id: &str, now: i64) -> Result<Option<ResourceServerRecord>, StoreError> {
        if !plausible_id(rs_id) {
            return Ok(None);
        }
        match self.get(&rs_key(rs_id), now).await? {
            Some(item) => ResourceServerRecord::from_item(&item).map(Some),
            None => Ok(None),
        }
    }

    /// The resource server registered for a resource URL (authorize's `resource` parameter),
    /// normalised first; a string that is not an acceptable resource URL names none. One GetItem.
    pub async fn resource_server_for(
        &self,
        resource: &str,
        now: i64,
    ) -> Result<Option<ResourceServerRecord>, StoreError> {
        let Ok(resource) = Resource::normalize(resource) else {
            return Ok(None);
        };
        match self.get(&resource_key(&resource), now).await? {
            Some(item) => ResourceServerRecord::from_item(&item).map(Some),
            None => Ok(None),
        }
    }

    /// Every resource server, oldest first (a scan: admin use only).
    pub async fn list_resource_servers(&self, now: i64) -> Result<Vec<ResourceServerRecord>, StoreError> {
        let mut out = self
            .scan_prefix(RS_PREFIX, now)
            .await?
            .iter()
            .map(ResourceServerRecord::from_item)
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| (a.created_at, &a.rs_id).cmp(&(b.created_at, &b.rs_id)));
        Ok(out)
    }

    /// Delete a resource server and its lookup item in one transaction. `false` if there was none.
    /// Two round trips (read the record for its resource, then delete both).
    pub async fn delete_resource_server(&self, rs_id: &str, now: i64) -> Result<bool, StoreError> {
        let Some(record) = self.get_resource_server(rs_id, now).await? else {
            return Ok(false);
        };
        let delete_record = Delete::builder()
            .table_name(self.table())
            .set_key(Some(rs_key(&record.rs_id).to_map()))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(build_err)?;
        // The lookup item is deleted only if it still points at this resource server.
        let lookup_key = lookup_key(&record);
        let delete_lookup = Delete::builder()
            .table_name(self.table())
            .set_key(Some(lookup_key.to_map()))
            .condition_expression("attribute_not_exists(pk) OR rs_id = :id")
            .expression_attribute_values(":id", AttributeValue::S(record.rs_id.clone()))
            .build()
            .map_err(build_err)?;
        let tx = Transaction::new()
            .guard(
                TransactWriteItem::builder().delete(delete_record).build(),
                Refused::Gone,
            )
            .guard(
                TransactWriteItem::builder().delete(delete_lookup).build(),
                Refused::Gone,
            )
            .item(self.declared_entry(&record.rs_id, None)?);
        let res = self.transact(tx).await;
        self.declared.clear();
        match res? {
            Ok(()) => Ok(true),
            Err(Refused::Gone | Refused::ResourceTaken) => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_formats() {
        let k = rs_key("lkrs_abc");
        assert_eq!((k.pk.as_str(), k.sk.as_str()), ("RS#lkrs_abc", "RS"));
        let k = resource_key(&Resource::parse("https://mcp.example.com/mcp").unwrap());
        assert_eq!(
            (k.pk.as_str(), k.sk.as_str()),
            ("RESOURCE#https://mcp.example.com/mcp", "RS")
        );
        assert!(!RESOURCE_PREFIX.starts_with(RS_PREFIX));
    }

    #[test]
    fn record_round_trips_through_both_items() {
        let r = ResourceServerRecord {
            rs_id: "lkrs_x".into(),
            secret_hash: secret::hash("lk_rss_s"),
            resource: "https://mcp.example.com/mcp".into(),
            scopes: vec!["read".into(), "write".into()],
            scope_descriptions: [("read".to_string(), "Read your files".to_string())].into(),
            created_at: 7,
        };
        assert_eq!(ResourceServerRecord::from_item(&record_item(&r)).unwrap(), r);
        let lookup = lookup_item(&r);
        assert_eq!(lookup.s("pk"), Some("RESOURCE#https://mcp.example.com/mcp"));
        assert_eq!(ResourceServerRecord::from_item(&lookup).unwrap(), r);
        assert!(r.verify_secret("lk_rss_s"));
        assert!(!r.verify_secret("lk_rss_t"));
    }

    #[test]
    fn declared_scopes_are_the_union_of_every_entry() {
        let item = Item::with_key(&declared_key())
            .set_s("type", "declared_scopes")
            .set_list("lkrs_b", &["mcp:tools".into(), "mcp:admin".into()])
            .set_list("lkrs_a", &["files:read".into(), "mcp:tools".into()])
            .set_list("lkrs_c", &[]);
        assert_eq!(declared_from_item(&item), vec!["files:read", "mcp:tools", "mcp:admin"]);
        let k = declared_key();
        assert_eq!((k.pk.as_str(), k.sk.as_str()), ("SCOPES", "DECLARED"));
        assert!(!"SCOPES".starts_with(RS_PREFIX) && !"SCOPES".starts_with(RESOURCE_PREFIX));
    }

    #[test]
    fn declared_scopes_cache_expires() {
        let c = DeclaredScopesCache::default();
        assert!(c.fresh(100).is_none());
        c.set(100, Arc::new(vec!["a".into()]));
        assert_eq!(c.fresh(100 + DECLARED_SCOPES_TTL - 1).unwrap().as_slice(), ["a"]);
        assert!(c.fresh(100 + DECLARED_SCOPES_TTL).is_none());
        assert!(c.fresh(99).is_none(), "a clock that went back does not trust the copy");
        c.clear();
        assert!(c.fresh(100).is_none());
    }
}
