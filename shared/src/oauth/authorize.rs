//! The authorization endpoint's decisions (RFC 6749 §4.1.1 and §4.1.2.1, OAuth 2.1 §4.1.1,
//! RFC 7636 §4.3, RFC 8707 §2, RFC 8252 §7.3, RFC 9207 §2): pure functions of the parsed
//! parameters, the loaded client and resource server, and the configuration. The handler loads the
//! records between the stages and renders what they decide; nothing here reads a store.
//!
//! Until the client and its redirect URI are validated, a refusal is a page for the user, never a
//! redirect (RFC 6749 §4.1.2.1); after, it goes back to the client's redirect URI with `error`,
//! `error_description`, `state` and `iss` — but only when that URI is loopback or verified (an https
//! metadata document's own origin): anyone can register a client, so for the rest an error before
//! the user interacted is a page too, never a redirect (RFC 9700 §4.11.2, no open redirector).
//!
//! Remembered consent (a code with no page) is only for clients whose identity is verified: a
//! confidential client, or one named by an https metadata document (RFC 8252 §8.6).

use http::StatusCode;
use lambda_http::{Body, Response};
use url::Url;

use crate::config::Config;
use crate::domain::authz::AuthRequest;
use crate::domain::client::ClientRecord;
use crate::domain::redirect::{RedirectKind, RedirectUri};
use crate::domain::resource::{Resource, ResourceServerRecord};
use crate::error::OAuthErrorCode;
use crate::http::html::{error_page, redirect};
use crate::http::request::Params;
use crate::oauth::{pkce, scope};

/// Longest `client_id` looked up; longer is an unknown client.
pub const MAX_CLIENT_ID: usize = 512;
/// Longest `state` carried back to the client.
pub const MAX_STATE: usize = 1024;

/// Where an authorization response goes: the validated redirect URI, with `state` and `iss`
/// (RFC 6749 §4.1.2, RFC 9207 §2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRedirect {
    pub redirect_uri: String,
    pub state: Option<String>,
    pub issuer: String,
}

impl ClientRedirect {
    /// The redirect URI with `pairs`, then `state` and `iss`; `None` when it does not parse.
    pub fn location(&self, pairs: &[(&str, &str)]) -> Option<String> {
        let mut url = Url::parse(&self.redirect_uri).ok()?;
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
            if let Some(s) = &self.state {
                q.append_pair("state", s);
            }
            q.append_pair("iss", &self.issuer);
        }
        Some(url.into())
    }

    fn with(&self, pairs: &[(&str, &str)]) -> Response<Body> {
        match self.location(pairs) {
            Some(location) => redirect(&location),
            None => error_page(StatusCode::BAD_REQUEST, "the redirect URI is not valid"),
        }
    }

    /// An error response to the client (RFC 6749 §4.1.2.1, RFC 9207 `iss`).
    pub fn error(&self, code: OAuthErrorCode, description: &str) -> Response<Body> {
        self.with(&[("error", code.as_str()), ("error_description", description)])
    }

    /// A successful response carrying the code (RFC 6749 §4.1.2).
    pub fn code(&self, code: &str) -> Response<Body> {
        self.with(&[("code", code)])
    }
}

/// Why an authorization request is refused, and how the refusal reaches the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The client or its redirect URI is not valid: a page for the user, never a redirect
    /// (RFC 6749 §4.1.2.1).
    Page { status: StatusCode, message: String },
    /// An error response at the client's validated redirect URI (RFC 6749 §4.1.2.1).
    ToClient {
        to: ClientRedirect,
        error: OAuthErrorCode,
        description: String,
    },
}

impl Refusal {
    fn page(message: &str) -> Self {
        Refusal::Page {
            status: StatusCode::BAD_REQUEST,
            message: message.to_string(),
        }
    }

    fn to_client(to: &ClientRedirect, error: OAuthErrorCode, description: &str) -> Self {
        Refusal::ToClient {
            to: to.clone(),
            error,
            description: description.to_string(),
        }
    }

    /// An error for the client after its redirect URI is validated: a redirect when the URI may
    /// receive errors (`redirect_errors`), else our own page naming the error (RFC 9700 §4.11.2).
    fn after_validation(to: &ClientRedirect, redirect_errors: bool, error: OAuthErrorCode, description: &str) -> Self {
        if redirect_errors {
            return Refusal::to_client(to, error, description);
        }
        Refusal::page(&format!(
            "The app's request is not valid: {description} ({}).",
            error.as_str()
        ))
    }

    /// The refusal as a response: the error page, or the redirect to the client.
    pub fn response(&self) -> Response<Body> {
        match self {
            Refusal::Page { status, message } => error_page(*status, message),
            Refusal::ToClient { to, error, description } => to.error(*error, description),
        }
    }
}

/// Is the client named by a metadata document fetched over https (its identity vouched for by its
/// origin's TLS certificate)? Registered clients have `lkc_` ids, never URLs.
fn is_https_document(client: &ClientRecord) -> bool {
    client.fresh_until.is_some() && client.client_id.starts_with("https://")
}

/// RFC 8252 §8.6: may the user's consent to this client be remembered (later requests answered with
/// a code and no page)? Only when its identity is verified: a confidential client (it must
/// authenticate to redeem a code) or one named by an https metadata document. A public registered
/// client (`none`) is anyone who can open a URL — any local process on any loopback port — so it
/// sees the consent page every time.
pub fn may_remember_consent(client: &ClientRecord) -> bool {
    client.metadata.is_confidential() || is_https_document(client)
}

/// RFC 9700 §4.11.2: may an error go to `redirect_uri` (validated for `client`) before the user has
/// interacted? Only when it cannot bounce the browser to someone else's site: a loopback URI (RFC
/// 8252 §7.3, the user's own machine), or a URI on the origin of the https metadata document that
/// names the client (that origin vouches for it). Clients anyone can register — dynamic
/// registration, whatever their auth method, and http metadata documents — get latchkey's own
/// error page instead.
pub fn errors_may_redirect(client: &ClientRecord, redirect_uri: &str) -> bool {
    let Ok(uri) = RedirectUri::parse(redirect_uri) else {
        return false;
    };
    if uri.kind() == RedirectKind::Loopback {
        return true;
    }
    if !is_https_document(client) {
        return false;
    }
    match (Url::parse(&client.client_id), Url::parse(redirect_uri)) {
        (Ok(doc), Ok(to)) => to.scheme() == "https" && doc.origin() == to.origin(),
        _ => false,
    }
}

/// What the request establishes once the client is known: where responses go, and the checked
/// `state`, PKCE challenge and resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    pub to: ClientRedirect,
    pub redirect_uri: String,
    /// Was `redirect_uri` in the request (else the one registered URI)?
    pub redirect_uri_sent: bool,
    /// May errors go to the redirect URI before the user interacted ([`errors_may_redirect`])?
    pub redirect_errors: bool,
    pub state: String,
    pub code_challenge: String,
    /// The RFC 8707 resource in canonical form: the resource server to load.
    pub resource: Resource,
}

/// A request every check passed: the pending request to store, and where its answer goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidRequest {
    pub to: ClientRedirect,
    pub request: AuthRequest,
}

/// Stage 1 (RFC 6749 §4.1.1 `client_id`): the client the request names. Missing is an error
/// page; an id longer than any we register is an unknown client.
pub fn client_id(p: &Params) -> Result<&str, Refusal> {
    let Some(client_id) = p.get("client_id").filter(|c| !c.is_empty()) else {
        return Err(Refusal::page(
            "The request does not name a client (client_id is missing).",
        ));
    };
    if client_id.len() > MAX_CLIENT_ID {
        return Err(unknown_client());
    }
    Ok(client_id)
}

/// The client named is neither registered nor a metadata document we could use.
pub fn unknown_client() -> Refusal {
    Refusal::page("The client is not registered with this server.")
}

/// A metadata-document client whose document could not be used (`why` is a public description).
pub fn unusable_document(why: &str) -> Refusal {
    Refusal::page(&format!("The client's metadata document can't be used: {why}."))
}

/// Stage 2, with the client loaded: the redirect URI (RFC 6749 §3.1.2.3, exact match, loopback any
/// port per RFC 8252 §7.3), then — as errors to the client — `response_type` (§4.1.1), `state`,
/// PKCE S256 (RFC 7636 §4.3), the client's grant types, and the `resource` (RFC 8707 §2, else
/// the configured default).
pub fn check_request(p: &Params, client: &ClientRecord, issuer: &str, config: &Config) -> Result<Checked, Refusal> {
    let registered: Vec<RedirectUri> = client
        .metadata
        .redirect_uris
        .iter()
        .filter_map(|r| RedirectUri::parse(r).ok())
        .collect();
    let sent = p.get("redirect_uri").filter(|r| !r.is_empty());
    let redirect_uri = match sent {
        Some(presented) if registered.iter().any(|r| r.matches(presented)) => presented.to_string(),
        Some(_) => {
            return Err(Refusal::page(
                "The redirect URI does not match any URI registered for this client.",
            ))
        }
        None if registered.len() == 1 => registered[0].as_str().to_string(),
        None => {
            return Err(Refusal::page(
                "The request must include redirect_uri (the client registered several).",
            ))
        }
    };
    let to = ClientRedirect {
        redirect_uri: redirect_uri.clone(),
        state: p.get("state").filter(|s| !s.is_empty()).map(str::to_string),
        issuer: issuer.to_string(),
    };

    // From here on, errors go back to the client — if its redirect URI may receive them.
    let redirect_errors = errors_may_redirect(client, &redirect_uri);
    let refuse = |error, description: &str| Err(Refusal::after_validation(&to, redirect_errors, error, description));
    if p.get("response_type") != Some("code") {
        return refuse(OAuthErrorCode::UnsupportedResponseType, "response_type must be code");
    }
    let Some(state) = to.state.clone() else {
        return refuse(OAuthErrorCode::InvalidRequest, "state is required");
    };
    if state.len() > MAX_STATE {
        return refuse(OAuthErrorCode::InvalidRequest, "state is too long");
    }
    match p.get("code_challenge_method") {
        Some("S256") => {}
        Some("plain") => {
            return refuse(
                OAuthErrorCode::InvalidRequest,
                "code_challenge_method plain is not supported; use S256",
            )
        }
        _ => return refuse(OAuthErrorCode::InvalidRequest, "code_challenge_method must be S256"),
    }
    let Some(challenge) = p.get("code_challenge").filter(|c| pkce::is_valid_challenge(c)) else {
        return refuse(
            OAuthErrorCode::InvalidRequest,
            "code_challenge must be a base64url S256 challenge (43 characters)",
        );
    };
    if !client.metadata.grant_types.iter().any(|g| g == "authorization_code") {
        return refuse(
            OAuthErrorCode::UnauthorizedClient,
            "client may not use the authorization code grant",
        );
    }
    let resource_raw = p
        .get("resource")
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .or_else(|| config.default_resource.clone());
    let Some(resource_raw) = resource_raw else {
        return refuse(OAuthErrorCode::InvalidTarget, "resource is required (RFC 8707)");
    };
    let Ok(resource) = Resource::normalize(&resource_raw) else {
        return refuse(OAuthErrorCode::InvalidTarget, "resource is not a valid resource URI");
    };
    Ok(Checked {
        to,
        redirect_uri,
        redirect_uri_sent: sent.is_some(),
        redirect_errors,
        state,
        code_challenge: challenge.to_string(),
        resource,
    })
}

/// Stage 3, with the resource server loaded (`None`: no resource server is registered for the
/// resource, RFC 8707 §2 `invalid_target`): the scope (RFC 6749 §3.3, `scope::decide`). On success
/// the pending request to store under `request_id`.
pub fn decide(
    checked: Checked,
    p: &Params,
    client: &ClientRecord,
    rs: Option<&ResourceServerRecord>,
    config: &Config,
    request_id: String,
) -> Result<ValidRequest, Refusal> {
    let refuse =
        |error, description: &str| Refusal::after_validation(&checked.to, checked.redirect_errors, error, description);
    let Some(rs) = rs else {
        return Err(refuse(
            OAuthErrorCode::InvalidTarget,
            "resource is not a resource server registered with this authorization server",
        ));
    };
    let scope_ctx = scope::ScopeContext {
        base: &config.scopes_supported,
        resource: &rs.scopes,
        client: client.metadata.scope.as_deref(),
        refresh_grant: client.metadata.grant_types.iter().any(|g| g == "refresh_token"),
    };
    let scope = scope::decide(p.get("scope"), &scope_ctx).map_err(|m| refuse(OAuthErrorCode::InvalidScope, &m))?;
    Ok(ValidRequest {
        to: checked.to,
        request: AuthRequest {
            id: request_id,
            client_id: client.client_id.clone(),
            client_name: client.metadata.client_name.clone(),
            redirect_uri: checked.redirect_uri,
            redirect_uri_sent: checked.redirect_uri_sent,
            remember_consent: may_remember_consent(client),
            state: checked.state,
            code_challenge: checked.code_challenge,
            resource: rs.resource.clone(),
            scope,
        },
    })
}

/// Has the user already approved every scope of this request (remembered consent)? Then the
/// browser gets a code without the consent page.
pub fn already_approved(request: &AuthRequest, approved: &[String]) -> bool {
    request.scope.split(' ').all(|s| approved.iter().any(|a| a == s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::client::ClientMetadata;
    use crate::http::request::parse_params;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    const ISSUER: &str = "https://as.example/oauth/2.1";
    const RESOURCE: &str = "https://mcp.example.com/mcp";

    fn config() -> Config {
        Config::from_lookup(|_| None).unwrap()
    }

    fn client(redirect_uris: &[&str], grant_types: &[&str]) -> ClientRecord {
        let metadata: ClientMetadata = serde_json::from_value(serde_json::json!({
            "redirect_uris": redirect_uris,
            "grant_types": grant_types,
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
            "client_name": "App",
        }))
        .unwrap();
        ClientRecord {
            client_id: "c1".into(),
            secret_hash: None,
            metadata,
            created_at: 0,
            fresh_until: None,
            unused_until: None,
            dedup: None,
        }
    }

    fn rs(scopes: &[&str]) -> ResourceServerRecord {
        ResourceServerRecord {
            rs_id: "rs_1".into(),
            secret_hash: String::new(),
            resource: RESOURCE.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            scope_descriptions: Default::default(),
            created_at: 0,
        }
    }

    /// A valid request's parameters, with `extra` (`k=v&…`) laid over them; `k=` removes `k`.
    fn params(extra: &str) -> Params {
        let base = format!(
            "client_id=c1&response_type=code&state=s1&code_challenge_method=S256&code_challenge={CHALLENGE}&resource=https%3A%2F%2Fmcp.example.com%2Fmcp&redirect_uri=http%3A%2F%2F127.0.0.1%3A7777%2Fcb"
        );
        let mut all = std::collections::BTreeMap::new();
        for kv in base.split('&').chain(extra.split('&')).filter(|x| !x.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            all.insert(k.to_string(), v.to_string());
        }
        let raw: Vec<String> = all
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        parse_params(raw.join("&").as_bytes()).unwrap()
    }

    fn default_client() -> ClientRecord {
        client(&["http://127.0.0.1/cb"], &["authorization_code", "refresh_token"])
    }

    fn run(p: &Params, c: &ClientRecord, rs: Option<&ResourceServerRecord>) -> Result<ValidRequest, Refusal> {
        let cfg = config();
        let checked = check_request(p, c, ISSUER, &cfg)?;
        decide(checked, p, c, rs, &cfg, "req1".into())
    }

    fn client_error(r: Result<ValidRequest, Refusal>) -> (OAuthErrorCode, String, ClientRedirect) {
        match r {
            Err(Refusal::ToClient { to, error, description }) => (error, description, to),
            other => panic!("expected an error to the client, got {other:?}"),
        }
    }

    fn page_message(r: Result<ValidRequest, Refusal>) -> String {
        match r {
            Err(Refusal::Page { status, message }) => {
                assert_eq!(status, StatusCode::BAD_REQUEST);
                message
            }
            other => panic!("expected an error page, got {other:?}"),
        }
    }

    #[test]
    fn rfc6749_4_1_1_a_valid_request_becomes_a_pending_request() {
        let server = rs(&["mcp:tools"]);
        let v = run(&params(""), &default_client(), Some(&server)).unwrap();
        assert_eq!(v.request.id, "req1");
        assert_eq!(v.request.client_id, "c1");
        assert_eq!(v.request.client_name.as_deref(), Some("App"));
        assert_eq!(v.request.redirect_uri, "http://127.0.0.1:7777/cb");
        assert_eq!(v.request.state, "s1");
        assert_eq!(v.request.code_challenge, CHALLENGE);
        assert_eq!(v.request.resource, RESOURCE);
        assert_eq!(v.request.scope, "mcp:tools", "no scope: the resource's declared scopes");
        assert_eq!(v.to.issuer, ISSUER);
    }

    #[test]
    fn rfc6749_4_1_1_client_id_is_required_and_bounded() {
        let p = parse_params(b"response_type=code").unwrap();
        assert!(matches!(client_id(&p), Err(Refusal::Page { .. })));
        let long = format!("client_id={}", "x".repeat(MAX_CLIENT_ID + 1));
        let p = parse_params(long.as_bytes()).unwrap();
        assert_eq!(client_id(&p), Err(unknown_client()));
        assert_eq!(client_id(&params("")), Ok("c1"));
    }

    #[test]
    fn rfc6749_4_1_2_1_an_unregistered_redirect_uri_is_an_error_page_never_a_redirect() {
        let msg = page_message(run(
            &params("redirect_uri=https%3A%2F%2Fevil.example%2Fcb"),
            &default_client(),
            None,
        ));
        assert!(msg.contains("does not match"), "{msg}");
        // Even with every other parameter wrong, the page comes first.
        let msg = page_message(run(
            &params("redirect_uri=https%3A%2F%2Fevil.example%2Fcb&response_type=token"),
            &default_client(),
            None,
        ));
        assert!(msg.contains("does not match"), "{msg}");
    }

    #[test]
    fn rfc6749_3_1_2_3_redirect_uri_may_be_omitted_only_with_one_registered() {
        let one = run(&params("redirect_uri="), &default_client(), Some(&rs(&[]))).unwrap();
        assert_eq!(one.request.redirect_uri, "http://127.0.0.1/cb");
        let two = client(
            &["http://127.0.0.1/cb", "https://app.example/cb"],
            &["authorization_code"],
        );
        let msg = page_message(run(&params("redirect_uri="), &two, None));
        assert!(msg.contains("must include redirect_uri"), "{msg}");
    }

    #[test]
    fn rfc8252_7_3_loopback_redirect_uris_match_on_any_port() {
        let v = run(
            &params("redirect_uri=http%3A%2F%2F127.0.0.1%3A51234%2Fcb"),
            &default_client(),
            Some(&rs(&[])),
        )
        .unwrap();
        assert_eq!(v.request.redirect_uri, "http://127.0.0.1:51234/cb");
        let c = client(&["https://app.example/cb"], &["authorization_code"]);
        page_message(run(
            &params("redirect_uri=https%3A%2F%2Fapp.example%3A8443%2Fcb"),
            &c,
            None,
        ));
    }

    #[test]
    fn rfc6749_4_1_2_1_response_type_must_be_code() {
        let (e, _, to) = client_error(run(&params("response_type=token"), &default_client(), None));
        assert_eq!(e, OAuthErrorCode::UnsupportedResponseType);
        assert_eq!(to.state.as_deref(), Some("s1"), "state goes back with the error");
        let (e, _, _) = client_error(run(&params("response_type="), &default_client(), None));
        assert_eq!(e, OAuthErrorCode::UnsupportedResponseType);
    }

    #[test]
    fn rfc6749_10_12_state_is_required_and_bounded() {
        let (e, d, to) = client_error(run(&params("state="), &default_client(), None));
        assert_eq!((e, d.as_str()), (OAuthErrorCode::InvalidRequest, "state is required"));
        assert_eq!(to.state, None);
        let long = format!("state={}", "s".repeat(MAX_STATE + 1));
        let (e, d, _) = client_error(run(&params(&long), &default_client(), None));
        assert_eq!((e, d.as_str()), (OAuthErrorCode::InvalidRequest, "state is too long"));
    }

    #[test]
    fn rfc7636_4_3_only_s256_challenges_are_accepted() {
        let (e, d, _) = client_error(run(&params("code_challenge_method=plain"), &default_client(), None));
        assert_eq!(e, OAuthErrorCode::InvalidRequest);
        assert!(d.contains("plain is not supported"), "{d}");
        let (_, d, _) = client_error(run(&params("code_challenge_method="), &default_client(), None));
        assert_eq!(d, "code_challenge_method must be S256");
        let (_, d, _) = client_error(run(&params("code_challenge=short"), &default_client(), None));
        assert!(d.starts_with("code_challenge must be"), "{d}");
        let (_, d, _) = client_error(run(&params("code_challenge="), &default_client(), None));
        assert!(d.starts_with("code_challenge must be"), "{d}");
    }

    #[test]
    fn rfc6749_4_1_2_1_unauthorized_client_without_the_code_grant() {
        let c = client(&["http://127.0.0.1/cb"], &["client_credentials"]);
        let (e, _, _) = client_error(run(&params(""), &c, None));
        assert_eq!(e, OAuthErrorCode::UnauthorizedClient);
    }

    #[test]
    fn rfc8707_2_resource_is_required_absolute_and_registered() {
        let (e, d, _) = client_error(run(&params("resource="), &default_client(), None));
        assert_eq!(
            (e, d.as_str()),
            (OAuthErrorCode::InvalidTarget, "resource is required (RFC 8707)")
        );
        let (e, d, _) = client_error(run(&params("resource=relative%2Fpath"), &default_client(), None));
        assert_eq!(
            (e, d.as_str()),
            (OAuthErrorCode::InvalidTarget, "resource is not a valid resource URI")
        );
        let (e, d, _) = client_error(run(&params(""), &default_client(), None));
        assert_eq!(e, OAuthErrorCode::InvalidTarget);
        assert!(d.contains("not a resource server registered"), "{d}");
    }

    #[test]
    fn rfc8707_2_the_configured_default_resource_stands_in_for_a_missing_one() {
        let mut cfg = config();
        cfg.default_resource = Some(RESOURCE.into());
        let p = params("resource=");
        let checked = check_request(&p, &default_client(), ISSUER, &cfg).unwrap();
        assert_eq!(checked.resource.as_str(), RESOURCE);
    }

    #[test]
    fn rfc8707_2_the_resource_is_kept_in_canonical_form() {
        let p = params("resource=HTTPS%3A%2F%2FMCP.example.com%2Fmcp");
        let checked = check_request(&p, &default_client(), ISSUER, &config()).unwrap();
        assert_eq!(checked.resource.as_str(), RESOURCE);
    }

    #[test]
    fn rfc6749_3_3_scope_is_decided_against_the_resource_and_the_grant() {
        let server = rs(&["mcp:tools"]);
        let v = run(&params("scope=openid+mcp%3Atools"), &default_client(), Some(&server)).unwrap();
        assert_eq!(v.request.scope, "openid mcp:tools");
        let (e, _, _) = client_error(run(&params("scope=admin"), &default_client(), Some(&server)));
        assert_eq!(e, OAuthErrorCode::InvalidScope);
        let no_refresh = client(&["http://127.0.0.1/cb"], &["authorization_code"]);
        let (e, d, _) = client_error(run(&params("scope=offline_access"), &no_refresh, Some(&server)));
        assert_eq!(e, OAuthErrorCode::InvalidScope);
        assert!(d.contains("refresh_token grant"), "{d}");
    }

    #[test]
    fn rfc9207_2_responses_carry_state_and_iss() {
        let to = ClientRedirect {
            redirect_uri: "http://127.0.0.1:7777/cb?x=1".into(),
            state: Some("s 1".into()),
            issuer: ISSUER.into(),
        };
        assert_eq!(
            to.location(&[("code", "abc")]).unwrap(),
            "http://127.0.0.1:7777/cb?x=1&code=abc&state=s+1&iss=https%3A%2F%2Fas.example%2Foauth%2F2.1"
        );
        let res = to.error(OAuthErrorCode::AccessDenied, "no");
        let loc = res.headers()[http::header::LOCATION].to_str().unwrap();
        assert!(loc.contains("error=access_denied") && loc.contains("iss="), "{loc}");
    }

    /// A client named by a metadata document at `client_id` (as `authz::client` stores it).
    fn document_client(client_id: &str, redirect_uris: &[&str]) -> ClientRecord {
        let mut c = client(redirect_uris, &["authorization_code", "refresh_token"]);
        c.client_id = client_id.into();
        c.fresh_until = Some(300);
        c
    }

    fn confidential(redirect_uris: &[&str]) -> ClientRecord {
        let mut c = client(redirect_uris, &["authorization_code", "refresh_token"]);
        c.metadata.token_endpoint_auth_method = "client_secret_basic".into();
        c.secret_hash = Some("h".into());
        c
    }

    #[test]
    fn rfc8252_8_6_consent_is_remembered_only_for_clients_whose_identity_is_verified() {
        // A public registered client: anyone who can open a URL, on any loopback port.
        assert!(!may_remember_consent(&default_client()));
        let v = run(&params(""), &default_client(), Some(&rs(&[]))).unwrap();
        assert!(!v.request.remember_consent);
        // A confidential client must authenticate to redeem the code.
        let c = confidential(&["http://127.0.0.1/cb"]);
        assert!(may_remember_consent(&c));
        assert!(run(&params(""), &c, Some(&rs(&[]))).unwrap().request.remember_consent);
        // A metadata document fetched over https names a verified client; over http (serve) it does not.
        assert!(may_remember_consent(&document_client(
            "https://app.example/client.json",
            &["http://127.0.0.1/cb"]
        )));
        assert!(!may_remember_consent(&document_client(
            "http://127.0.0.1:9/client.json",
            &["http://127.0.0.1/cb"]
        )));
    }

    #[test]
    fn rfc9700_4_11_2_errors_redirect_only_to_loopback_or_verified_redirect_uris() {
        let https = "https%3A%2F%2Fapp.example%2Fcb";
        // Registered by anyone (public or confidential): the error is our own page, naming the error.
        for c in [
            client(&["https://app.example/cb"], &["authorization_code"]),
            confidential(&["https://app.example/cb"]),
            client(&["com.example.app:/cb"], &["authorization_code"]),
        ] {
            let redirect = c.metadata.redirect_uris[0].clone();
            assert!(!errors_may_redirect(&c, &redirect), "{redirect}");
            let p = params(&format!(
                "redirect_uri={}&response_type=token",
                url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
            ));
            let msg = page_message(run(&p, &c, None));
            assert!(msg.contains("unsupported_response_type"), "{msg}");
            // Stage 3 refusals too.
            let p = params(&format!(
                "redirect_uri={}",
                url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
            ));
            let msg = page_message(run(&p, &c, None));
            assert!(msg.contains("invalid_target"), "{msg}");
        }
        // Loopback: errors go back (the user's own machine), for any client.
        assert!(errors_may_redirect(&default_client(), "http://127.0.0.1:51234/cb"));
        client_error(run(&params("response_type=token"), &default_client(), None));
        // An https metadata document vouches for URIs on its own origin only.
        let doc = document_client(
            "https://app.example/client.json",
            &["https://app.example/cb", "https://elsewhere.example/cb"],
        );
        assert!(errors_may_redirect(&doc, "https://app.example/cb"));
        assert!(!errors_may_redirect(&doc, "https://elsewhere.example/cb"));
        let p = params(&format!("redirect_uri={https}&response_type=token&client_id=x"));
        let (e, _, to) = client_error(run(&p, &doc, None));
        assert_eq!(
            (e, to.redirect_uri.as_str()),
            (OAuthErrorCode::UnsupportedResponseType, "https://app.example/cb")
        );
        // An http document (serve only) is not verified.
        let http_doc = document_client("http://127.0.0.1:9/client.json", &["https://app.example/cb"]);
        assert!(!errors_may_redirect(&http_doc, "https://app.example/cb"));
    }

    #[test]
    fn oauth21_4_1_3_the_pending_request_records_whether_redirect_uri_was_sent() {
        let sent = run(&params(""), &default_client(), Some(&rs(&[]))).unwrap();
        assert!(sent.request.redirect_uri_sent);
        let omitted = run(&params("redirect_uri="), &default_client(), Some(&rs(&[]))).unwrap();
        assert!(!omitted.request.redirect_uri_sent);
        assert_eq!(omitted.request.redirect_uri, "http://127.0.0.1/cb");
    }

    #[test]
    fn remembered_consent_covers_every_requested_scope() {
        let server = rs(&["a", "b"]);
        let v = run(&params("scope=a+b"), &default_client(), Some(&server)).unwrap();
        assert!(already_approved(&v.request, &["b".into(), "a".into(), "c".into()]));
        assert!(!already_approved(&v.request, &["a".into()]));
    }
}
