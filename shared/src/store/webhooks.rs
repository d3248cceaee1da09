//! Webhooks, the event outbox, and the health index of held tokens.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | webhook | `HOOKS#<project_id>` | `HOOK#<webhook_id>` |
//! | a project's webhook count | `HOOKS#<project_id>` | `COUNT` |
//! | outbox entry | `OUTBOX` | `<due, 10 digits>#<event_id>` |
//!
//! Held tokens (connections, tool tokens) carry `health` (`"due"`) and `due` (epoch seconds) while
//! they are active: the sparse `health` index (partition `health`, sort `due`) is what the scheduled
//! health run queries (`due_tokens`), one page per run, never a scan.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem, Update};

use super::item::FromItem;
use super::keys::Key;
use super::{build_err, is_condition_failed, n, put_new_item, s, Item, Store, StoreError, Transaction};
use crate::domain::webhook::{EventType, Failure, Webhook, FAILURE_RETENTION, MAX_FAILURES_SHOWN, MAX_PER_PROJECT};

/// Partition prefix of a project's webhooks.
pub const HOOKS_PREFIX: &str = "HOOKS#";
const HOOK_SK_PREFIX: &str = "HOOK#";
/// The outbox partition.
pub const OUTBOX_PK: &str = "OUTBOX";
/// How long an outbox entry is kept when nothing drains it.
const OUTBOX_TTL: i64 = 7 * 86_400;
/// The health index: its name, and the value of its partition attribute on every active holder.
pub const HEALTH_INDEX: &str = "health";
pub const HEALTH_PARTITION: &str = "due";

/// The item of one webhook.
pub fn webhook_key(project_id: &str, webhook_id: &str) -> Key {
    Key {
        pk: format!("{HOOKS_PREFIX}{project_id}"),
        sk: format!("{HOOK_SK_PREFIX}{webhook_id}"),
    }
}

/// A project's webhook count.
pub fn count_key(project_id: &str) -> Key {
    Key {
        pk: format!("{HOOKS_PREFIX}{project_id}"),
        sk: "COUNT".into(),
    }
}

impl FromItem for Webhook {
    fn from_item(item: &Item) -> Result<Self, StoreError> {
        let pk = item.req_s("pk")?;
        let sk = item.req_s("sk")?;
        let project_id = pk
            .strip_prefix(HOOKS_PREFIX)
            .ok_or_else(|| StoreError::Malformed("webhook key".into()))?;
        let webhook_id = sk
            .strip_prefix(HOOK_SK_PREFIX)
            .ok_or_else(|| StoreError::Malformed("webhook key".into()))?;
        let failures = match item.s("failures") {
            Some(json) => serde_json::from_str(json).map_err(|_| StoreError::Malformed("webhook failures".into()))?,
            None => Vec::new(),
        };
        Ok(Webhook {
            project_id: project_id.to_string(),
            webhook_id: webhook_id.to_string(),
            url: item.req_s("url")?.to_string(),
            events: item.list("events").iter().filter_map(|e| EventType::parse(e)).collect(),
            sealed_secret: item
                .b("secret")
                .ok_or_else(|| StoreError::Malformed("webhook secret".into()))?
                .to_vec(),
            created_at: item.n("created_at").unwrap_or(0),
            failures,
        })
    }
}

/// Why a webhook was not created: the project has its ten already.
#[derive(Clone, Copy, Debug)]
struct Full;

/// Why a webhook was not deleted: there was none.
#[derive(Clone, Copy, Debug)]
struct NoSuchWebhook;

impl Store {
    /// Store a new webhook and count it, in one transaction; `Ok(false)` when the project already has
    /// [`MAX_PER_PROJECT`].
    pub async fn create_webhook(&self, hook: &Webhook, now: i64) -> Result<bool, StoreError> {
        let events: Vec<String> = hook.events.iter().map(|e| e.as_str().to_string()).collect();
        let item = Item::with_key(&webhook_key(&hook.project_id, &hook.webhook_id))
            .set_s("type", "webhook")
            .set_s("url", &hook.url)
            .set_list("events", &events)
            .set_b("secret", hook.sealed_secret.clone())
            .set_n("created_at", now);
        let count = Update::builder()
            .table_name(self.table())
            .set_key(Some(count_key(&hook.project_id).to_map()))
            .update_expression("SET #type = :type ADD webhooks :one")
            .condition_expression("attribute_not_exists(webhooks) OR webhooks < :max")
            .expression_attribute_names("#type", "type")
            .expression_attribute_values(":type", s("webhook_count"))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(MAX_PER_PROJECT as i64))
            .build()
            .map_err(build_err)?;
        let tx = Transaction::new()
            .guard(TransactWriteItem::builder().update(count).build(), Full)
            .item(put_new_item(self, item)?);
        Ok(self.transact(tx).await?.is_ok())
    }

    /// A project's webhooks (one Query), oldest first.
    pub async fn list_webhooks(&self, project_id: &str, now: i64) -> Result<Vec<Webhook>, StoreError> {
        let mut hooks: Vec<Webhook> = self
            .query_partition(&format!("{HOOKS_PREFIX}{project_id}"), now)
            .await?
            .iter()
            .filter(|i| i.s("sk").is_some_and(|sk| sk.starts_with(HOOK_SK_PREFIX)))
            .map(Webhook::from_item)
            .collect::<Result<_, _>>()?;
        hooks.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.webhook_id.cmp(&b.webhook_id)));
        Ok(hooks)
    }

    /// Delete a webhook and uncount it, in one transaction; `false` if the project has no such webhook.
    pub async fn delete_webhook(&self, project_id: &str, webhook_id: &str) -> Result<bool, StoreError> {
        let delete = Delete::builder()
            .table_name(self.table())
            .set_key(Some(webhook_key(project_id, webhook_id).to_map()))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(build_err)?;
        let count = Update::builder()
            .table_name(self.table())
            .set_key(Some(count_key(project_id).to_map()))
            .update_expression("ADD webhooks :minus")
            .condition_expression("webhooks > :zero")
            .expression_attribute_values(":minus", n(-1))
            .expression_attribute_values(":zero", n(0))
            .build()
            .map_err(build_err)?;
        let tx = Transaction::new()
            .guard(TransactWriteItem::builder().delete(delete).build(), NoSuchWebhook)
            .guard(TransactWriteItem::builder().update(count).build(), NoSuchWebhook);
        Ok(self.transact(tx).await?.is_ok())
    }

    /// Record a dead-lettered delivery on its webhook: newest first, at most [`MAX_FAILURES_SHOWN`],
    /// none older than [`FAILURE_RETENTION`]. `hook` is the webhook as the delivery read it; a
    /// webhook deleted since is left deleted. The write is conditional on the list it extends, so
    /// two deliveries dead-lettered at once (a batch, or two functions) both keep their record: the
    /// one that loses reads the webhook again and adds to what the other wrote.
    pub async fn record_failure(&self, hook: &Webhook, failure: Failure, now: i64) -> Result<(), StoreError> {
        let key = webhook_key(&hook.project_id, &hook.webhook_id);
        let mut seen = hook.failures.clone();
        for _ in 0..5 {
            let mut failures = vec![failure.clone()];
            failures.extend(seen.iter().filter(|f| f.failed_at > now - FAILURE_RETENTION).cloned());
            failures.truncate(MAX_FAILURES_SHOWN);
            let encode = |f: &[Failure]| serde_json::to_string(f).map_err(|e| StoreError::Service(e.to_string()));
            let update = self
                .client()
                .update_item()
                .table_name(self.table())
                .set_key(Some(key.to_map()))
                .update_expression("SET failures = :f")
                .expression_attribute_values(":f", s(&encode(&failures)?));
            let update = if seen.is_empty() {
                update.condition_expression("attribute_exists(pk) AND attribute_not_exists(failures)")
            } else {
                update
                    .condition_expression("attribute_exists(pk) AND failures = :seen")
                    .expression_attribute_values(":seen", s(&encode(&seen)?))
            };
            match update.send().await {
                Ok(_) => return Ok(()),
                Err(e) if is_condition_failed(&e) => match self.get(&key, now).await? {
                    Some(item) => seen = Webhook::from_item(&item)?.failures,
                    None => return Ok(()),
                },
                Err(e) => return Err(super::service_error("UpdateItem", e)),
            }
        }
        Err(StoreError::Service(
            "UpdateItem: recording a failure kept conflicting".into(),
        ))
    }

    /// Keep a message the queue refused, due at `due`.
    pub async fn put_outbox(&self, event_id: &str, body: &str, due: i64, now: i64) -> Result<(), StoreError> {
        let key = Key {
            pk: OUTBOX_PK.into(),
            sk: format!("{due:010}#{event_id}#{}", crate::crypto::secret::random_token("", 6)),
        };
        let item = Item::with_key(&key)
            .set_s("type", "outbox")
            .set_s("message", body)
            .set_n("ttl", now + OUTBOX_TTL);
        self.put(item).await
    }

    /// Outbox entries due at `now`, oldest first: one Query page of at most `limit`, as (key, message).
    pub async fn due_outbox(&self, now: i64, limit: i32) -> Result<Vec<(Key, String)>, StoreError> {
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("pk = :pk AND sk < :upto")
            .expression_attribute_values(":pk", s(OUTBOX_PK))
            .expression_attribute_values(":upto", s(&format!("{:010}$", now)))
            .consistent_read(true)
            .limit(limit)
            .send()
            .await
            .map_err(|e| super::service_error("Query", e))?;
        Ok(out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(Item::from)
            .filter(|i| !super::is_expired(i, now))
            .filter_map(|i| Some((i.key()?, i.s("message")?.to_string())))
            .collect())
    }

    /// Held tokens due for a health refresh before `before`: one page of the `health` index, at most
    /// `limit`, soonest first, from `start` (the previous page's end); with where the next page
    /// starts (`None`: this was the last).
    pub async fn due_tokens(
        &self,
        before: i64,
        limit: i32,
        start: Option<HashMap<String, AttributeValue>>,
    ) -> Result<(Vec<Item>, Option<HashMap<String, AttributeValue>>), StoreError> {
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(HEALTH_INDEX)
            .key_condition_expression("health = :h AND due < :before")
            .expression_attribute_values(":h", s(HEALTH_PARTITION))
            .expression_attribute_values(":before", n(before))
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| super::service_error("Query", e))?;
        let next = out.last_evaluated_key.filter(|k| !k.is_empty());
        Ok((
            out.items.unwrap_or_default().into_iter().map(Item::from).collect(),
            next,
        ))
    }
}

/// When an active holder is next due for a health check: its access token's expiry, or a day after
/// its last refresh when that is sooner (refresh tokens that idle die at some providers).
pub fn next_due(expires_at: Option<i64>, now: i64, idle: i64) -> i64 {
    match expires_at {
        Some(e) => e.min(now + idle),
        None => now + idle,
    }
}

/// The attributes that put an active holder in the health index.
pub(super) fn health_values(expires_at: Option<i64>, now: i64) -> [(&'static str, AttributeValue); 2] {
    [
        (":health", s(HEALTH_PARTITION)),
        (
            ":due",
            n(next_due(expires_at, now, crate::domain::webhook::IDLE_REFRESH)),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_due_times() {
        assert_eq!(webhook_key("prj_1", "lkwh_a").pk, "HOOKS#prj_1");
        assert_eq!(webhook_key("prj_1", "lkwh_a").sk, "HOOK#lkwh_a");
        assert_eq!(count_key("prj_1").sk, "COUNT");
        assert_eq!(next_due(Some(100), 0, 86_400), 100, "an expiry sooner than a day");
        assert_eq!(next_due(Some(200_000), 0, 86_400), 86_400, "idle for a day");
        assert_eq!(next_due(None, 10, 86_400), 86_410);
    }
}
