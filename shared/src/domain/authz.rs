//! Browser-side authorization state: a validated authorization request waiting for sign-in and
//! consent, a signed-in browser session, an upstream sign-in in flight, and what we know of the
//! upstream sign-in provider.

/// How long a pending authorization request (and an upstream sign-in) lives, in seconds.
pub const AUTHREQ_TTL: i64 = 600;
/// How long a browser session lives, in seconds.
pub const SESSION_TTL: i64 = 12 * 3600;
/// Prefix of browser session ids (the `lk_session` cookie; only its SHA-256 is stored).
pub const SESSION_ID_PREFIX: &str = "lk_sess_";

/// The `request_id` of a sign-in started by the account page (`/oauth/2.1/account`) rather than by
/// an authorization request: once signed in, the browser goes back to that page. Request ids are 32
/// random characters, so this never names a pending request.
pub const ACCOUNT_SIGN_IN: &str = "account";

/// A validated authorization request waiting for sign-in and consent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthRequest {
    pub id: String,
    pub client_id: String,
    pub client_name: Option<String>,
    pub redirect_uri: String,
    /// Was `redirect_uri` sent in the authorization request (else the one registered URI was used)?
    /// The token request must repeat it only then (OAuth 2.1 §4.1.3).
    pub redirect_uri_sent: bool,
    /// Is the client's identity verified (a confidential client, or one named by an https metadata
    /// document)? Only then is the user's consent remembered (RFC 8252 §8.6).
    pub remember_consent: bool,
    pub state: String,
    pub code_challenge: String,
    pub resource: String,
    pub scope: String,
}

/// A signed-in browser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub sub: String,
    pub username: String,
}

/// An upstream sign-in in flight, found again by its `state`. The PKCE verifier is sealed by the
/// keyring (context [`super::context::login_context`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginState {
    pub request_id: String,
    pub nonce: String,
    pub sealed_verifier: Vec<u8>,
    /// SHA-256 of the `lk_login` cookie set on the browser that started the sign-in: the callback
    /// must come back to that browser.
    pub browser_hash: String,
}

/// The parts of the upstream sign-in provider's discovery document we use (OpenID Connect
/// Discovery 1.0 §3), fetched once per process and kept in `AppState`.
#[derive(Clone, Debug, serde::Deserialize, PartialEq, Eq)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
}
