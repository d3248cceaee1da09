//! `latchkey grant list|revoke`: what users approved, and the tokens issued from them.

use clap::Subcommand;

use crate::admin::{Admin, StoreArgs};

#[derive(Subcommand)]
pub enum GrantCommand {
    /// List grants (JSON lines), optionally one user's.
    List {
        /// The user's subject (as introspection reports `sub`).
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke one grant, or every grant of a user, with every token issued from them; the remembered
    /// consent is forgotten, so the client must ask the user again.
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

pub async fn run(command: GrantCommand) -> anyhow::Result<()> {
    match command {
        GrantCommand::List { user, store } => Admin::run(store, async |store, now| {
            for (g, status) in store.list_grants(user.as_deref(), now).await? {
                println!(
                    "{}",
                    serde_json::json!({
                        "grant_id": g.grant_id, "client_id": g.client_id, "sub": g.sub, "username": g.username,
                        "resource": g.resource, "scope": g.scope, "status": status.as_str(), "created_at": g.created_at,
                    })
                );
            }
            Ok(())
        })
        .await,
        GrantCommand::Revoke { grant_id, user, store } => {
            Admin::run(store, async |store, now| {
                let grants: Vec<_> = store
                    .list_grants(user.as_deref(), now)
                    .await?
                    .into_iter()
                    .filter(|(g, _)| grant_id.as_ref().is_none_or(|id| *id == g.grant_id))
                    .map(|(g, _)| g)
                    .collect();
                if let (Some(id), true) = (&grant_id, grants.is_empty()) {
                    anyhow::bail!("no grant {id}");
                }
                // Revoking forgets the remembered consent too: the client must ask the user again.
                latchkey::authz::account::revoke_grants(store, &grants, now).await?;
                for g in &grants {
                    println!("revoked grant {} (consent forgotten)", g.grant_id);
                }
                if grants.is_empty() {
                    println!("no grants");
                }
                Ok(())
            })
            .await
        }
    }
}
