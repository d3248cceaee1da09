//! Grants and the tokens issued from them, as items (the types and token formats are
//! `domain::grant`'s). Every token we issue embeds its grant id, and lives in its grant's partition,
//! so a lookup is one GetItem and revoking a grant finds every token with one Query.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | grant | `GRANT#<grant_id>` | `GRANT` |
//! | authorization code | `GRANT#<grant_id>` | `CODE#<sha256(code)>` |
//! | access token | `GRANT#<grant_id>` | `AT#<sha256(token)>` |
//! | refresh token | `GRANT#<grant_id>` | `RT#<sha256(token)>` |
//! | a user's grant (index) | `USERGRANT#<sub>` | `GRANT#<grant_id>` |
//!
//! The per-user index item lets the account page list a user's grants with one Query. It is written
//! with the grant, outlives it (its `ttl` is slid past the grant's whenever the grant's `last_used` is
//! recorded, at most hourly, in the token transaction), and is deleted when the grant is revoked.
//!
//! A code redemption or a refresh is one transaction ([`WriteRefused`] names which condition failed):
//! consume the code (mark it used) or rotate the refresh token, check the grant is active and slide
//! its expiry, put the new tokens. A rotated refresh token keeps the hash of its one live successor
//! (`successor`); a retry within the grace window supersedes that successor (marks it rotated) in
//! the same transaction, so one token never has two live chains ([`Rotation`]). A dynamically
//! registered client's first use also removes its unused-registration `ttl` in that transaction
//! (`clients::first_use`). Revoking a grant marks it `revoked` first, so no later transaction
//! can issue from it, then deletes its codes and tokens.

use aws_sdk_dynamodb::types::{DeleteRequest, TransactWriteItem, Update, WriteRequest};

use super::item::{FromItem, Item};
use super::keys::{self, Key};
use super::{build_err, n, put_new_item, s, Store, StoreError, Transaction, TTL_ATTR};
use crate::crypto::secret;
use crate::domain::grant::{CodeRecord, Grant, GrantStatus, Issue, TokenRecord, TokenStatus, LAST_USED_EVERY};

pub fn grant_key(grant_id: &str) -> Key {
    Key {
        pk: format!("{}{grant_id}", keys::GRANT_PREFIX),
        sk: "GRANT".into(),
    }
}

fn token_key(grant_id: &str, kind: &str, token: &str) -> Key {
    Key {
        pk: format!("{}{grant_id}", keys::GRANT_PREFIX),
        sk: format!("{kind}#{}", secret::hash(token)),
    }
}

/// Partition prefix of the per-user grant index.
pub const USER_GRANTS_PREFIX: &str = "USERGRANT#";

/// One user's index item for one grant: `USERGRANT#<sub>` / `GRANT#<grant_id>`.
pub fn user_grant_key(sub: &str, grant_id: &str) -> Key {
    Key {
        pk: format!("{USER_GRANTS_PREFIX}{sub}"),
        sk: format!("{}{grant_id}", keys::GRANT_PREFIX),
    }
}

/// The per-user index item of a grant (what the account page lists; the grant item stays the truth
/// for its status).
fn user_grant_item(grant: &Grant, ttl: i64) -> Item {
    Item::with_key(&user_grant_key(&grant.sub, &grant.grant_id))
        .set_s("type", "user_grant")
        .set_s("grant_id", &grant.grant_id)
        .set_s("client_id", &grant.client_id)
        .set_s("resource", &grant.resource)
        .set_n("created_at", grant.created_at)
        .set_n(TTL_ATTR, ttl)
}

pub fn code_key(grant_id: &str, code: &str) -> Key {
    token_key(grant_id, "CODE", code)
}
pub fn access_key(grant_id: &str, token: &str) -> Key {
    token_key(grant_id, "AT", token)
}
pub fn refresh_key(grant_id: &str, token: &str) -> Key {
    token_key(grant_id, "RT", token)
}

fn grant_item(grant: &Grant, ttl: i64) -> Item {
    Item::with_key(&grant_key(&grant.grant_id))
        .set_s("type", "grant")
        .set_s("grant_id", &grant.grant_id)
        .set_s("client_id", &grant.client_id)
        .set_s("sub", &grant.sub)
        .set_s("username", &grant.username)
        .set_s("resource", &grant.resource)
        .set_s("scope", &grant.scope)
        .set_s("status", GrantStatus::Active.as_str())
        .set_n("created_at", grant.created_at)
        .set_opt_s("client_name", grant.client_name.clone())
        .set_opt_s("client_host", grant.client_host.clone())
        .set_n(TTL_ATTR, ttl)
}

impl FromItem for Grant {
    fn from_item(item: &Item) -> Result<Self, StoreError> {
        Ok(Grant {
            grant_id: item.req_s("grant_id")?.into(),
            client_id: item.req_s("client_id")?.into(),
            sub: item.req_s("sub")?.into(),
            username: item.req_s("username")?.into(),
            resource: item.req_s("resource")?.into(),
            scope: item.req_s("scope")?.into(),
            created_at: item.n("created_at").unwrap_or(0),
            client_name: item.s("client_name").map(str::to_string),
            client_host: item.s("client_host").map(str::to_string),
            last_used: item.n("last_used"),
        })
    }
}

fn token_item(record: &TokenRecord, key: &Key, kind: &str) -> Item {
    Item::with_key(key)
        .set_s("type", kind)
        .set_s("grant_id", &record.grant_id)
        .set_s("client_id", &record.client_id)
        .set_s("sub", &record.sub)
        .set_s("username", &record.username)
        .set_s("resource", &record.resource)
        .set_s("scope", &record.scope)
        .set_s("status", TokenStatus::Active.as_str())
        .set_n("iat", record.issued_at)
        .set_n("exp", record.expires_at)
        .set_n(TTL_ATTR, record.expires_at)
}

impl FromItem for TokenRecord {
    fn from_item(item: &Item) -> Result<Self, StoreError> {
        Ok(TokenRecord {
            grant_id: item.req_s("grant_id")?.into(),
            client_id: item.req_s("client_id")?.into(),
            sub: item.req_s("sub")?.into(),
            username: item.req_s("username")?.into(),
            resource: item.req_s("resource")?.into(),
            scope: item.req_s("scope")?.into(),
            issued_at: item.n("iat").unwrap_or(0),
            expires_at: item.n("exp").unwrap_or(0),
            rotated_at: item.n("rotated_at"),
            successor: item.s("successor").map(str::to_string),
        })
    }
}

impl FromItem for CodeRecord {
    fn from_item(item: &Item) -> Result<Self, StoreError> {
        Ok(CodeRecord {
            redirect_uri: item.req_s("redirect_uri")?.into(),
            // Codes stored before the attribute: the strict reading (sent, so required).
            redirect_uri_sent: item.s("redirect_uri_sent") != Some("false"),
            code_challenge: item.req_s("code_challenge")?.into(),
            expires_at: item.n("exp").unwrap_or(0),
            used: item.s("used") != Some("false"),
        })
    }
}

/// Why a conditional token write did not happen (the typed refusal of its transaction).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteRefused {
    /// The code or refresh token was already consumed (and not within the grace window).
    Consumed,
    /// The grant was revoked.
    GrantRevoked,
    /// Superseding within the grace window: the live successor is no longer active (its holder
    /// already rotated it, or it was revoked): the chain moved on without the presented token.
    SuccessorGone,
    /// A client's first use: the client (or its dedup item) is gone or expired since it was read.
    ClientGone,
}

/// How a refresh token is consumed (OAuth 2.1 §4.3.1). Either way the new refresh token is the one
/// live token of its chain: a token never has two live successors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotation<'a> {
    /// The presented token is active: mark it rotated, its successor the new token.
    First,
    /// The presented token was rotated at or after `cutoff` (the grace window) and its live
    /// successor's hash is `successor`: mark that successor rotated (superseded) and make the new
    /// token the presented one's successor instead.
    Supersede { successor: &'a str, cutoff: i64 },
}

/// The grant must be active; its expiry slides to outlive the newest refresh token, and when this
/// use is to be recorded (`used_at`), `last_used` is set too.
fn grant_active_touch(
    store: &Store,
    grant_id: &str,
    grant_ttl: i64,
    used_at: Option<i64>,
) -> Result<TransactWriteItem, StoreError> {
    let mut update = Update::builder()
        .table_name(store.table())
        .set_key(Some(grant_key(grant_id).to_map()))
        .condition_expression("#status = :active")
        .expression_attribute_names("#status", "status")
        .expression_attribute_names("#ttl", TTL_ATTR)
        .expression_attribute_values(":active", s(GrantStatus::Active.as_str()))
        .expression_attribute_values(":gttl", n(grant_ttl));
    update = match used_at {
        Some(at) => update
            .update_expression("SET #ttl = :gttl, last_used = :used")
            .expression_attribute_values(":used", n(at)),
        None => update.update_expression("SET #ttl = :gttl"),
    };
    Ok(TransactWriteItem::builder()
        .update(update.build().map_err(build_err)?)
        .build())
}

/// The grant's per-user index item, written whole (so a grant from before the index gains one on its
/// next recorded use), with its `ttl` past the grant's new expiry until the next recorded use.
fn user_grant_touch(
    store: &Store,
    grant: &Grant,
    grant_ttl: i64,
    used_at: i64,
) -> Result<TransactWriteItem, StoreError> {
    let item = user_grant_item(grant, grant_ttl + LAST_USED_EVERY).set_n("last_used", used_at);
    let put = aws_sdk_dynamodb::types::Put::builder()
        .table_name(store.table())
        .set_item(Some(item.into_map()))
        .build()
        .map_err(build_err)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

impl Store {
    /// Write a new grant and its first authorization code (authorize). One round trip.
    pub async fn put_grant_with_code(
        &self,
        grant: &Grant,
        code: &str,
        record: &CodeRecord,
        grant_ttl: i64,
    ) -> Result<(), StoreError> {
        let code_item = Item::with_key(&code_key(&grant.grant_id, code))
            .set_s("type", "code")
            .set_s("redirect_uri", &record.redirect_uri)
            .set_s(
                "redirect_uri_sent",
                if record.redirect_uri_sent { "true" } else { "false" },
            )
            .set_s("code_challenge", &record.code_challenge)
            .set_s("used", "false")
            .set_n("exp", record.expires_at)
            .set_n(TTL_ATTR, record.expires_at);
        let tx = Transaction::new()
            .item(put_new_item(self, grant_item(grant, grant_ttl))?)
            .item(put_new_item(self, user_grant_item(grant, grant_ttl))?)
            .item(put_new_item(self, code_item)?);
        self.transact_all(tx).await
    }

    /// Consume a code and issue tokens, atomically: the code must be unused, the grant active.
    /// One round trip.
    /// The consumed code is kept (marked used) until `keep_until`, so a replay after the code's own
    /// 60 seconds is still recognised and revokes the grant.
    pub async fn redeem_code(
        &self,
        grant_id: &str,
        code: &str,
        issue: &Issue,
        now: i64,
    ) -> Result<Result<(), WriteRefused>, StoreError> {
        let consume = Update::builder()
            .table_name(self.table())
            .set_key(Some(code_key(grant_id, code).to_map()))
            .update_expression("SET used = :true, used_at = :now, #ttl = :keep")
            .condition_expression("used = :false AND #ttl > :now")
            .expression_attribute_names("#ttl", TTL_ATTR)
            .expression_attribute_values(":true", s("true"))
            .expression_attribute_values(":false", s("false"))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":keep", n(issue.access.expires_at.max(now + 60)))
            .build()
            .map_err(build_err)?;
        let consume = Transaction::new().guard(
            TransactWriteItem::builder().update(consume).build(),
            WriteRefused::Consumed,
        );
        self.write_issue(grant_id, consume, issue).await
    }

    /// Rotate a refresh token and issue new tokens, atomically (see [`Rotation`]); the grant must be
    /// active. One round trip.
    pub async fn rotate_refresh(
        &self,
        grant_id: &str,
        refresh_token: &str,
        rotation: Rotation<'_>,
        issue: &Issue,
        now: i64,
    ) -> Result<Result<(), WriteRefused>, StoreError> {
        let next = issue.refresh_token.as_deref().map(secret::hash).unwrap_or_default();
        let presented = Update::builder()
            .table_name(self.table())
            .set_key(Some(refresh_key(grant_id, refresh_token).to_map()))
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#ttl", TTL_ATTR)
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":next", s(&next));
        let mut tx = Transaction::new();
        match rotation {
            Rotation::First => {
                let update = presented
                    .update_expression("SET #status = :rotated, rotated_at = :now, successor = :next")
                    .condition_expression("#ttl > :now AND #status = :active")
                    .expression_attribute_values(":rotated", s(TokenStatus::Rotated.as_str()))
                    .expression_attribute_values(":active", s(TokenStatus::Active.as_str()))
                    .build()
                    .map_err(build_err)?;
                tx = tx.guard(
                    TransactWriteItem::builder().update(update).build(),
                    WriteRefused::Consumed,
                );
            }
            Rotation::Supersede { successor, cutoff } => {
                let update = presented
                    .update_expression("SET successor = :next")
                    .condition_expression(
                        "#ttl > :now AND #status = :rotated AND rotated_at >= :cutoff AND successor = :expected",
                    )
                    .expression_attribute_values(":rotated", s(TokenStatus::Rotated.as_str()))
                    .expression_attribute_values(":cutoff", n(cutoff))
                    .expression_attribute_values(":expected", s(successor))
                    .build()
                    .map_err(build_err)?;
                let superseded = Update::builder()
                    .table_name(self.table())
                    .set_key(Some(
                        Key {
                            pk: grant_key(grant_id).pk,
                            sk: format!("RT#{successor}"),
                        }
                        .to_map(),
                    ))
                    .update_expression("SET #status = :rotated, rotated_at = :now, successor = :next")
                    .condition_expression("attribute_exists(pk) AND #status = :active")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":rotated", s(TokenStatus::Rotated.as_str()))
                    .expression_attribute_values(":active", s(TokenStatus::Active.as_str()))
                    .expression_attribute_values(":now", n(now))
                    .expression_attribute_values(":next", s(&next))
                    .build()
                    .map_err(build_err)?;
                tx = tx
                    .guard(
                        TransactWriteItem::builder().update(update).build(),
                        WriteRefused::Consumed,
                    )
                    .guard(
                        TransactWriteItem::builder().update(superseded).build(),
                        WriteRefused::SuccessorGone,
                    );
            }
        }
        self.write_issue(grant_id, tx, issue).await
    }

    /// Consume the presented code or refresh token (`consume`), check the grant is active and slide
    /// its expiry, and put the new tokens, in one transaction (retried on conflicts: two tabs
    /// refreshing, a replayed code).
    async fn write_issue(
        &self,
        grant_id: &str,
        consume: Transaction<WriteRefused>,
        issue: &Issue,
    ) -> Result<Result<(), WriteRefused>, StoreError> {
        let access = token_item(
            &issue.access,
            &access_key(grant_id, &issue.access_token),
            "access_token",
        );
        let used_at = issue.record_use.as_ref().map(|_| issue.access.issued_at);
        let mut tx = consume
            .guard(
                grant_active_touch(self, grant_id, issue.grant_ttl, used_at)?,
                WriteRefused::GrantRevoked,
            )
            .item(put_new_item(self, access)?);
        if let Some(grant) = &issue.record_use {
            // In the same transaction: refused with it if the grant is no longer active.
            tx = tx.item(user_grant_touch(self, grant, issue.grant_ttl, issue.access.issued_at)?);
        }
        if let (Some(t), Some(r)) = (&issue.refresh_token, &issue.refresh) {
            let refresh = token_item(r, &refresh_key(grant_id, t), "refresh_token");
            tx = tx.item(put_new_item(self, refresh)?);
        }
        if let Some(first) = &issue.first_use {
            // The client's unused-registration expiry goes, in the same round trip (issue 12 item 8).
            tx = super::clients::first_use(self, first, issue.access.issued_at, tx, WriteRefused::ClientGone)?;
        }
        self.transact(tx).await
    }

    /// Every live grant with its status, optionally only one user's. A scan: admin commands only.
    pub async fn list_grants(&self, sub: Option<&str>, now: i64) -> Result<Vec<(Grant, GrantStatus)>, StoreError> {
        let mut out = Vec::new();
        for item in self.scan_prefix(keys::GRANT_PREFIX, now).await? {
            if item.s("sk") != Some("GRANT") {
                continue;
            }
            let grant = Grant::from_item(&item)?;
            if sub.is_none_or(|s| s == grant.sub) {
                out.push((grant, item.status().unwrap_or(GrantStatus::Active)));
            }
        }
        Ok(out)
    }

    /// One user's active grants, newest first: one Query of their index partition, then one
    /// BatchGetItem of the grants (the truth for status and `last_used`) per 100.
    pub async fn user_grants(&self, sub: &str, now: i64) -> Result<Vec<Grant>, StoreError> {
        let index = self.query_partition(&format!("{USER_GRANTS_PREFIX}{sub}"), now).await?;
        let ids: Vec<&str> = index.iter().filter_map(|i| i.s("grant_id")).collect();
        let mut out = Vec::new();
        for chunk in ids.chunks(100) {
            let keys: Vec<Key> = chunk.iter().map(|id| grant_key(id)).collect();
            for item in self.get_many(&keys, now).await?.into_iter().flatten() {
                if item.status() == Some(GrantStatus::Active) {
                    let grant = Grant::from_item(&item)?;
                    // The index is keyed by the user; the grant must agree.
                    if grant.sub == sub {
                        out.push(grant);
                    }
                }
            }
        }
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.grant_id.cmp(&b.grant_id)));
        Ok(out)
    }

    /// Every live grant of one client, whatever its status (a consistent scan: admin commands only).
    pub async fn grants_of_client(&self, client_id: &str, now: i64) -> Result<Vec<Grant>, StoreError> {
        let mut out = Vec::new();
        for item in self.scan_prefix(keys::GRANT_PREFIX, now).await? {
            if item.s("sk") == Some("GRANT") && item.s("client_id") == Some(client_id) {
                out.push(Grant::from_item(&item)?);
            }
        }
        Ok(out)
    }

    /// Revoke a grant: mark it revoked (so no new token can be issued from it), then delete every
    /// code and token in its partition. Idempotent.
    pub async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<(), StoreError> {
        let marked = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(grant_key(grant_id).to_map()))
            .update_expression("SET #status = :revoked, revoked_at = if_not_exists(revoked_at, :now)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":revoked", s(GrantStatus::Revoked.as_str()))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        if let Err(e) = marked {
            let missing = e
                .as_service_error()
                .map(|s| s.is_conditional_check_failed_exception())
                .unwrap_or(false);
            if !missing {
                return Err(StoreError::Service(format!(
                    "UpdateItem: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(e)
                )));
            }
        }
        // The grant is revoked now: introspection and every token transaction check its status.
        // Deleting its codes and tokens below is cleanup, so a stale copy cannot outlive a restore.
        let pk = grant_key(grant_id).pk;
        // Expired items read as absent and DynamoDB deletes them; only live ones need deleting.
        let items = self.query_partition(&pk, now).await?;
        // The user's index item goes too, so the account page no longer lists the grant.
        let index = items
            .iter()
            .find(|i| i.s("sk") == Some("GRANT"))
            .and_then(|g| g.s("sub"))
            .map(|sub| user_grant_key(sub, grant_id));
        let requests: Vec<WriteRequest> = items
            .iter()
            .filter(|i| i.s("sk") != Some("GRANT"))
            .filter_map(Item::key)
            .chain(index)
            .filter_map(|key| {
                let del = DeleteRequest::builder().set_key(Some(key.to_map())).build().ok()?;
                Some(WriteRequest::builder().delete_request(del).build())
            })
            .collect();
        for chunk in requests.chunks(25) {
            let mut pending = chunk.to_vec();
            for _ in 0..5 {
                if pending.is_empty() {
                    break;
                }
                let out = self
                    .client()
                    .batch_write_item()
                    .request_items(self.table(), std::mem::take(&mut pending))
                    .send()
                    .await
                    .map_err(|e| {
                        StoreError::Service(format!(
                            "BatchWriteItem: {}",
                            aws_sdk_dynamodb::error::DisplayErrorContext(e)
                        ))
                    })?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(self.table()))
                    .unwrap_or_default();
            }
            if !pending.is_empty() {
                return Err(StoreError::Service("BatchWriteItem: items left unprocessed".into()));
            }
        }
        Ok(())
    }
}
