//! Creating the table (pk/sk strings, on-demand, TTL on `ttl`): `latchkey table create` and the
//! embedded default use this; in AWS the SAM template creates it.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;

use super::{StoreError, TTL_ATTR};

/// Create the table if it does not exist, wait until it is active, and turn TTL on.
/// Returns `true` if it created the table.
pub async fn create_table(client: &Client, table: &str) -> Result<bool, StoreError> {
    let svc = |op: &str, e: String| StoreError::Service(format!("{op}: {e}"));
    let exists = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map(|out| out.table.is_some())
        .unwrap_or(false);
    if exists {
        enable_ttl(client, table).await?;
        return Ok(false);
    }
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| svc("CreateTable", e.to_string()))
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .map_err(|e| svc("CreateTable", e.to_string()))
    };
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .map_err(|e| {
            svc(
                "CreateTable",
                aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string(),
            )
        })?;
    for _ in 0..120 {
        let out = client.describe_table().table_name(table).send().await.map_err(|e| {
            svc(
                "DescribeTable",
                aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string(),
            )
        })?;
        if out.table.and_then(|t| t.table_status) == Some(TableStatus::Active) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    enable_ttl(client, table).await?;
    Ok(true)
}

/// Turn TTL on for `ttl`; "already enabled" is success, so an interrupted create can be re-run.
async fn enable_ttl(client: &Client, table: &str) -> Result<(), StoreError> {
    let res = client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(TTL_ATTR)
                .enabled(true)
                .build()
                .map_err(|e| StoreError::Service(format!("UpdateTimeToLive: {e}")))?,
        )
        .send()
        .await;
    match res {
        Ok(_) => Ok(()),
        Err(e) => {
            let detail = aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string();
            if detail.contains("already enabled") {
                Ok(())
            } else {
                Err(StoreError::Service(format!("UpdateTimeToLive: {detail}")))
            }
        }
    }
}
