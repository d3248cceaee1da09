//! latchkey: OAuth for the Model Context Protocol on DynamoDB and KMS.
//!
//! One domain crate used by every Lambda binary in `functions/`, by `latchkey serve` and by the tests.
//! The request path is `router` → `handlers::<endpoint>` → flows (`authz`, `vault`, `tools`, around
//! `oauth`'s pure decisions) → `store` / `crypto`, with the domain types (`domain`) shared by the
//! flows and the store.

pub mod authz;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod events;
pub mod handlers;
pub mod http;
pub mod lambda;
pub mod metrics;
pub mod net;
pub mod oauth;
pub mod router;
pub mod secrets;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tools;
pub mod vault;
pub mod webhooks;

#[cfg(feature = "embedded")]
pub mod local;

pub use config::Config;
pub use state::AppState;
