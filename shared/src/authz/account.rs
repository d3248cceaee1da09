//! "Your connected apps" (`/oauth/2.1/account`): what a signed-in user approved, one entry per client
//! and resource, and revoking it. Revoking ends every grant the user gave that client for that
//! resource, with every token issued from them, and forgets the remembered consent, so the client
//! must ask again (issue 12 item 2; `latchkey grant revoke` does the same through
//! [`revoke_grants`]).

use crate::domain::grant::Grant;
use crate::store::{Store, StoreError};

/// One client's access to one resource, as the account page shows it. A client that authorized
/// more than once has several grants; they are one entry, revoked together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectedApp {
    /// The newest grant's id: what the page's Revoke form names.
    pub grant_id: String,
    pub client_id: String,
    /// The client's name and host when the user approved it (newest grant that has them).
    pub client_name: Option<String>,
    pub client_host: Option<String>,
    pub resource: String,
    /// Every scope approved, in the order first seen.
    pub scopes: Vec<String>,
    /// When the newest grant was approved.
    pub approved_at: i64,
    /// The latest recorded use of any of its grants (to the hour).
    pub last_used: Option<i64>,
    /// Every grant this entry stands for.
    pub grant_ids: Vec<String>,
}

/// One entry per (client, resource), from a user's grants newest first; entries keep that order.
pub fn group(grants: &[Grant]) -> Vec<ConnectedApp> {
    let mut out: Vec<ConnectedApp> = Vec::new();
    for g in grants {
        let entry = match out
            .iter_mut()
            .find(|a| a.client_id == g.client_id && a.resource == g.resource)
        {
            Some(a) => a,
            None => {
                out.push(ConnectedApp {
                    grant_id: g.grant_id.clone(),
                    client_id: g.client_id.clone(),
                    client_name: None,
                    client_host: None,
                    resource: g.resource.clone(),
                    scopes: Vec::new(),
                    approved_at: g.created_at,
                    last_used: None,
                    grant_ids: Vec::new(),
                });
                out.last_mut().expect("just pushed")
            }
        };
        if g.created_at > entry.approved_at {
            entry.grant_id = g.grant_id.clone();
            entry.approved_at = g.created_at;
        }
        entry.client_name = entry.client_name.take().or_else(|| g.client_name.clone());
        entry.client_host = entry.client_host.take().or_else(|| g.client_host.clone());
        entry.last_used = entry.last_used.max(g.last_used);
        for s in g.scope.split(' ').filter(|s| !s.is_empty()) {
            if !entry.scopes.iter().any(|x| x == s) {
                entry.scopes.push(s.to_string());
            }
        }
        entry.grant_ids.push(g.grant_id.clone());
    }
    out
}

/// A user's connected apps. Two round trips (the index Query, the grants' BatchGetItem).
pub async fn connected_apps(store: &Store, sub: &str, now: i64) -> Result<Vec<ConnectedApp>, StoreError> {
    Ok(group(&store.user_grants(sub, now).await?))
}

/// Why a revocation from the account page did not happen.
#[derive(Debug)]
pub enum RevokeError {
    /// The grant is not one of this user's active grants (another user's, revoked, or unknown):
    /// nothing changed.
    NotFound,
    Store(StoreError),
}

impl From<StoreError> for RevokeError {
    fn from(e: StoreError) -> Self {
        RevokeError::Store(e)
    }
}

/// User `sub` revokes the entry that grant `grant_id` belongs to: every grant of theirs for that
/// client and resource ends, with its tokens, and the consent is forgotten. Returns what was revoked.
pub async fn revoke(store: &Store, sub: &str, grant_id: &str, now: i64) -> Result<ConnectedApp, RevokeError> {
    let grants = store.user_grants(sub, now).await?;
    let app = group(&grants)
        .into_iter()
        .find(|a| a.grant_ids.iter().any(|g| g == grant_id))
        .ok_or(RevokeError::NotFound)?;
    let ending: Vec<Grant> = grants
        .into_iter()
        .filter(|g| app.grant_ids.contains(&g.grant_id))
        .collect();
    revoke_grants(store, &ending, now).await?;
    tracing::info!(grants = ending.len(), client_id = %app.client_id, "grants revoked by their user");
    Ok(app)
}

/// Revoke each grant (marked revoked, its codes and tokens deleted) and forget the consent it came
/// from, so the same client must ask the user again (issue 12 item 2).
pub async fn revoke_grants(store: &Store, grants: &[Grant], now: i64) -> Result<(), StoreError> {
    for g in grants {
        store.revoke_grant(&g.grant_id, now).await?;
    }
    let mut forgotten: Vec<(&str, &str, &str)> = Vec::new();
    for g in grants {
        let pair = (g.sub.as_str(), g.client_id.as_str(), g.resource.as_str());
        if !forgotten.contains(&pair) {
            store.forget_consent(pair.0, pair.1, pair.2).await?;
            forgotten.push(pair);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(id: &str, client: &str, resource: &str, scope: &str, created_at: i64, last_used: Option<i64>) -> Grant {
        Grant {
            grant_id: id.into(),
            client_id: client.into(),
            sub: "u".into(),
            username: "u@example.com".into(),
            resource: resource.into(),
            scope: scope.into(),
            created_at,
            client_name: Some(format!("{client} app")),
            client_host: None,
            last_used,
        }
    }

    #[test]
    fn one_entry_per_client_and_resource_revoked_together() {
        let grants = [
            grant("g3", "c1", "https://r1", "openid mcp:read", 300, None),
            grant("g2", "c2", "https://r1", "openid", 200, Some(250)),
            grant("g1", "c1", "https://r1", "openid offline_access", 100, Some(150)),
            grant("g0", "c1", "https://r2", "openid", 50, None),
        ];
        let apps = group(&grants);
        assert_eq!(apps.len(), 3);
        assert_eq!(apps[0].grant_id, "g3");
        assert_eq!(apps[0].grant_ids, ["g3", "g1"]);
        assert_eq!(apps[0].scopes, ["openid", "mcp:read", "offline_access"]);
        assert_eq!((apps[0].approved_at, apps[0].last_used), (300, Some(150)));
        assert_eq!(apps[0].client_name.as_deref(), Some("c1 app"));
        assert_eq!(apps[1].client_id, "c2");
        assert_eq!((apps[2].resource.as_str(), apps[2].grant_ids.len()), ("https://r2", 1));
    }
}
