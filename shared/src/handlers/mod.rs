//! One module per endpoint: `handle(&AppState, Request) -> Response`, used by Lambda and `serve`.

pub mod authorize;
pub mod callback;
pub mod connections;
pub mod consent;
pub mod discovery;
pub mod identity_callback;
pub mod introspect;
pub mod proxy;
pub mod register;
pub mod revoke;
pub mod sessions;
pub mod token;
pub mod tool_mcp;
pub mod tool_oauth;
pub mod tools;
