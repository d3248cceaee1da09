//! Error types, one per API family, each rendering its own wire shape. A public description goes on
//! the wire; a private detail (if any) goes to the log only.

use http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::json;

use crate::http::response;

/// Error codes of RFC 6749 §4.1.2.1 / §5.2, RFC 7009 §2.2.1, RFC 7591 §3.2.2 and RFC 8707 §2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OAuthErrorCode {
    /// RFC 6749 §5.2: "The request is missing a required parameter, includes an unsupported parameter
    /// value …, repeats a parameter, … or is otherwise malformed."
    InvalidRequest,
    /// RFC 6749 §5.2: "Client authentication failed."
    InvalidClient,
    /// RFC 6749 §5.2: the grant or refresh token "is invalid, expired, revoked, does not match the
    /// redirection URI …, or was issued to another client."
    InvalidGrant,
    /// RFC 6749 §5.2: "The authenticated client is not authorized to use this authorization grant type."
    UnauthorizedClient,
    /// RFC 6749 §5.2: "The authorization grant type is not supported by the authorization server."
    UnsupportedGrantType,
    /// RFC 6749 §4.1.2.1: the server does not support obtaining a code with this `response_type`.
    UnsupportedResponseType,
    /// RFC 6749 §5.2: "The requested scope is invalid, unknown, malformed, or exceeds the scope granted."
    InvalidScope,
    /// RFC 8707 §2: "The requested resource is invalid, missing, unknown, or malformed."
    InvalidTarget,
    /// RFC 6749 §4.1.2.1: "The resource owner or authorization server denied the request."
    AccessDenied,
    /// RFC 7009 §2.2.1: the server does not support revoking this token type.
    UnsupportedTokenType,
    /// RFC 7591 §3.2.2: "The value of one or more redirection URIs is invalid."
    InvalidRedirectUri,
    /// RFC 7591 §3.2.2: "The value of one of the client metadata fields is invalid."
    InvalidClientMetadata,
    /// RFC 6749 §4.1.2.1: an unexpected condition prevented the server from fulfilling the request.
    ServerError,
    /// RFC 6749 §4.1.2.1: the server is temporarily unable to handle the request.
    TemporarilyUnavailable,
}

impl OAuthErrorCode {
    pub fn as_str(self) -> &'static str {
        use OAuthErrorCode::*;
        match self {
            InvalidRequest => "invalid_request",
            InvalidClient => "invalid_client",
            InvalidGrant => "invalid_grant",
            UnauthorizedClient => "unauthorized_client",
            UnsupportedGrantType => "unsupported_grant_type",
            UnsupportedResponseType => "unsupported_response_type",
            InvalidScope => "invalid_scope",
            InvalidTarget => "invalid_target",
            AccessDenied => "access_denied",
            UnsupportedTokenType => "unsupported_token_type",
            InvalidRedirectUri => "invalid_redirect_uri",
            InvalidClientMetadata => "invalid_client_metadata",
            ServerError => "server_error",
            TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    fn default_status(self) -> StatusCode {
        match self {
            OAuthErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            OAuthErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            OAuthErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// An OAuth error response (RFC 6749 §5.2): JSON `error` and `error_description`, `no-store`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthError {
    pub code: OAuthErrorCode,
    pub description: String,
    pub status: StatusCode,
}

impl OAuthError {
    pub fn new(code: OAuthErrorCode, description: impl Into<String>) -> Self {
        OAuthError {
            code,
            description: description.into(),
            status: code.default_status(),
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// A 500 with a generic description; log the cause before calling this.
    pub fn server_error() -> Self {
        Self::new(OAuthErrorCode::ServerError, "the server could not complete the request")
    }

    /// A 503 `temporarily_unavailable` (RFC 6749 §4.1.2.1): the store stayed busy; retry.
    pub fn busy() -> Self {
        Self::new(
            OAuthErrorCode::TemporarilyUnavailable,
            "the server is busy; retry the request",
        )
    }

    pub fn response(&self) -> Response<Body> {
        let body = json!({"error": self.code.as_str(), "error_description": self.description});
        let mut res = response::json(self.status, &body);
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Basic realm=\"latchkey\", charset=\"UTF-8\""),
            );
        }
        res
    }
}

/// A vault API error (`/v1/...`): `{"error": {"code", "message"}}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The `Allow` header of a 405 (RFC 9110 §15.5.6).
    pub allow: Option<&'static str>,
}

impl VaultError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        VaultError {
            status,
            code,
            message: message.into(),
            allow: None,
        }
    }

    /// A 500 with a generic message; log the cause before calling this.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the server could not complete the request",
        )
    }

    /// A 503: the store stayed busy; retry.
    pub fn busy() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the store is busy; retry shortly",
        )
    }

    /// The JSON error, marked `X-Latchkey-Error: 1` so a client can tell latchkey's own errors from
    /// an upstream response passed through the proxy.
    pub fn response(&self) -> Response<Body> {
        let mut res = response::json(
            self.status,
            &json!({"error": {"code": self.code, "message": self.message}}),
        );
        res.headers_mut()
            .insert("x-latchkey-error", http::HeaderValue::from_static("1"));
        if let Some(allow) = self.allow {
            res.headers_mut()
                .insert(http::header::ALLOW, http::HeaderValue::from_static(allow));
        }
        res
    }
}

/// One FastAPI-style validation entry: `{"loc": [...], "msg": ..., "type": ...}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub loc: Vec<String>,
    pub msg: String,
    pub kind: String,
}

/// A tool API error (`/tools/...`), in the Selise Blocks shapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolError {
    /// 422 `{"detail": [{"loc", "msg", "type"}]}`.
    Validation(Vec<FieldError>),
    /// 400/401/404/5xx `{"detail": "..."}`.
    Status(StatusCode, String),
}

impl ToolError {
    /// A 500 `{"detail": "Internal server error"}`; log the cause before calling this.
    pub fn internal() -> Self {
        ToolError::Status(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error".into())
    }

    /// A 503: the store stayed busy; retry.
    pub fn busy() -> Self {
        ToolError::Status(
            StatusCode::SERVICE_UNAVAILABLE,
            "The store is busy; retry shortly".into(),
        )
    }

    pub fn response(&self) -> Response<Body> {
        let mut res = match self {
            ToolError::Validation(errors) => {
                let detail: Vec<_> = errors
                    .iter()
                    .map(|e| json!({"loc": e.loc, "msg": e.msg, "type": e.kind}))
                    .collect();
                response::json(StatusCode::UNPROCESSABLE_ENTITY, &json!({ "detail": detail }))
            }
            ToolError::Status(status, detail) => response::json(*status, &json!({ "detail": detail })),
        };
        // latchkey's own error, as opposed to an MCP server's response passed through.
        res.headers_mut()
            .insert("x-latchkey-error", http::HeaderValue::from_static("1"));
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(res: &Response<Body>) -> serde_json::Value {
        serde_json::from_slice(res.body().as_ref()).unwrap()
    }

    #[test]
    fn rfc6749_5_2_error_shape_no_store_and_www_authenticate() {
        let res = OAuthError::new(OAuthErrorCode::InvalidClient, "bad secret").response();
        assert_eq!(res.status(), 401);
        assert_eq!(
            body(&res),
            json!({"error": "invalid_client", "error_description": "bad secret"})
        );
        assert_eq!(res.headers()["cache-control"], "no-store");
        assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
        let res = OAuthError::new(OAuthErrorCode::InvalidRedirectUri, "x").response();
        assert_eq!(res.status(), 400);
        assert!(res.headers().get("www-authenticate").is_none());
    }

    #[test]
    fn vault_and_tool_shapes() {
        let res = VaultError::new(StatusCode::NOT_FOUND, "not_found", "no such session").response();
        assert_eq!(
            body(&res),
            json!({"error": {"code": "not_found", "message": "no such session"}})
        );
        let res = ToolError::Validation(vec![FieldError {
            loc: vec!["body".into(), "state".into()],
            msg: "field required".into(),
            kind: "value_error.missing".into(),
        }])
        .response();
        assert_eq!(res.status(), 422);
        assert_eq!(
            body(&res),
            json!({"detail": [{"loc": ["body", "state"], "msg": "field required", "type": "value_error.missing"}]})
        );
        let res = ToolError::Status(StatusCode::NOT_FOUND, "Tool not found".into()).response();
        assert_eq!(body(&res), json!({"detail": "Tool not found"}));
    }
}
