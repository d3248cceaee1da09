//! `latchkey client list|delete`: registered OAuth clients.

use clap::Subcommand;

use crate::admin::{Admin, StoreArgs};

#[derive(Subcommand)]
pub enum ClientCommand {
    /// List registered clients (JSON lines).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Delete a registered client and revoke every grant it holds (and their codes and tokens).
    Delete {
        /// The client's id.
        client_id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn run(command: ClientCommand) -> anyhow::Result<()> {
    match command {
        ClientCommand::List { store } => {
            Admin::run(store, async |store, now| {
                for c in store.list_clients(now).await? {
                    let mut doc = c.metadata.to_json();
                    doc.insert("client_id".into(), c.client_id.into());
                    doc.insert("client_id_issued_at".into(), c.created_at.into());
                    if let Some(until) = c.unused_until {
                        // A registration nobody has used yet expires then (issue 12 item 8).
                        doc.insert("expires_unless_used_at".into(), until.into());
                    }
                    println!("{}", serde_json::Value::Object(doc));
                }
                Ok(())
            })
            .await
        }
        ClientCommand::Delete { client_id, store } => {
            Admin::run(store, async |store, now| {
                let Some(revoked) = latchkey::authz::client::delete(store, &client_id, now).await? else {
                    anyhow::bail!("no client {client_id}");
                };
                println!("deleted client {client_id} and revoked its {revoked} grant(s)");
                Ok(())
            })
            .await
        }
    }
}
