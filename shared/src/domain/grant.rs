//! Grants (what a user approved for one client and resource) and the codes and tokens issued from
//! them. Every token we issue names its grant: `<prefix><grant_id>.<random>`, so a lookup needs no
//! index and revoking a grant finds every token it issued (see `store::grants` for the key formats).

use super::status_enum;
use crate::crypto::secret;

/// Prefix of authorization codes (for secret scanners).
pub const CODE_PREFIX: &str = "lk_ac_";
/// Prefix of access tokens.
pub const ACCESS_PREFIX: &str = "lk_at_";
/// Prefix of refresh tokens.
pub const REFRESH_PREFIX: &str = "lk_rt_";

/// A new token of one kind for a grant: `<prefix><grant_id>.<256 random bits>`.
pub fn new_token(prefix: &str, grant_id: &str) -> String {
    format!("{prefix}{grant_id}.{}", secret::random_token("", 32))
}

/// The grant id a token names, if it has our shape.
pub fn grant_of<'a>(prefix: &str, token: &'a str) -> Option<&'a str> {
    let rest = token.strip_prefix(prefix)?;
    let (gid, random) = rest.split_once('.')?;
    let ok = |s: &str| {
        !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (ok(gid) && ok(random)).then_some(gid)
}

status_enum! {
    /// A grant's status: tokens are issued and introspected only from an active grant.
    pub enum GrantStatus {
        Active => "active",
        /// Revoked (by the user, the client, or a replayed code or refresh token): nothing more is
        /// issued from it, and its tokens are inactive.
        Revoked => "revoked",
    }
}

status_enum! {
    /// A stored token's status. Access tokens stay `active`; a refresh token becomes `rotated` when it
    /// is exchanged (RFC 9700 §4.14.2).
    pub enum TokenStatus {
        Active => "active",
        Rotated => "rotated",
    }
}

/// What the user approved, for one client and resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub grant_id: String,
    pub client_id: String,
    /// The user's stable subject identifier.
    pub sub: String,
    /// A human-readable user name (email), for introspection's `username`.
    pub username: String,
    /// The resource (audience) the grant's tokens are bound to (RFC 8707).
    pub resource: String,
    pub scope: String,
    pub created_at: i64,
    /// The client's name when the user approved it (registration or metadata document), for the
    /// account page.
    pub client_name: Option<String>,
    /// The host the user saw the client by: its metadata document's host, else its redirect URI's.
    pub client_host: Option<String>,
    /// When a token was last issued or refreshed from the grant, to the hour ([`use_due`]).
    pub last_used: Option<i64>,
}

/// How often a grant's `last_used` is written, at most (seconds).
pub const LAST_USED_EVERY: i64 = 3600;

/// Is a token issued at `now` worth recording as the grant's last use? Only when none is recorded
/// or the recorded one is [`LAST_USED_EVERY`] old, so a busy grant is written once an hour.
pub fn use_due(last_used: Option<i64>, now: i64) -> bool {
    last_used.is_none_or(|t| now - t >= LAST_USED_EVERY)
}

/// A pending authorization code: what the token request must match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeRecord {
    pub redirect_uri: String,
    /// Was `redirect_uri` sent in the authorization request? Then the token request must send the
    /// same value (OAuth 2.1 §4.1.3); else it may leave it out.
    pub redirect_uri_sent: bool,
    pub code_challenge: String,
    pub expires_at: i64,
    pub used: bool,
}

/// A token as stored (access or refresh): bound to a grant, a client, a resource and a scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    pub grant_id: String,
    pub client_id: String,
    pub sub: String,
    pub username: String,
    pub resource: String,
    pub scope: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// Refresh tokens: when it was rotated, if it was.
    pub rotated_at: Option<i64>,
    /// Refresh tokens, once rotated: the SHA-256 of the one live token that replaced it (its
    /// successor, or the successor's replacement after a retry within the grace window). Only a
    /// hash, like every token we issue.
    pub successor: Option<String>,
}

/// A pair of new tokens to write for a grant.
#[derive(Clone, Debug)]
pub struct Issue {
    pub access_token: String,
    pub access: TokenRecord,
    pub refresh_token: Option<String>,
    pub refresh: Option<TokenRecord>,
    /// The grant's new expiry (epoch seconds).
    pub grant_ttl: i64,
    /// The grant, when this issue is to be recorded as its last use ([`use_due`]): `last_used` is
    /// set on the grant and its per-user index item in the same transaction.
    pub record_use: Option<Grant>,
    /// A dynamically registered client used for the first time: its unused-registration expiry is
    /// removed in the same transaction (issue 12 item 8).
    pub first_use: Option<FirstUse>,
}

/// The first use of a dynamically registered client that would otherwise expire unused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirstUse {
    pub client_id: String,
    /// Its dedup key, when it is a public registration: the dedup item stops expiring too.
    pub dedup: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_grant() {
        let t = new_token(ACCESS_PREFIX, "g1");
        assert_eq!(grant_of(ACCESS_PREFIX, &t), Some("g1"));
        assert_eq!(grant_of(REFRESH_PREFIX, &t), None);
        for bad in ["", "lk_at_", "lk_at_g1", "lk_at_g1.", "lk_at_.x", "lk_at_g#1.x"] {
            assert_eq!(grant_of(ACCESS_PREFIX, bad), None, "{bad}");
        }
    }

    #[test]
    fn last_used_is_written_at_most_once_an_hour() {
        assert!(use_due(None, 100));
        assert!(!use_due(Some(100), 100 + LAST_USED_EVERY - 1));
        assert!(use_due(Some(100), 100 + LAST_USED_EVERY));
    }

    #[test]
    fn statuses_round_trip_their_stored_spelling() {
        for s in [GrantStatus::Active, GrantStatus::Revoked] {
            assert_eq!(GrantStatus::parse(s.as_str()), Some(s));
        }
        for s in [TokenStatus::Active, TokenStatus::Rotated] {
            assert_eq!(TokenStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(GrantStatus::Active.as_str(), "active");
        assert_eq!(GrantStatus::parse("Active"), None);
    }
}
