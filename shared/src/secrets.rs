//! Secrets a function needs at cold start, read from AWS Systems Manager Parameter Store (a
//! `SecureString`, decrypted by SSM) instead of a plain environment variable.
//!
//! One call per container: `ssm:GetParameter` signed with SigV4 (`aws-sigv4`, already in the tree
//! through `aws-config`) and sent with `reqwest`, so no service SDK crate is added for one operation.

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::identity::Identity;

/// The decrypted value of the SSM parameter `name` (`WithDecryption: true`), through the SDK
/// config's region and credentials; `endpoint` replaces `https://ssm.<region>.amazonaws.com/`.
/// Errors name the parameter, never its value.
pub async fn ssm_parameter(sdk: &SdkConfig, name: &str, endpoint: Option<&str>) -> Result<String, BoxError> {
    let region = sdk.region().ok_or("no AWS region to reach SSM")?.to_string();
    let credentials = sdk
        .credentials_provider()
        .ok_or("no AWS credentials to reach SSM")?
        .provide_credentials()
        .await?;
    let identity: Identity = credentials.into();
    let url = match endpoint {
        Some(e) => e.to_string(),
        None => format!("https://ssm.{region}.amazonaws.com/"),
    };
    let body = serde_json::to_vec(&serde_json::json!({"Name": name, "WithDecryption": true}))?;
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "AmazonSSM.GetParameter"),
    ];
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("ssm")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()?
        .into();
    let signable = SignableRequest::new("POST", &url, headers.into_iter(), SignableBody::Bytes(&body))?;
    let (instructions, _signature) = sign(signable, &params)?.into_parts();
    let mut request = ::http::Request::builder().method("POST").uri(&url);
    for (k, v) in headers {
        request = request.header(k, v);
    }
    let mut request = request.body(body)?;
    instructions.apply_to_request_http1x(&mut request);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    let response = client.execute(reqwest::Request::try_from(request)?).await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        // SSM's error body names the error type (e.g. ParameterNotFound, AccessDeniedException), no value.
        let kind = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("__type").and_then(|t| t.as_str()).map(str::to_string))
            .unwrap_or_default();
        return Err(format!("SSM GetParameter {name}: HTTP {status} {kind}").into());
    }
    let value: serde_json::Value = serde_json::from_str(&text)?;
    value
        .pointer("/Parameter/Value")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| format!("SSM GetParameter {name}: no Parameter.Value in the answer").into())
}
