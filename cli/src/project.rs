//! `latchkey project create|list`: token-vault projects (each app gets one, with API keys for
//! `X-API-Key`).

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

use crate::admin::{Admin, StoreArgs};

#[derive(Subcommand)]
pub enum ProjectCommand {
    /// Create a project; prints its id and a first API key (shown only once).
    Create {
        /// A name for people (e.g. the app's name).
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List projects (JSON lines).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn run(command: ProjectCommand) -> anyhow::Result<()> {
    match command {
        ProjectCommand::Create { name, json, store } => {
            if name.trim().is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
                anyhow::bail!("a project name is 1 to 200 printable characters");
            }
            Admin::run(store, async |store, now| {
                let (project_id, key_id, key) =
                    store.create_project(&name, now).await.context("creating the project")?;
                if json {
                    println!(
                        "{}",
                        json!({"project_id": project_id, "name": name, "api_key_id": key_id, "api_key": key})
                    );
                } else {
                    println!("project created");
                    println!("  name:       {name}");
                    println!("  project_id: {project_id}");
                    println!("  api_key_id: {key_id}");
                    println!("  api_key:    {key}");
                    println!("The API key is shown only this once; latchkey keeps only its SHA-256.");
                    println!(
                        "Next: latchkey provider set --project {project_id} google --client-id … --client-secret …"
                    );
                }
                Ok(())
            })
            .await
        }
        ProjectCommand::List { store } => {
            Admin::run(store, async |store, now| {
                for (id, name, created_at) in store.list_projects(now).await? {
                    println!("{}", json!({"project_id": id, "name": name, "created_at": created_at}));
                }
                Ok(())
            })
            .await
        }
    }
}

/// Refuse a project id that does not exist, pointing at `latchkey project list`.
pub async fn require_project(store: &latchkey::store::Store, project: &str, now: i64) -> anyhow::Result<()> {
    if !store.project_exists(project, now).await? {
        anyhow::bail!("no project {project} (see `latchkey project list`)");
    }
    Ok(())
}
