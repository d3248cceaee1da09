//! The consent form's CSRF token: bound to the browser session and the pending request, derived
//! (SHA-256) rather than stored, compared in constant time.

use subtle::ConstantTimeEq;

use crate::crypto::secret;

/// The CSRF token for pending request `request_id` in browser session `session_id`.
pub fn csrf_token(session_id: &str, request_id: &str) -> String {
    secret::hash(&format!("latchkey-csrf\n{session_id}\n{request_id}"))
}

/// Is `presented` the CSRF token of this session and request? Constant time.
pub fn csrf_matches(session_id: &str, request_id: &str, presented: &str) -> bool {
    csrf_token(session_id, request_id)
        .as_bytes()
        .ct_eq(presented.as_bytes())
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_is_bound_to_session_and_request() {
        assert_ne!(csrf_token("s1", "r1"), csrf_token("s2", "r1"));
        assert_ne!(csrf_token("s1", "r1"), csrf_token("s1", "r2"));
        assert!(csrf_matches("s1", "r1", &csrf_token("s1", "r1")));
        assert!(!csrf_matches("s1", "r1", &csrf_token("s1", "r2")));
        assert!(!csrf_matches("s1", "r1", ""));
    }
}
