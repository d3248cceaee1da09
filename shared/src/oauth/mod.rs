//! Pure authorization-server logic: it takes parsed input and stored records and returns a decision,
//! so it is unit-tested without a store. Handlers do the I/O.

pub mod authorize;
pub mod cimd;
pub mod client;
pub mod client_auth;
pub mod login;
pub mod metadata;
pub mod pkce;
pub mod presentation;
pub mod scope;
pub mod token;
