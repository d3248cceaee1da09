//! Vault projects and their API keys. A key names its project (`lk_ak_<project_id>.<secret>`), so
//! authenticating it is one read of the item under the key's SHA-256; only that hash is stored.

use crate::crypto::secret;

/// Prefix of API keys: `lk_ak_<project_id>.<secret>`.
pub const API_KEY_PREFIX: &str = "lk_ak_";

/// A new project id: `prj_` and 16 base64url characters.
pub fn new_project_id() -> String {
    secret::random_token("prj_", 12)
}

/// A new API key for a project and its public id.
pub fn new_api_key(project_id: &str) -> (String, String) {
    let key_id = secret::random_token("ak_", 9);
    let key = format!("{API_KEY_PREFIX}{project_id}.{}", secret::random_token("", 32));
    (key_id, key)
}

/// The project an API key claims (checked against the stored hash before anything is trusted).
pub fn project_of_key(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(API_KEY_PREFIX)?;
    let (project, secret) = rest.split_once('.')?;
    let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (project.starts_with("prj_") && ok(project) && ok(secret) && key.len() <= 128).then_some(project)
}

/// An API key as found by its hash: which project it authenticates, and its public id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub project_id: String,
    pub key_id: String,
    pub created_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_name_their_project() {
        let pid = new_project_id();
        let (key_id, key) = new_api_key(&pid);
        assert!(key_id.starts_with("ak_"));
        assert!(key.starts_with("lk_ak_prj_"));
        assert_eq!(project_of_key(&key), Some(pid.as_str()));
        for bad in [
            "",
            "lk_ak_",
            "lk_ak_prj_x",
            "lk_ak_prj_x.",
            "lk_ak_.abc",
            "lk_at_prj_x.abc",
            "lk_ak_prj_x.a#b",
            "lk_ak_other.abc",
        ] {
            assert_eq!(project_of_key(bad), None, "{bad}");
        }
    }
}
