//! One module per endpoint: `handle(&AppState, Request) -> Response`, used by Lambda and `serve`.

pub mod discovery;
pub mod introspect;
pub mod register;
pub mod revoke;
pub mod token;
