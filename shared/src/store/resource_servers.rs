//! Resource servers: the MCP servers that trust latchkey. Each authenticates to the introspection
//! endpoint with its own id and secret, and is named by its canonical resource URL (RFC 8707), which
//! the authorize endpoint validates the `resource` parameter against.
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | resource server | `RS#<rs_id>` | `RS` | `rs_id`, `secret_hash`, `resource`, `scopes`, `created_at` |
//! | lookup by resource | `RESOURCE#<resource>` | `RS` | the same attributes, copied |
//! | declared scopes | `SCOPES` | `DECLARED` | one list attribute per resource server: `<rs_id>` → its scopes |
//!
//! The record, its lookup item and its entry in the declared-scope registry are written in one
//! transaction and deleted in one transaction, so a resource URL names at most one resource server,
//! authorize needs a single GetItem, and registration learns every declared scope from one GetItem
//! (cached per process for [`DECLARED_SCOPES_TTL`] seconds). No TTL.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use url::{Host, Url};

use super::item::Item;
use super::keys::Key;
use super::{Store, StoreError};
use crate::crypto::secret;

/// Prefix of resource-server ids (not secret, but recognisable).
pub const RS_ID_PREFIX: &str = "lkrs_";
/// Prefix of resource-server secrets (for secret scanners).
pub const RS_SECRET_PREFIX: &str = "lk_rss_";
/// Partition prefix of resource-server records.
pub const RS_PREFIX: &str = "RS#";
/// Partition prefix of the lookup items by resource URL.
pub const RESOURCE_PREFIX: &str = "RESOURCE#";
/// Longest resource URL we accept (a partition key is at most 2048 bytes).
pub const MAX_RESOURCE_LEN: usize = 1024;

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

/// Why a string is not an acceptable resource URL.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid resource {given:?}: {reason}")]
pub struct InvalidResource {
    pub given: String,
    pub reason: String,
}

/// A canonical resource URL (RFC 8707 §2): absolute, `https` (or `http` on a loopback host), no
/// fragment, no user info. A trailing slash is dropped only when the path is just `/` (and there is
/// no query), so `https://mcp.example.com/` and `https://mcp.example.com` are the same resource.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Resource(String);

impl Resource {
    /// Parse a resource URL an operator registers: it must already be written in normal form (what
    /// the `url` crate serialises, e.g. lowercase scheme and host, no default port, no dot segments),
    /// so the stored string is exactly the one given, less a root trailing slash. Anything else is
    /// refused with the form to write instead.
    pub fn parse(raw: &str) -> Result<Resource, InvalidResource> {
        let canonical = Self::normalize(raw)?;
        let trimmed_root = raw.strip_suffix('/').is_some_and(|r| r == canonical.0);
        if raw != canonical.0 && !trimmed_root {
            return Err(invalid(
                raw,
                format!("not in canonical form; write it as {}", canonical.0),
            ));
        }
        Ok(canonical)
    }

    /// Parse a resource URL leniently (a `resource` parameter a client presents): any spelling the
    /// WHATWG URL parser normalises to a registered resource names that resource.
    pub fn normalize(raw: &str) -> Result<Resource, InvalidResource> {
        if raw.is_empty() {
            return Err(invalid(raw, "empty".into()));
        }
        if raw.len() > MAX_RESOURCE_LEN {
            return Err(invalid(raw, format!("longer than {MAX_RESOURCE_LEN} characters")));
        }
        let url = Url::parse(raw).map_err(|e| invalid(raw, format!("not an absolute URL ({e})")))?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback_host(&url) => {}
            "http" => {
                return Err(invalid(
                    raw,
                    "http is only allowed on a loopback host (127.0.0.1, [::1] or localhost); use https".into(),
                ))
            }
            other => return Err(invalid(raw, format!("scheme {other:?} is not allowed; use https"))),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid(raw, "no host".into()));
        }
        if url.fragment().is_some() {
            return Err(invalid(raw, "must not contain a fragment (RFC 8707 §2)".into()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(raw, "must not contain user info".into()));
        }
        let mut s = url.as_str().to_string();
        if url.path() == "/" && url.query().is_none() {
            s.pop();
        }
        if s.len() > MAX_RESOURCE_LEN {
            return Err(invalid(raw, format!("longer than {MAX_RESOURCE_LEN} characters")));
        }
        Ok(Resource(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Resource {
    type Err = InvalidResource;

    /// The strict form, [`Resource::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Resource::parse(s)
    }
}

impl AsRef<str> for Resource {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn invalid(raw: &str, reason: String) -> InvalidResource {
    InvalidResource {
        given: raw.to_string(),
        reason,
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A resource server as stored: the secret only as its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceServerRecord {
    pub rs_id: String,
    pub secret_hash: String,
    /// The canonical resource URL (see [`Resource`]); the audience of tokens issued for it.
    pub resource: String,
    /// Scopes this resource server declares (beside the base scopes every resource accepts).
    pub scopes: Vec<String>,
    pub created_at: i64,
}

impl ResourceServerRecord {
    fn fill(&self, item: Item, kind: &str) -> Item {
        item.set_s("type", kind)
            .set_s("rs_id", &self.rs_id)
            .set_s("secret_hash", &self.secret_hash)
            .set_s("resource", &self.resource)
            .set_list("scopes", &self.scopes)
            .set_n("created_at", self.created_at)
    }

    /// The record item, `RS#<rs_id>` / `RS`.
    pub fn to_item(&self) -> Item {
        self.fill(Item::with_key(&rs_key(&self.rs_id)), "resource_server")
    }

    /// The lookup item, `RESOURCE#<resource>` / `RS`, carrying the same fields.
    pub fn to_lookup_item(&self) -> Item {
        let key = Key {
            pk: format!("{RESOURCE_PREFIX}{}", self.resource),
            sk: "RS".into(),
        };
        self.fill(Item::with_key(&key), "resource_lookup")
    }

    /// Read either item (the record or its lookup copy).
    pub fn from_item(item: &Item) -> Result<Self, StoreError> {
        Ok(ResourceServerRecord {
            rs_id: item.req_s("rs_id")?.to_string(),
            secret_hash: item.req_s("secret_hash")?.to_string(),
            resource: item.req_s("resource")?.to_string(),
            scopes: item.list("scopes"),
            created_at: item.n("created_at").unwrap_or(0),
        })
    }

    /// Does a presented secret match this resource server's? Constant-time.
    pub fn verify_secret(&self, presented: &str) -> bool {
        secret::verify(presented, &self.secret_hash)
    }
}

/// Could this string be a resource-server id? Cheap refusal of garbage before a round trip.
fn plausible_id(rs_id: &str) -> bool {
    rs_id.starts_with(RS_ID_PREFIX)
        && rs_id.len() <= 64
        && rs_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn build_err(e: impl fmt::Display) -> StoreError {
    StoreError::Service(format!("building request: {e}"))
}

fn transact_err(e: aws_sdk_dynamodb::error::SdkError<TransactWriteItemsError>) -> StoreError {
    if let Some(TransactWriteItemsError::TransactionCanceledException(c)) = e.as_service_error() {
        if c.cancellation_reasons()
            .iter()
            .any(|r| r.code() == Some("ConditionalCheckFailed"))
        {
            return StoreError::ConditionFailed;
        }
    }
    StoreError::Service(format!(
        "TransactWriteItems: {}",
        aws_sdk_dynamodb::error::DisplayErrorContext(e)
    ))
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
        let secret_value = secret::new_secret(RS_SECRET_PREFIX);
        let record = ResourceServerRecord {
            rs_id: secret::random_token(RS_ID_PREFIX, 16),
            secret_hash: secret::hash(&secret_value),
            resource: resource.as_str().to_string(),
            scopes: scopes.to_vec(),
            created_at: now,
        };
        let put = |item: Item| -> Result<TransactWriteItem, StoreError> {
            let put = Put::builder()
                .table_name(self.table())
                .set_item(Some(item.into_map()))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(build_err)?;
            Ok(TransactWriteItem::builder().put(put).build())
        };
        self.client()
            .transact_write_items()
            .transact_items(put(record.to_item())?)
            .transact_items(put(record.to_lookup_item())?)
            .transact_items(self.declared_entry(&record.rs_id, Some(&record.scopes))?)
            .send()
            .await
            .map_err(transact_err)?;
        self.declared.clear();
        Ok((record, secret_value))
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
        let Some(mut record) = self.get_resource_server(rs_id, now).await? else {
            return Ok(None);
        };
        record.scopes = scopes.to_vec();
        let set = |key: Key| -> Result<TransactWriteItem, StoreError> {
            let update = Update::builder()
                .table_name(self.table())
                .set_key(Some(key.to_map()))
                .update_expression("SET scopes = :scopes")
                .condition_expression("rs_id = :id")
                .expression_attribute_values(
                    ":scopes",
                    AttributeValue::L(scopes.iter().map(|v| AttributeValue::S(v.clone())).collect()),
                )
                .expression_attribute_values(":id", AttributeValue::S(record.rs_id.clone()))
                .build()
                .map_err(build_err)?;
            Ok(TransactWriteItem::builder().update(update).build())
        };
        let lookup_key = Key {
            pk: format!("{RESOURCE_PREFIX}{}", record.resource),
            sk: "RS".into(),
        };
        let res = self
            .client()
            .transact_write_items()
            .transact_items(set(rs_key(&record.rs_id))?)
            .transact_items(set(lookup_key)?)
            .transact_items(self.declared_entry(&record.rs_id, Some(scopes))?)
            .send()
            .await
            .map_err(transact_err);
        self.declared.clear();
        match res {
            Ok(_) => Ok(Some(record)),
            // Deleted concurrently.
            Err(StoreError::ConditionFailed) => Ok(None),
            Err(e) => Err(e),
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
        let lookup_key = Key {
            pk: format!("{RESOURCE_PREFIX}{}", record.resource),
            sk: "RS".into(),
        };
        let delete_lookup = Delete::builder()
            .table_name(self.table())
            .set_key(Some(lookup_key.to_map()))
            .condition_expression("attribute_not_exists(pk) OR rs_id = :id")
            .expression_attribute_values(":id", AttributeValue::S(record.rs_id.clone()))
            .build()
            .map_err(build_err)?;
        let res = self
            .client()
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(delete_record).build())
            .transact_items(TransactWriteItem::builder().delete(delete_lookup).build())
            .transact_items(self.declared_entry(&record.rs_id, None)?)
            .send()
            .await
            .map_err(transact_err);
        self.declared.clear();
        match res {
            Ok(_) => Ok(true),
            // Deleted concurrently.
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        Resource::parse(raw)
            .unwrap_or_else(|e| panic!("{raw}: {e}"))
            .into_string()
    }

    fn refused(raw: &str) -> String {
        match Resource::parse(raw) {
            Ok(r) => panic!("{raw} accepted as {r}"),
            Err(e) => e.reason,
        }
    }

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
    fn rfc8707_2_https_and_loopback_http_accepted_as_given() {
        assert_eq!(ok("https://mcp.example.com/mcp"), "https://mcp.example.com/mcp");
        assert_eq!(ok("https://mcp.example.com/mcp/"), "https://mcp.example.com/mcp/");
        assert_eq!(
            ok("https://mcp.example.com:8443/a?b=c"),
            "https://mcp.example.com:8443/a?b=c"
        );
        assert_eq!(ok("http://127.0.0.1:3000/mcp"), "http://127.0.0.1:3000/mcp");
        assert_eq!(ok("http://localhost:3000"), "http://localhost:3000");
        assert_eq!(ok("http://[::1]:3000/mcp"), "http://[::1]:3000/mcp");
    }

    #[test]
    fn root_trailing_slash_dropped_only_for_root_path() {
        assert_eq!(ok("https://mcp.example.com/"), "https://mcp.example.com");
        assert_eq!(ok("https://mcp.example.com"), "https://mcp.example.com");
        assert_eq!(ok("https://mcp.example.com/?q=/"), "https://mcp.example.com/?q=/");
    }

    #[test]
    fn rfc8707_2_refusals() {
        assert!(refused("http://mcp.example.com/mcp").contains("loopback"));
        assert!(refused("https://mcp.example.com/mcp#frag").contains("fragment"));
        assert!(refused("https://mcp.example.com/mcp#").contains("fragment"));
        assert!(refused("mcp.example.com/mcp").contains("absolute URL"));
        assert!(refused("not a url").contains("absolute URL"));
        assert!(refused("javascript:alert(1)").contains("scheme"));
        assert!(refused("ftp://mcp.example.com/").contains("scheme"));
        assert!(refused("https://user:pw@mcp.example.com/").contains("user info"));
        assert!(refused("").contains("empty"));
        assert!(refused(&format!("https://mcp.example.com/{}", "a".repeat(MAX_RESOURCE_LEN))).contains("longer"));
    }

    #[test]
    fn non_canonical_spellings_refused_with_the_form_to_use() {
        for (raw, want) in [
            ("HTTPS://MCP.Example.com/mcp", "https://mcp.example.com/mcp"),
            ("https://mcp.example.com:443/mcp", "https://mcp.example.com/mcp"),
            ("https://mcp.example.com/a/../mcp", "https://mcp.example.com/mcp"),
            (" https://mcp.example.com/mcp", "https://mcp.example.com/mcp"),
            ("https://mcp.example.com/m\ncp", "https://mcp.example.com/mcp"),
        ] {
            let reason = refused(raw);
            assert!(reason.ends_with(want), "{raw}: {reason}");
        }
    }

    #[test]
    fn lenient_normalisation_for_lookups() {
        let n = |s: &str| Resource::normalize(s).unwrap().into_string();
        assert_eq!(n("HTTPS://MCP.Example.com:443/"), "https://mcp.example.com");
        assert_eq!(n("https://mcp.example.com/mcp"), "https://mcp.example.com/mcp");
        assert!(Resource::normalize("http://mcp.example.com/").is_err());
        assert!(Resource::normalize("https://mcp.example.com/#x").is_err());
    }

    #[test]
    fn record_round_trips_through_both_items() {
        let r = ResourceServerRecord {
            rs_id: "lkrs_x".into(),
            secret_hash: secret::hash("lk_rss_s"),
            resource: "https://mcp.example.com/mcp".into(),
            scopes: vec!["read".into(), "write".into()],
            created_at: 7,
        };
        assert_eq!(ResourceServerRecord::from_item(&r.to_item()).unwrap(), r);
        let lookup = r.to_lookup_item();
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

    #[test]
    fn implausible_ids_need_no_round_trip() {
        assert!(plausible_id(&secret::random_token(RS_ID_PREFIX, 16)));
        assert!(!plausible_id("lkc_abc"));
        assert!(!plausible_id(&format!("lkrs_{}", "a".repeat(64))));
        assert!(!plausible_id("lkrs_a#b"));
    }
}
