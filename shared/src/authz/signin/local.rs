//! The local development sign-in (`latchkey serve` without a login issuer): the page asks for an
//! email and signs the browser in as `local:<email>`. Never enabled in Lambda.

use super::{SignInError, SignedIn};
use crate::domain::authz::{AuthRequest, Session, ACCOUNT_SIGN_IN};
use crate::state::AppState;

const EXPIRED: &str = "This sign-in request has expired or was already used.";

/// Is this a plausible email address (one `@`, a dotted domain, no spaces, quotes or brackets)?
pub fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    e.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | '\''))
        && !domain.contains('@')
}

/// The pending request the sign-in page is for.
pub async fn pending(state: &AppState, request_id: &str, now: i64) -> Result<AuthRequest, SignInError> {
    match state.store.get_authreq(request_id, now).await {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(SignInError::Refused(EXPIRED)),
        Err(e) => Err(SignInError::Store("callback: loading the request failed", e)),
    }
}

/// Sign the browser in as `email` (trimmed, lower-cased) for pending request `request_id`.
pub async fn sign_in(state: &AppState, request_id: &str, email: &str, now: i64) -> Result<SignedIn, SignInError> {
    let email = email.trim().to_ascii_lowercase();
    if !valid_email(&email) {
        return Err(SignInError::Refused("Enter a valid email address."));
    }
    if request_id != ACCOUNT_SIGN_IN {
        pending(state, request_id, now).await?;
    }
    let session = Session {
        sub: format!("local:{email}"),
        username: email,
    };
    let session_id = state
        .store
        .create_session(&session, now)
        .await
        .map_err(|e| SignInError::Store("callback: creating the session failed", e))?;
    tracing::info!("local development sign-in");
    Ok(SignedIn {
        session_id,
        request_id: request_id.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn email_shape() {
        assert!(super::valid_email("a@example.com"));
        for bad in [
            "",
            "a",
            "a@b",
            "@example.com",
            "a@.com",
            "a b@example.com",
            "a@example.com.",
            "<a>@example.com",
            "a@b@c.com",
        ] {
            assert!(!super::valid_email(bad), "{bad}");
        }
    }
}
