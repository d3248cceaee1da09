//! `GET /.well-known/oauth-authorization-server/oauth/2.1` (RFC 8414 §3) and the root variant for
//! clients of the MCP 2025-03-26 revision. Cacheable, CORS-open, no store calls.

use http::{HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, Response};

use crate::http::{request, response};
use crate::oauth::metadata::authorization_server_metadata;
use crate::state::AppState;

const METHODS: &str = "GET, OPTIONS";

/// `GET` the authorization server metadata (RFC 8414 §3), CORS-open.
pub async fn handle(state: &AppState, req: Request) -> Response<Body> {
    if let Some(res) = response::cors_gate(req.method(), &[Method::GET, Method::HEAD], METHODS) {
        return res;
    }
    let base = request::public_base(&state.config, &req);
    let doc = authorization_server_metadata(&state.config, &base);
    let mut res = response::json(StatusCode::OK, &doc);
    res.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    res.headers_mut().remove(http::header::PRAGMA);
    response::cors(res, METHODS)
}
