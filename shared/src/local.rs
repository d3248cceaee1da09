//! The embedded default (`latchkey serve`, tests and the admin commands): the in-process DynamoDB
//! emulator (dynoxide, in memory or a SQLite file), reached through aws-sdk-dynamodb with an
//! in-process HTTP client (`store::embedded`) and also served on a loopback port for other
//! processes, the local keyring, and — for `start` only — every endpoint mounted through
//! `router` on one HTTP port. `open_store` is the store alone, without the HTTP server.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::crypto::LocalWrapper;
use crate::events::{Delayed, Events, Sink};
use crate::router;
use crate::state::{AppState, Aws, Backends, BoxError, Key};
use crate::store::embedded::{InProcess, ReadCache};
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
    /// Reuse the store's multi-item reads while the database has not changed
    /// (`store::embedded::ReadCache`): `latchkey serve` turns it on; the tests' servers count every
    /// round trip, as a Lambda function makes them, so they leave it off unless a test is about it.
    pub read_cache: bool,
}

/// A running embedded server. Dropping it stops the HTTP server and the emulator.
pub struct Embedded {
    pub state: Arc<AppState>,
    pub addr: SocketAddr,
    pub dynamodb_endpoint: String,
    emulator: Emulator,
    http: Task,
    /// The event delivery worker and the health timer.
    background: Vec<Task>,
}

impl Embedded {
    /// The public base URL, e.g. `http://127.0.0.1:8080`.
    pub fn base_url(&self) -> String {
        self.state.config.public_url.clone().unwrap_or_default()
    }

    /// Stop serving HTTP, then the emulator, and wait for both to finish.
    pub async fn shutdown(self) {
        let Embedded {
            http,
            emulator,
            background,
            ..
        } = self;
        http.stop().await;
        for task in background {
            task.stop().await;
        }
        emulator.shutdown().await;
    }
}

/// Start the emulator and the HTTP server.
pub async fn start(opts: Options) -> Result<Embedded, BoxError> {
    let listener = tokio::net::TcpListener::bind(opts.addr).await?;
    let addr = listener.local_addr()?;
    let public_url = opts.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
    let config = Config::embedded(&public_url, &opts.config)?;
    let LocalStore {
        mut backends,
        in_process,
    } = open_store(opts.data_dir.as_deref(), &config).await?;
    // Other processes (a function's bootstrap under `scripts/invoke`, `aws dynamodb`) reach the
    // database on a loopback port, through the same dispatch.
    let emulator = Emulator::start(in_process.clone()).await?;
    if opts.read_cache {
        let file = opts.data_dir.as_deref().map(|dir| dir.join(DB_FILE));
        let cache = ReadCache::new(&in_process, file.as_deref())?;
        backends.store = backends.store.with_read_cache(Arc::new(cache));
    }
    // Events: an SQS queue when one is configured (as in AWS), else the in-process queue, drained
    // below by the same delivery code `functions/webhook-deliver` runs.
    // The background work (deliveries, the health timer) runs on a state of its own over the same
    // store, with its own DynamoDB call counters: as in AWS, where it is another function, the
    // DynamoDB counts of a request never include what the deliverer does after it. It shares the
    // request side's keyring (one master key or KMS client, one data-key cache), so with KMS its
    // unwraps count on the request side's KMS counter.
    let background_metrics = crate::metrics::Metrics::default();
    let background = Backends {
        store: Store::new(in_process.client(&background_metrics), config.table.clone()),
        keyring: backends.keyring.clone(),
        metrics: background_metrics,
    };
    let (events, background_events, local_queue) = match &config.events_queue_url {
        Some(url) => {
            let bus = match &config.event_bus {
                Some(bus) => {
                    let aws = Aws::local_or_chain(config.eventbridge_endpoint.as_deref()).await;
                    Some((aws.eventbridge(), bus.clone()))
                }
                None => None,
            };
            let sqs = Aws::local_or_chain(config.sqs_endpoint.as_deref()).await.sqs();
            let sink = |client| Sink::Sqs {
                client,
                queue_url: url.clone(),
            };
            // Both may deliver (the tests run `webhook-deliver`'s invocation on the request side).
            (
                Events::new(sink(sqs.clone()), bus.clone()),
                Events::new(sink(sqs), bus),
                None,
            )
        }
        None => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            (
                Events::new(Sink::Local(tx.clone()), None),
                Events::new(Sink::Local(tx), None),
                Some(rx),
            )
        }
    };
    let health_interval = config.health_interval_seconds;
    let mut deliverer = AppState::build(config.clone(), background).with_events(background_events);
    let state = Arc::new(AppState::build(config, backends).with_events(events));
    deliverer.clock = state.clock.clone(); // one clock: tests move both
    let deliverer = Arc::new(deliverer);
    let worker = local_queue.map(|rx| Task::spawn(|stopped| deliver_locally(Arc::clone(&deliverer), rx, stopped)));
    let health = (health_interval > 0)
        .then(|| Task::spawn(|stopped| health_timer(Arc::clone(&deliverer), health_interval, stopped)));

    let app = axum::Router::new().fallback(serve_one).with_state(Arc::clone(&state));
    let http = Task::spawn(|stopped| async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stopped).await {
            tracing::error!(error = %e, "embedded HTTP server stopped");
        }
    });

    Ok(Embedded {
        state,
        addr,
        dynamodb_endpoint: emulator.endpoint.clone(),
        emulator,
        http,
        background: worker.into_iter().chain(health).collect(),
    })
}

/// `serve`'s in-process queue: each message is delivered after its delay by the code
/// `functions/webhook-deliver` runs; retries come back through the same queue.
async fn deliver_locally(state: Arc<AppState>, mut rx: UnboundedReceiver<Delayed>, stopped: Stopped) {
    let mut stopped = stopped;
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            next = rx.recv() => {
                let Some(Delayed { message, delay }) = next else { break };
                let state = Arc::clone(&state);
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Err(e) = crate::webhooks::deliver::process(&state, message).await {
                        tracing::error!(error = %e, "webhooks: local delivery failed");
                    }
                });
            }
        }
    }
}

/// `serve`'s health timer: the scheduled run of `functions/health`, every `interval` seconds.
async fn health_timer(state: Arc<AppState>, interval: i64, stopped: Stopped) {
    let mut stopped = stopped;
    let period = std::time::Duration::from_secs(interval.max(1) as u64);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            _ = tokio::time::sleep(period) => {
                if let Err(e) = crate::webhooks::health::run(&state).await {
                    tracing::warn!(error = %e, "health: a run failed");
                }
            }
        }
    }
}

/// The embedded store without the HTTP server, for the admin commands (and `start`): the store and
/// keyring over the database, reached in process.
pub struct LocalStore {
    pub backends: Backends,
    /// The database reached in process (more clients on it: `InProcess::client`).
    pub in_process: InProcess,
}

/// Open the embedded store: the database in `data_dir` (`None`: in memory), the table `config.table`
/// (created if missing) and the keyring — KMS when
/// `config.kms_key_id` is set (a local KMS-compatible server at `config.kms_endpoint`, or AWS), else
/// the local master key.
pub async fn open_store(data_dir: Option<&Path>, config: &Config) -> Result<LocalStore, BoxError> {
    let (db, master) = open_data(data_dir)?;
    let in_process = InProcess::new(db);
    let key = match &config.kms_key_id {
        Some(key_id) => Key::Kms {
            key_id: key_id.clone(),
            aws: Aws::local_or_chain(config.kms_endpoint.as_deref()).await,
        },
        None => Key::Local(master),
    };
    let backends = Backends::open_with(&config.table, |metrics| in_process.client(metrics), Some(key));
    table::create_table(backends.store.client(), &config.table).await?;
    Ok(LocalStore { backends, in_process })
}

/// The SQLite file in a data dir.
const DB_FILE: &str = "latchkey.db";

/// The database and master key of a data dir (`dir/latchkey.db`, `dir/master.key` or
/// `LATCHKEY_MASTER_KEY`), or an in-memory database with a random master key.
fn open_data(data_dir: Option<&Path>) -> Result<(dynoxide::Database, LocalWrapper), BoxError> {
    match data_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            let db_path = dir.join(DB_FILE);
            let db = dynoxide::Database::new(db_path.to_str().ok_or("data dir is not UTF-8")?)?;
            let master = match std::env::var("LATCHKEY_MASTER_KEY") {
                Ok(k) if !k.trim().is_empty() => LocalWrapper::from_base64(&k)?,
                _ => LocalWrapper::load_or_create(&dir.join("master.key"))?,
            };
            Ok((db, master))
        }
        None => {
            let mut key = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
            Ok((dynoxide::Database::memory()?, LocalWrapper::from_key(key)))
        }
    }
}

/// The DynamoDB emulator serving one database on a loopback port. Dropping it stops the server.
pub struct Emulator {
    /// `http://127.0.0.1:<port>`, for aws-sdk-dynamodb's endpoint URL.
    pub endpoint: String,
    task: Task,
}

impl Emulator {
    /// Serve `db` on a free loopback port.
    pub async fn start(db: InProcess) -> Result<Emulator, BoxError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let task = Task::spawn(|stopped| async move {
            if let Err(e) = crate::store::embedded::serve(listener, db, stopped).await {
                tracing::error!(error = %e, "embedded DynamoDB stopped");
            }
        });
        Ok(Emulator { endpoint, task })
    }

    /// Stop serving and wait for the server to finish.
    pub async fn shutdown(self) {
        self.task.stop().await;
    }
}

/// Resolves when a server is told to stop.
type Stopped = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A spawned server and the switch that stops it gracefully; dropping it flips the switch.
struct Task {
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Task {
    /// Spawn `serve(stopped)`, where `stopped` resolves when the task is told to stop.
    fn spawn<F>(serve: impl FnOnce(Stopped) -> F) -> Task
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (stop, rx) = oneshot::channel::<()>();
        let stopped = Box::pin(async {
            let _ = rx.await;
        });
        Task {
            stop: Some(stop),
            handle: Some(tokio::spawn(serve(stopped))),
        }
    }

    /// Tell the server to stop and wait for it.
    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
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
