//! The embedded store without the loopback hop: an HTTP client for aws-sdk-dynamodb that hands each
//! request straight to the in-process emulator (dynoxide's `Database`, the same one `local::Emulator`
//! serves on a port for other processes) and turns its answer, or its error, into the response
//! DynamoDB would send. Everything above the connector — the SDK's serialisation, its interceptors
//! (the call counters), retries and error parsing, and the store's code — is the path a Lambda takes
//! to DynamoDB; only the socket is gone. Profiled under load, the loopback TCP of that hop (both ends
//! in this process) was about a quarter of `latchkey serve`'s CPU on introspection.

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

/// The operations the store uses, handed to the emulator in process.
#[derive(Clone)]
pub struct InProcess {
    db: dynoxide::Database,
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
        InProcess { db }
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

    /// One operation: (HTTP status, JSON body), as the emulator's server would answer.
    fn answer(&self, operation: &str, body: &str) -> (u16, String) {
        match self.dispatch(operation, body) {
            Ok(json) => (200, json),
            Err(e) => (e.status_code(), e.to_json()),
        }
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
