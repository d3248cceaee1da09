//! latchkey's integration tests, one binary with a module per area: the AWS SDK, the emulator and
//! axum are linked once (they were linked once per file when every file was its own binary).
//!
//! Every test starts what it needs and shares nothing with the others, so they run in parallel in
//! this one process: each `TestApp` is its own embedded latchkey (in-memory emulator, local keyring)
//! on a loopback port the OS picks, as are the fakes in `common` and the example servers; each
//! `#[tokio::test]` builds its own runtime; and no test sets an environment variable. The
//! `LATCHKEY_REQUIRE_*` and `LATCHKEY_TEST_*` variables `scripts/test` exports are only read.
//!
//! `cargo test -p latchkey-tests --test api <filter>` runs a part: a module (`token::`) or a test.

mod common;

mod account;
mod admin;
mod as_security;
mod authorize;
mod browser;
mod cimd;
mod consent_page;
mod discovery;
mod events;
mod fuzz;
mod hostile;
mod introspect;
mod invoke;
mod kms;
mod mcp_sdk;
mod oidc_login;
mod persistence;
mod python_client;
mod register;
mod registration_abuse;
mod revoke;
mod sdk_interop;
mod template;
mod token;
mod tools;
mod tools_discovery;
mod tools_reauthorization;
mod ts_client;
mod vault;
mod vault_confirm;
mod webhooks;
