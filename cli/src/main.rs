//! `latchkey`: the local server (`serve`) and admin verbs.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use latchkey::router::Route;

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
    /// Registered OAuth clients in the local data dir.
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
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
        #[arg(long, default_value = ".latchkey", env = "LATCHKEY_DATA_DIR")]
        data_dir: PathBuf,
    },
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
        Command::Client {
            command: ClientCommand::List { data_dir },
        } => {
            let server = latchkey::local::start(latchkey::local::Options {
                addr: "127.0.0.1:0".parse()?,
                data_dir: Some(data_dir),
                public_url: None,
                config: Vec::new(),
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let now = server.state.clock.now();
            for c in server.state.store.list_clients(now).await? {
                let mut doc = c.metadata.to_json();
                doc.insert("client_id".into(), c.client_id.into());
                doc.insert("client_id_issued_at".into(), c.created_at.into());
                println!("{}", serde_json::Value::Object(doc));
            }
            server.shutdown().await;
            Ok(())
        }
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
