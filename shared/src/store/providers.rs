//! Provider configurations as items: `PROJECT#<project_id>` / `PROVIDER#<provider>`, in the project's
//! partition (the type is `domain::provider::ProviderConfig`).

use serde_json::Value;

use super::item::FromItem;
use super::keys::Key;
use super::projects::PROJECT_PREFIX;
use super::{Item, Store, StoreError};
use crate::domain::provider::ProviderConfig;

pub fn provider_key(project_id: &str, provider: &str) -> Key {
    Key {
        pk: format!("{PROJECT_PREFIX}{project_id}"),
        sk: format!("PROVIDER#{provider}"),
    }
}

fn provider_item(config: &ProviderConfig) -> Item {
    Item::with_key(&provider_key(&config.project_id, &config.provider))
        .set_s("type", "provider")
        .set_s("project_id", &config.project_id)
        .set_s("provider", &config.provider)
        .set_opt_s("base", config.base.clone())
        .set_s("overrides", Value::Object(config.overrides.clone()).to_string())
        .set_s("client_id", &config.client_id)
        .set_b("client_secret", config.sealed_secret.clone())
        .set_n("updated_at", config.updated_at)
}

impl FromItem for ProviderConfig {
    fn from_item(item: &Item) -> Result<Self, StoreError> {
        let overrides = match serde_json::from_str::<Value>(item.req_s("overrides")?) {
            Ok(Value::Object(m)) => m,
            _ => return Err(StoreError::Malformed("provider overrides".into())),
        };
        Ok(ProviderConfig {
            project_id: item.req_s("project_id")?.to_string(),
            provider: item.req_s("provider")?.to_string(),
            base: item.s("base").map(str::to_string),
            overrides,
            client_id: item.req_s("client_id")?.to_string(),
            sealed_secret: item
                .b("client_secret")
                .ok_or_else(|| StoreError::Malformed("provider client_secret".into()))?
                .to_vec(),
            updated_at: item.n("updated_at").unwrap_or(0),
        })
    }
}

impl Store {
    pub async fn put_provider(&self, config: &ProviderConfig) -> Result<(), StoreError> {
        self.put(provider_item(config)).await
    }

    pub async fn get_provider(
        &self,
        project_id: &str,
        provider: &str,
        now: i64,
    ) -> Result<Option<ProviderConfig>, StoreError> {
        self.get(&provider_key(project_id, provider), now)
            .await?
            .map(|i| ProviderConfig::from_item(&i))
            .transpose()
    }
}
