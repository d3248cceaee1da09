//! OAuth clients (RFC 7591): the metadata a client registered (or published in its metadata document)
//! and the record we keep, with its secret only as a SHA-256.

use serde_json::{Map, Value};

/// Validated client metadata (RFC 7591 §2), with defaults applied.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClientMetadata {
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub scope: Option<String>,
    pub application_type: String,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub policy_uri: Option<String>,
    #[serde(default)]
    pub contacts: Vec<String>,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
}

impl ClientMetadata {
    /// A confidential client gets a secret; `none` is a public client (RFC 7591 §2).
    pub fn is_confidential(&self) -> bool {
        self.token_endpoint_auth_method != "none"
    }

    /// The metadata as echoed in the registration response (RFC 7591 §3.2.1).
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("redirect_uris".into(), self.redirect_uris.clone().into());
        m.insert(
            "token_endpoint_auth_method".into(),
            self.token_endpoint_auth_method.clone().into(),
        );
        m.insert("grant_types".into(), self.grant_types.clone().into());
        m.insert("response_types".into(), self.response_types.clone().into());
        m.insert("application_type".into(), self.application_type.clone().into());
        for (k, v) in [
            ("scope", &self.scope),
            ("client_name", &self.client_name),
            ("client_uri", &self.client_uri),
            ("logo_uri", &self.logo_uri),
            ("tos_uri", &self.tos_uri),
            ("policy_uri", &self.policy_uri),
            ("software_id", &self.software_id),
            ("software_version", &self.software_version),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), v.clone().into());
            }
        }
        if !self.contacts.is_empty() {
            m.insert("contacts".into(), self.contacts.clone().into());
        }
        m
    }
}

/// A registered client as stored: the secret only as its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRecord {
    pub client_id: String,
    pub secret_hash: Option<String>,
    pub metadata: ClientMetadata,
    pub created_at: i64,
    /// A client from a metadata document: the document is trusted until then (HTTP caching).
    pub fresh_until: Option<i64>,
    /// A dynamically registered client not used yet: it expires then unless a code is redeemed for
    /// it first (issue 12 item 8: the item's `ttl`, removed at its first use). `None`: it does not
    /// expire for want of use (used already, created by an operator, a metadata document, or the
    /// window is off).
    pub unused_until: Option<i64>,
    /// A public registration's dedup key (the SHA-256 of its canonical metadata): identical
    /// registrations get this client back while it lives.
    pub dedup: Option<String>,
}

/// The live registration a public registration with identical metadata found: what its dedup item
/// (`DCR#<key>`) says (issue 12 item 8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registered {
    pub client_id: String,
    /// When it was registered (its `client_id_issued_at`).
    pub issued_at: i64,
    /// When it expires unless used; `None`: used already (or registered with the window off).
    pub unused_until: Option<i64>,
}
