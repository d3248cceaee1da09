//! A typed view over a DynamoDB item: builders for writing and accessors for reading.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

use super::keys::Key;
use super::StoreError;
use crate::domain::Status;

/// A domain record read back from the item it is stored as. Each `store/*` module implements it for
/// its records (and builds their items), so flows that load items in a batch decode them here.
pub trait FromItem: Sized {
    fn from_item(item: &Item) -> Result<Self, StoreError>;
}

/// A DynamoDB item.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Item(HashMap<String, AttributeValue>);

impl From<HashMap<String, AttributeValue>> for Item {
    fn from(m: HashMap<String, AttributeValue>) -> Self {
        Item(m)
    }
}

impl Item {
    /// A new item with its key set.
    pub fn with_key(key: &Key) -> Self {
        Item(key.to_map())
    }

    pub fn into_map(self) -> HashMap<String, AttributeValue> {
        self.0
    }

    /// Every attribute, by name.
    pub fn as_map(&self) -> &HashMap<String, AttributeValue> {
        &self.0
    }

    pub fn get(&self, name: &str) -> Option<&AttributeValue> {
        self.0.get(name)
    }

    pub fn set_s(mut self, name: &str, value: impl Into<String>) -> Self {
        self.0.insert(name.into(), AttributeValue::S(value.into()));
        self
    }

    pub fn set_opt_s(self, name: &str, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(v) => self.set_s(name, v),
            None => self,
        }
    }

    pub fn set_n(mut self, name: &str, value: i64) -> Self {
        self.0.insert(name.into(), AttributeValue::N(value.to_string()));
        self
    }

    pub fn set_opt_n(self, name: &str, value: Option<i64>) -> Self {
        match value {
            Some(v) => self.set_n(name, v),
            None => self,
        }
    }

    pub fn set_b(mut self, name: &str, value: Vec<u8>) -> Self {
        self.0.insert(name.into(), AttributeValue::B(Blob::new(value)));
        self
    }

    pub fn set_list(mut self, name: &str, values: &[String]) -> Self {
        self.0.insert(
            name.into(),
            AttributeValue::L(values.iter().map(|v| AttributeValue::S(v.clone())).collect()),
        );
        self
    }

    /// A map attribute of strings (`M` of `S`), e.g. scope → description.
    pub fn set_str_map(mut self, name: &str, values: &std::collections::BTreeMap<String, String>) -> Self {
        self.0.insert(
            name.into(),
            AttributeValue::M(
                values
                    .iter()
                    .map(|(k, v)| (k.clone(), AttributeValue::S(v.clone())))
                    .collect(),
            ),
        );
        self
    }

    /// A map attribute of strings; empty if absent, other values left out.
    pub fn str_map(&self, name: &str) -> std::collections::BTreeMap<String, String> {
        match self.0.get(name) {
            Some(AttributeValue::M(m)) => m
                .iter()
                .filter_map(|(k, v)| match v {
                    AttributeValue::S(s) => Some((k.clone(), s.clone())),
                    _ => None,
                })
                .collect(),
            _ => Default::default(),
        }
    }

    /// The item's key (`pk`, `sk`), when it has both.
    pub fn key(&self) -> Option<Key> {
        Some(Key {
            pk: self.s("pk")?.to_string(),
            sk: self.s("sk")?.to_string(),
        })
    }

    /// A string attribute.
    pub fn s(&self, name: &str) -> Option<&str> {
        match self.0.get(name) {
            Some(AttributeValue::S(s)) => Some(s),
            _ => None,
        }
    }

    pub fn req_s(&self, name: &str) -> Result<&str, StoreError> {
        self.s(name)
            .ok_or_else(|| StoreError::Malformed(format!("missing string {name}")))
    }

    pub fn n(&self, name: &str) -> Option<i64> {
        match self.0.get(name) {
            Some(AttributeValue::N(n)) => n.parse().ok(),
            _ => None,
        }
    }

    pub fn b(&self, name: &str) -> Option<&[u8]> {
        match self.0.get(name) {
            Some(AttributeValue::B(b)) => Some(b.as_ref()),
            _ => None,
        }
    }

    /// The `status` attribute as a domain status enum; `None` if absent or not one of its spellings.
    pub fn status<T: Status>(&self) -> Option<T> {
        self.s("status").and_then(T::parse)
    }

    /// The `status` attribute, required to be one of `T`'s spellings.
    pub fn req_status<T: Status>(&self) -> Result<T, StoreError> {
        let raw = self.req_s("status")?;
        T::parse(raw).ok_or_else(|| StoreError::Malformed(format!("unknown status {raw:?}")))
    }

    pub fn list(&self, name: &str) -> Vec<String> {
        match self.0.get(name) {
            Some(AttributeValue::L(l)) => l
                .iter()
                .filter_map(|v| match v {
                    AttributeValue::S(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_and_accessors() {
        let k = Key {
            pk: "A".into(),
            sk: "B".into(),
        };
        let item = Item::with_key(&k)
            .set_s("s", "x")
            .set_n("n", 42)
            .set_b("b", vec![1, 2])
            .set_list("l", &["p".into(), "q".into()])
            .set_opt_s("none", None::<String>);
        assert_eq!(item.s("pk"), Some("A"));
        assert_eq!(item.s("s"), Some("x"));
        assert_eq!(item.n("n"), Some(42));
        assert_eq!(item.b("b"), Some(&[1u8, 2][..]));
        assert_eq!(item.list("l"), vec!["p", "q"]);
        assert!(item.get("none").is_none());
        assert!(item.req_s("missing").is_err());
        assert!(!super::super::is_expired(&item, 0));
        assert!(super::super::is_expired(&item.clone().set_n("ttl", 10), 10));
        assert!(!super::super::is_expired(&item.set_n("ttl", 11), 10));
    }
}
