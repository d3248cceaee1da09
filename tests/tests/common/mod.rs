//! `TestApp`: an embedded latchkey (in-memory emulator, local keyring) on a loopback port, with typed
//! helpers to call it over real HTTP and to inspect what it stored.
#![allow(dead_code)]

use std::path::PathBuf;

use latchkey::local::{self, Embedded, Options};
use serde_json::Value;

pub struct TestApp {
    pub server: Embedded,
    pub http: reqwest::Client,
    pub base: String,
}

impl TestApp {
    pub async fn start() -> TestApp {
        Self::start_with(None).await
    }

    pub async fn start_with(data_dir: Option<PathBuf>) -> TestApp {
        Self::start_configured(data_dir, &[]).await
    }

    /// Start with configuration values (`LATCHKEY_*`) set for this server only.
    pub async fn start_configured(data_dir: Option<PathBuf>, config: &[(&str, &str)]) -> TestApp {
        let server = local::start(Options {
            addr: "127.0.0.1:0".parse().unwrap(),
            data_dir,
            public_url: None,
            config: config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        })
        .await
        .expect("embedded latchkey starts");
        let base = server.base_url();
        TestApp {
            server,
            http: reqwest::Client::new(),
            base,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `(dynamodb, kms)` calls made so far.
    pub fn calls(&self) -> (u64, u64) {
        self.server.state.metrics.snapshot()
    }

    /// POST a raw body to the registration endpoint.
    pub async fn register_raw(&self, content_type: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let res = self
            .http
            .post(self.url("/oauth/2.1/register"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn register(&self, body: Value) -> (u16, Value) {
        self.register_raw("application/json", body.to_string()).await
    }

    /// Every item in the table, raw.
    pub async fn all_items(&self) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let store = &self.server.state.store;
        store
            .client()
            .scan()
            .table_name(store.table())
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default()
    }
}

/// Assert an OAuth error response: status, `error` code, and a description.
pub fn assert_oauth_error(got: &(u16, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "status for {:?}", got.1);
    assert_eq!(got.1["error"], code, "body {:?}", got.1);
    assert!(
        got.1["error_description"].as_str().is_some_and(|d| !d.is_empty()),
        "description in {:?}",
        got.1
    );
}
