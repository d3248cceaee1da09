//! Vault auth sessions: one user connecting one provider, just in time. The app creates one, sends
//! the user to its `auth_url`, and polls its status; the callback finds it again by its single-use
//! `state`.

use super::status_enum;

/// How long an auth session can be completed, in seconds.
pub const SESSION_TTL: i64 = 300;
/// How long a finished or expired session stays readable by its status endpoint, in seconds.
pub const SESSION_RETENTION: i64 = 7 * 86_400;

status_enum! {
    /// An auth session's status. `Pending`, `Complete` and `Error` are stored; `Expired` is what an
    /// app sees once a pending session's `expires_at` has passed (never stored).
    pub enum SessionStatus {
        Pending => "pending",
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
}

impl VaultSession {
    /// The status an app sees at `now`: a pending session past its `expires_at` is `Expired`.
    pub fn status_at(&self, now: i64) -> SessionStatus {
        if self.status == SessionStatus::Pending && now >= self.expires_at {
            SessionStatus::Expired
        } else {
            self.status
        }
    }
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
        };
        assert_eq!(s.status_at(99), SessionStatus::Pending);
        assert_eq!(s.status_at(100), SessionStatus::Expired);
        s.status = SessionStatus::Complete;
        assert_eq!(s.status_at(200), SessionStatus::Complete);
        assert_eq!(SessionStatus::Expired.as_str(), "expired");
    }
}
