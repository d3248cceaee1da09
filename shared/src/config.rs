//! Typed configuration, read once from the environment at cold start (or built by `latchkey serve`).

use std::env;

use crate::domain::redirect::RedirectPolicy;

/// Everything an endpoint needs to know about its deployment.
#[derive(Clone, Debug)]
pub struct Config {
    /// DynamoDB table name (`LATCHKEY_TABLE`, default `latchkey`).
    pub table: String,
    /// Optional DynamoDB endpoint override (`LATCHKEY_DYNAMODB_ENDPOINT`), e.g. a local emulator.
    pub dynamodb_endpoint: Option<String>,
    /// KMS key id, ARN or alias (`LATCHKEY_KMS_KEY_ID`). Absent: no keyring in Lambda.
    pub kms_key_id: Option<String>,
    /// Optional KMS endpoint override (`LATCHKEY_KMS_ENDPOINT`), e.g. a local KMS-compatible server.
    pub kms_endpoint: Option<String>,
    /// Public base URL without a trailing slash (`LATCHKEY_PUBLIC_URL`). Absent in Lambda when the
    /// operator did not set one: then it is the API Gateway host the request came to.
    pub public_url: Option<String>,
    /// Access token lifetime in seconds (`LATCHKEY_ACCESS_TOKEN_TTL`, default 3600).
    pub access_token_ttl: i64,
    /// Refresh token lifetime in seconds (`LATCHKEY_REFRESH_TOKEN_TTL`, default 30 days).
    pub refresh_token_ttl: i64,
    /// Authorization code lifetime in seconds (`LATCHKEY_CODE_TTL`, default and maximum 60).
    pub code_ttl: i64,
    /// Grace window after a refresh token rotates (`LATCHKEY_REFRESH_GRACE_SECONDS`, default 10).
    pub refresh_grace_seconds: i64,
    /// How long a dynamically registered client lives unless it is used (a code redeemed for it)
    /// (`LATCHKEY_REGISTRATION_UNUSED_TTL`, seconds, default 86400; 0: unused registrations never
    /// expire).
    pub registration_unused_ttl: i64,
    /// Which redirect URIs clients may register (`LATCHKEY_ALLOWED_REDIRECT_URIS`).
    pub redirect_policy: RedirectPolicy,
    /// Scopes the authorization server offers (`LATCHKEY_SCOPES`, space or comma separated).
    pub scopes_supported: Vec<String>,
    /// The resource used when an authorization request names none (`LATCHKEY_DEFAULT_RESOURCE`), for
    /// clients that predate RFC 8707 support.
    pub default_resource: Option<String>,
    /// Upstream OpenID Connect issuer for end-user sign-in (`LATCHKEY_LOGIN_ISSUER`).
    pub login_issuer: Option<String>,
    /// latchkey's client id at the login issuer (`LATCHKEY_LOGIN_CLIENT_ID`).
    pub login_client_id: Option<String>,
    /// latchkey's client secret at the login issuer (`LATCHKEY_LOGIN_CLIENT_SECRET`, for `latchkey
    /// serve`; a Lambda reads it at cold start from the SSM parameter below instead).
    pub login_client_secret: Option<String>,
    /// Name of the SSM `SecureString` parameter holding that secret
    /// (`LATCHKEY_LOGIN_CLIENT_SECRET_PARAM`), resolved once by `AppState::from_env`.
    pub login_client_secret_param: Option<String>,
    /// Replaces the SSM service URL (`LATCHKEY_SSM_ENDPOINT`), for tests.
    pub ssm_endpoint: Option<String>,
    /// Scopes asked of the login issuer (`LATCHKEY_LOGIN_SCOPES`, default `openid email profile`).
    pub login_scopes: String,
    /// Keep the sign-in's provider tokens as the user's vault connection in this project
    /// (`LATCHKEY_LOGIN_VAULT_PROJECT`, a `prj_…` id).
    pub login_vault_project: Option<String>,
    /// The provider name of that connection (`LATCHKEY_LOGIN_VAULT_PROVIDER`, default `google`).
    pub login_vault_provider: String,
    /// The local development sign-in page: only the embedded default without a login issuer.
    pub local_login: bool,
    /// Whether outbound fetches may reach loopback targets (`LATCHKEY_ALLOW_LOOPBACK_OUTBOUND`).
    /// Only the embedded default turns it on.
    pub allow_loopback_outbound: bool,
    /// How long the proxy waits for a provider's API (`LATCHKEY_UPSTREAM_TIMEOUT_SECONDS`, 1–28,
    /// default 25: under API Gateway's 30-second integration limit).
    pub upstream_timeout_seconds: i64,
    /// The SQS queue events go to (`LATCHKEY_EVENTS_QUEUE_URL`; the template sets it). Absent in a
    /// Lambda: no events. `latchkey serve` uses an in-process queue instead.
    pub events_queue_url: Option<String>,
    /// Replaces the SQS service URL (`LATCHKEY_SQS_ENDPOINT`), for a local SQS-compatible server.
    pub sqs_endpoint: Option<String>,
    /// The operator's EventBridge bus every event is also put on (`LATCHKEY_EVENT_BUS`).
    pub event_bus: Option<String>,
    /// Replaces the EventBridge service URL (`LATCHKEY_EVENTBRIDGE_ENDPOINT`), for tests.
    pub eventbridge_endpoint: Option<String>,
    /// Seconds before each retry of a failed webhook delivery (`LATCHKEY_WEBHOOK_RETRY_SCHEDULE`,
    /// comma separated, each at most 900; default `60,300,900,900,900,900`: 7 attempts over 66
    /// minutes). After the last, the delivery is dead-lettered.
    pub webhook_retry_schedule: Vec<u32>,
    /// How long one delivery waits for the receiver (`LATCHKEY_WEBHOOK_TIMEOUT_SECONDS`, 1–30, default 10).
    pub webhook_timeout_seconds: i64,
    /// How often the health run looks ahead, and how often `latchkey serve` runs it
    /// (`LATCHKEY_HEALTH_INTERVAL_SECONDS`, default 3600; 0: `serve` does not run it).
    pub health_interval_seconds: i64,
}

/// The default webhook retry schedule (seconds before each retry).
pub const DEFAULT_RETRY_SCHEDULE: &str = "60,300,900,900,900,900";

fn parse_retry_schedule(v: &str) -> Result<Vec<u32>, ConfigError> {
    let err = || ConfigError {
        name: "LATCHKEY_WEBHOOK_RETRY_SCHEDULE",
        reason: "expected up to 20 comma-separated delays in seconds, each 0 to 900".into(),
    };
    let out: Vec<u32> = v
        .split(',')
        .map(|p| p.trim().parse::<u32>().ok().filter(|n| *n <= 900).ok_or_else(err))
        .collect::<Result<_, _>>()?;
    if out.len() > 20 {
        return Err(err());
    }
    Ok(out)
}

/// A configuration value that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {name}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub reason: String,
}

/// Default scopes: who the user is, and the right to stay signed in.
pub const DEFAULT_SCOPES: &str = "openid profile email offline_access";

impl Config {
    /// The public base URL: the configured one, else `https://<domain>` where the domain is API
    /// Gateway's `requestContext.domainName` (not the client-controlled `Host` header).
    pub fn base_url(&self, api_domain: Option<&str>) -> String {
        match (&self.public_url, api_domain) {
            (Some(u), _) => u.clone(),
            (None, Some(domain)) => format!("https://{domain}"),
            (None, None) => "https://localhost".to_string(),
        }
    }

    /// The issuer identifier: `{public base URL}/oauth/2.1` (RFC 8414 §2).
    pub fn issuer_for(&self, base_url: &str) -> String {
        format!("{base_url}/oauth/2.1")
    }

    /// Read the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| env::var(k).ok())
    }

    /// Read the configuration through a lookup function (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let public_url = get("LATCHKEY_PUBLIC_URL").map(|u| parse_public_url(&u)).transpose()?;
        let num = |name: &'static str, default: i64, max: i64| -> Result<i64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(v) => match v.parse::<i64>() {
                    Ok(n) if (0..=max).contains(&n) => Ok(n),
                    _ => Err(ConfigError {
                        name,
                        reason: format!("expected a whole number of seconds from 0 to {max}"),
                    }),
                },
            }
        };
        let redirect_policy = match get("LATCHKEY_ALLOWED_REDIRECT_URIS") {
            None => RedirectPolicy::default(),
            Some(v) => RedirectPolicy::parse(&v).map_err(|reason| ConfigError {
                name: "LATCHKEY_ALLOWED_REDIRECT_URIS",
                reason,
            })?,
        };
        let scopes_supported = parse_scopes(&get("LATCHKEY_SCOPES").unwrap_or_else(|| DEFAULT_SCOPES.into()))?;
        let allow_loopback_outbound = match get("LATCHKEY_ALLOW_LOOPBACK_OUTBOUND").as_deref() {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(_) => {
                return Err(ConfigError {
                    name: "LATCHKEY_ALLOW_LOOPBACK_OUTBOUND",
                    reason: "expected true or false".into(),
                })
            }
        };
        Ok(Config {
            table: get("LATCHKEY_TABLE").unwrap_or_else(|| "latchkey".into()),
            dynamodb_endpoint: get("LATCHKEY_DYNAMODB_ENDPOINT"),
            kms_key_id: get("LATCHKEY_KMS_KEY_ID"),
            kms_endpoint: get("LATCHKEY_KMS_ENDPOINT"),
            public_url,
            access_token_ttl: num("LATCHKEY_ACCESS_TOKEN_TTL", 3600, 86_400)?,
            refresh_token_ttl: num("LATCHKEY_REFRESH_TOKEN_TTL", 30 * 86_400, 365 * 86_400)?,
            code_ttl: num("LATCHKEY_CODE_TTL", 60, 60)?,
            refresh_grace_seconds: num("LATCHKEY_REFRESH_GRACE_SECONDS", 10, 300)?,
            registration_unused_ttl: num("LATCHKEY_REGISTRATION_UNUSED_TTL", 86_400, 365 * 86_400)?,
            redirect_policy,
            scopes_supported,
            allow_loopback_outbound,
            default_resource: get("LATCHKEY_DEFAULT_RESOURCE"),
            login_issuer: get("LATCHKEY_LOGIN_ISSUER").map(|i| i.trim_end_matches('/').to_string()),
            login_client_id: get("LATCHKEY_LOGIN_CLIENT_ID"),
            login_client_secret: get("LATCHKEY_LOGIN_CLIENT_SECRET"),
            login_client_secret_param: get("LATCHKEY_LOGIN_CLIENT_SECRET_PARAM"),
            ssm_endpoint: get("LATCHKEY_SSM_ENDPOINT"),
            local_login: false,
            login_scopes: match get("LATCHKEY_LOGIN_SCOPES") {
                None => "openid email profile".into(),
                Some(v) => parse_scopes(&v)
                    .map_err(|_| ConfigError {
                        name: "LATCHKEY_LOGIN_SCOPES",
                        reason: "expected scope tokens separated by spaces or commas".into(),
                    })?
                    .join(" "),
            },
            login_vault_project: match get("LATCHKEY_LOGIN_VAULT_PROJECT") {
                None => None,
                Some(p)
                    if p.starts_with("prj_")
                        && p.len() <= 64
                        && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
                {
                    Some(p)
                }
                Some(_) => {
                    return Err(ConfigError {
                        name: "LATCHKEY_LOGIN_VAULT_PROJECT",
                        reason: "expected a project id (prj_…)".into(),
                    })
                }
            },
            login_vault_provider: match get("LATCHKEY_LOGIN_VAULT_PROVIDER") {
                None => "google".into(),
                Some(p) if crate::domain::provider::is_valid_name(&p) => p,
                Some(_) => {
                    return Err(ConfigError {
                        name: "LATCHKEY_LOGIN_VAULT_PROVIDER",
                        reason: "expected a provider name (lowercase letters, digits, -)".into(),
                    })
                }
            },
            upstream_timeout_seconds: match num("LATCHKEY_UPSTREAM_TIMEOUT_SECONDS", 25, 28)? {
                0 => {
                    return Err(ConfigError {
                        name: "LATCHKEY_UPSTREAM_TIMEOUT_SECONDS",
                        reason: "expected 1 to 28 seconds".into(),
                    })
                }
                n => n,
            },
            events_queue_url: get("LATCHKEY_EVENTS_QUEUE_URL"),
            sqs_endpoint: get("LATCHKEY_SQS_ENDPOINT"),
            event_bus: get("LATCHKEY_EVENT_BUS"),
            eventbridge_endpoint: get("LATCHKEY_EVENTBRIDGE_ENDPOINT"),
            webhook_retry_schedule: parse_retry_schedule(
                &get("LATCHKEY_WEBHOOK_RETRY_SCHEDULE").unwrap_or_else(|| DEFAULT_RETRY_SCHEDULE.into()),
            )?,
            webhook_timeout_seconds: match num("LATCHKEY_WEBHOOK_TIMEOUT_SECONDS", 10, 30)? {
                0 => {
                    return Err(ConfigError {
                        name: "LATCHKEY_WEBHOOK_TIMEOUT_SECONDS",
                        reason: "expected 1 to 30 seconds".into(),
                    })
                }
                n => n,
            },
            health_interval_seconds: num("LATCHKEY_HEALTH_INTERVAL_SECONDS", 3600, 7 * 86_400)?,
        })
    }

    /// The embedded default used by `latchkey serve` and tests: loopback outbound allowed, the rest
    /// from `overrides`, then the environment.
    pub fn embedded(public_url: &str, overrides: &[(String, String)]) -> Result<Self, ConfigError> {
        let public_url = public_url.to_string();
        let mut config = Self::from_lookup(move |k| {
            if let Some((_, v)) = overrides.iter().find(|(name, _)| name == k) {
                return Some(v.clone());
            }
            match k {
                "LATCHKEY_PUBLIC_URL" => Some(public_url.clone()),
                "LATCHKEY_ALLOW_LOOPBACK_OUTBOUND" => Some("true".into()),
                _ => env::var(k).ok(),
            }
        })?;
        config.local_login = config.login_issuer.is_none();
        Ok(config)
    }
}

fn parse_public_url(raw: &str) -> Result<String, ConfigError> {
    let err = |reason: &str| ConfigError {
        name: "LATCHKEY_PUBLIC_URL",
        reason: reason.into(),
    };
    let url = url::Url::parse(raw).map_err(|_| err("not an absolute URL"))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(err("must be http(s)"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(err("must not have a query, fragment or user info"));
    }
    Ok(raw.trim_end_matches('/').to_string())
}

fn parse_scopes(raw: &str) -> Result<Vec<String>, ConfigError> {
    let scopes: Vec<String> = raw
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if scopes.is_empty() || !scopes.iter().all(|s| crate::domain::scope::is_scope_token(s)) {
        return Err(ConfigError {
            name: "LATCHKEY_SCOPES",
            reason: "expected scope tokens separated by spaces or commas".into(),
        });
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_safe() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.table, "latchkey");
        assert_eq!(c.code_ttl, 60);
        assert!(!c.allow_loopback_outbound);
        assert_eq!(
            c.base_url(Some("abc.execute-api.us-east-1.amazonaws.com")),
            "https://abc.execute-api.us-east-1.amazonaws.com"
        );
    }

    #[test]
    fn issuer_strips_trailing_slash() {
        let c = cfg(&[("LATCHKEY_PUBLIC_URL", "https://auth.example.com/")]).unwrap();
        let base = c.base_url(Some("other.example"));
        assert_eq!(c.issuer_for(&base), "https://auth.example.com/oauth/2.1");
    }

    #[test]
    fn code_ttl_cannot_exceed_sixty_seconds() {
        assert!(cfg(&[("LATCHKEY_CODE_TTL", "61")]).is_err());
        assert!(cfg(&[("LATCHKEY_ACCESS_TOKEN_TTL", "-1")]).is_err());
        assert!(cfg(&[("LATCHKEY_PUBLIC_URL", "ftp://x")]).is_err());
        assert!(cfg(&[("LATCHKEY_ALLOW_LOOPBACK_OUTBOUND", "yes")]).is_err());
        assert!(cfg(&[("LATCHKEY_SCOPES", "a\"b")]).is_err());
    }

    #[test]
    fn unused_registrations_expire_after_a_day_unless_configured() {
        assert_eq!(cfg(&[]).unwrap().registration_unused_ttl, 86_400);
        let off = cfg(&[("LATCHKEY_REGISTRATION_UNUSED_TTL", "0")]).unwrap();
        assert_eq!(off.registration_unused_ttl, 0);
        assert!(cfg(&[("LATCHKEY_REGISTRATION_UNUSED_TTL", "-5")]).is_err());
        assert!(cfg(&[("LATCHKEY_REGISTRATION_UNUSED_TTL", "a day")]).is_err());
    }
}
