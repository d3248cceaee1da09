//! `AppState`: what every handler gets — configuration, store, keyring, clock, call counters and the
//! outbound HTTP clients — and the one way to build it. Built once per Lambda container (cold start,
//! `AppState::from_env`) or once per `latchkey serve` / test server (`local::start`); the admin commands
//! build only its AWS half, `Backends`, the same way.
//!
//! Every process goes through the same three steps: say where each AWS client points (`Aws`), open the
//! `Backends` (store, optional keyring, call counters), then `AppState::build(config, backends)`. Each
//! part is separate so a process can leave out what it does not use: the keyring is optional, and the
//! outbound HTTP clients are built on first use, so an endpoint that never calls out never builds one.

use std::sync::{Arc, OnceLock};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::Credentials;
use aws_sdk_dynamodb::config::Region;

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::{KeyWrapper, Keyring, KmsWrapper, LocalWrapper};
use crate::events::{Events, Sink};
use crate::metrics::Metrics;
use crate::store::Store;

/// Shared state of one process.
#[derive(Debug)]
pub struct AppState {
    pub config: Config,
    /// Absent only in a Lambda function that reads nothing (discovery, see `Needs`); using it there
    /// is a build defect and panics with the function's name.
    pub store: Linked<Store>,
    /// Absent when no key is configured (a Lambda without `LATCHKEY_KMS_KEY_ID`); endpoints that hold
    /// secrets then answer 500 and log why.
    pub keyring: Option<Arc<Keyring>>,
    pub metrics: Metrics,
    pub clock: Clock,
    /// Outbound HTTP (the upstream sign-in provider): 10 s timeout, no redirects.
    pub http: Outbound,
    /// Outbound HTTP to providers and MCP servers: every address checked by the guard
    /// (`net::guarded_client`), loopback only when `allow_loopback_outbound`.
    pub upstream: Outbound,
    /// The login provider's discovery document, fetched once per container.
    pub login_metadata: tokio::sync::OnceCell<crate::domain::authz::ProviderMetadata>,
    /// Where noticed events go (an SQS queue, `serve`'s in-process queue, or nowhere).
    pub events: Events,
}

/// A startup failure (only these are `Err` to the Lambda runtime).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl AppState {
    /// The one way to assemble the state: the configuration, the AWS side (`Backends`), a clock, and
    /// outbound HTTP clients that are built on first use.
    pub fn build(config: Config, backends: Backends) -> AppState {
        let allow_loopback = config.allow_loopback_outbound;
        let Backends {
            store,
            keyring,
            metrics,
        } = backends;
        AppState {
            config,
            store: Linked::new(store),
            keyring,
            metrics,
            clock: Clock::default(),
            http: Outbound::new(outbound_client),
            upstream: Outbound::new(move || crate::net::guarded_client(allow_loopback)),
            login_metadata: tokio::sync::OnceCell::new(),
            events: Events::off(),
        }
    }

    /// The same state sending its events to `events`.
    pub fn with_events(mut self, events: Events) -> AppState {
        self.events = events;
        self
    }

    /// The Lambda cold start of one function: like `from_env`, but builds only what `N` says the
    /// function uses. `N`'s answers are constants, so the clients a function leaves out are not
    /// linked into its binary: no AWS SDK at all without the store and KMS, no KMS client without
    /// `N::KMS`, no outbound HTTP client (reqwest, rustls) without `N::OUTBOUND`.
    pub async fn from_env_for<N: Needs>() -> Result<Self, BoxError> {
        let mut config = Config::from_env()?;
        let metrics = Metrics::default();
        // Only a function that signs users in (outbound HTTP) reads the login client secret.
        let secret_param = match (&config.login_client_secret, &config.login_client_secret_param) {
            (None, Some(name)) if N::OUTBOUND => Some(name.clone()),
            _ => None,
        };
        // Boxed: an awaited future is a state of this one, and the compiler keeps every state's code
        // (and so the AWS SDK's) even when a constant `N` never reaches it; a boxed one is only linked
        // where this branch survives.
        let events_wanted = N::EVENTS && config.events_queue_url.is_some();
        let sdk = if N::STORE || (N::KMS && config.kms_key_id.is_some()) || secret_param.is_some() || events_wanted {
            let load: std::pin::Pin<Box<dyn std::future::Future<Output = SdkConfig> + Send>> =
                Box::pin(aws_config::load_defaults(BehaviorVersion::latest()));
            Some(Arc::new(load.await))
        } else {
            None
        };
        // The login client secret: only the function that exchanges sign-in codes is given the
        // parameter's name (template.yaml), and reads it once here, never from a plain env var.
        // `N::OUTBOUND` again for the same reason as `N::EVENTS` below: without it the SSM read
        // (and reqwest with it) is linked into functions that never sign anyone in.
        if let (true, Some(name), Some(sdk)) = (N::OUTBOUND, &secret_param, &sdk) {
            let endpoint = config.ssm_endpoint.clone();
            let read: std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, BoxError>> + Send + '_>> =
                Box::pin(async move { crate::secrets::ssm_parameter(sdk, name, endpoint.as_deref()).await });
            config.login_client_secret = Some(read.await?);
        }
        let at = |endpoint: &Option<String>| Aws::Chain {
            sdk: Arc::clone(sdk.as_ref().expect("the SDK config is loaded when a client needs it")),
            endpoint: endpoint.clone(),
        };
        let store = if N::STORE {
            Linked::new(Store::new(
                at(&config.dynamodb_endpoint).dynamodb(&metrics),
                config.table.clone(),
            ))
        } else {
            Linked::absent("the store")
        };
        let keyring = match (&config.kms_key_id, N::KMS) {
            (Some(key_id), true) => {
                let kms = at(&config.kms_endpoint).kms(&metrics);
                Some(Arc::new(Keyring::new(KeyWrapper::Kms(KmsWrapper::new(
                    kms,
                    key_id.clone(),
                )))))
            }
            _ => None,
        };
        let (http, upstream) = if N::OUTBOUND {
            let allow_loopback = config.allow_loopback_outbound;
            (
                Outbound::new(outbound_client),
                Outbound::new(move || crate::net::guarded_client(allow_loopback)),
            )
        } else {
            (Outbound::absent(), Outbound::absent())
        };
        // `N::EVENTS` again, not `events_wanted`: a local read after an await is a load from this
        // future's state, which the compiler cannot fold, and the SQS client would be linked into
        // every function (discovery went from 2.35 to 5.95 MB that way).
        let events = if N::EVENTS && config.events_queue_url.is_some() {
            let sink = Sink::Sqs {
                client: at(&config.sqs_endpoint).sqs(),
                queue_url: config.events_queue_url.clone().unwrap_or_default(),
            };
            let bus = match (&config.event_bus, N::DELIVERS) {
                (Some(bus), true) => Some((at(&config.eventbridge_endpoint).eventbridge(), bus.clone())),
                _ => None,
            };
            Events::new(sink, bus)
        } else {
            Events::off()
        };
        Ok(AppState {
            config,
            store,
            keyring,
            metrics,
            clock: Clock::default(),
            http,
            upstream,
            login_metadata: tokio::sync::OnceCell::new(),
            events,
        })
    }

    /// The cold start of a process that serves every endpoint: configuration from the environment,
    /// AWS clients from the default chain (`LATCHKEY_DYNAMODB_ENDPOINT` / `LATCHKEY_KMS_ENDPOINT`
    /// override where they send), a KMS keyring when `LATCHKEY_KMS_KEY_ID` is set, outbound HTTP.
    pub async fn from_env() -> Result<Self, BoxError> {
        Self::from_env_for::<Everything>().await
    }
}

/// What one Lambda function uses, as constants so the compiler leaves the rest out of its binary
/// (`router::Endpoint` answers it for each function; `latchkey serve` builds everything).
pub trait Needs {
    /// The DynamoDB store (every function but discovery).
    const STORE: bool = true;
    /// A KMS keyring, when `LATCHKEY_KMS_KEY_ID` is set (functions that seal or open what we hold).
    const KMS: bool = false;
    /// Outbound HTTP clients (sign-in provider, providers, MCP servers).
    const OUTBOUND: bool = false;
    /// An SQS client for the events it notices (`LATCHKEY_EVENTS_QUEUE_URL`).
    const EVENTS: bool = false;
    /// Delivers events: also an EventBridge client when `LATCHKEY_EVENT_BUS` is set.
    const DELIVERS: bool = false;
}

/// Every client: a process serving every endpoint.
pub struct Everything;

impl Needs for Everything {
    const STORE: bool = true;
    const KMS: bool = true;
    const OUTBOUND: bool = true;
    const EVENTS: bool = true;
    const DELIVERS: bool = true;
}

/// A part of the state a function may be built without (`Needs`). Dereferences to the part; doing so
/// in a function built without it is a build defect (the endpoint's `Needs` are wrong) and panics.
pub struct Linked<T> {
    value: Option<T>,
    what: &'static str,
}

impl<T> Linked<T> {
    pub fn new(value: T) -> Self {
        Linked {
            value: Some(value),
            what: "",
        }
    }

    /// A part this process was built without; `what` names it in the panic message.
    pub fn absent(what: &'static str) -> Self {
        Linked { value: None, what }
    }

    /// The part, if this process has it.
    pub fn linked(&self) -> Option<&T> {
        self.value.as_ref()
    }
}

impl<T> std::ops::Deref for Linked<T> {
    type Target = T;

    fn deref(&self) -> &T {
        match &self.value {
            Some(v) => v,
            None => panic!(
                "this function was built without {} (its router::Endpoint needs)",
                self.what
            ),
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Linked<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.value {
            Some(v) => v.fmt(f),
            None => write!(f, "<built without {}>", self.what),
        }
    }
}

/// The AWS side of a process: the store, the keyring that seals what we hold (if any), and the
/// counters every SDK client reports its calls to.
#[derive(Clone, Debug)]
pub struct Backends {
    pub store: Store,
    pub keyring: Option<Arc<Keyring>>,
    pub metrics: Metrics,
}

impl Backends {
    /// The store on `table` through a DynamoDB client for `dynamodb`, and a keyring wrapping data keys
    /// with `key` (`None`: no keyring). Every SDK client counts its calls in the returned `metrics`.
    pub fn open(table: &str, dynamodb: &Aws, key: Option<Key>) -> Backends {
        Self::open_with(table, |metrics| dynamodb.dynamodb(metrics), key)
    }

    /// The same, with the DynamoDB client `client` makes (counting in the metrics it is given): the
    /// embedded default's in-process client (`store::embedded`).
    pub fn open_with(
        table: &str,
        client: impl FnOnce(&Metrics) -> aws_sdk_dynamodb::Client,
        key: Option<Key>,
    ) -> Backends {
        let metrics = Metrics::default();
        let store = Store::new(client(&metrics), table);
        let keyring = key.map(|key| {
            let wrapper = match key {
                Key::Kms { key_id, aws } => KeyWrapper::Kms(KmsWrapper::new(aws.kms(&metrics), key_id)),
                Key::Local(wrapper) => KeyWrapper::Local(wrapper),
            };
            Arc::new(Keyring::new(wrapper))
        });
        Backends {
            store,
            keyring,
            metrics,
        }
    }
}

/// What wraps the keyring's data keys.
#[derive(Debug)]
pub enum Key {
    /// A KMS key (id, ARN or alias) reached through `aws`.
    Kms { key_id: String, aws: Aws },
    /// A local master key (the embedded default).
    Local(LocalWrapper),
}

/// Where an AWS client sends its calls, and with which credentials.
#[derive(Clone, Debug)]
pub enum Aws {
    /// AWS, with region and credentials from the default chain (environment, profile, the Lambda role);
    /// `endpoint` replaces the service URL when set.
    Chain {
        sdk: Arc<SdkConfig>,
        endpoint: Option<String>,
    },
    /// A local server (the embedded DynamoDB emulator, a local KMS-compatible server): static dummy
    /// credentials, region us-east-1.
    Local { endpoint: String },
}

impl Aws {
    /// The default chain, loaded now; `endpoint` as for `Aws::Chain`.
    pub async fn chain(endpoint: Option<String>) -> Aws {
        Aws::Chain {
            sdk: Arc::new(aws_config::load_defaults(BehaviorVersion::latest()).await),
            endpoint,
        }
    }

    /// A local server at `endpoint` when one is given (tests, a local AWS-compatible server), else
    /// AWS through the default chain.
    pub async fn local_or_chain(endpoint: Option<&str>) -> Aws {
        match endpoint {
            Some(endpoint) => Aws::Local {
                endpoint: endpoint.to_string(),
            },
            None => Aws::chain(None).await,
        }
    }

    /// A DynamoDB client whose calls count in `metrics.dynamodb`.
    pub fn dynamodb(&self, metrics: &Metrics) -> aws_sdk_dynamodb::Client {
        let counter = metrics.dynamodb.interceptor("count-dynamodb");
        let conf = match self {
            Aws::Chain { sdk, endpoint } => {
                let mut conf = aws_sdk_dynamodb::config::Builder::from(sdk.as_ref()).interceptor(counter);
                if let Some(ep) = endpoint {
                    conf = conf.endpoint_url(ep);
                }
                conf.build()
            }
            Aws::Local { endpoint } => aws_sdk_dynamodb::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(LOCAL_REGION))
                .credentials_provider(local_credentials())
                .endpoint_url(endpoint)
                .interceptor(counter)
                .build(),
        };
        aws_sdk_dynamodb::Client::from_conf(conf)
    }

    /// A KMS client whose calls count in `metrics.kms`.
    pub fn kms(&self, metrics: &Metrics) -> aws_sdk_kms::Client {
        let counter = metrics.kms.interceptor("count-kms");
        let conf = match self {
            Aws::Chain { sdk, endpoint } => {
                let mut conf = aws_sdk_kms::config::Builder::from(sdk.as_ref()).interceptor(counter);
                if let Some(ep) = endpoint {
                    conf = conf.endpoint_url(ep);
                }
                conf.build()
            }
            Aws::Local { endpoint } => aws_sdk_kms::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(LOCAL_REGION))
                .credentials_provider(local_credentials())
                .endpoint_url(endpoint)
                .interceptor(counter)
                .build(),
        };
        aws_sdk_kms::Client::from_conf(conf)
    }
}

impl Aws {
    /// An SQS client (events), with a short operation timeout: an event send must not hold up the
    /// request that noticed it (a failed send goes to the outbox).
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        let timeouts = aws_smithy_types::timeout::TimeoutConfig::builder()
            .operation_timeout(std::time::Duration::from_secs(3))
            .build();
        let conf = match self {
            Aws::Chain { sdk, endpoint } => {
                let mut conf = aws_sdk_sqs::config::Builder::from(sdk.as_ref()).timeout_config(timeouts);
                if let Some(ep) = endpoint {
                    conf = conf.endpoint_url(ep);
                }
                conf.build()
            }
            Aws::Local { endpoint } => aws_sdk_sqs::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(aws_sdk_sqs::config::Region::new(LOCAL_REGION))
                .credentials_provider(local_credentials())
                .endpoint_url(endpoint)
                .timeout_config(timeouts)
                .build(),
        };
        aws_sdk_sqs::Client::from_conf(conf)
    }

    /// An EventBridge client (the operator's bus).
    pub fn eventbridge(&self) -> aws_sdk_eventbridge::Client {
        let conf = match self {
            Aws::Chain { sdk, endpoint } => {
                let mut conf = aws_sdk_eventbridge::config::Builder::from(sdk.as_ref());
                if let Some(ep) = endpoint {
                    conf = conf.endpoint_url(ep);
                }
                conf.build()
            }
            Aws::Local { endpoint } => aws_sdk_eventbridge::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(aws_sdk_eventbridge::config::Region::new(LOCAL_REGION))
                .credentials_provider(local_credentials())
                .endpoint_url(endpoint)
                .build(),
        };
        aws_sdk_eventbridge::Client::from_conf(conf)
    }
}

/// Any region will do for a local server.
const LOCAL_REGION: &str = "us-east-1";

fn local_credentials() -> Credentials {
    Credentials::new("local", "local", None, None, "latchkey-local")
}

/// An outbound HTTP client built the first time it is used, so a process whose requests never go out
/// (discovery, token, introspection, …) never builds one. Dereferences to `reqwest::Client`.
pub struct Outbound {
    client: OnceLock<reqwest::Client>,
    /// `None`: a function built without outbound HTTP (`Needs::OUTBOUND`).
    make: Option<Box<dyn Fn() -> Result<reqwest::Client, reqwest::Error> + Send + Sync>>,
}

impl Outbound {
    /// A client that `make` builds on first use.
    pub fn new(make: impl Fn() -> Result<reqwest::Client, reqwest::Error> + Send + Sync + 'static) -> Self {
        Outbound {
            client: OnceLock::new(),
            make: Some(Box::new(make)),
        }
    }

    /// No client: a function whose requests never go out, so reqwest is not linked into it. Using it
    /// is a build defect (the endpoint's `Needs::OUTBOUND` is wrong) and panics.
    pub fn absent() -> Self {
        Outbound {
            client: OnceLock::new(),
            make: None,
        }
    }

    /// The client, built now if this is the first use.
    pub fn client(&self) -> &reqwest::Client {
        // Our builders set only a timeout, a redirect policy, a user agent and (for `upstream`) a DNS
        // resolver with no proxy: nothing in them can fail once the TLS backend is linked, so a
        // failure here is a build defect, not a runtime condition.
        self.client.get_or_init(|| {
            let make = self
                .make
                .as_ref()
                .expect("this function was built without outbound HTTP (its router::Endpoint needs)");
            make().expect("the outbound HTTP client builds (TLS backend linked)")
        })
    }
}

impl std::ops::Deref for Outbound {
    type Target = reqwest::Client;

    fn deref(&self) -> &reqwest::Client {
        self.client()
    }
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("built", &self.client.get().is_some())
            .finish()
    }
}

/// The outbound HTTP client for the upstream sign-in provider: 10 s timeout, no redirects.
pub fn outbound_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbound_client_is_built_on_first_use_only() {
        let built = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&built);
        let outbound = Outbound::new(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            outbound_client()
        });
        assert_eq!(
            built.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "nothing built up front"
        );
        let _ = outbound.get("http://127.0.0.1:9/");
        let _ = outbound.client();
        assert_eq!(
            built.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "built once, then reused"
        );
    }
}
