//! Response builders shared by every handler.

use http::{HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde_json::Value;

/// A JSON response with `Cache-Control: no-store` (RFC 6749 §5.1 for anything carrying secrets;
/// callers that want caching override it).
pub fn json(status: StatusCode, body: &Value) -> Response<Body> {
    let mut res = Response::new(Body::Text(body.to_string()));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(http::header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    res
}

/// An empty response.
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut res = Response::new(Body::Empty);
    *res.status_mut() = status;
    res
}

/// Open CORS for endpoints browser-based MCP clients call (discovery, registration, token).
/// No credentials are allowed, so `*` is safe.
pub fn cors(mut res: Response<Body>, methods: &'static str) -> Response<Body> {
    let h = res.headers_mut();
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert("access-control-allow-methods", HeaderValue::from_static(methods));
    h.insert(
        "access-control-allow-headers",
        HeaderValue::from_static("authorization, content-type, mcp-protocol-version"),
    );
    h.insert("access-control-max-age", HeaderValue::from_static("86400"));
    res
}

/// A CORS preflight answer.
pub fn preflight(methods: &'static str) -> Response<Body> {
    cors(empty(StatusCode::NO_CONTENT), methods)
}

/// The method gate of a CORS-open endpoint: answers a preflight, or a method not in `allowed` with
/// 405; `None` lets the request through. `methods` is the `Allow` / CORS list, e.g. `"POST, OPTIONS"`.
pub fn cors_gate(method: &http::Method, allowed: &[http::Method], methods: &'static str) -> Option<Response<Body>> {
    if method == http::Method::OPTIONS {
        Some(preflight(methods))
    } else if allowed.contains(method) {
        None
    } else {
        Some(cors(method_not_allowed(methods), methods))
    }
}

/// 405 with an `Allow` header and an OAuth-style JSON body.
pub fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut res = json(
        StatusCode::METHOD_NOT_ALLOWED,
        &serde_json::json!({"error": "invalid_request", "error_description": format!("method not allowed; use {allow}")}),
    );
    res.headers_mut()
        .insert(http::header::ALLOW, HeaderValue::from_static(allow));
    res
}

/// 404 for a path no endpoint serves.
pub fn not_found() -> Response<Body> {
    json(
        StatusCode::NOT_FOUND,
        &serde_json::json!({"error": "not_found", "error_description": "no endpoint at this path"}),
    )
}
