//! `latchkey`: the local server (`serve`) and admin verbs.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use latchkey::router::Route;
use latchkey::store::resource_servers::{Resource, ResourceServerRecord};
use latchkey::store::{Store, StoreError};

mod vault_admin;

#[derive(Parser)]
#[command(name = "latchkey", version, about = "OAuth for the Model Context Protocol")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every endpoint on one local port, with the embedded store and local keyring.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080", env = "LATCHKEY_ADDR")]
        addr: SocketAddr,
        /// Folder for the SQLite-backed store and the master key (created if missing).
        #[arg(long, default_value = ".latchkey", env = "LATCHKEY_DATA_DIR")]
        data_dir: PathBuf,
        /// Keep everything in memory (nothing survives a restart).
        #[arg(long, conflicts_with = "data_dir")]
        memory: bool,
        /// Public base URL (default http://<addr>).
        #[arg(long, env = "LATCHKEY_PUBLIC_URL")]
        public_url: Option<String>,
    },
    /// Manage the DynamoDB table.
    Table {
        #[command(subcommand)]
        command: TableCommand,
    },
    /// Registered OAuth clients.
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Resource servers: the MCP servers that trust latchkey and call its introspection endpoint.
    ResourceServer {
        #[command(subcommand)]
        command: ResourceServerCommand,
    },
    /// Grants: what users approved, and the tokens issued from them.
    Grant {
        #[command(subcommand)]
        command: GrantCommand,
    },
    /// Token-vault projects: each app gets one, with API keys for `X-API-Key`.
    Project {
        #[command(subcommand)]
        command: ProjectCommand,
    },
    /// A project's API keys.
    ApiKey {
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
    /// Upstream providers (Google, GitHub, …) a project's users can connect.
    Provider {
        #[command(subcommand)]
        command: ProviderCommand,
    },
}

#[derive(Subcommand)]
enum ProjectCommand {
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

#[derive(Subcommand)]
enum ApiKeyCommand {
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

#[derive(Subcommand)]
enum ProviderCommand {
    /// Configure a provider for a project: a catalogue provider needs only the client id and
    /// secret; a custom one needs --authorize-url, --token-url and --api-base-url too. Any flag
    /// overrides the catalogue value. The client secret is stored encrypted.
    Set(Box<ProviderSetArgs>),
    /// List a project's configured providers (JSON lines; never the secret).
    List {
        #[arg(long)]
        project: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove a provider from a project (existing connections stop working).
    Delete {
        provider: String,
        #[arg(long)]
        project: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print the built-in provider catalogue (JSON).
    Catalogue {
        /// Only this provider.
        provider: Option<String>,
    },
}

#[derive(Args)]
struct ProviderSetArgs {
    /// Provider name: a catalogue name (google, github, …) or a new lowercase name.
    provider: String,
    #[arg(long)]
    project: String,
    #[arg(long)]
    client_id: String,
    /// The OAuth client secret (or set LATCHKEY_PROVIDER_CLIENT_SECRET to keep it out of shell history).
    #[arg(long, env = "LATCHKEY_PROVIDER_CLIENT_SECRET", hide_env_values = true)]
    client_secret: String,
    #[arg(long)]
    display_name: Option<String>,
    #[arg(long)]
    authorize_url: Option<String>,
    #[arg(long)]
    token_url: Option<String>,
    /// Where proxied paths are appended (ends with /).
    #[arg(long)]
    api_base_url: Option<String>,
    /// Default scopes (repeatable).
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// "space" or "comma".
    #[arg(long)]
    scope_separator: Option<String>,
    /// client_secret_post or client_secret_basic.
    #[arg(long)]
    token_auth_method: Option<String>,
    /// Send PKCE S256 (true/false).
    #[arg(long)]
    pkce: Option<bool>,
    /// RFC 7009 revocation endpoint.
    #[arg(long)]
    revoke_url: Option<String>,
    /// Extra authorize parameter NAME=VALUE (repeatable).
    #[arg(long = "authorize-param", value_name = "NAME=VALUE")]
    authorize_params: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Subcommand)]
enum GrantCommand {
    /// List grants (JSON lines), optionally one user's.
    List {
        /// The user's subject (as introspection reports `sub`).
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke one grant, or every grant of a user, with every token issued from them.
    Revoke {
        /// The grant's id.
        #[arg(conflicts_with = "user", required_unless_present = "user")]
        grant_id: Option<String>,
        /// Revoke all of this user's grants.
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Where an admin command works: the embedded store in a data dir, or a DynamoDB table.
#[derive(Args, Clone, Debug)]
struct StoreArgs {
    /// Folder of the embedded store (as used by `latchkey serve`).
    #[arg(long, default_value = ".latchkey", env = "LATCHKEY_DATA_DIR")]
    data_dir: PathBuf,
    /// Work on this DynamoDB table instead of the embedded store.
    #[arg(long, conflicts_with = "data_dir")]
    table: Option<String>,
    /// DynamoDB endpoint for --table (e.g. http://127.0.0.1:8000); default: AWS for the current region.
    #[arg(long, requires = "table")]
    endpoint_url: Option<String>,
    /// KMS key (id, ARN or alias) sealing secrets written with --table (`provider set`).
    #[arg(long, requires = "table", env = "LATCHKEY_KMS_KEY_ID")]
    kms_key_id: Option<String>,
}

#[derive(Subcommand)]
enum TableCommand {
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

#[derive(Subcommand)]
enum ClientCommand {
    /// List registered clients (JSON lines).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Delete a registered client.
    Delete {
        /// The client's id.
        client_id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
enum ResourceServerCommand {
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
    if latchkey::oauth::scope::is_scope_token(s) {
        Ok(s.to_string())
    } else {
        Err("a scope is 1 to 128 printable ASCII characters, without spaces, `\"` or `\\` (RFC 6749 §3.3)".into())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    latchkey::telemetry::init_text();
    match Cli::parse().command {
        Command::Serve {
            addr,
            data_dir,
            memory,
            public_url,
        } => serve(addr, (!memory).then_some(data_dir), public_url).await,
        Command::Table {
            command: TableCommand::Create { table, endpoint_url },
        } => {
            let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let mut conf = aws_sdk_dynamodb::config::Builder::from(&sdk);
            if let Some(ep) = endpoint_url {
                conf = conf.endpoint_url(ep);
            }
            let client = aws_sdk_dynamodb::Client::from_conf(conf.build());
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
        Command::Client { command } => client_command(command).await,
        Command::ResourceServer { command } => resource_server_command(command).await,
        Command::Grant { command } => grant_command(command).await,
        Command::Project { command } => vault_admin::project_command(command).await,
        Command::ApiKey { command } => vault_admin::api_key_command(command).await,
        Command::Provider { command } => vault_admin::provider_command(command).await,
    }
}

async fn grant_command(command: GrantCommand) -> anyhow::Result<()> {
    match command {
        GrantCommand::List { user, store } => {
            Admin::run(store, async |store, now| {
                for (g, status) in store.list_grants(user.as_deref(), now).await? {
                    println!(
                        "{}",
                        serde_json::json!({
                            "grant_id": g.grant_id, "client_id": g.client_id, "sub": g.sub, "username": g.username,
                            "resource": g.resource, "scope": g.scope, "status": status, "created_at": g.created_at,
                        })
                    );
                }
                Ok(())
            })
            .await
        }
        GrantCommand::Revoke { grant_id, user, store } => {
            Admin::run(store, async |store, now| {
                let ids: Vec<String> = match (&grant_id, &user) {
                    (Some(id), _) => vec![id.clone()],
                    (None, Some(u)) => store
                        .list_grants(Some(u), now)
                        .await?
                        .into_iter()
                        .map(|(g, _)| g.grant_id)
                        .collect(),
                    (None, None) => anyhow::bail!("name a grant id or --user"),
                };
                for id in &ids {
                    store.revoke_grant(id, now).await?;
                    println!("revoked grant {id}");
                }
                if ids.is_empty() {
                    println!("no grants");
                }
                Ok(())
            })
            .await
        }
    }
}

/// An open store for one admin command: the embedded server (stopped by `close`) or a DynamoDB table.
struct Admin {
    store: Store,
    embedded: Option<latchkey::local::Embedded>,
    keyring: Option<std::sync::Arc<latchkey::crypto::Keyring>>,
}

impl Admin {
    async fn open(args: StoreArgs) -> anyhow::Result<Admin> {
        match args.table {
            Some(table) => {
                let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                let mut conf = aws_sdk_dynamodb::config::Builder::from(&sdk);
                if let Some(ep) = args.endpoint_url {
                    conf = conf.endpoint_url(ep);
                }
                let client = aws_sdk_dynamodb::Client::from_conf(conf.build());
                // Secrets written to a DynamoDB table are sealed with that deployment's KMS key.
                let keyring = match args.kms_key_id {
                    Some(key_id) => {
                        let kms = aws_sdk_kms::Client::new(&sdk);
                        Some(std::sync::Arc::new(latchkey::crypto::Keyring::new(
                            latchkey::crypto::KeyWrapper::Kms(latchkey::crypto::KmsWrapper::new(kms, key_id)),
                        )))
                    }
                    None => None,
                };
                Ok(Admin {
                    store: Store::new(client, table),
                    embedded: None,
                    keyring,
                })
            }
            None => {
                let server = latchkey::local::start(latchkey::local::Options {
                    addr: "127.0.0.1:0".parse()?,
                    data_dir: Some(args.data_dir),
                    public_url: None,
                    config: Vec::new(),
                })
                .await
                .map_err(|e| anyhow::anyhow!("opening the embedded store: {e}"))?;
                Ok(Admin {
                    store: server.state.store.clone(),
                    keyring: server.state.keyring.clone(),
                    embedded: Some(server),
                })
            }
        }
    }

    fn now(&self) -> i64 {
        match &self.embedded {
            Some(server) => server.state.clock.now(),
            None => latchkey::clock::Clock::default().now(),
        }
    }

    async fn close(self) {
        if let Some(server) = self.embedded {
            server.shutdown().await;
        }
    }

    /// Run `f` against the store and keyring, then close it whatever the outcome.
    async fn run_sealed<T>(
        args: StoreArgs,
        f: impl AsyncFnOnce(&Store, &latchkey::crypto::Keyring, i64) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let admin = Admin::open(args).await?;
        let now = admin.now();
        let out = match admin.keyring.clone() {
            Some(k) => f(&admin.store, &k, now).await,
            None => Err(anyhow::anyhow!(
                "this command stores a secret: pass --kms-key-id (the stack's KMS key) with --table"
            )),
        };
        admin.close().await;
        out
    }

    /// Run `f` against the store, then close it whatever the outcome.
    async fn run<T>(args: StoreArgs, f: impl AsyncFnOnce(&Store, i64) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let admin = Admin::open(args).await?;
        let now = admin.now();
        let out = f(&admin.store, now).await;
        admin.close().await;
        out
    }
}

async fn client_command(command: ClientCommand) -> anyhow::Result<()> {
    match command {
        ClientCommand::List { store } => {
            Admin::run(store, async |store, now| {
                for c in store.list_clients(now).await? {
                    let mut doc = c.metadata.to_json();
                    doc.insert("client_id".into(), c.client_id.into());
                    doc.insert("client_id_issued_at".into(), c.created_at.into());
                    println!("{}", serde_json::Value::Object(doc));
                }
                Ok(())
            })
            .await
        }
        ClientCommand::Delete { client_id, store } => {
            Admin::run(store, async |store, now| {
                if store.get_client(&client_id, now).await?.is_none() {
                    anyhow::bail!("no client {client_id}");
                }
                store.delete(&latchkey::store::keys::client(&client_id)).await?;
                println!("deleted client {client_id}");
                Ok(())
            })
            .await
        }
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

async fn resource_server_command(command: ResourceServerCommand) -> anyhow::Result<()> {
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

async fn serve(addr: SocketAddr, data_dir: Option<PathBuf>, public_url: Option<String>) -> anyhow::Result<()> {
    let server = latchkey::local::start(latchkey::local::Options {
        addr,
        data_dir: data_dir.clone(),
        public_url,
        config: Vec::new(),
    })
    .await
    .map_err(|e| anyhow::anyhow!("starting latchkey: {e}"))?;
    let base = server.base_url();
    println!("latchkey serving on {base}");
    match &data_dir {
        Some(d) => println!("  data: {} (SQLite store, master key)", d.display()),
        None => println!("  data: in memory"),
    }
    println!("  issuer: {base}/oauth/2.1");
    for route in Route::ALL {
        for (method, path) in route.paths() {
            println!("  {method:<6} {base}{path}   [{}]", route.function());
        }
    }
    tokio::signal::ctrl_c().await.ok();
    println!("stopping");
    server.shutdown().await;
    Ok(())
}
