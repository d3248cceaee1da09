//! Key formats of the single table. Every format is listed in docs/storage-schema.md (the README links it).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// A primary key: partition `pk` and sort `sk`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn to_map(&self) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_string(), AttributeValue::S(self.pk.clone())),
            ("sk".to_string(), AttributeValue::S(self.sk.clone())),
        ])
    }
}

/// Partition prefix of registered OAuth clients.
pub const CLIENT_PREFIX: &str = "CLIENT#";

/// Partition prefix of grants (and the codes and tokens issued from them; see `store::grants`).
pub const GRANT_PREFIX: &str = "GRANT#";

/// A registered OAuth client: `CLIENT#<client_id>` / `CLIENT`.
pub fn client(client_id: &str) -> Key {
    Key {
        pk: format!("{CLIENT_PREFIX}{client_id}"),
        sk: "CLIENT".into(),
    }
}

/// Partition prefix of public registrations' dedup items (issue 12 item 8).
pub const REGISTRATION_PREFIX: &str = "DCR#";

/// The dedup item of public registrations with identical metadata: `DCR#<key>` / `DCR`, where the
/// key is the SHA-256 of the canonical metadata (`oauth::client::dedup_key`).
pub fn registration(dedup: &str) -> Key {
    Key {
        pk: format!("{REGISTRATION_PREFIX}{dedup}"),
        sk: "DCR".into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn client_key_format() {
        let k = super::client("lkc_abc");
        assert_eq!((k.pk.as_str(), k.sk.as_str()), ("CLIENT#lkc_abc", "CLIENT"));
    }
}
