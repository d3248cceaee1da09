//! End-user sign-in before consent, two ways: an upstream OpenID Connect provider
//! (`LATCHKEY_LOGIN_ISSUER`, `upstream`), or — `latchkey serve` without one — the local
//! development page that signs in any email (`local`). Either ends in a browser session.

pub mod local;
pub mod upstream;

use crate::domain::authz::AuthRequest;
use crate::store::StoreError;

/// Why a sign-in cannot go on; the handler renders each as its page (or redirect).
#[derive(Debug)]
pub enum SignInError {
    /// The request cannot be used: a 400 page with this public text.
    Refused(&'static str),
    /// The sign-in provider could not be reached or used (the cause is logged): 502.
    Unavailable,
    /// The store failed while doing `.0` (logged by the handler): 500.
    Store(&'static str, StoreError),
    /// The user declined (or the provider refused) at the provider: the client gets
    /// `access_denied` for this pending request, now consumed (RFC 6749 §4.1.2.1).
    Declined(AuthRequest),
}

/// A signed-in browser, ready to continue to consent for its pending request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedIn {
    /// The browser session id, for the session cookie (only its hash is stored).
    pub session_id: String,
    pub request_id: String,
}
