//! Sign-in at the upstream OpenID Connect provider (OpenID Connect Core §3.1: the authorization
//! code flow with PKCE S256, `state` and `nonce`). `start` stores the sign-in (verifier sealed,
//! bound to the browser by a cookie) and gives the provider URL; `finish` consumes it when the
//! provider sends the browser back, exchanges the code, validates the ID token (`oauth::login`),
//! keeps the provider tokens as a vault connection when configured (`vault::signin`), and starts
//! the browser session.

use subtle::ConstantTimeEq;

use super::{SignInError, SignedIn};
use crate::crypto::secret;
use crate::domain::authz::{LoginState, ProviderMetadata, Session, ACCOUNT_SIGN_IN};
use crate::domain::context::login_context;
use crate::oauth::login::validate_id_token;
use crate::oauth::pkce;
use crate::state::AppState;
use crate::vault::signin::{self as vault_signin, SignInTokens};

/// Largest discovery document read.
const MAX_DISCOVERY_BYTES: usize = 256 * 1024;

/// The provider's discovery document, fetched once per container (OpenID Connect Discovery §4).
async fn provider_metadata(state: &AppState) -> Result<&ProviderMetadata, SignInError> {
    let issuer = state.config.login_issuer.clone().ok_or(SignInError::Unavailable)?;
    state
        .login_metadata
        .get_or_try_init(|| async {
            let url = format!("{issuer}/.well-known/openid-configuration");
            let res = state
                .http
                .get(&url)
                .send()
                .await
                .map_err(|e| format!("discovery: {e}"))?;
            if !res.status().is_success() {
                return Err(format!("discovery: status {}", res.status()));
            }
            let bytes = res.bytes().await.map_err(|e| format!("discovery: {e}"))?;
            if bytes.len() > MAX_DISCOVERY_BYTES {
                return Err("discovery: document too large".to_string());
            }
            let meta: ProviderMetadata = serde_json::from_slice(&bytes).map_err(|e| format!("discovery: {e}"))?;
            if meta.issuer.trim_end_matches('/') != issuer {
                return Err("discovery: issuer does not match LATCHKEY_LOGIN_ISSUER".to_string());
            }
            Ok(meta)
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "login provider metadata");
            SignInError::Unavailable
        })
}

/// The encryption context of a sign-in's sealed PKCE verifier.
/// Where the provider sends the browser back.
fn callback_url(base: &str) -> String {
    format!("{base}/oauth/2.1/callback")
}

/// A sign-in just started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Started {
    /// The provider's authorization URL to send the browser to.
    pub url: String,
    /// The value of the browser-binding cookie (`http::cookie::LOGIN_COOKIE`); only its hash is
    /// stored.
    pub browser: String,
}

/// Start signing the browser in for pending request `request_id`.
pub async fn start(state: &AppState, base: &str, request_id: &str, now: i64) -> Result<Started, SignInError> {
    let meta = provider_metadata(state).await?;
    let (Some(client_id), Some(keyring)) = (state.config.login_client_id.as_deref(), state.keyring.as_ref()) else {
        tracing::error!("login: LATCHKEY_LOGIN_CLIENT_ID or the keyring is missing");
        return Err(SignInError::Unavailable);
    };
    let upstream_state = secret::random_token("", 32);
    let nonce = secret::random_token("", 32);
    let verifier = secret::random_token("", 48);
    let sealed = keyring
        .encrypt(&login_context(&upstream_state), verifier.as_bytes())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "login: sealing the verifier failed");
            SignInError::Unavailable
        })?;
    // Bind the sign-in to this browser: the provider's redirect is only accepted from a browser that
    // holds this cookie (a link to someone else's callback cannot sign a victim in).
    let browser = secret::random_token("", 32);
    let login = LoginState {
        request_id: request_id.to_string(),
        nonce: nonce.clone(),
        sealed_verifier: sealed,
        browser_hash: secret::hash(&browser),
    };
    state
        .store
        .put_login(&upstream_state, &login, now)
        .await
        .map_err(|e| SignInError::Store("login: storing the sign-in state failed", e))?;
    let Ok(mut url) = url::Url::parse(&meta.authorization_endpoint) else {
        return Err(SignInError::Unavailable);
    };
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", &callback_url(base))
        .append_pair("scope", &state.config.login_scopes)
        .append_pair("state", &upstream_state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &pkce::challenge_for(&verifier))
        .append_pair("code_challenge_method", "S256");
    for (k, v) in vault_signin::authorize_params(&state.config) {
        url.query_pairs_mut().append_pair(&k, &v);
    }
    Ok(Started {
        url: url.into(),
        browser,
    })
}

#[derive(serde::Deserialize)]
struct UpstreamTokens {
    id_token: Option<String>,
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<i64>,
    scope: Option<String>,
}

/// What the provider's redirect carried.
#[derive(Clone, Copy, Debug)]
pub struct ProviderResponse<'a> {
    /// The `state` we sent.
    pub state: &'a str,
    /// The `lk_login` cookie of the browser that came back.
    pub browser: Option<&'a str>,
    /// Did the provider answer with `error` (the user declined, or it refused)?
    pub declined: bool,
    pub code: Option<&'a str>,
}

/// The provider sent the browser back: consume the sign-in, check it is the same browser, exchange
/// the code, validate the ID token and start a session.
pub async fn finish(
    state: &AppState,
    base: &str,
    response: ProviderResponse<'_>,
    now: i64,
) -> Result<SignedIn, SignInError> {
    let login = match state.store.take_login(response.state, now).await {
        Ok(Some(l)) => l,
        Ok(None) => {
            return Err(SignInError::Refused(
                "This sign-in has expired or was already completed. Start again from the app.",
            ))
        }
        Err(e) => return Err(SignInError::Store("callback: loading the sign-in state failed", e)),
    };
    let same_browser = response
        .browser
        .is_some_and(|c| bool::from(secret::hash(c).as_bytes().ct_eq(login.browser_hash.as_bytes())));
    if !same_browser {
        return Err(SignInError::Refused(
            "This sign-in was started in another browser. Start again from the app.",
        ));
    }
    if response.declined && login.request_id == ACCOUNT_SIGN_IN {
        return Err(SignInError::Refused(
            "You did not sign in, so your connected apps can't be shown.",
        ));
    }
    if response.declined {
        // The user declined (or the provider refused): tell the client, once.
        return match state.store.take_authreq(&login.request_id, now).await {
            Ok(Some(authreq)) => Err(SignInError::Declined(authreq)),
            Ok(None) => Err(SignInError::Refused("This sign-in request has expired.")),
            Err(e) => Err(SignInError::Store("callback: loading the request failed", e)),
        };
    }
    let Some(code) = response.code.filter(|c| !c.is_empty()) else {
        return Err(SignInError::Refused("The sign-in response is missing its code."));
    };
    let meta = provider_metadata(state).await?;
    let (Some(client_id), Some(keyring)) = (state.config.login_client_id.as_deref(), state.keyring.as_ref()) else {
        return Err(SignInError::Unavailable);
    };
    let verifier = match keyring
        .decrypt(&login_context(response.state), &login.sealed_verifier)
        .await
    {
        Ok(v) => String::from_utf8(v).unwrap_or_default(),
        Err(e) => {
            tracing::error!(error = %e, "login: opening the verifier failed");
            return Err(SignInError::Unavailable);
        }
    };
    let token_req = state
        .http
        .post(&meta.token_endpoint)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &callback_url(base)),
            ("code_verifier", &verifier),
        ])
        .basic_auth(client_id, state.config.login_client_secret.as_deref());
    let tokens: UpstreamTokens = match token_req.send().await {
        Ok(res) if res.status().is_success() => match res.json().await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "login: token response unreadable");
                return Err(SignInError::Unavailable);
            }
        },
        Ok(res) => {
            tracing::warn!(status = %res.status(), "login: the provider refused the code");
            return Err(SignInError::Refused(
                "The sign-in provider did not accept the sign-in. Start again from the app.",
            ));
        }
        Err(e) => {
            tracing::warn!(error = %e, "login: token request failed");
            return Err(SignInError::Unavailable);
        }
    };
    let issuer = state.config.login_issuer.as_deref().unwrap_or_default();
    let identity = match tokens
        .id_token
        .as_deref()
        .map(|t| validate_id_token(t, issuer, client_id, &login.nonce, now))
    {
        Some(Ok(id)) => id,
        Some(Err(why)) => {
            tracing::warn!("login: {why}");
            return Err(SignInError::Refused(
                "The sign-in could not be verified. Start again from the app.",
            ));
        }
        None => return Err(SignInError::Refused("The sign-in provider returned no ID token.")),
    };
    let email = Some(identity.username.as_str()).filter(|u| u.contains('@'));
    if let Some(access_token) = tokens.access_token.as_deref() {
        vault_signin::keep_as_connection(
            state,
            &SignInTokens {
                access_token,
                refresh_token: tokens.refresh_token.as_deref(),
                expires_in: tokens.expires_in,
                scope: tokens.scope.as_deref(),
            },
            &identity.sub,
            email,
            now,
        )
        .await;
    }
    let session = Session {
        sub: identity.sub,
        username: identity.username,
    };
    let session_id = state
        .store
        .create_session(&session, now)
        .await
        .map_err(|e| SignInError::Store("callback: creating the session failed", e))?;
    tracing::info!("upstream sign-in completed");
    Ok(SignedIn {
        session_id,
        request_id: login.request_id,
    })
}
