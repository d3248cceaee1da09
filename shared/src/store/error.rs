//! How the store fails, and how a failure answers on each wire: [`StoreError`], [`Context`] to name
//! the step that failed, and `From<StoreError>` for each wire error type (`OAuthError`, `VaultError`,
//! `ToolError`), so a flow or handler writes `?`.
//!
//! | failure | OAuth | vault | tools | log |
//! |---|---|---|---|---|
//! | [`StoreError::Busy`] | 503 `temporarily_unavailable` | 503 `temporarily_unavailable` | 503 | warn |
//! | anything else | 500 `server_error` | 500 `internal_error` | 500 | error, with the cause |
//!
//! The cause (SDK detail, which step) goes to the log only; the wire gets a generic description.

use crate::error::{OAuthError, ToolError, VaultError};

/// Why a store call failed. `Service` carries the SDK detail for the log, never for the wire.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write's condition was false (the item exists, was consumed, or changed).
    #[error("conditional check failed")]
    ConditionFailed,
    /// A transaction kept conflicting with concurrent ones on the same items (retried; answer 503).
    #[error("transaction conflict persisted after retries")]
    Busy,
    /// DynamoDB (or the emulator) failed.
    #[error("dynamodb: {0}")]
    Service(String),
    /// A stored item did not have the shape we wrote.
    #[error("stored item is malformed: {0}")]
    Malformed(String),
}

impl StoreError {
    /// Name the step that failed (kept in the detail of `Service` and `Malformed`, which the log shows).
    pub fn context(self, what: &str) -> Self {
        match self {
            StoreError::Service(d) => StoreError::Service(format!("{what}: {d}")),
            StoreError::Malformed(d) => StoreError::Malformed(format!("{what}: {d}")),
            other => other,
        }
    }

    /// Log the failure once, where it becomes a wire error: a persisting conflict is a warning.
    fn log(&self) {
        match self {
            StoreError::Busy => tracing::warn!(error = %self, "store busy"),
            _ => tracing::error!(error = %self, "store failure"),
        }
    }
}

/// `.context("step")` on a store result: names the step that failed, for the log.
pub trait Context<T> {
    fn context(self, what: &str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, StoreError> {
    fn context(self, what: &str) -> Result<T, StoreError> {
        self.map_err(|e| e.context(what))
    }
}

impl From<StoreError> for OAuthError {
    /// RFC 6749 §4.1.2.1: `temporarily_unavailable` (503) when busy, else `server_error` (500).
    fn from(e: StoreError) -> Self {
        e.log();
        match e {
            StoreError::Busy => OAuthError::busy(),
            _ => OAuthError::server_error(),
        }
    }
}

impl From<StoreError> for VaultError {
    fn from(e: StoreError) -> Self {
        e.log();
        match e {
            StoreError::Busy => VaultError::busy(),
            _ => VaultError::internal(),
        }
    }
}

impl From<StoreError> for ToolError {
    fn from(e: StoreError) -> Self {
        e.log();
        match e {
            StoreError::Busy => ToolError::busy(),
            _ => ToolError::internal(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failures() -> [StoreError; 4] {
        [
            StoreError::Busy,
            StoreError::ConditionFailed,
            StoreError::Service("GetItem: boom".into()),
            StoreError::Malformed("missing string x".into()),
        ]
    }

    #[test]
    fn busy_is_503_on_every_wire_and_the_rest_500() {
        for e in failures() {
            let busy = matches!(e, StoreError::Busy);
            let want = if busy { 503 } else { 500 };
            let oauth = OAuthError::from(e.context("step"));
            assert_eq!(oauth.status.as_u16(), want);
            assert!(!oauth.description.contains("boom"), "the cause stays off the wire");
        }
        for e in failures() {
            let want = if matches!(e, StoreError::Busy) { 503 } else { 500 };
            assert_eq!(VaultError::from(e).status.as_u16(), want);
        }
        for e in failures() {
            let want = if matches!(e, StoreError::Busy) { 503 } else { 500 };
            match ToolError::from(e) {
                ToolError::Status(s, detail) => {
                    assert_eq!(s.as_u16(), want);
                    assert!(!detail.contains("boom"));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn rfc6749_4_1_2_1_busy_is_temporarily_unavailable() {
        let e = OAuthError::from(StoreError::Busy);
        assert_eq!(e.code.as_str(), "temporarily_unavailable");
        assert_eq!(
            OAuthError::from(StoreError::ConditionFailed).code.as_str(),
            "server_error"
        );
        assert_eq!(VaultError::from(StoreError::Busy).code, "temporarily_unavailable");
        assert_eq!(VaultError::from(StoreError::ConditionFailed).code, "internal_error");
    }

    #[test]
    fn context_names_the_step_in_the_logged_detail() {
        let e = StoreError::Service("GetItem: boom".into()).context("token: loading");
        assert_eq!(e.to_string(), "dynamodb: token: loading: GetItem: boom");
        let r: Result<(), StoreError> = Err(StoreError::Malformed("x".into()));
        assert_eq!(
            r.context("grant").unwrap_err().to_string(),
            "stored item is malformed: grant: x"
        );
        assert!(matches!(StoreError::Busy.context("x"), StoreError::Busy));
    }
}
