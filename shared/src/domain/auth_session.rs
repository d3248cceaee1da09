//! Vault auth sessions: one user connecting one provider, just in time. The app creates one, sends
//! the user to its `auth_url`, and polls its status; the callback finds it again by its single-use
//! `state`.

use super::status_enum;

/// How long an auth session can be completed, in seconds.
pub const SESSION_TTL: i64 = 300;
/// How long an app has to confirm a connection (`return_url` sessions) after the provider callback,
/// in seconds.
pub const CONFIRM_TTL: i64 = 600;
/// How long a finished or expired session stays readable by its status endpoint, in seconds.
pub const SESSION_RETENTION: i64 = 7 * 86_400;

status_enum! {
    /// An auth session's status. `Pending`, `AwaitingConfirmation`, `Complete` and `Error` are
    /// stored; `Expired` is what an app sees once a pending session's `expires_at` (or an
    /// unconfirmed one's `confirm_by`) has passed (never stored).
    pub enum SessionStatus {
        Pending => "pending",
        AwaitingConfirmation => "awaiting_confirmation",
        Complete => "complete",
        Error => "error",
        Expired => "expired",
    }
}

/// An auth session: one user connecting one provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultSession {
    pub session_id: String,
    pub project_id: String,
    pub user_id: String,
    pub provider: String,
    pub scopes: Vec<String>,
    /// As stored: `Pending`, `Complete` or `Error` (see [`VaultSession::status_at`]).
    pub status: SessionStatus,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub expires_at: i64,
    pub created_at: i64,
    /// Where the provider callback sends the browser with a one-time `connect_token`; the
    /// connection is then stored only when the app confirms it (RFC 6749 §10.12: binds the
    /// connection to the app's signed-in user). `None`: the callback stores it at once.
    pub return_url: Option<String>,
    /// Until when an `AwaitingConfirmation` session can be confirmed.
    pub confirm_by: Option<i64>,
}

impl VaultSession {
    /// The status an app sees at `now`: a pending session past its `expires_at`, or one awaiting
    /// confirmation past its `confirm_by`, is `Expired`.
    pub fn status_at(&self, now: i64) -> SessionStatus {
        match self.status {
            SessionStatus::Pending if now >= self.expires_at => SessionStatus::Expired,
            SessionStatus::AwaitingConfirmation if now >= self.confirm_by.unwrap_or(0) => SessionStatus::Expired,
            s => s,
        }
    }
}

/// Check a session's `return_url`: an absolute `https` URL (or `http` on a loopback host), without
/// credentials or fragment, at most 2,000 bytes. The message says what is wrong.
pub fn check_return_url(raw: &str) -> Result<url::Url, &'static str> {
    if raw.len() > 2000 {
        return Err("return_url is longer than 2000 bytes");
    }
    let url = url::Url::parse(raw).map_err(|_| "return_url must be an absolute URL")?;
    let loopback = matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost"));
    match url.scheme() {
        "https" if url.host().is_some() => {}
        "http" if loopback => {}
        _ => return Err("return_url must be https (or http on a loopback host)"),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("return_url must not carry credentials");
    }
    if url.fragment().is_some() {
        return Err("return_url must not have a fragment");
    }
    Ok(url)
}

/// What the callback needs, stored under the hash of the session's `state`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultState {
    pub session_id: String,
    pub project_id: String,
    pub user_id: String,
    pub provider: String,
    pub scopes: Vec<String>,
    /// The PKCE verifier sealed by the keyring (context [`super::context::vault_state_context`];
    /// absent for providers without PKCE).
    pub sealed_verifier: Option<Vec<u8>>,
    pub redirect_uri: String,
    pub expires_at: i64,
    /// The session's `return_url`: the callback then awaits the app's confirmation.
    pub return_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_session_expires_at_its_deadline() {
        let mut s = VaultSession {
            session_id: "vs_1".into(),
            project_id: "prj_a".into(),
            user_id: "u".into(),
            provider: "google".into(),
            scopes: Vec::new(),
            status: SessionStatus::Pending,
            error_code: None,
            error_message: None,
            expires_at: 100,
            created_at: 0,
            return_url: None,
            confirm_by: None,
        };
        assert_eq!(s.status_at(99), SessionStatus::Pending);
        assert_eq!(s.status_at(100), SessionStatus::Expired);
        s.status = SessionStatus::Complete;
        assert_eq!(s.status_at(200), SessionStatus::Complete);
        assert_eq!(SessionStatus::Expired.as_str(), "expired");
        s.status = SessionStatus::AwaitingConfirmation;
        s.confirm_by = Some(300);
        assert_eq!(s.status_at(299), SessionStatus::AwaitingConfirmation);
        assert_eq!(s.status_at(300), SessionStatus::Expired);
    }

    #[test]
    fn rfc6749_10_12_return_urls_are_https_or_loopback_without_credentials_or_fragment() {
        assert!(check_return_url("https://app.example/connected?x=1").is_ok());
        assert!(check_return_url("http://127.0.0.1:5173/connected").is_ok());
        assert!(check_return_url("http://localhost/cb").is_ok());
        for bad in [
            "http://app.example/cb",
            "javascript:alert(1)",
            "/relative",
            "https://user:pw@app.example/cb",
            "https://app.example/cb#frag",
            "data:text/html,hi",
        ] {
            assert!(check_return_url(bad).is_err(), "{bad}");
        }
        assert!(check_return_url(&format!("https://app.example/{}", "a".repeat(2000))).is_err());
    }
}
