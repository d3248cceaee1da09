//! `latchkey resource-server create|update|list|delete`: the MCP servers that trust latchkey and call
//! its introspection endpoint.

use anyhow::Context;
use clap::Subcommand;
use latchkey::domain::resource::{Resource, ResourceServerRecord};
use latchkey::store::StoreError;

use crate::admin::{Admin, StoreArgs};

#[derive(Subcommand)]
pub enum ResourceServerCommand {
    /// Register a resource server; prints its id and secret (the secret is shown only once).
    Create {
        /// The MCP server's canonical URL (https, or http on a loopback host; no fragment).
        #[arg(long)]
        resource: Resource,
        /// A scope the resource server declares (repeatable), e.g. `mcp:tools`: what its protected
        /// resource metadata lists in `scopes_supported` and its challenges ask for.
        #[arg(long = "scope", value_name = "SCOPE", value_parser = parse_scope)]
        scopes: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Replace a resource server's declared scopes in place (same id, secret and resource). Tokens
    /// already issued keep the scope they were issued with.
    Update {
        /// The resource server's id (`lkrs_…`).
        id: String,
        /// A scope the resource server declares (repeatable); none leaves only the base scopes.
        #[arg(long = "scope", value_name = "SCOPE", value_parser = parse_scope)]
        scopes: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List resource servers.
    List {
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Delete a resource server (its credentials stop working at once).
    Delete {
        /// The resource server's id (`lkrs_…`).
        id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn parse_scope(s: &str) -> Result<String, String> {
    if latchkey::domain::scope::is_scope_token(s) {
        Ok(s.to_string())
    } else {
        Err("a scope is 1 to 128 printable ASCII characters, without spaces, `\"` or `\\` (RFC 6749 §3.3)".into())
    }
}

fn resource_server_json(rs: &ResourceServerRecord) -> serde_json::Value {
    serde_json::json!({
        "resource_server_id": rs.rs_id,
        "resource": rs.resource,
        "scopes": rs.scopes,
        "created_at": rs.created_at,
    })
}

fn unique(scopes: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in scopes {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

pub async fn run(command: ResourceServerCommand) -> anyhow::Result<()> {
    match command {
        ResourceServerCommand::Update {
            id,
            scopes,
            json,
            store,
        } => {
            let scopes = unique(scopes);
            Admin::run(store, async |store, now| {
                let Some(rs) = store
                    .update_resource_server_scopes(&id, &scopes, now)
                    .await
                    .context("updating the resource server")?
                else {
                    anyhow::bail!("no resource server {id}");
                };
                if json {
                    println!("{}", resource_server_json(&rs));
                } else {
                    println!("resource server updated");
                    println!("  resource:           {}", rs.resource);
                    println!("  scopes:             {}", display_scopes(&rs.scopes));
                    println!("  resource_server_id: {}", rs.rs_id);
                }
                Ok(())
            })
            .await
        }
        ResourceServerCommand::Create {
            resource,
            scopes,
            json,
            store,
        } => {
            let scopes_unique = unique(scopes);
            Admin::run(store, async |store, now| {
                let (rs, secret) = match store.create_resource_server(&resource, &scopes_unique, now).await {
                    Ok(created) => created,
                    Err(StoreError::ConditionFailed) => {
                        let existing = store
                            .resource_server_for(resource.as_str(), now)
                            .await?
                            .map(|r| format!(" ({})", r.rs_id))
                            .unwrap_or_default();
                        anyhow::bail!("a resource server for {resource} already exists{existing}");
                    }
                    Err(e) => return Err(e).context("creating the resource server"),
                };
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "resource_server_id": rs.rs_id,
                            "resource_server_secret": secret,
                            "resource": rs.resource,
                            "scopes": rs.scopes,
                        })
                    );
                } else {
                    println!("resource server created");
                    println!("  resource:               {}", rs.resource);
                    println!("  scopes:                 {}", display_scopes(&rs.scopes));
                    println!("  resource_server_id:     {}", rs.rs_id);
                    println!("  resource_server_secret: {secret}");
                    println!("The secret is shown only this once; latchkey keeps only its SHA-256.");
                }
                Ok(())
            })
            .await
        }
        ResourceServerCommand::List { json, store } => {
            Admin::run(store, async |store, now| {
                for rs in store.list_resource_servers(now).await? {
                    if json {
                        println!("{}", resource_server_json(&rs));
                    } else {
                        println!("{}  {}  scopes: {}", rs.rs_id, rs.resource, display_scopes(&rs.scopes));
                    }
                }
                Ok(())
            })
            .await
        }
        ResourceServerCommand::Delete { id, store } => {
            Admin::run(store, async |store, now| {
                if !store.delete_resource_server(&id, now).await? {
                    anyhow::bail!("no resource server {id}");
                }
                println!("deleted resource server {id}");
                Ok(())
            })
            .await
        }
    }
}

fn display_scopes(scopes: &[String]) -> String {
    if scopes.is_empty() {
        "(base scopes only)".into()
    } else {
        scopes.join(" ")
    }
}
