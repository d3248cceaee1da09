//! The embedded default (`latchkey serve` and tests): the in-process DynamoDB emulator (dynoxide, in
//! memory or a SQLite file) served on a loopback port and reached through aws-sdk-dynamodb, the local
//! keyring, and every endpoint mounted through `router` on one HTTP port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use aws_credential_types::Credentials;
use aws_sdk_dynamodb::config::{BehaviorVersion, Region};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::{KeyWrapper, Keyring, LocalWrapper};
use crate::metrics::Metrics;
use crate::router;
use crate::state::{AppState, BoxError};
use crate::store::{table, Store};

/// How to start the embedded server.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where the HTTP server listens (port 0 picks a free port).
    pub addr: SocketAddr,
    /// `Some(dir)`: SQLite file `dir/latchkey.db` and master key `dir/master.key` (survive restarts).
    /// `None`: everything in memory with a random master key (tests).
    pub data_dir: Option<PathBuf>,
    /// Public base URL; defaults to `http://<bound addr>`.
    pub public_url: Option<String>,
    /// Configuration values (`LATCHKEY_*` names) that take precedence over the environment.
    pub config: Vec<(String, String)>,
}

/// A running embedded server. Dropping it stops both listeners.
pub struct Embedded {
    pub state: Arc<AppState>,
    pub addr: SocketAddr,
    pub dynamodb_endpoint: String,
    stop: Vec<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Embedded {
    /// The public base URL, e.g. `http://127.0.0.1:8080`.
    pub fn base_url(&self) -> String {
        self.state.config.public_url.clone().unwrap_or_default()
    }

    /// Stop serving and wait for both servers to finish.
    pub async fn shutdown(mut self) {
        for s in self.stop.drain(..) {
            let _ = s.send(());
        }
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        for s in self.stop.drain(..) {
            let _ = s.send(());
        }
    }
}

/// A DynamoDB client for a local endpoint: static dummy credentials, any region, call counting.
pub fn local_dynamodb_client(endpoint: &str, metrics: &Metrics) -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "latchkey-local"))
        .endpoint_url(endpoint)
        .interceptor(metrics.dynamodb.interceptor("count-dynamodb"))
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

/// A KMS client with call counting: static dummy credentials for a local endpoint, else the default
/// AWS chain.
async fn kms_client(endpoint: Option<&str>, metrics: &Metrics) -> aws_sdk_kms::Client {
    let conf = match endpoint {
        Some(ep) => aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("local", "local", None, None, "latchkey-local"))
            .endpoint_url(ep)
            .interceptor(metrics.kms.interceptor("count-kms"))
            .build(),
        None => {
            let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
            aws_sdk_kms::config::Builder::from(&sdk)
                .interceptor(metrics.kms.interceptor("count-kms"))
                .build()
        }
    };
    aws_sdk_kms::Client::from_conf(conf)
}

/// Start the emulator and the HTTP server.
pub async fn start(opts: Options) -> Result<Embedded, BoxError> {
    let (db, wrapper) = match &opts.data_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            let db_path = dir.join("latchkey.db");
            let db = dynoxide::Database::new(db_path.to_str().ok_or("data dir is not UTF-8")?)?;
            let wrapper = match std::env::var("LATCHKEY_MASTER_KEY") {
                Ok(k) if !k.trim().is_empty() => LocalWrapper::from_base64(&k)?,
                _ => LocalWrapper::load_or_create(&dir.join("master.key"))?,
            };
            (db, wrapper)
        }
        None => {
            let mut key = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
            (dynoxide::Database::memory()?, LocalWrapper::from_key(key))
        }
    };

    let mut stop = Vec::new();
    let mut tasks = Vec::new();

    let ddb_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let ddb_addr = ddb_listener.local_addr()?;
    let (ddb_stop, ddb_rx) = oneshot::channel::<()>();
    stop.push(ddb_stop);
    tasks.push(tokio::spawn(async move {
        if let Err(e) = dynoxide::server::serve_with_shutdown(ddb_listener, db, async {
            let _ = ddb_rx.await;
        })
        .await
        {
            tracing::error!(error = %e, "embedded DynamoDB stopped");
        }
    }));
    let dynamodb_endpoint = format!("http://{ddb_addr}");

    let listener = tokio::net::TcpListener::bind(opts.addr).await?;
    let addr = listener.local_addr()?;
    let public_url = opts.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
    let config = Config::embedded(&public_url, &opts.config)?;
    let metrics = Metrics::default();
    let client = local_dynamodb_client(&dynamodb_endpoint, &metrics);
    table::create_table(&client, &config.table).await?;
    let config_allow_loopback = config.allow_loopback_outbound;
    // With LATCHKEY_KMS_KEY_ID the embedded server seals with KMS (a local KMS-compatible server at
    // LATCHKEY_KMS_ENDPOINT, or AWS); otherwise with the local master key.
    let key_wrapper = match &config.kms_key_id {
        Some(key_id) => KeyWrapper::Kms(crate::crypto::KmsWrapper::new(
            kms_client(config.kms_endpoint.as_deref(), &metrics).await,
            key_id.clone(),
        )),
        None => KeyWrapper::Local(wrapper),
    };
    let state = Arc::new(AppState {
        store: Store::new(client, config.table.clone()),
        keyring: Some(Arc::new(Keyring::new(key_wrapper))),
        config,
        metrics,
        clock: Clock::default(),
        http: crate::state::outbound_client()?,
        upstream: crate::net::guarded_client(config_allow_loopback)?,
        login_metadata: tokio::sync::OnceCell::new(),
    });

    let app = axum::Router::new().fallback(serve_one).with_state(Arc::clone(&state));
    let (http_stop, http_rx) = oneshot::channel::<()>();
    stop.push(http_stop);
    tasks.push(tokio::spawn(async move {
        let res = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = http_rx.await;
            })
            .await;
        if let Err(e) = res {
            tracing::error!(error = %e, "embedded HTTP server stopped");
        }
    }));

    Ok(Embedded {
        state,
        addr,
        dynamodb_endpoint,
        stop,
        tasks,
    })
}

/// Largest body the local server reads; handlers apply their own, smaller caps.
const LOCAL_READ_CAP: usize = 6 * 1024 * 1024;

async fn serve_one(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    req: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, LOCAL_READ_CAP).await {
        Ok(b) => b,
        Err(_) => {
            let res = crate::http::response::json(
                http::StatusCode::PAYLOAD_TOO_LARGE,
                &serde_json::json!({"error": "invalid_request", "error_description": "request body is too large"}),
            );
            return into_axum(res);
        }
    };
    let body = if bytes.is_empty() {
        lambda_http::Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(s) => lambda_http::Body::Text(s),
            Err(e) => lambda_http::Body::Binary(e.into_bytes()),
        }
    };
    let res = router::dispatch(&state, http::Request::from_parts(parts, body)).await;
    into_axum(res)
}

fn into_axum(res: lambda_http::Response<lambda_http::Body>) -> axum::response::Response {
    let (parts, body) = res.into_parts();
    let bytes: Vec<u8> = body.as_ref().to_vec();
    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
}
