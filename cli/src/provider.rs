//! `latchkey provider set|list|delete|catalogue`: the upstream providers a project's users can connect;
//! client secrets are stored sealed by the keyring.

use anyhow::Context;
use clap::{Args, Subcommand};
use latchkey::domain::provider::{self, ProviderConfig};
use latchkey::store::FromItem;
use latchkey::vault::providers;
use serde_json::{json, Map, Value};

use crate::admin::{Admin, StoreArgs};

#[derive(Subcommand)]
pub enum ProviderCommand {
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
pub struct ProviderSetArgs {
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

/// The spec fields a `provider set` command overrides.
fn overrides(a: &ProviderSetArgs) -> anyhow::Result<Map<String, Value>> {
    let mut o = Map::new();
    let mut put = |k: &str, v: Option<&String>| {
        if let Some(v) = v {
            o.insert(k.into(), Value::String(v.clone()));
        }
    };
    put("display_name", a.display_name.as_ref());
    put("authorize_url", a.authorize_url.as_ref());
    put("token_url", a.token_url.as_ref());
    put("api_base_url", a.api_base_url.as_ref());
    put("token_auth_method", a.token_auth_method.as_ref());
    if let Some(sep) = &a.scope_separator {
        let v = match sep.as_str() {
            "space" | " " => " ",
            "comma" | "," => ",",
            _ => anyhow::bail!("--scope-separator is space or comma"),
        };
        o.insert("scope_separator".into(), v.into());
    }
    if !a.scopes.is_empty() {
        o.insert("default_scopes".into(), json!(a.scopes));
    }
    if let Some(p) = a.pkce {
        o.insert("pkce".into(), Value::Bool(p));
    }
    if let Some(r) = &a.revoke_url {
        o.insert("revoke".into(), json!({"style": "rfc7009", "url": r}));
    }
    if !a.authorize_params.is_empty() {
        let mut m = Map::new();
        for p in &a.authorize_params {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--authorize-param takes NAME=VALUE"))?;
            m.insert(k.to_string(), Value::String(v.to_string()));
        }
        o.insert("authorize_params".into(), Value::Object(m));
    }
    Ok(o)
}

pub async fn run(command: ProviderCommand) -> anyhow::Result<()> {
    match command {
        ProviderCommand::Set(args) => {
            let a = *args;
            if !provider::is_valid_name(&a.provider) {
                anyhow::bail!("a provider name is 1 to 40 of a-z, 0-9 and -, starting with a letter");
            }
            if a.client_id.is_empty() || a.client_secret.is_empty() {
                anyhow::bail!("--client-id and --client-secret must not be empty");
            }
            let base = providers::catalogue()
                .contains_key(&a.provider)
                .then(|| a.provider.clone());
            let mut o = overrides(&a)?;
            if base.is_none() {
                // A custom provider: fill the fields the catalogue would have given.
                o.entry("display_name")
                    .or_insert_with(|| Value::String(a.provider.clone()));
                o.entry("default_scopes").or_insert_with(|| json!([]));
                o.entry("scope_separator").or_insert_with(|| json!(" "));
                o.entry("token_auth_method")
                    .or_insert_with(|| json!("client_secret_post"));
                o.entry("pkce").or_insert(Value::Bool(true));
            }
            // Structure check; whether loopback http is allowed is the server's policy at run time.
            let spec = providers::resolve(base.as_deref(), &o, true).map_err(|e| {
                anyhow::anyhow!(
                    "{e}{}",
                    if base.is_none() {
                        " (a custom provider needs --authorize-url, --token-url and --api-base-url)"
                    } else {
                        ""
                    }
                )
            })?;
            let (json_out, project, provider) = (a.json, a.project.clone(), a.provider.clone());
            Admin::run_sealed(a.store, async |store, keyring, now| {
                crate::project::require_project(store, &project, now).await?;
                let sealed = keyring
                    .encrypt(
                        &latchkey::domain::context::provider_context(&project, &provider),
                        a.client_secret.as_bytes(),
                    )
                    .await
                    .context("encrypting the client secret")?;
                store
                    .put_provider(&ProviderConfig {
                        project_id: project.clone(),
                        provider: provider.clone(),
                        base: base.clone(),
                        overrides: o,
                        client_id: a.client_id.clone(),
                        sealed_secret: sealed,
                        updated_at: now,
                    })
                    .await?;
                if json_out {
                    println!("{}", json!({"project_id": project, "provider": provider, "spec": spec}));
                } else {
                    println!("provider {provider} configured for {project}");
                    println!("  authorize:   {}", spec.authorize_url);
                    println!("  api base:    {}", spec.api_base_url);
                    println!("  scopes:      {}", spec.default_scopes.join(" "));
                    println!(
                        "Register this redirect URI at {}: <public URL>/v1/identity/callback",
                        spec.display_name
                    );
                }
                Ok(())
            })
            .await
        }
        ProviderCommand::List { project, store } => {
            Admin::run(store, async |store, now| {
                crate::project::require_project(store, &project, now).await?;
                for item in store.project_items(&project, now).await? {
                    if item.s("sk").is_some_and(|sk| sk.starts_with("PROVIDER#")) {
                        let c = ProviderConfig::from_item(&item)?;
                        println!(
                            "{}",
                            json!({
                                "provider": c.provider, "catalogue": c.base, "client_id": c.client_id,
                                "overrides": c.overrides, "updated_at": c.updated_at,
                            })
                        );
                    }
                }
                Ok(())
            })
            .await
        }
        ProviderCommand::Delete {
            provider,
            project,
            store,
        } => {
            Admin::run(store, async |store, now| {
                if store.get_provider(&project, &provider, now).await?.is_none() {
                    anyhow::bail!("project {project} has no provider {provider}");
                }
                store
                    .delete(&latchkey::store::providers::provider_key(&project, &provider))
                    .await?;
                println!("deleted provider {provider} from {project}");
                Ok(())
            })
            .await
        }
        ProviderCommand::Catalogue { provider } => {
            let cat = providers::catalogue();
            let out = match provider {
                Some(p) => cat.get(&p).cloned().ok_or_else(|| {
                    anyhow::anyhow!("{p} is not in the catalogue ({})", providers::names().join(", "))
                })?,
                None => Value::Object(cat.clone()),
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
    }
}
