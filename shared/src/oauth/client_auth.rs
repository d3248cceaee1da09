//! Client authentication at the token and revocation endpoints (RFC 6749 §2.3): HTTP Basic
//! (`client_secret_basic`), form fields (`client_secret_post`), or a public client naming itself
//! (`none`). The method used must be the one the client registered. Pure: the handler parses the
//! `Authorization` header (`http::request::basic_auth`) and the form, and loads the client.

use crate::crypto::secret;
use crate::domain::client::ClientRecord;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::http::request::Params;

/// Who the request says it is, and how it proves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresentedClient {
    pub client_id: String,
    pub secret: Option<String>,
    pub method: &'static str,
}

fn invalid_client(msg: &str) -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidClient, msg)
}

/// HTTP Basic credentials as `http::request::basic_auth` parsed them: `Ok(None)` without a Basic
/// header, `Err` with a public description when the header is malformed.
pub type BasicCredentials = Result<Option<(String, String)>, String>;

/// The client's credentials from the parsed `Authorization` header and form. RFC 6749 §2.3: a client
/// MUST NOT use more than one authentication method in a request.
pub fn presented(basic: BasicCredentials, params: &Params) -> Result<PresentedClient, OAuthError> {
    let basic = basic.map_err(|m| invalid_client(&m))?;
    let plausible = |id: &str| id.len() <= MAX_CLIENT_ID_LEN && !id.chars().any(char::is_control);
    let named = basic.as_ref().map(|(id, _)| id.as_str()).or(params.get("client_id"));
    if named.is_some_and(|id| !plausible(id)) {
        return Err(invalid_client("client authentication failed"));
    }
    let form_id = params.get("client_id").filter(|s| !s.is_empty());
    let form_secret = params.get("client_secret").filter(|s| !s.is_empty());
    match (basic, form_id, form_secret) {
        (Some(_), _, Some(_)) => Err(OAuthError::new(
            OAuthErrorCode::InvalidRequest,
            "use one client authentication method: Basic or client_secret, not both",
        )),
        (Some((id, _)), Some(fid), None) if fid != id => {
            Err(invalid_client("client_id does not match the Basic credentials"))
        }
        (Some((id, secret)), _, None) => Ok(PresentedClient {
            client_id: id,
            secret: Some(secret),
            method: "client_secret_basic",
        }),
        (None, Some(id), Some(secret)) => Ok(PresentedClient {
            client_id: id.to_string(),
            secret: Some(secret.to_string()),
            method: "client_secret_post",
        }),
        (None, Some(id), None) => Ok(PresentedClient {
            client_id: id.to_string(),
            secret: None,
            method: "none",
        }),
        (None, None, _) => Err(invalid_client("client authentication is required")),
    }
}

/// Longest client id we look up (a Client ID Metadata Document URL included); longer is refused
/// before any store call.
pub const MAX_CLIENT_ID_LEN: usize = 512;

/// Check presented credentials against the registered client (`None`: unknown client), RFC 6749
/// §2.3.1: the registered method only, the secret compared in constant time.
pub fn authenticate(p: &PresentedClient, client: Option<&ClientRecord>) -> Result<(), OAuthError> {
    let client = client.ok_or_else(|| invalid_client("client authentication failed"))?;
    let registered = client.metadata.token_endpoint_auth_method.as_str();
    if registered != p.method {
        // A confidential client may not fall back to `none`; a public client has no secret to send.
        return Err(invalid_client("client authentication failed"));
    }
    match (&p.secret, &client.secret_hash) {
        (None, None) => Ok(()),
        (Some(s), Some(hash)) if secret::verify(s, hash) => Ok(()),
        _ => Err(invalid_client("client authentication failed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::parse_params;

    fn basic(id: &str, secret: &str) -> BasicCredentials {
        Ok(Some((id.to_string(), secret.to_string())))
    }

    #[test]
    fn rfc6749_2_3_one_authentication_method_per_request() {
        let form = parse_params(b"client_id=c1&client_secret=s").unwrap();
        let e = presented(basic("c1", "s"), &form).unwrap_err();
        assert_eq!(e.code, OAuthErrorCode::InvalidRequest);
        let p = presented(Ok(None), &form).unwrap();
        assert_eq!((p.client_id.as_str(), p.method), ("c1", "client_secret_post"));
        let p = presented(basic("c1", "s"), &parse_params(b"client_id=c1").unwrap()).unwrap();
        assert_eq!(p.method, "client_secret_basic");
        let e = presented(basic("c1", "s"), &parse_params(b"client_id=c2").unwrap()).unwrap_err();
        assert_eq!(e.code, OAuthErrorCode::InvalidClient);
        let p = presented(Ok(None), &parse_params(b"client_id=c1").unwrap()).unwrap();
        assert_eq!((p.method, p.secret), ("none", None));
        let e = presented(Ok(None), &parse_params(b"").unwrap()).unwrap_err();
        assert_eq!(e.code, OAuthErrorCode::InvalidClient);
        let e = presented(Err("Basic credentials are not base64".into()), &form).unwrap_err();
        assert_eq!(e.code, OAuthErrorCode::InvalidClient);
    }
}
