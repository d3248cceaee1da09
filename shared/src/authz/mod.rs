//! The authorization server's flows: the I/O around `oauth`'s pure decisions. Which client a
//! request names (registered, or fetched from its metadata document), the one code issuer, and
//! end-user sign-in (an upstream OpenID Connect provider, or the local development page).

pub mod account;
pub mod cimd;
pub mod client;
pub mod code;
pub mod signin;
