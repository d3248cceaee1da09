//! Delivering events: sign (Standard Webhooks) and post to each webhook of the event's project that
//! hears it; a failure (non-2xx, timeout, refused address) is retried later as the same message with
//! the same `webhook-id`, after the configured delays; after the last attempt it is dead-lettered
//! and shown on the webhook (`GET /v1/webhooks/{id}`).
//!
//! The same code runs in `functions/webhook-deliver` (SQS-triggered; retries are delayed SQS
//! messages) and in `latchkey serve` (an in-process queue; retries are timers).

use std::time::Duration;

use crate::domain::webhook::{self, Failure, Webhook};
use crate::events::Message;
use crate::state::AppState;
use crate::store::FromItem;

/// What one attempt at one webhook came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    /// Why it failed, for the dead-letter record and the log (a status or a transport failure;
    /// never the receiver's body).
    Failed(String),
}

/// Handle one queued message: a new event fans out to every webhook of its project that hears it
/// (and onto the operator's bus); a retry goes to its one webhook. Failures are enqueued again with
/// their delay, or dead-lettered. Errors reading the store are returned so the queue redelivers.
pub async fn process(state: &AppState, msg: Message) -> Result<(), crate::store::StoreError> {
    let now = state.clock.now();
    let project = msg.event.project_id().to_string();
    let Some(kind) = msg.event.event_type() else {
        tracing::warn!(event = %msg.event.kind, "webhooks: dropping an event of an unknown type");
        return Ok(());
    };
    let hooks: Vec<Webhook> = match &msg.webhook_id {
        None => {
            let hooks = state.store.list_webhooks(&project, now).await?;
            // After the read: a message the queue redelivers because the store failed is put on
            // the bus once, not once per try.
            put_on_bus(state, &msg).await;
            hooks
        }
        Some(id) => state
            .store
            .get(&crate::store::webhooks::webhook_key(&project, id), now)
            .await?
            .map(|i| Webhook::from_item(&i))
            .transpose()?
            .into_iter()
            .collect(),
    };
    let body = match serde_json::to_vec(&msg.event) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "webhooks: encoding an event failed");
            return Ok(());
        }
    };
    // Every webhook at once: a slow receiver holds up only its own delivery.
    let attempts = futures_util::future::join_all(hooks.iter().filter(|h| h.hears(kind)).map(|hook| {
        let (id, body) = (&msg.event.id, &body);
        async move { (hook, post(state, hook, id, body).await) }
    }))
    .await;
    for (hook, outcome) in attempts {
        let attempt = msg.attempt + 1;
        match outcome {
            Attempt::Delivered => {
                tracing::info!(webhook = %hook.webhook_id, event = %msg.event.id, attempt, "webhooks: delivered");
            }
            Attempt::Failed(why) => {
                let schedule = &state.config.webhook_retry_schedule;
                let error = match schedule.get(msg.attempt as usize) {
                    Some(delay) => {
                        tracing::info!(webhook = %hook.webhook_id, event = %msg.event.id, attempt, error = %why, delay, "webhooks: delivery failed; retrying later");
                        let retry = Message {
                            event: msg.event.clone(),
                            webhook_id: Some(hook.webhook_id.clone()),
                            attempt,
                        };
                        if state.events.enqueue(&state.store, retry, *delay, now).await {
                            continue;
                        }
                        // Neither the queue nor the outbox took the retry: the last word is this.
                        format!("{why}; the retry could not be scheduled")
                    }
                    None => why,
                };
                tracing::warn!(webhook = %hook.webhook_id, event = %msg.event.id, attempt, error = %error, "webhooks: delivery failed for the last time; dead-lettered");
                let failure = Failure {
                    event_id: msg.event.id.clone(),
                    kind: msg.event.kind.clone(),
                    attempts: attempt,
                    error,
                    failed_at: now,
                };
                state.store.record_failure(hook, failure, now).await?;
            }
        }
    }
    Ok(())
}

/// One signed POST to `hook`: `webhook-id` is the event id, `webhook-timestamp` now, the signature
/// over `id.timestamp.body` with the webhook's secret. The URL goes through the outbound guard
/// again (an address allowed at registration may not be now).
pub async fn post(state: &AppState, hook: &Webhook, msg_id: &str, body: &[u8]) -> Attempt {
    let Ok(keyring) = crate::vault::keyring(state) else {
        return Attempt::Failed("no keyring to open the signing secret".into());
    };
    let secret = match keyring
        .decrypt(
            &webhook::secret_context(&hook.project_id, &hook.webhook_id),
            &hook.sealed_secret,
        )
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, webhook = %hook.webhook_id, "webhooks: opening a signing secret failed");
            return Attempt::Failed("the signing secret could not be opened".into());
        }
    };
    let Some(key) = std::str::from_utf8(&secret).ok().and_then(webhook::secret_key) else {
        return Attempt::Failed("the signing secret is malformed".into());
    };
    let allow = state.config.allow_loopback_outbound;
    let url = match url::Url::parse(&hook.url) {
        Ok(u) => u,
        Err(_) => return Attempt::Failed("the url is malformed".into()),
    };
    if let Err(r) = crate::net::check_url_host(&url, allow) {
        return Attempt::Failed(format!("the url's address is not allowed: {r}"));
    }
    let timestamp = state.clock.now();
    let signature = webhook::signature(&key, msg_id, timestamp, body);
    let sent = state
        .upstream
        .post(url)
        .timeout(Duration::from_secs(state.config.webhook_timeout_seconds as u64))
        .header("content-type", "application/json")
        .header("webhook-id", msg_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body.to_vec())
        .send()
        .await;
    match sent {
        Ok(res) if res.status().is_success() => Attempt::Delivered,
        Ok(res) => Attempt::Failed(format!("the receiver answered HTTP {}", res.status().as_u16())),
        Err(e) => match crate::vault::upstream::UpstreamError::from_reqwest(e) {
            crate::vault::upstream::UpstreamError::Timeout => {
                Attempt::Failed("the receiver did not answer in time".into())
            }
            crate::vault::upstream::UpstreamError::Refused(r) => {
                Attempt::Failed(format!("the url's address is not allowed: {r}"))
            }
            _ => Attempt::Failed("the receiver could not be reached".into()),
        },
    }
}

/// Put a new event on the operator's EventBridge bus (source `latchkey`, detail-type the event
/// type, detail the event), best effort.
async fn put_on_bus(state: &AppState, msg: &Message) {
    let Some((client, bus)) = state.events.bus() else {
        return;
    };
    let Ok(detail) = serde_json::to_string(&msg.event) else {
        return;
    };
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source("latchkey")
        .detail_type(&msg.event.kind)
        .detail(detail)
        .build();
    match client.put_events().entries(entry).send().await {
        Ok(out) if out.failed_entry_count() == 0 => {}
        Ok(_) => tracing::warn!(event = %msg.event.id, "webhooks: the event bus refused an event"),
        Err(e) => tracing::warn!(
            event = %msg.event.id,
            error = %aws_sdk_eventbridge::error::DisplayErrorContext(e),
            "webhooks: putting an event on the bus failed"
        ),
    }
}

/// Send the outbox's due messages to the queue (messages a noticing function could not send),
/// oldest first, one page per run; each is deleted once the queue has it. Returns how many moved.
pub async fn drain_outbox(state: &AppState) -> Result<usize, crate::store::StoreError> {
    let now = state.clock.now();
    let due = state.store.due_outbox(now, 25).await?;
    let mut moved = 0;
    for (key, body) in due {
        let Ok(message) = serde_json::from_str::<Message>(&body) else {
            tracing::warn!("webhooks: dropping a malformed outbox entry");
            state.store.delete(&key).await?;
            continue;
        };
        if matches!(state.events.send(message, 0).await, Ok(true)) {
            state.store.delete(&key).await?;
            moved += 1;
        }
    }
    Ok(moved)
}

/// The body of an SQS-triggered invocation: each record's body is a [`Message`]. Returns the
/// message ids that failed (for a partial batch response) so only they are redelivered.
pub async fn handle_sqs_event(state: &AppState, event: &serde_json::Value) -> Vec<String> {
    let records = event.get("Records").and_then(|r| r.as_array()).into_iter().flatten();
    // The batch's messages at once (each waits at most the delivery timeout), so the batch ends
    // within the function's timeout whatever the receivers do.
    let outcomes = futures_util::future::join_all(records.map(|record| async move {
        let id = record
            .get("messageId")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        let body = record.get("body").and_then(|v| v.as_str())?;
        let Ok(message) = serde_json::from_str::<Message>(body) else {
            tracing::warn!(message = %id, "webhooks: dropping a malformed queue message");
            return None;
        };
        match process(state, message).await {
            Ok(()) => None,
            Err(e) => {
                tracing::error!(error = %e, message = %id, "webhooks: processing a message failed; the queue will redeliver it");
                Some(id)
            }
        }
    }))
    .await;
    outcomes.into_iter().flatten().collect()
}
