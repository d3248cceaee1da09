//! lambda_http request parsing (size caps, strict form/JSON/Basic parsing, route patterns, our
//! cookies, the CSRF token) and response builders.

pub mod cookie;
pub mod csrf;
pub mod html;
pub mod path;
pub mod request;
pub mod response;

pub use request::{BadRequest, MAX_BODY_BYTES};
