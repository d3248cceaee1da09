//! `AppState`: what every handler gets — configuration, store, keyring, clock and call counters.
//! Built once per Lambda container (cold start) or once per `latchkey serve`.

use std::sync::Arc;

use aws_config::BehaviorVersion;

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::{KeyWrapper, Keyring, KmsWrapper};
use crate::metrics::Metrics;
use crate::store::Store;

/// Shared state of one process.
#[derive(Debug)]
pub struct AppState {
    pub config: Config,
    pub store: Store,
    /// Absent when no key is configured (a Lambda without `LATCHKEY_KMS_KEY_ID`); endpoints that hold
    /// secrets then answer 500 and log why.
    pub keyring: Option<Arc<Keyring>>,
    pub metrics: Metrics,
    pub clock: Clock,
    /// Outbound HTTP (the upstream sign-in provider): 10 s timeout, no redirects.
    pub http: reqwest::Client,
    /// Outbound HTTP to providers and MCP servers: every address checked by the guard
    /// (`net::guarded_client`), loopback only when `allow_loopback_outbound`.
    pub upstream: reqwest::Client,
    /// The login provider's discovery document, fetched once per container.
    pub login_metadata: tokio::sync::OnceCell<crate::oauth::login::ProviderMetadata>,
}

/// The outbound HTTP client every process uses.
pub fn outbound_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A startup failure (only these are `Err` to the Lambda runtime).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl AppState {
    /// The Lambda cold start: configuration from the environment, AWS clients from the default chain.
    pub async fn from_env() -> Result<Self, BoxError> {
        let config = Config::from_env()?;
        let allow_loopback = config.allow_loopback_outbound;
        let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
        let metrics = Metrics::default();
        let mut ddb =
            aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(metrics.dynamodb.interceptor("count-dynamodb"));
        if let Some(ep) = &config.dynamodb_endpoint {
            ddb = ddb.endpoint_url(ep);
        }
        let store = Store::new(aws_sdk_dynamodb::Client::from_conf(ddb.build()), config.table.clone());
        let keyring = match &config.kms_key_id {
            Some(key_id) => {
                let mut kms =
                    aws_sdk_kms::config::Builder::from(&sdk).interceptor(metrics.kms.interceptor("count-kms"));
                if let Some(ep) = &config.kms_endpoint {
                    kms = kms.endpoint_url(ep);
                }
                let wrapper = KmsWrapper::new(aws_sdk_kms::Client::from_conf(kms.build()), key_id.clone());
                Some(Arc::new(Keyring::new(KeyWrapper::Kms(wrapper))))
            }
            None => None,
        };
        Ok(AppState {
            config,
            store,
            keyring,
            metrics,
            clock: Clock::default(),
            http: outbound_client()?,
            upstream: crate::net::guarded_client(allow_loopback)?,
            login_metadata: tokio::sync::OnceCell::new(),
        })
    }
}
