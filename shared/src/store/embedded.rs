//! The embedded store without the loopback hop: an HTTP client for aws-sdk-dynamodb that hands each
//! request straight to the in-process emulator (dynoxide's `Database`, the same one `local::Emulator`
//! serves on a port for other processes) and turns its answer, or its error, into the response
//! DynamoDB would send. Everything above the connector — the SDK's serialisation, its interceptors
//! (the call counters), retries and error parsing, and the store's code — is the path a Lambda takes
//! to DynamoDB; only the socket is gone. Profiled under load, the loopback TCP of that hop (both ends
//! in this process) was about a quarter of `latchkey serve`'s CPU on introspection.
//!
//! Other processes reach the same database through [`serve`], a loopback listener that answers with
//! the same dispatch, so every write this process's database takes passes through [`InProcess`].
//!
//! What this dispatch does not do that dynoxide's own HTTP server does (its dispatch is private):
//! pre-check the request JSON's field types and word some validation errors per operation. Requests
//! here come from aws-sdk-dynamodb's typed builders, which cannot send those malformed shapes; the
//! operations' own checks (keys, expressions, conditions, sizes) run as before. It serves the
//! operations the store uses (`dispatch` below): no PartiQL, tags or streams.
//!
//! [`ReadCache`]: `latchkey serve` keeps the answers of `Store::get_many` until the database changes.
//! It is exact, not time-bounded: an answer is reused only while no write has reached the database
//! since it was read — no write through [`InProcess`] (this process, and other processes through
//! [`serve`]), and, for a SQLite file, no commit by any other connection (`PRAGMA data_version`: the
//! admin commands write the file from another process). Expiry is applied to a reused answer at the
//! time of the read, as to a fresh one. So a revocation is visible to the next introspection, as
//! without the cache; only the round trip is saved. Lambda functions have no cache (they cannot see
//! DynamoDB's writes), and the tests' servers run without it unless a test turns it on.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::{BehaviorVersion, Region};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use dynoxide::errors::DynoxideError;

use crate::metrics::Metrics;
use crate::store::keys::Key;
use crate::store::Item;

/// The operations the store uses, handed to the emulator in process.
#[derive(Clone)]
pub struct InProcess {
    db: dynoxide::Database,
    /// Writes answered so far (bumped after each one completes): [`ReadCache`]'s version.
    writes: Arc<AtomicU64>,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InProcess(dynoxide)")
    }
}

/// Where the SDK thinks it sends (nothing is sent: the connector answers).
const ENDPOINT: &str = "http://dynoxide.in-process";

impl InProcess {
    pub fn new(db: dynoxide::Database) -> Self {
        InProcess {
            db,
            writes: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A DynamoDB client on this database whose calls count in `metrics.dynamodb`, like
    /// `state::Aws::dynamodb` for a real endpoint.
    pub fn client(&self, metrics: &Metrics) -> aws_sdk_dynamodb::Client {
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "local",
                "local",
                None,
                None,
                "latchkey-local",
            ))
            .endpoint_url(ENDPOINT)
            .http_client(self.clone())
            .interceptor(metrics.dynamodb.interceptor("count-dynamodb"))
            .build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    }

    /// One operation: (HTTP status, JSON body), as the emulator's server would answer. Anything but a
    /// read counts as a write once it has run (a failed write too: never a stale answer).
    fn answer(&self, operation: &str, body: &str) -> (u16, String) {
        let out = match self.dispatch(operation, body) {
            Ok(json) => (200, json),
            Err(e) => (e.status_code(), e.to_json()),
        };
        if !is_read(operation) {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
        out
    }

    fn dispatch(&self, operation: &str, body: &str) -> Result<String, DynoxideError> {
        fn read<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, DynoxideError> {
            serde_json::from_str(body).map_err(|e| DynoxideError::ValidationException(e.to_string()))
        }
        fn write<T: serde::Serialize>(v: &T) -> Result<String, DynoxideError> {
            serde_json::to_string(v).map_err(|e| DynoxideError::InternalServerError(e.to_string()))
        }
        let db = &self.db;
        match operation {
            "GetItem" => write(&db.get_item(read(body)?)?),
            "BatchGetItem" => write(&db.batch_get_item(read(body)?)?),
            "PutItem" => write(&db.put_item(read(body)?)?),
            "UpdateItem" => write(&db.update_item(read(body)?)?),
            "DeleteItem" => write(&db.delete_item(read(body)?)?),
            "Query" => write(&db.query(read(body)?)?),
            "Scan" => write(&db.scan(read(body)?)?),
            "TransactWriteItems" => write(&db.transact_write_items(read(body)?)?),
            "TransactGetItems" => write(&db.transact_get_items(read(body)?)?),
            "BatchWriteItem" => write(&db.batch_write_item(read(body)?)?),
            "CreateTable" => write(&db.create_table(read(body)?)?),
            "DescribeTable" => write(&db.describe_table(read(body)?)?),
            "UpdateTable" => write(&db.update_table(read(body)?)?),
            "DeleteTable" => write(&db.delete_table(read(body)?)?),
            "ListTables" => write(&db.list_tables(read(body)?)?),
            "UpdateTimeToLive" => write(&db.update_time_to_live(read(body)?)?),
            "DescribeTimeToLive" => write(&db.describe_time_to_live(read(body)?)?),
            other => Err(DynoxideError::ValidationException(format!(
                "the in-process store does not serve {other}"
            ))),
        }
    }
}

/// Operations that never change the database.
fn is_read(operation: &str) -> bool {
    matches!(
        operation,
        "GetItem"
            | "BatchGetItem"
            | "Query"
            | "Scan"
            | "TransactGetItems"
            | "DescribeTable"
            | "ListTables"
            | "DescribeTimeToLive"
    )
}

/// Serve the database to other processes on `listener` (the same dispatch as in process, so their
/// writes reach [`ReadCache`]'s version too) until `stopped` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    db: InProcess,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    async fn one(
        axum::extract::State(db): axum::extract::State<InProcess>,
        headers: http::HeaderMap,
        body: axum::body::Bytes,
    ) -> axum::response::Response {
        let operation = headers
            .get("x-amz-target")
            .and_then(|t| t.to_str().ok())
            .and_then(|t| t.split_once('.'))
            .map(|(_, op)| op)
            .unwrap_or_default();
        let (status, json) = db.answer(operation, &String::from_utf8_lossy(&body));
        let mut response = axum::response::Response::new(axum::body::Body::from(json));
        *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/x-amz-json-1.0"),
        );
        response
    }
    let app = axum::Router::new()
        .fallback(one)
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024 * 1024))
        .with_state(db);
    axum::serve(listener, app).with_graceful_shutdown(stopped).await
}

/// Most answers kept; past this the cache starts again empty.
const CACHE_ENTRIES: usize = 8192;

/// The database's version: writes through [`InProcess`], and the SQLite file's `data_version`.
type Version = (u64, i64);

/// One read's answer: the items for its keys, in order, as read (expiry not applied).
type Answer = Arc<Vec<Option<Item>>>;

/// A read's keys, as (pk, sk) pairs in order.
type Keys = Vec<(String, String)>;

/// `Store::get_many`'s answers, reused while the database has not changed (module docs).
pub struct ReadCache {
    writes: Arc<AtomicU64>,
    /// A read-only connection to the SQLite file, whose `PRAGMA data_version` changes when any other
    /// connection commits. `None` in memory (no other connection can reach that database).
    file: Option<Mutex<rusqlite::Connection>>,
    /// The answers read at one version (any other version's are gone: a write ends every reuse).
    entries: Mutex<(Option<Version>, HashMap<Keys, Answer>)>,
}

impl std::fmt::Debug for ReadCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadCache")
    }
}

impl ReadCache {
    /// A cache over `db`'s writes and, when the database is a file, that file's commits.
    pub fn new(db: &InProcess, file: Option<&Path>) -> Result<Self, rusqlite::Error> {
        let file = match file {
            Some(path) => Some(Mutex::new(rusqlite::Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?)),
            None => None,
        };
        Ok(ReadCache {
            writes: Arc::clone(&db.writes),
            file,
            entries: Mutex::new((None, HashMap::new())),
        })
    }

    /// The version now. Read it before the read whose answer is kept under it: a write that lands
    /// after this moves the version on, so that answer is never reused. `None` when the file's
    /// version cannot be read (then nothing is reused).
    pub(crate) fn version(&self) -> Option<Version> {
        let data = match &self.file {
            Some(conn) => conn
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .query_row("PRAGMA data_version", [], |row| row.get::<_, i64>(0))
                .ok()?,
            None => 0,
        };
        Some((self.writes.load(Ordering::SeqCst), data))
    }

    fn key(keys: &[Key]) -> Keys {
        keys.iter().map(|k| (k.pk.clone(), k.sk.clone())).collect()
    }

    /// The answer read for `keys` at `version`, if one was (items as read, expiry not applied).
    pub(crate) fn get(&self, keys: &[Key], version: Version) -> Option<Answer> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match &*entries {
            (Some(at), answers) if *at == version => answers.get(&Self::key(keys)).map(Arc::clone),
            _ => None,
        }
    }

    /// Keep the answer read for `keys` after `version` was taken; answers of another version go.
    pub(crate) fn put(&self, keys: &[Key], version: Version, items: Answer) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (at, answers) = &mut *entries;
        if *at != Some(version) || answers.len() >= CACHE_ENTRIES {
            answers.clear();
            *at = Some(version);
        }
        answers.insert(Self::key(keys), items);
    }
}

impl HttpConnector for InProcess {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.split_once('.'))
            .map(|(_, op)| op.to_string())
            .unwrap_or_default();
        let body = request
            .body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let (status, json) = self.answer(&operation, &body);
        let mut response = Response::new(
            StatusCode::try_from(status).unwrap_or_else(|_| StatusCode::try_from(500).expect("500 is a status")),
            SdkBody::from(json),
        );
        response
            .headers_mut()
            .insert("content-type", "application/x-amz-json-1.0");
        HttpConnectorFuture::ready(Ok(response))
    }
}

impl HttpClient for InProcess {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}
