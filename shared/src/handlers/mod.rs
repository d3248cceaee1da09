//! One module per endpoint: `handle(&AppState, Request) -> Response`, used by Lambda and `serve`.

pub mod authorize;
pub mod callback;
pub mod consent;
pub mod discovery;
pub mod introspect;
pub mod register;
pub mod revoke;
pub mod token;
