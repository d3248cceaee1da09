//! Webhooks: a project's endpoints that hear about connection health, the events they hear, and the
//! Standard Webhooks signature each delivery carries (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::crypto::secret;
use crate::crypto::EncryptionContext;

/// Prefix of webhook ids.
pub const WEBHOOK_ID_PREFIX: &str = "lkwh_";
/// Prefix of event ids (the `webhook-id` header: stable across retries).
pub const EVENT_ID_PREFIX: &str = "evt_";
/// Prefix of signing secrets (Standard Webhooks): `whsec_` + base64 of 32 random bytes.
pub const SECRET_PREFIX: &str = "whsec_";
/// Webhooks per project.
pub const MAX_PER_PROJECT: usize = 10;
/// Longest webhook URL accepted.
pub const MAX_URL_LEN: usize = 2048;
/// Dead-lettered deliveries a webhook shows (newest first).
pub const MAX_FAILURES_SHOWN: usize = 20;
/// Held tokens not refreshed for this long are refreshed by the health run (refresh tokens that idle
/// die at some providers).
pub const IDLE_REFRESH: i64 = 86_400;
/// How long a dead-lettered delivery stays visible.
pub const FAILURE_RETENTION: i64 = 7 * 86_400;

super::status_enum! {
    /// What a webhook can hear about.
    pub enum EventType {
        /// A user connected a provider (the callback stored it, or the app confirmed it).
        ConnectionCreated => "connection.created",
        /// The provider refused the refresh: the user must connect again.
        ConnectionRefreshFailed => "connection.refresh_failed",
        /// A connection that had failed is connected again.
        ConnectionRecovered => "connection.recovered",
        /// The app deleted a connection.
        ConnectionDeleted => "connection.deleted",
        /// The user denied, or the provider errored, at the callback.
        SessionFailed => "session.failed",
        /// A tool's OAuth flow completed.
        ToolConnected => "tool.connected",
        /// A tool's authorization server refused the refresh: authorize the tool again.
        ToolReauthorizationRequired => "tool.reauthorization_required",
    }
}

/// One event as delivered: `{type, id, timestamp, data}`. `data` names the project and who or what
/// it is about, and the reason where there is one; never a token, code or secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    /// ISO 8601 UTC.
    pub timestamp: String,
    pub data: serde_json::Map<String, serde_json::Value>,
}

impl Event {
    /// A new event of `kind` in `project_id` at `now`, with `data` beside the project id.
    pub fn new(kind: EventType, project_id: &str, now: i64, data: &[(&str, &str)]) -> Event {
        let mut map = serde_json::Map::new();
        map.insert("project_id".into(), project_id.into());
        for (k, v) in data {
            map.insert((*k).into(), (*v).into());
        }
        Event {
            kind: kind.as_str().into(),
            id: secret::random_token(EVENT_ID_PREFIX, 16),
            timestamp: crate::clock::iso8601(now),
            data: map,
        }
    }

    /// The event's type, if it is one we know.
    pub fn event_type(&self) -> Option<EventType> {
        EventType::parse(&self.kind)
    }

    /// The project it belongs to.
    pub fn project_id(&self) -> &str {
        self.data.get("project_id").and_then(|v| v.as_str()).unwrap_or("")
    }
}

/// A webhook as stored: its secret sealed under [`secret_context`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    pub project_id: String,
    pub webhook_id: String,
    pub url: String,
    /// What it hears; every event when it was created without a list.
    pub events: Vec<EventType>,
    pub sealed_secret: Vec<u8>,
    pub created_at: i64,
    /// Dead-lettered deliveries, newest first (at most [`MAX_FAILURES_SHOWN`]).
    pub failures: Vec<Failure>,
}

impl Webhook {
    /// Does it hear `kind`?
    pub fn hears(&self, kind: EventType) -> bool {
        self.events.contains(&kind)
    }
}

/// A delivery that ran out of attempts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub attempts: u32,
    /// What the last attempt saw (a status code or a transport failure; never the response body).
    pub error: String,
    pub failed_at: i64,
}

/// The encryption context of a webhook's signing secret.
pub fn secret_context(project_id: &str, webhook_id: &str) -> EncryptionContext {
    crate::crypto::envelope::context([("kind", "webhook"), ("project", project_id), ("webhook", webhook_id)])
}

/// A new signing secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The key a secret signs with: the bytes its base64 names.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()
}

/// The `webhook-signature` header of a delivery: `v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`.
pub fn signature(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut signed = Vec::with_capacity(msg_id.len() + 24 + body.len());
    signed.extend_from_slice(msg_id.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(timestamp.to_string().as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    format!("v1,{}", STANDARD.encode(secret::hmac_sha256(key, &signed)))
}

/// Parse the `events` of a create request: names we know, no repeats; none (or an empty list) means
/// every event. The error names the first unknown one.
pub fn parse_events(names: Option<&[String]>) -> Result<Vec<EventType>, String> {
    let names = match names {
        None | Some([]) => return Ok(EventType::ALL.to_vec()),
        Some(n) => n,
    };
    let mut out = Vec::new();
    for name in names {
        let kind = EventType::parse(name).ok_or_else(|| {
            let shown = super::shown(name, 64);
            format!("unknown event {shown:?}")
        })?;
        if !out.contains(&kind) {
            out.push(kind);
        }
    }
    // The API's order, whatever order they were sent in.
    out.sort_by_key(|k| EventType::ALL.iter().position(|a| a == k));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_signature_of_the_spec_example() {
        // The example in the Standard Webhooks specification's test vectors.
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_new_secret_is_whsec_and_32_bytes() {
        let s = new_secret();
        assert!(s.starts_with("whsec_"));
        assert_eq!(secret_key(&s).unwrap().len(), 32);
        assert_ne!(s, new_secret());
        assert!(secret_key("nope").is_none());
    }

    #[test]
    fn events_parse_known_names_only() {
        assert_eq!(parse_events(None).unwrap(), EventType::ALL.to_vec());
        assert_eq!(parse_events(Some(&[])).unwrap(), EventType::ALL.to_vec());
        let two = vec![
            "tool.connected".to_string(),
            "connection.created".into(),
            "tool.connected".into(),
        ];
        assert_eq!(
            parse_events(Some(&two)).unwrap(),
            vec![EventType::ConnectionCreated, EventType::ToolConnected]
        );
        let bad = vec!["connection.exploded".to_string()];
        assert!(parse_events(Some(&bad)).unwrap_err().contains("connection.exploded"));
    }

    #[test]
    fn an_event_carries_its_project_and_never_more_than_it_is_given() {
        let e = Event::new(
            EventType::ConnectionRefreshFailed,
            "prj_1",
            0,
            &[("user_id", "u1"), ("provider", "google"), ("reason", "invalid_grant")],
        );
        assert!(e.id.starts_with("evt_"));
        assert_eq!(e.timestamp, "1970-01-01T00:00:00Z");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["type"], "connection.refresh_failed");
        assert_eq!(json["data"]["project_id"], "prj_1");
        assert_eq!(json["data"].as_object().unwrap().len(), 4);
    }
}
