//! `latchkey api-key create|list|revoke`: a project's API keys (only their SHA-256 is stored).

use anyhow::Context;
use clap::Subcommand;
use latchkey::store::StoreError;
use serde_json::json;

use crate::admin::{Admin, StoreArgs};

#[derive(Subcommand)]
pub enum ApiKeyCommand {
    /// Create another API key for a project (shown only once).
    Create {
        #[arg(long)]
        project: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List a project's API key ids (JSON lines; keys themselves are never stored).
    List {
        #[arg(long)]
        project: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke an API key by its id (`ak_…`); it stops working at once.
    Revoke {
        key_id: String,
        #[arg(long)]
        project: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn run(command: ApiKeyCommand) -> anyhow::Result<()> {
    match command {
        ApiKeyCommand::Create { project, json, store } => {
            Admin::run(store, async |store, now| {
                let (key_id, key) = match store.create_api_key(&project, now).await {
                    Ok(k) => k,
                    Err(StoreError::ConditionFailed) => anyhow::bail!("no project {project}"),
                    Err(e) => return Err(e).context("creating the API key"),
                };
                if json {
                    println!(
                        "{}",
                        json!({"project_id": project, "api_key_id": key_id, "api_key": key})
                    );
                } else {
                    println!("api_key_id: {key_id}");
                    println!("api_key:    {key}");
                    println!("The API key is shown only this once; latchkey keeps only its SHA-256.");
                }
                Ok(())
            })
            .await
        }
        ApiKeyCommand::List { project, store } => {
            Admin::run(store, async |store, now| {
                crate::project::require_project(store, &project, now).await?;
                for item in store.project_items(&project, now).await? {
                    if let Some(id) = item.s("sk").and_then(|sk| sk.strip_prefix("APIKEY#")) {
                        println!(
                            "{}",
                            json!({"api_key_id": id, "created_at": item.n("created_at").unwrap_or(0)})
                        );
                    }
                }
                Ok(())
            })
            .await
        }
        ApiKeyCommand::Revoke { key_id, project, store } => {
            Admin::run(store, async |store, now| {
                if !store.revoke_api_key(&project, &key_id, now).await? {
                    anyhow::bail!("project {project} has no API key {key_id}");
                }
                println!("revoked API key {key_id}");
                Ok(())
            })
            .await
        }
    }
}
