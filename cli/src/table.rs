//! `latchkey table create`: the DynamoDB table (pk/sk, on-demand, TTL on `ttl`).

use anyhow::Context;
use clap::Subcommand;
use latchkey::metrics::Metrics;
use latchkey::state::Aws;

#[derive(Subcommand)]
pub enum TableCommand {
    /// Create the table (pk/sk, on-demand, TTL on `ttl`) if it does not exist.
    Create {
        /// Table name.
        #[arg(long, default_value = "latchkey", env = "LATCHKEY_TABLE")]
        table: String,
        /// DynamoDB endpoint (e.g. http://127.0.0.1:8000); default: AWS for the current region.
        #[arg(long, env = "LATCHKEY_DYNAMODB_ENDPOINT")]
        endpoint_url: Option<String>,
    },
}

pub async fn run(command: TableCommand) -> anyhow::Result<()> {
    match command {
        TableCommand::Create { table, endpoint_url } => {
            let client = Aws::chain(endpoint_url).await.dynamodb(&Metrics::default());
            let created = latchkey::store::table::create_table(&client, &table)
                .await
                .context("creating the table")?;
            println!(
                "table {table}: {}",
                if created {
                    "created, TTL on `ttl`"
                } else {
                    "already exists"
                }
            );
            Ok(())
        }
    }
}
