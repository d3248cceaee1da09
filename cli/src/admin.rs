//! Opening the store for one admin command: the embedded store in a data dir (the DynamoDB emulator
//! over its SQLite file, reached in process; no server) or a DynamoDB table, built like every other process's
//! backends (`latchkey::state::Backends`).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use latchkey::clock::Clock;
use latchkey::crypto::Keyring;
use latchkey::local::{self, LocalStore};
use latchkey::state::{Aws, Backends, Key};
use latchkey::store::Store;
use latchkey::Config;

/// Where an admin command works: the embedded store in a data dir, or a DynamoDB table.
#[derive(Args, Clone, Debug)]
pub struct StoreArgs {
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

/// The public URL the embedded configuration is read with; admin commands serve nothing, so it is
/// only a placeholder (the table name and key settings come from the environment as for `serve`).
const ADMIN_PUBLIC_URL: &str = "http://127.0.0.1";

/// An open store for one admin command.
pub struct Admin {
    backends: Backends,
    clock: Clock,
}

impl Admin {
    async fn open(args: StoreArgs) -> anyhow::Result<Admin> {
        match args.table {
            Some(table) => {
                let sdk = Arc::new(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await);
                // Secrets written to a DynamoDB table are sealed with that deployment's KMS key.
                let key = args.kms_key_id.map(|key_id| Key::Kms {
                    key_id,
                    aws: Aws::Chain {
                        sdk: Arc::clone(&sdk),
                        endpoint: None,
                    },
                });
                let aws = Aws::Chain {
                    sdk,
                    endpoint: args.endpoint_url,
                };
                Ok(Admin {
                    backends: Backends::open(&table, &aws, key),
                    clock: Clock::default(),
                })
            }
            None => {
                let opened = async {
                    let config = Config::embedded(ADMIN_PUBLIC_URL, &[])?;
                    local::open_store(Some(&args.data_dir), &config).await
                };
                let LocalStore { backends, .. } = opened
                    .await
                    .map_err(|e| anyhow::anyhow!("opening the embedded store: {e}"))?;
                Ok(Admin {
                    backends,
                    clock: Clock::default(),
                })
            }
        }
    }

    /// Run `f` against the store and keyring.
    pub async fn run_sealed<T>(
        args: StoreArgs,
        f: impl AsyncFnOnce(&Store, &Keyring, i64) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let admin = Admin::open(args).await?;
        let now = admin.clock.now();
        let out = match admin.backends.keyring.clone() {
            Some(k) => f(&admin.backends.store, &k, now).await,
            None => Err(anyhow::anyhow!(
                "this command stores a secret: pass --kms-key-id (the stack's KMS key) with --table"
            )),
        };
        out
    }

    /// Run `f` against the store.
    pub async fn run<T>(args: StoreArgs, f: impl AsyncFnOnce(&Store, i64) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let admin = Admin::open(args).await?;
        let now = admin.clock.now();
        let out = f(&admin.backends.store, now).await;
        out
    }
}
