//! "Your connected apps" (`/oauth/2.1/account`, issue 15) and revocation that forgets consent
//! (issue 12 item 2): a browser signed in through the same sign-in as authorize lists what its user
//! approved and revokes it (the grant, every token from it, and the remembered consent), with a CSRF
//! token bound to the session; another user's grant is 404; signing out ends the session.

use crate::common;

use std::collections::BTreeMap;

use common::{TestApp, CHALLENGE, RESOURCE, VERIFIER};
use serde_json::Value;

const REDIRECT: &str = "http://127.0.0.1:5555/callback";
const CLIENT_NAME: &str = "Notes Agent";
const ACCOUNT: &str = "/oauth/2.1/account";

/// A browser without JavaScript: follows nothing by itself, keeps our cookies.
struct Browser {
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    headers: reqwest::header::HeaderMap,
    html: String,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let req = if self.cookies.is_empty() {
            req
        } else {
            req.header("cookie", self.cookie_header())
        };
        let res = req.send().await.unwrap();
        for sc in res.headers().get_all("set-cookie") {
            let sc = sc.to_str().unwrap();
            let (name, value) = sc.split(';').next().unwrap().split_once('=').unwrap();
            if sc.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        Page {
            status: res.status().as_u16(),
            location: res.headers().get("location").map(|l| l.to_str().unwrap().to_string()),
            headers: res.headers().clone(),
            html: res.text().await.unwrap(),
        }
    }

    async fn get(&mut self, url: &str) -> Page {
        let req = self.http.get(url);
        self.send(req).await
    }

    async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let req = self.http.post(url).form(form);
        self.send(req).await
    }

    fn session(&self) -> Option<&String> {
        self.cookies.get("lk_session")
    }
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// Sign in from the account page (not signed in → the local sign-in page → back to the page).
async fn sign_in(app: &TestApp, b: &mut Browser, email: &str) -> Page {
    let first = b.get(&app.url(ACCOUNT)).await;
    assert_eq!(first.status, 303, "{}", first.html);
    let to_sign_in = first.location.unwrap();
    assert_eq!(to_sign_in, app.url("/oauth/2.1/callback?request=account"));
    let page = b.get(&to_sign_in).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("type=\"email\""), "{}", page.html);
    let done = b
        .post(
            &app.url("/oauth/2.1/callback"),
            &[("request", &hidden(&page.html, "request")), ("email", email)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.html);
    assert_eq!(done.location.as_deref(), Some(app.url(ACCOUNT).as_str()));
    assert!(b.session().is_some(), "signed in");
    let page = b.get(&app.url(ACCOUNT)).await;
    assert_eq!(page.status, 200, "{}", page.html);
    page
}

/// The app, a resource server and a confidential client with refresh tokens.
struct Setup {
    app: TestApp,
    client_id: String,
    client_secret: String,
    rs: (String, String),
}

async fn setup() -> Setup {
    let app = TestApp::start().await;
    let rs = app.resource_server(RESOURCE).await;
    let (status, body) = app
        .register(serde_json::json!({
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["authorization_code", "refresh_token"],
            "client_name": CLIENT_NAME,
        }))
        .await;
    assert_eq!(status, 201, "{body}");
    Setup {
        client_id: body["client_id"].as_str().unwrap().to_string(),
        client_secret: body["client_secret"].as_str().unwrap().to_string(),
        app,
        rs,
    }
}

/// How an authorization went: the client's redirect, and whether the consent page was shown.
struct Authorized {
    location: String,
    asked: bool,
}

impl Setup {
    fn authorize_url(&self) -> String {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("client_id", self.client_id.as_str()),
                ("redirect_uri", REDIRECT),
                ("response_type", "code"),
                ("state", "st-1"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
                ("resource", RESOURCE),
                ("scope", "openid email"),
            ])
            .finish();
        self.app.url(&format!("/oauth/2.1/authorize?{q}"))
    }

    /// Authorize in browser `b` (signing in as `email` if needed, approving if asked).
    async fn authorize(&self, b: &mut Browser, email: &str) -> Authorized {
        let mut next = self.authorize_url();
        let mut asked = false;
        for _ in 0..8 {
            let page = b.get(&next).await;
            let form_page = match page.status {
                303 => {
                    let loc = page.location.unwrap();
                    if !loc.starts_with(&self.app.base) {
                        return Authorized { location: loc, asked };
                    }
                    next = loc;
                    continue;
                }
                200 => page,
                s => panic!("{next}: {s} {}", page.html),
            };
            let res = if form_page.html.contains("type=\"email\"") {
                let request = hidden(&form_page.html, "request");
                b.post(
                    &self.app.url("/oauth/2.1/callback"),
                    &[("request", &request), ("email", email)],
                )
                .await
            } else {
                asked = true;
                let request = hidden(&form_page.html, "request");
                let csrf = hidden(&form_page.html, "csrf");
                b.post(
                    &self.app.url("/oauth/2.1/consent"),
                    &[("request", &request), ("csrf", &csrf), ("decision", "approve")],
                )
                .await
            };
            assert_eq!(res.status, 303, "{}", res.html);
            let loc = res.location.unwrap();
            if !loc.starts_with(&self.app.base) {
                return Authorized { location: loc, asked };
            }
            next = loc;
        }
        panic!("the authorization did not reach the client");
    }

    /// Redeem the code the client got: (access token, refresh token).
    async fn redeem(&self, location: &str) -> (String, String) {
        let q: BTreeMap<String, String> = url::Url::parse(location).unwrap().query_pairs().into_owned().collect();
        let code = q.get("code").unwrap_or_else(|| panic!("no code in {location}"));
        let (status, body) = self
            .app
            .post_form(
                "/oauth/2.1/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", VERIFIER),
                ],
                Some((&self.client_id, &self.client_secret)),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        (
            body["access_token"].as_str().unwrap().to_string(),
            body["refresh_token"].as_str().unwrap().to_string(),
        )
    }

    async fn refresh(&self, refresh_token: &str) -> (u16, Value) {
        self.app
            .post_form(
                "/oauth/2.1/token",
                &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)],
                Some((&self.client_id, &self.client_secret)),
            )
            .await
    }

    async fn active(&self, access_token: &str) -> bool {
        let (status, body) = self
            .app
            .post_form(
                "/oauth/2.1/introspect",
                &[("token", access_token)],
                Some((&self.rs.0, &self.rs.1)),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["active"].as_bool().unwrap()
    }

    /// Items whose `pk` starts with `prefix`, live or not.
    async fn items(
        &self,
        prefix: &str,
    ) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        self.app
            .all_items()
            .await
            .into_iter()
            .filter(|i| i["pk"].as_s().unwrap().starts_with(prefix))
            .collect()
    }

    /// Alice approves the client in her own browser and the client redeems the code.
    async fn alice_connects(&self, b: &mut Browser) -> (String, String) {
        let done = self.authorize(b, "alice@example.com").await;
        assert!(done.asked, "the first authorization asks");
        self.redeem(&done.location).await
    }
}

fn grant_ids_on(html: &str) -> Vec<String> {
    html.match_indices("name=\"grant\" value=\"")
        .map(|(i, m)| html[i + m.len()..].split('"').next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn account_page_lists_each_connected_app_with_its_resource_scopes_and_dates() {
    let s = setup().await;
    let mut b = Browser::new();
    let (_at, rt) = s.alice_connects(&mut b).await;
    // Authorizing again with remembered consent makes a second grant: still one card.
    let again = s.authorize(&mut b, "alice@example.com").await;
    assert!(!again.asked, "consent is remembered");
    s.redeem(&again.location).await;
    // Bob's grant is not Alice's business.
    let mut bob = Browser::new();
    s.authorize(&mut bob, "bob@example.com").await;

    let page = b.get(&s.app.url(ACCOUNT)).await;
    assert_eq!(page.status, 200, "{}", page.html);
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("script-src"), "no script allowed: {csp}");
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert_eq!(page.headers["cache-control"], "no-store");
    assert!(!page.html.contains("<script"), "no script");
    for expected in [
        "Your connected apps",
        "alice@example.com",
        CLIENT_NAME,
        "(127.0.0.1)",
        RESOURCE,
        "Know who you are",
        "See your email address",
        "Approved ",
        "Last used around ",
        s.client_id.as_str(),
        "Revoke access",
        "Sign out",
    ] {
        assert!(
            page.html.contains(expected),
            "the page lacks {expected:?}:\n{}",
            page.html
        );
    }
    assert!(!page.html.contains("bob@example.com"));
    assert_eq!(grant_ids_on(&page.html).len(), 1, "one card per client and resource");

    // "Last used" is recorded with the token that was issued, and a refresh within the hour does not
    // write it again; the refresh stays within the token endpoint's two round trips.
    let grants = s.items("GRANT#").await;
    let last_used: Vec<i64> = grants
        .iter()
        .filter(|i| i["sk"].as_s().unwrap() == "GRANT" && i.contains_key("last_used"))
        .map(|i| i["last_used"].as_n().unwrap().parse().unwrap())
        .collect();
    assert_eq!(last_used.len(), 2, "both of Alice's redeemed grants record their use");
    let index_before = s.items("USERGRANT#local:alice@example.com").await;
    let (before, _) = s.app.calls();
    let (status, body) = s.refresh(&rt).await;
    let (after, _) = s.app.calls();
    assert_eq!(status, 200, "{body}");
    assert!(after - before <= 2, "refresh made {} round trips", after - before);
    assert_eq!(
        s.items("USERGRANT#local:alice@example.com").await,
        index_before,
        "not rewritten within the hour"
    );
}

#[tokio::test]
async fn account_page_sends_a_signed_out_browser_to_sign_in_and_back() {
    let s = setup().await;
    let mut b = Browser::new();
    let page = sign_in(&s.app, &mut b, "carol@example.com").await;
    assert!(page.html.contains("carol@example.com"), "{}", page.html);
    assert!(page.html.contains("No apps have access"), "{}", page.html);
    // A POST without a session changes nothing and says so.
    let mut stranger = Browser::new();
    let res = stranger
        .post(&s.app.url(ACCOUNT), &[("action", "signout"), ("csrf", "x")])
        .await;
    assert_eq!(res.status, 403, "{}", res.html);
}

#[tokio::test]
async fn account_revoke_ends_the_grant_its_tokens_and_the_consent_so_the_client_asks_again() {
    let s = setup().await;
    let mut b = Browser::new();
    let (at, rt) = s.alice_connects(&mut b).await;
    // A second grant for the same client and resource (consent remembered), not yet redeemed.
    let again = s.authorize(&mut b, "alice@example.com").await;
    assert!(!again.asked);
    assert!(s.active(&at).await);
    assert_eq!(s.items("CONSENT#local:alice@example.com").await.len(), 1);

    let page = b.get(&s.app.url(ACCOUNT)).await;
    let grant = grant_ids_on(&page.html).remove(0);
    let csrf = hidden(&page.html, "csrf");
    let res = b
        .post(
            &s.app.url(ACCOUNT),
            &[("action", "revoke"), ("grant", &grant), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.html);
    assert_eq!(
        res.location.as_deref(),
        Some(s.app.url("/oauth/2.1/account?notice=revoked").as_str())
    );
    let page = b.get(res.location.as_deref().unwrap()).await;
    assert!(page.html.contains("Access revoked"), "{}", page.html);
    assert!(grant_ids_on(&page.html).is_empty(), "{}", page.html);
    assert!(page.html.contains("No apps have access"), "{}", page.html);

    // The grant's tokens are dead: introspection says inactive, the refresh token is refused.
    assert!(!s.active(&at).await, "access token inactive after revoke");
    let (status, body) = s.refresh(&rt).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    // The other grant of the same client and resource went too: its code no longer redeems.
    let q: BTreeMap<String, String> = url::Url::parse(&again.location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let (status, body) = s
        .app
        .post_form(
            "/oauth/2.1/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &q["code"]),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
            Some((&s.client_id, &s.client_secret)),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    // Stored: both grants revoked, no token left, consent and index forgotten.
    let grants: Vec<_> = s
        .items("GRANT#")
        .await
        .into_iter()
        .filter(|i| i["sk"].as_s().unwrap() == "GRANT")
        .collect();
    assert_eq!(grants.len(), 2);
    assert!(grants.iter().all(|g| g["status"].as_s().unwrap() == "revoked"));
    assert!(s
        .items("GRANT#")
        .await
        .iter()
        .all(|i| i["sk"].as_s().unwrap() == "GRANT"));
    assert!(s.items("CONSENT#").await.is_empty(), "consent forgotten");
    assert!(s.items("USERGRANT#").await.is_empty(), "index items gone");

    // The same client must ask again.
    let third = s.authorize(&mut b, "alice@example.com").await;
    assert!(third.asked, "the consent page is shown again after revoking");
}

#[tokio::test]
async fn account_revoke_without_or_with_a_wrong_csrf_token_is_403_and_changes_nothing() {
    let s = setup().await;
    let mut b = Browser::new();
    let (at, _) = s.alice_connects(&mut b).await;
    let page = b.get(&s.app.url(ACCOUNT)).await;
    let grant = grant_ids_on(&page.html).remove(0);
    // Another session's token is as wrong as a made-up one.
    let mut other = Browser::new();
    let other_page = sign_in(&s.app, &mut other, "mallory@example.com").await;
    let foreign_csrf = hidden(&other_page.html, "csrf");
    let before = s.app.all_items().await.len();
    for form in [
        vec![("action", "revoke"), ("grant", grant.as_str())],
        vec![("action", "revoke"), ("grant", grant.as_str()), ("csrf", "")],
        vec![
            ("action", "revoke"),
            ("grant", grant.as_str()),
            ("csrf", foreign_csrf.as_str()),
        ],
        vec![("action", "signout"), ("csrf", foreign_csrf.as_str())],
    ] {
        let res = b.post(&s.app.url(ACCOUNT), &form).await;
        assert_eq!(res.status, 403, "{form:?}: {}", res.html);
        assert!(res.html.contains("Nothing was changed"), "{}", res.html);
    }
    assert_eq!(s.app.all_items().await.len(), before, "nothing stored or deleted");
    assert!(s.active(&at).await);
    assert_eq!(s.items("CONSENT#local:alice@example.com").await.len(), 1);
    let page = b.get(&s.app.url(ACCOUNT)).await;
    assert_eq!(page.status, 200, "still signed in");
    assert_eq!(grant_ids_on(&page.html), [grant]);
}

#[tokio::test]
async fn account_revoke_of_another_users_grant_is_404_and_changes_nothing() {
    let s = setup().await;
    let mut alice = Browser::new();
    let (at, rt) = s.alice_connects(&mut alice).await;
    let alice_grant = grant_ids_on(&alice.get(&s.app.url(ACCOUNT)).await.html).remove(0);
    let mut bob = Browser::new();
    let page = sign_in(&s.app, &mut bob, "bob@example.com").await;
    let csrf = hidden(&page.html, "csrf");
    let before = s.app.all_items().await.len();
    for grant in [alice_grant.as_str(), "no-such-grant"] {
        let res = bob
            .post(
                &s.app.url(ACCOUNT),
                &[("action", "revoke"), ("grant", grant), ("csrf", &csrf)],
            )
            .await;
        assert_eq!(res.status, 404, "{}", res.html);
        assert!(res.html.contains("Nothing was changed"), "{}", res.html);
    }
    assert_eq!(s.app.all_items().await.len(), before);
    assert!(s.active(&at).await);
    assert_eq!(s.refresh(&rt).await.0, 200, "Alice's grant still works");
}

#[tokio::test]
async fn account_sign_out_ends_the_browser_session() {
    let s = setup().await;
    let mut b = Browser::new();
    let page = sign_in(&s.app, &mut b, "dave@example.com").await;
    let old_cookie = b.cookie_header();
    assert_eq!(s.items("SESSION#").await.len(), 1);
    let res = b
        .post(
            &s.app.url(ACCOUNT),
            &[("action", "signout"), ("csrf", &hidden(&page.html, "csrf"))],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.html);
    assert_eq!(
        res.location.as_deref(),
        Some(s.app.url("/oauth/2.1/account?signed_out=1").as_str())
    );
    assert!(b.session().is_none(), "the cookie is cleared");
    assert!(s.items("SESSION#").await.is_empty(), "the session item is deleted");
    let page = b.get(res.location.as_deref().unwrap()).await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("You are signed out"), "{}", page.html);
    // The old cookie no longer signs anyone in.
    let replay = b
        .http
        .get(s.app.url(ACCOUNT))
        .header("cookie", old_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status().as_u16(), 303);
    assert!(replay.headers()["location"]
        .to_str()
        .unwrap()
        .contains("/oauth/2.1/callback?request=account"));
}

/// Issue 12 item 2: `latchkey grant revoke` (which calls `authz::account::revoke_grants`) forgets
/// the remembered consent, so the same client asks again.
#[tokio::test]
async fn cli_grant_revoke_forgets_the_remembered_consent() {
    let s = setup().await;
    let mut b = Browser::new();
    let (at, _) = s.alice_connects(&mut b).await;
    let state = &s.app.server.state;
    let now = state.clock.now();
    // What `latchkey grant revoke --user local:alice@example.com` does.
    let grants: Vec<_> = state
        .store
        .list_grants(Some("local:alice@example.com"), now)
        .await
        .unwrap()
        .into_iter()
        .map(|(g, _)| g)
        .collect();
    assert_eq!(grants.len(), 1);
    latchkey::authz::account::revoke_grants(&state.store, &grants, now)
        .await
        .unwrap();
    assert!(!s.active(&at).await);
    assert!(s.items("CONSENT#").await.is_empty());
    assert!(s.authorize(&mut b, "alice@example.com").await.asked, "asked again");
}
