//! `latchkey`: the local server (`serve`) and admin verbs. This file parses the command line and
//! dispatches; each verb lives in its own module, and `admin` opens the store they work on.

use clap::{Parser, Subcommand};

mod admin;
mod api_key;
mod client;
mod grant;
mod project;
mod provider;
mod resource_server;
mod serve;
mod table;

#[derive(Parser)]
#[command(name = "latchkey", version, about = "OAuth for the Model Context Protocol")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every endpoint on one local port, with the embedded store and local keyring.
    Serve(serve::ServeArgs),
    /// Manage the DynamoDB table.
    Table {
        #[command(subcommand)]
        command: table::TableCommand,
    },
    /// Registered OAuth clients.
    Client {
        #[command(subcommand)]
        command: client::ClientCommand,
    },
    /// Resource servers: the MCP servers that trust latchkey and call its introspection endpoint.
    ResourceServer {
        #[command(subcommand)]
        command: resource_server::ResourceServerCommand,
    },
    /// Grants: what users approved, and the tokens issued from them.
    Grant {
        #[command(subcommand)]
        command: grant::GrantCommand,
    },
    /// Token-vault projects: each app gets one, with API keys for `X-API-Key`.
    Project {
        #[command(subcommand)]
        command: project::ProjectCommand,
    },
    /// A project's API keys.
    ApiKey {
        #[command(subcommand)]
        command: api_key::ApiKeyCommand,
    },
    /// Upstream providers (Google, GitHub, …) a project's users can connect.
    Provider {
        #[command(subcommand)]
        command: provider::ProviderCommand,
    },
}

/// mimalloc instead of glibc's malloc: the allocator was a fifth of `serve`'s CPU under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    latchkey::telemetry::init_text();
    match Cli::parse().command {
        Command::Serve(args) => serve::run(args).await,
        Command::Table { command } => table::run(command).await,
        Command::Client { command } => client::run(command).await,
        Command::ResourceServer { command } => resource_server::run(command).await,
        Command::Grant { command } => grant::run(command).await,
        Command::Project { command } => project::run(command).await,
        Command::ApiKey { command } => api_key::run(command).await,
        Command::Provider { command } => provider::run(command).await,
    }
}
