//! lambda_http request parsing (size caps, strict form/JSON/Basic parsing) and response builders.

pub mod html;
pub mod request;
pub mod response;

pub use request::{BadRequest, MAX_BODY_BYTES};
