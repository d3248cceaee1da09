//! Proactive health: refresh held tokens (users' connections, tools' tokens) before anyone needs
//! them — those whose access token expires within the next interval, and those not refreshed for a
//! day (refresh tokens that idle die at some providers). A provider that refuses the refresh marks
//! the tokens `reauthorization_required` and emits `connection.refresh_failed` (or
//! `tool.reauthorization_required`), through the same single-flight refresh as the proxy (its lease
//! keeps the two from refreshing twice).
//!
//! Runs in `functions/health` (EventBridge Scheduler, hourly by default) and on a timer in
//! `latchkey serve`. Budget: one Query page of the sparse `health` index per batch of [`BATCH`],
//! never a scan. A run reads page after page until nothing more is due or [`RUN_BUDGET`] has passed
//! (the function's timeout is 300 s), refreshing [`CONCURRENT`] holders at a time: with access tokens
//! that last an hour, every holder is due at every hourly run.

use crate::domain::connection::{Connection, ConnectionStatus, HeldTokens};
use crate::domain::tool::{ToolRecord, ToolTokens};
use crate::domain::webhook::IDLE_REFRESH;
use crate::state::AppState;
use crate::store::connections::CONN_PREFIX;
use crate::store::{FromItem, Item};
use crate::vault::refresh::{self, Holder};
use crate::vault::token_client::TokenClient;

/// Holders per Query page.
pub const BATCH: i32 = 25;
/// Holders refreshed at once.
pub const CONCURRENT: usize = 5;
/// How long a run starts new pages (what is left is due at the next run).
pub const RUN_BUDGET: std::time::Duration = std::time::Duration::from_secs(240);

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Holders the index named.
    pub due: usize,
    pub refreshed: usize,
    /// Refused by their provider: now `reauthorization_required`, an event emitted.
    pub refused: usize,
    /// Failed for another reason (provider unreachable, not configured): looked at again next run.
    pub failed: usize,
    /// Nothing to refresh with (no refresh token): looked at again in a day.
    pub skipped: usize,
}

/// One run: every holder due before the next run (now + the interval), page after page.
pub async fn run(state: &AppState) -> Result<Report, crate::store::StoreError> {
    use futures_util::StreamExt;
    let started = std::time::Instant::now();
    let now = state.clock.now();
    let horizon = now + look_ahead(state);
    let mut report = Report::default();
    let mut start = None;
    loop {
        let (items, next) = state.store.due_tokens(horizon, BATCH, start).await?;
        report.due += items.len();
        let checks: Vec<_> = items.iter().map(|item| check(state, item, now)).collect();
        let outcomes: Vec<Outcome> = futures_util::stream::iter(checks)
            .buffer_unordered(CONCURRENT)
            .collect()
            .await;
        for outcome in outcomes {
            match outcome {
                Outcome::Refreshed => report.refreshed += 1,
                Outcome::Refused => report.refused += 1,
                Outcome::Failed => report.failed += 1,
                Outcome::Skipped => report.skipped += 1,
            }
        }
        match next {
            Some(key) if started.elapsed() < RUN_BUDGET => start = Some(key),
            _ => break,
        }
    }
    tracing::info!(
        due = report.due,
        refreshed = report.refreshed,
        refused = report.refused,
        failed = report.failed,
        skipped = report.skipped,
        "health: run finished"
    );
    Ok(report)
}

/// How far a run looks ahead: the interval between runs (an hour when `serve`'s timer is off).
fn look_ahead(state: &AppState) -> i64 {
    match state.config.health_interval_seconds {
        0 => 3600,
        n => n.max(60),
    }
}

enum Outcome {
    Refreshed,
    Refused,
    Failed,
    Skipped,
}

/// The holder an index entry names, with its token client.
async fn holder_of(state: &AppState, item: &Item, now: i64) -> Option<(Holder, HeldTokens, TokenClient)> {
    let pk = item.s("pk")?;
    if pk.starts_with(CONN_PREFIX) {
        let conn = Connection::from_item(item).ok()?;
        let provider_item = state
            .store
            .get(
                &crate::store::providers::provider_key(&conn.project_id, &conn.provider),
                now,
            )
            .await
            .ok()?;
        let provider =
            crate::vault::resolve_provider(state, &conn.project_id, &conn.provider, provider_item.as_ref()).ok()?;
        Some((Holder::connection(&conn), conn.held(), provider.token_client()))
    } else {
        let tokens = ToolTokens::from_item(item).ok()?;
        let tool = state
            .store
            .get(&crate::store::tools::tool_key(&tokens.tool_id), now)
            .await
            .ok()??;
        let tool = ToolRecord::from_item(&tool).ok()?;
        Some((Holder::tool(&tokens), tokens.held(), crate::tools::token_client(&tool)))
    }
}

async fn check(state: &AppState, item: &Item, now: i64) -> Outcome {
    let Some(key) = item.key() else {
        return Outcome::Failed;
    };
    let version = item.n("version").unwrap_or(0);
    let later = |due: i64| {
        let key = key.clone();
        async move {
            if let Err(e) = state.store.push_due(&key, version, due).await {
                tracing::warn!(error = %e, "health: moving a check failed");
            }
        }
    };
    let Some((holder, held, client)) = holder_of(state, item, now).await else {
        // Its provider or tool is gone or misconfigured: look again next run, not every minute.
        later(now + look_ahead(state)).await;
        return Outcome::Failed;
    };
    if held.status != ConnectionStatus::Active {
        return Outcome::Skipped;
    }
    let tokens = match crate::vault::open_tokens(state, &holder.context, &held.sealed_tokens).await {
        Ok(t) => t,
        Err(_) => {
            later(now + look_ahead(state)).await;
            return Outcome::Failed;
        }
    };
    if tokens.refresh_token.is_none() {
        later(now + IDLE_REFRESH).await;
        return Outcome::Skipped;
    }
    match refresh::refresh(state, &client, &holder, &held, &tokens).await {
        Ok(_) => Outcome::Refreshed,
        Err(e) if e.code == "reauthorization_required" => Outcome::Refused,
        Err(e) => {
            tracing::info!(provider = %holder.provider, code = e.code, "health: a refresh failed; retrying next run");
            later(now + look_ahead(state)).await;
            Outcome::Failed
        }
    }
}
