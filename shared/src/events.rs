//! Where events go when something notices them: the request that notices an event only enqueues it
//! (never waits for a receiver), and `webhooks::deliver` signs and posts it later.
//!
//! - In AWS the sink is the SQS queue that triggers `functions/webhook-deliver` (`LATCHKEY_EVENTS_QUEUE_URL`);
//!   a send that fails (throttled, unreachable) is written to the DynamoDB outbox instead, which
//!   `webhook-deliver` drains on its schedule.
//! - In `latchkey serve` and the tests the sink is an in-process queue drained by a task that runs the
//!   same delivery code (`local::start`).
//! - Without either (a Lambda built without events), nothing is sent.
//!
//! A retry is the same message sent again with its attempt number and a delay (SQS `DelaySeconds`,
//! at most 15 minutes, or a timer in `serve`), so its `webhook-id` never changes.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::domain::webhook::Event;
use crate::store::Store;

/// The longest delay SQS accepts on a message.
pub const MAX_DELAY: u32 = 900;

/// One unit of delivery work: an event, to every webhook of its project that hears it
/// (`webhook_id: None`, the first attempt), or to one webhook again (`attempt` ≥ 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub event: Event,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_id: Option<String>,
    /// Attempts made so far (0 for a new event).
    #[serde(default)]
    pub attempt: u32,
}

impl Message {
    /// A new event, for every webhook that hears it.
    pub fn new(event: Event) -> Message {
        Message {
            event,
            webhook_id: None,
            attempt: 0,
        }
    }
}

/// A message and how long to hold it before delivering.
#[derive(Debug)]
pub struct Delayed {
    pub message: Message,
    pub delay: Duration,
}

/// Where enqueued messages go.
pub enum Sink {
    /// Nowhere: a process without events.
    Off,
    /// The in-process queue of `latchkey serve` and the tests.
    Local(mpsc::UnboundedSender<Delayed>),
    /// An SQS queue (AWS, or a local SQS-compatible server).
    Sqs {
        client: aws_sdk_sqs::Client,
        queue_url: String,
    },
}

/// The event sink of a process, and the operator's EventBridge bus when one is set.
pub struct Events {
    sink: Sink,
    bus: Option<(aws_sdk_eventbridge::Client, String)>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sink = match &self.sink {
            Sink::Off => "off",
            Sink::Local(_) => "local",
            Sink::Sqs { .. } => "sqs",
        };
        f.debug_struct("Events")
            .field("sink", &sink)
            .field("bus", &self.bus.as_ref().map(|(_, name)| name))
            .finish()
    }
}

impl Events {
    /// No events.
    pub fn off() -> Events {
        Events {
            sink: Sink::Off,
            bus: None,
        }
    }

    /// Events into `sink`, and onto `bus` when set.
    pub fn new(sink: Sink, bus: Option<(aws_sdk_eventbridge::Client, String)>) -> Events {
        Events { sink, bus }
    }

    /// Does anything happen to what is emitted?
    pub fn enabled(&self) -> bool {
        !matches!(self.sink, Sink::Off)
    }

    /// The operator's bus, if any.
    pub fn bus(&self) -> Option<&(aws_sdk_eventbridge::Client, String)> {
        self.bus.as_ref()
    }

    /// Enqueue a new event. Best effort: a failure is logged (and the outbox tried), never returned,
    /// so the request that noticed the event answers as it would have without it.
    pub async fn emit(&self, store: &Store, event: Event, now: i64) {
        if !self.enabled() {
            return;
        }
        tracing::info!(event = %event.kind, id = %event.id, "events: emitted");
        self.enqueue(store, Message::new(event), 0, now).await;
    }

    /// Enqueue `message` to be delivered after `delay` seconds (at most [`MAX_DELAY`]). In SQS, a
    /// failed send goes to the outbox with the same due time; `false` if that failed too.
    pub async fn enqueue(&self, store: &Store, message: Message, delay: u32, now: i64) -> bool {
        let delay = delay.min(MAX_DELAY);
        let event_id = message.event.id.clone();
        match self.send(message, delay).await {
            Ok(sent) => sent,
            Err(body) => {
                tracing::warn!(event = %event_id, "events: writing the refused message to the outbox");
                match store.put_outbox(&event_id, &body, now + i64::from(delay), now).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::error!(error = %e, event = %event_id, "events: the outbox write failed too; the event is lost");
                        false
                    }
                }
            }
        }
    }

    /// Hand `message` to the sink now, without the outbox (draining the outbox uses this, so it
    /// never writes to the outbox again). `Ok(false)`: no sink, or the message could not be encoded;
    /// `Err(body)`: the queue refused it, with the body it was sent.
    pub async fn send(&self, message: Message, delay: u32) -> Result<bool, String> {
        let delay = delay.min(MAX_DELAY);
        match &self.sink {
            Sink::Off => Ok(false),
            Sink::Local(tx) => Ok(tx
                .send(Delayed {
                    message,
                    delay: Duration::from_secs(u64::from(delay)),
                })
                .is_ok()),
            Sink::Sqs { client, queue_url } => {
                let body = match serde_json::to_string(&message) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::error!(error = %e, "events: encoding a message failed");
                        return Ok(false);
                    }
                };
                let sent = client
                    .send_message()
                    .queue_url(queue_url)
                    .message_body(&body)
                    .delay_seconds(delay as i32)
                    .send()
                    .await;
                match sent {
                    Ok(_) => Ok(true),
                    Err(e) => {
                        tracing::warn!(
                            error = %aws_sdk_sqs::error::DisplayErrorContext(e),
                            event = %message.event.id,
                            "events: the queue refused a message"
                        );
                        Err(body)
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::webhook::EventType;

    #[test]
    fn a_message_round_trips_as_json_and_a_new_one_has_no_webhook() {
        let e = Event::new(EventType::SessionFailed, "prj_1", 0, &[("reason", "access_denied")]);
        let m = Message::new(e);
        let json = serde_json::to_string(&m).unwrap();
        assert!(!json.contains("webhook_id"));
        let back: Message = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        let retry: Message = serde_json::from_str(
            &serde_json::to_string(&Message {
                webhook_id: Some("lkwh_1".into()),
                attempt: 2,
                ..m.clone()
            })
            .unwrap(),
        )
        .unwrap();
        assert_eq!(retry.attempt, 2);
        assert_eq!(retry.event.id, m.event.id, "a retry keeps its webhook-id");
    }
}
