//! `latchkey resource-server create|update|list|delete`: the MCP servers that trust latchkey and call
//! its introspection endpoint.

use anyhow::Context;
use clap::Subcommand;
use latchkey::domain::resource::{valid_scope_description, Resource, ResourceServerRecord, ScopeDescriptions};
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
        /// resource metadata lists in `scopes_supported` and its challenges ask for. Add words for
        /// the consent page after `=`: `--scope "mcp:tools=Run this server's tools"`.
        #[arg(long = "scope", value_name = "SCOPE[=DESCRIPTION]", value_parser = parse_scope)]
        scopes: Vec<DeclaredScope>,
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
        /// A scope the resource server declares (repeatable), with optional words for the consent
        /// page after `=`; none leaves only the base scopes. Scopes and descriptions are both
        /// replaced.
        #[arg(long = "scope", value_name = "SCOPE[=DESCRIPTION]", value_parser = parse_scope)]
        scopes: Vec<DeclaredScope>,
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

/// One `--scope` value: a scope name and, after the first `=`, what it lets an app do.
#[derive(Clone, Debug)]
pub struct DeclaredScope {
    name: String,
    description: Option<String>,
}

fn parse_scope(s: &str) -> Result<DeclaredScope, String> {
    let (name, description) = match s.split_once('=') {
        Some((name, words)) => {
            let words = words.trim();
            valid_scope_description(words)?;
            (name.trim(), Some(words.to_string()))
        }
        None => (s, None),
    };
    if latchkey::domain::scope::is_scope_token(name) {
        Ok(DeclaredScope {
            name: name.to_string(),
            description,
        })
    } else {
        Err(
            "a scope is 1 to 128 printable ASCII characters, without spaces, `\"` or `\\` (RFC 6749 §3.3), \
optionally followed by `=` and its description"
                .into(),
        )
    }
}

/// The scope names (first mention kept) and their descriptions (the last one given for a name).
fn split(scopes: Vec<DeclaredScope>) -> (Vec<String>, ScopeDescriptions) {
    let mut names: Vec<String> = Vec::new();
    let mut words = ScopeDescriptions::new();
    for s in scopes {
        if !names.contains(&s.name) {
            names.push(s.name.clone());
        }
        if let Some(d) = s.description {
            words.insert(s.name, d);
        }
    }
    (names, words)
}

fn resource_server_json(rs: &ResourceServerRecord) -> serde_json::Value {
    serde_json::json!({
        "resource_server_id": rs.rs_id,
        "resource": rs.resource,
        "scopes": rs.scopes,
        "scope_descriptions": rs.scope_descriptions,
        "created_at": rs.created_at,
    })
}

pub async fn run(command: ResourceServerCommand) -> anyhow::Result<()> {
    match command {
        ResourceServerCommand::Update {
            id,
            scopes,
            json,
            store,
        } => {
            let (scopes, words) = split(scopes);
            Admin::run(store, async |store, now| {
                let Some(rs) = store
                    .update_described_resource_server(&id, &scopes, &words, now)
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
                    print_descriptions(&rs);
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
            let (scopes_unique, words) = split(scopes);
            Admin::run(store, async |store, now| {
                let (rs, secret) = match store
                    .create_described_resource_server(&resource, &scopes_unique, &words, now)
                    .await
                {
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
                            "scope_descriptions": rs.scope_descriptions,
                        })
                    );
                } else {
                    println!("resource server created");
                    println!("  resource:               {}", rs.resource);
                    println!("  scopes:                 {}", display_scopes(&rs.scopes));
                    print_descriptions(&rs);
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

/// Each described scope on its own line, and a hint for the ones without words.
fn print_descriptions(rs: &ResourceServerRecord) {
    for scope in &rs.scopes {
        match rs.scope_descriptions.get(scope) {
            Some(words) => println!("    {scope}: {words}"),
            None => println!("    {scope}: (no description: the consent page shows the name only; add one with --scope \"{scope}=…\")"),
        }
    }
}
