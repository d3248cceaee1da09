//! `latchkey serve`: every endpoint on one local port, with the embedded store and local keyring.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use latchkey::router::Route;

// No doc comment here: the `serve` variant's own gives the command's help text.
#[derive(Args)]
pub struct ServeArgs {
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
    /// Read the store on every request, as a Lambda function does. By default `serve` reuses a read
    /// until the database changes (exact: any write, from any process, ends the reuse).
    #[arg(long)]
    no_read_cache: bool,
}

/// Serve until Ctrl-C.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let data_dir = (!args.memory).then_some(args.data_dir);
    let server = latchkey::local::start(latchkey::local::Options {
        addr: args.addr,
        data_dir: data_dir.clone(),
        public_url: args.public_url,
        config: Vec::new(),
        read_cache: !args.no_read_cache,
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
    // scripts/invoke points a function's bootstrap here (LATCHKEY_DYNAMODB_ENDPOINT).
    println!("  dynamodb: {} (the embedded emulator)", server.dynamodb_endpoint);
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
