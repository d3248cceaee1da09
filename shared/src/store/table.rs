//! Creating the table (pk/sk strings, on-demand, TTL on `ttl`, the sparse `health` index): `latchkey table create` and the
//! embedded default use this; in AWS the SAM template creates it.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType,
    TableStatus, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;

use super::webhooks::HEALTH_INDEX;
use super::{StoreError, TTL_ATTR};

/// Create the table if it does not exist, wait until it is active, and turn TTL on.
/// Returns `true` if it created the table.
pub async fn create_table(client: &Client, table: &str) -> Result<bool, StoreError> {
    let svc = |op: &str, e: String| StoreError::Service(format!("{op}: {e}"));
    let attr = |n: &str, t: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(t)
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
    // The health index's keys and projection, for a new table and for one made before it.
    let health_keys = || -> Result<Vec<KeySchemaElement>, StoreError> {
        Ok(vec![key("health", KeyType::Hash)?, key("due", KeyType::Range)?])
    };
    let health_projection = || Projection::builder().projection_type(ProjectionType::All).build();
    let health_index = || -> Result<GlobalSecondaryIndex, StoreError> {
        GlobalSecondaryIndex::builder()
            .index_name(HEALTH_INDEX)
            .set_key_schema(Some(health_keys()?))
            .projection(health_projection())
            .build()
            .map_err(|e| svc("CreateTable", e.to_string()))
    };
    let existing = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .ok()
        .and_then(|out| out.table);
    if let Some(t) = existing {
        let has_health = t
            .global_secondary_indexes()
            .iter()
            .any(|g| g.index_name() == Some(HEALTH_INDEX));
        if !has_health {
            // A table from before the health index (a `serve` data dir): add it.
            client
                .update_table()
                .table_name(table)
                .attribute_definitions(attr("health", ScalarAttributeType::S)?)
                .attribute_definitions(attr("due", ScalarAttributeType::N)?)
                .global_secondary_index_updates(
                    GlobalSecondaryIndexUpdate::builder()
                        .create(
                            CreateGlobalSecondaryIndexAction::builder()
                                .index_name(HEALTH_INDEX)
                                .set_key_schema(Some(health_keys()?))
                                .projection(health_projection())
                                .build()
                                .map_err(|e| svc("UpdateTable", e.to_string()))?,
                        )
                        .build(),
                )
                .send()
                .await
                .map_err(|e| {
                    svc(
                        "UpdateTable",
                        aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string(),
                    )
                })?;
        }
        enable_ttl(client, table).await?;
        return Ok(false);
    }
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(attr("pk", ScalarAttributeType::S)?)
        .attribute_definitions(attr("sk", ScalarAttributeType::S)?)
        .attribute_definitions(attr("health", ScalarAttributeType::S)?)
        .attribute_definitions(attr("due", ScalarAttributeType::N)?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(health_index()?)
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
