//! `POST /v1/webhooks`, `GET /v1/webhooks`, `GET /v1/webhooks/{webhook_id}`,
//! `DELETE /v1/webhooks/{webhook_id}`: a project's webhooks (X-API-Key). The signing secret is shown
//! once, at creation, and stored sealed; the URL is checked by the outbound guard here and again at
//! every delivery.

use crate::net::UrlShape;
use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

use crate::clock::iso8601;
use crate::crypto::secret;
use crate::domain::webhook::{self, Webhook, MAX_PER_PROJECT, MAX_URL_LEN, WEBHOOK_ID_PREFIX};
use crate::error::VaultError;
use crate::http::path::path_params;
use crate::http::{request, response};
use crate::state::AppState;
use crate::store::{webhooks, FromItem};
use crate::vault::{self, PresentedKey};

const LIST: &str = "/v1/webhooks";
const ONE: &str = "/v1/webhooks/{webhook_id}";

/// Route by path and method.
pub async fn handle(state: &AppState, req: Request) -> Response<Body> {
    let path = request::raw_path(&req).to_string();
    let res = if path == LIST {
        match *req.method() {
            Method::POST => create(state, &req).await,
            Method::GET => list(state, &req).await,
            _ => Err(vault::not_allowed("GET, POST")),
        }
    } else if let Some(p) = path_params(ONE, &path) {
        match *req.method() {
            Method::GET => show(state, &req, p[0]).await,
            Method::DELETE => delete(state, &req, p[0]).await,
            _ => Err(vault::not_allowed("GET, DELETE")),
        }
    } else {
        return response::not_found();
    };
    res.unwrap_or_else(|e| e.response())
}

fn bad(message: impl Into<String>) -> VaultError {
    VaultError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
}

fn not_found() -> VaultError {
    VaultError::new(StatusCode::NOT_FOUND, "not_found", "no such webhook in this project")
}

/// Check the presented API key against the store (one `GetItem`).
/// A webhook as the API shows it (never its secret).
fn webhook_json(h: &Webhook) -> Value {
    json!({
        "webhook_id": h.webhook_id,
        "url": h.url,
        "events": h.events.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
        "created_at": iso8601(h.created_at),
    })
}

/// A webhook id as sent in the path: our shape, or not found.
fn webhook_id(raw: &str) -> Result<String, VaultError> {
    let id = vault::path_segment(raw).map_err(|_| not_found())?;
    let ok = id.starts_with(WEBHOOK_ID_PREFIX)
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(id)
    } else {
        Err(not_found())
    }
}

/// Check a webhook URL: https (http only to loopback where outbound loopback is allowed, as in
/// `latchkey serve`), no credentials or fragment, and a host the outbound guard lets us reach.
pub async fn check_url(raw: &str, allow_loopback: bool) -> Result<url::Url, VaultError> {
    let refused = |why: String| VaultError::new(StatusCode::UNPROCESSABLE_ENTITY, "url_refused", why);
    if raw.len() > MAX_URL_LEN {
        return Err(bad(format!("url is longer than {MAX_URL_LEN} characters")));
    }
    let url = crate::net::outbound_url(raw, allow_loopback).map_err(|shape| match shape {
        UrlShape::NotUrl | UrlShape::NoHost => bad("url is not an absolute URL"),
        UrlShape::NotHttp => bad("url must be an https URL"),
        UrlShape::NotHttps => refused("url must be https".into()),
        UrlShape::UserInfo => bad("url must not carry credentials"),
        UrlShape::Fragment => bad("url must not have a fragment"),
    })?;
    let loopback = crate::net::is_loopback_host(&url);
    crate::net::check_url_host(&url, allow_loopback)
        .map_err(|r| refused(format!("the url's address is not allowed: {r}")))?;
    if let Some(url::Host::Domain(name)) = url.host() {
        if loopback && !allow_loopback {
            return Err(refused("the url's address is not allowed: loopback".into()));
        }
        // The guard resolves the name as a delivery would, and refuses it if any address is private.
        let resolver = crate::net::GuardedResolver { allow_loopback };
        let name: reqwest::dns::Name = name.parse().map_err(|_| bad("url has an invalid host"))?;
        if let Err(e) = reqwest::dns::Resolve::resolve(&resolver, name).await {
            let why = match crate::net::refused_by_guard(e.as_ref()) {
                Some(r) => format!("the url's address is not allowed: {r}"),
                None => "the url's host does not resolve".into(),
            };
            return Err(refused(why));
        }
    }
    Ok(url)
}

async fn create(state: &AppState, req: &Request) -> Result<Response<Body>, VaultError> {
    let key = PresentedKey::from_request(req)?;
    let body = vault::json_body(req)?;
    for name in body.keys() {
        if name != "url" && name != "events" {
            let shown = crate::domain::shown(name, 40);
            return Err(bad(format!("unknown field {shown:?}")));
        }
    }
    let raw_url = match body.get("url") {
        Some(Value::String(u)) if !u.is_empty() => u.clone(),
        Some(Value::String(_)) | None | Some(Value::Null) => return Err(bad("url is required")),
        Some(_) => return Err(bad("url must be a string")),
    };
    let names: Option<Vec<String>> = match body.get("events") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) if a.len() <= webhook::EventType::ALL.len() * 2 => Some(
            a.iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| bad("events must be an array of event names"))?,
        ),
        Some(Value::Array(_)) => return Err(bad("events lists too many names")),
        Some(_) => return Err(bad("events must be an array of event names")),
    };
    let events = webhook::parse_events(names.as_deref())
        .map_err(|m| VaultError::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_event", m))?;
    let now = state.clock.now();
    key.check(state, now).await?;
    let url = check_url(&raw_url, state.config.allow_loopback_outbound).await?;

    let webhook_id = secret::random_token(WEBHOOK_ID_PREFIX, 16);
    let signing_secret = webhook::new_secret();
    let sealed_secret = vault::keyring(state)?
        .encrypt(
            &webhook::secret_context(&key.project_id, &webhook_id),
            signing_secret.as_bytes(),
        )
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "webhooks: sealing a secret failed");
            vault::internal()
        })?;
    let hook = Webhook {
        project_id: key.project_id.clone(),
        webhook_id,
        url: url.to_string(),
        events,
        sealed_secret,
        created_at: now,
        failures: Vec::new(),
    };
    let created = state
        .store
        .create_webhook(&hook, now)
        .await
        .map_err(|e| vault::store_error("storing a webhook", e))?;
    if !created {
        return Err(VaultError::new(
            StatusCode::CONFLICT,
            "too_many_webhooks",
            format!("a project has at most {MAX_PER_PROJECT} webhooks; delete one first"),
        ));
    }
    tracing::info!(project = %key.project_id, webhook = %hook.webhook_id, "webhooks: created");
    let mut out = webhook_json(&hook);
    out["secret"] = json!(signing_secret);
    Ok(response::json(StatusCode::CREATED, &out))
}

async fn list(state: &AppState, req: &Request) -> Result<Response<Body>, VaultError> {
    let key = PresentedKey::from_request(req)?;
    let now = state.clock.now();
    key.check(state, now).await?;
    let hooks = state
        .store
        .list_webhooks(&key.project_id, now)
        .await
        .map_err(|e| vault::store_error("listing webhooks", e))?;
    Ok(response::json(
        StatusCode::OK,
        &json!({"webhooks": hooks.iter().map(webhook_json).collect::<Vec<_>>()}),
    ))
}

async fn show(state: &AppState, req: &Request, raw_id: &str) -> Result<Response<Body>, VaultError> {
    let key = PresentedKey::from_request(req)?;
    let id = webhook_id(raw_id)?;
    let now = state.clock.now();
    let items = state
        .store
        .get_many(&[key.store_key(), webhooks::webhook_key(&key.project_id, &id)], now)
        .await
        .map_err(|e| vault::store_error("reading a webhook", e))?;
    key.verify(items[0].as_ref())?;
    let hook = items[1]
        .as_ref()
        .map(Webhook::from_item)
        .transpose()
        .map_err(|e| vault::store_error("reading a webhook", e))?
        .ok_or_else(not_found)?;
    let mut out = webhook_json(&hook);
    out["failures"] = hook
        .failures
        .iter()
        .filter(|f| f.failed_at > now - webhook::FAILURE_RETENTION)
        .map(|f| {
            json!({
                "event_id": f.event_id,
                "type": f.kind,
                "attempts": f.attempts,
                "error": f.error,
                "failed_at": iso8601(f.failed_at),
            })
        })
        .collect();
    Ok(response::json(StatusCode::OK, &out))
}

async fn delete(state: &AppState, req: &Request, raw_id: &str) -> Result<Response<Body>, VaultError> {
    let key = PresentedKey::from_request(req)?;
    let id = webhook_id(raw_id)?;
    let now = state.clock.now();
    key.check(state, now).await?;
    let deleted = state
        .store
        .delete_webhook(&key.project_id, &id)
        .await
        .map_err(|e| vault::store_error("deleting a webhook", e))?;
    if !deleted {
        return Err(not_found());
    }
    tracing::info!(project = %key.project_id, webhook = %id, "webhooks: deleted");
    Ok(response::json(
        StatusCode::OK,
        &json!({"deleted": true, "webhook_id": id}),
    ))
}
