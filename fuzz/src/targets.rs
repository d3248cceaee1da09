//! The fuzz targets: one function per request parser or URL check, each taking arbitrary bytes.
//! Each asserts that nothing panics and, where one applies, a round-trip or differential property.
//!
//! Shared by the libFuzzer binaries (`fuzz/fuzz_targets/*.rs`, nightly flags via `cargo fuzz`) and
//! by the stable, bounded runner (`tests/api/fuzz.rs`, `scripts/fuzz --stable`), which includes this
//! file with `#[path]`: it may use only `latchkey` and the crates both of those depend on.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use lambda_http::{Body, Request};
use latchkey::crypto::envelope::{context, KeyWrapper, Keyring};
use latchkey::crypto::local::LocalWrapper;
use latchkey::domain::redirect::{RedirectKind, RedirectPolicy, RedirectUri};
use latchkey::http::{cookie, request};
use latchkey::net::{self, Refused};
use latchkey::tools::discovery;
use latchkey::vault::path::upstream_url;
use serde_json::Value;
use url::Url;

/// A fuzz target: arbitrary bytes in, a panic on a broken property.
pub type Target = fn(&[u8]);

/// Every target, by name (the libFuzzer binary of the same name calls it).
pub const TARGETS: &[(&str, Target)] = &[
    ("form", form),
    ("json", json),
    ("basic_auth", basic_auth),
    ("cookie", cookie),
    ("redirect_uri", redirect_uri),
    ("proxy_path", proxy_path),
    ("address_guard", address_guard),
    ("www_authenticate", www_authenticate),
    ("resource_metadata", resource_metadata),
    ("envelope", envelope),
];

/// Split the input into `n` fields at 0x00 bytes (missing fields are empty).
fn fields(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = data.splitn(n, |b| *b == 0).collect();
    out.resize(n, &[]);
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn post(content_type: &str, body: &[u8]) -> Request {
    http::Request::builder()
        .method("POST")
        .uri("/x")
        .header("content-type", content_type)
        .body(Body::Binary(body.to_vec()))
        .unwrap()
}

/// `http::request::parse_params` and `form`: no panic; agrees with `url::form_urlencoded` (the
/// reference decoder) on every pair; a repeated name is always refused; what it accepts re-encodes
/// and parses back to the same parameters.
pub fn form(data: &[u8]) {
    let ours = request::parse_params(data);
    let _ = request::form(&post("application/x-www-form-urlencoded", data));
    let reference: Vec<(String, String)> = url::form_urlencoded::parse(data).into_owned().collect();
    let mut names: Vec<&str> = reference.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    let repeated = names.windows(2).any(|w| w[0] == w[1]);
    match ours {
        Ok(p) => {
            assert!(!repeated, "a repeated parameter was accepted");
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &reference {
                assert_eq!(p.get(k), Some(v.as_str()), "differs from form_urlencoded for {k:?}");
                ser.append_pair(k, v);
            }
            let again = request::parse_params(ser.finish().as_bytes()).expect("re-encoded form parses");
            assert_eq!(again, p, "form round trip");
        }
        Err(msg) => {
            assert!(!msg.is_empty());
            assert!(
                repeated || std::str::from_utf8(data).is_err() || msg.contains("UTF-8"),
                "{msg}"
            );
        }
    }
}

/// JSON values equal up to the last bits of a float (serde_json, without its `float_roundtrip`
/// feature, may read a printed f64 back one ULP away).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            x == y || (x - y).abs() <= x.abs().max(y.abs()) * 1e-15
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// `http::request::parse_strict_json` and `json_object`: no panic; accepts only what serde_json
/// accepts, with the same value; refuses more only for a repeated key; what it accepts serialises
/// and parses back to the same value.
pub fn json(data: &[u8]) {
    let _ = request::json_object(&post("application/json", data));
    let reference = serde_json::from_slice::<Value>(data);
    match request::parse_strict_json(data) {
        Ok(v) => {
            assert_eq!(
                reference.as_ref().ok(),
                Some(&v),
                "strict JSON accepted what serde_json refuses"
            );
            let again = request::parse_strict_json(v.to_string().as_bytes()).expect("re-serialised JSON parses");
            assert!(same_json(&again, &v), "JSON round trip: {v} became {again}");
        }
        Err(msg) => {
            assert!(
                !msg.is_empty() && msg.chars().count() <= 80 && !msg.chars().any(char::is_control),
                "{msg:?}"
            );
            if reference.is_ok() {
                assert!(
                    msg.starts_with("duplicate key"),
                    "strict JSON refused valid JSON: {msg}"
                );
            }
        }
    }
}

fn with_header(name: &str, value: &[u8]) -> Option<Request> {
    let v = http::HeaderValue::from_bytes(value).ok()?;
    Some(
        http::Request::builder()
            .uri("/x")
            .header(name, v)
            .body(Body::Empty)
            .unwrap(),
    )
}

/// `http::request::basic_auth` (client credentials, RFC 6749 §2.3.1): no panic on any header; any
/// id and secret, form-encoded then base64-encoded as the RFC says, parse back to themselves.
pub fn basic_auth(data: &[u8]) {
    if let Some(req) = with_header("authorization", data) {
        let _ = request::basic_auth(&req);
    }
    let f = fields(data, 2);
    let (id, secret) = (text(f[0]), text(f[1]));
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let header = format!("Basic {}", STANDARD.encode(format!("{}:{}", enc(&id), enc(&secret))));
    let req = with_header("authorization", header.as_bytes()).expect("base64 is a valid header value");
    assert_eq!(request::basic_auth(&req), Ok(Some((id, secret))), "Basic round trip");
}

/// `http::cookie::read_cookie`: no panic on any `Cookie` header; a value it returns is non-empty,
/// at most 128 bytes and holds no `;`; a cookie we set reads back as its value.
pub fn cookie(data: &[u8]) {
    if let Some(req) = with_header("cookie", data) {
        for base in ["http://127.0.0.1:8080", "https://auth.example.com"] {
            for name in [cookie::SESSION_COOKIE, cookie::LOGIN_COOKIE] {
                if let Some(v) = cookie::read_cookie(&req, base, name) {
                    assert!(!v.is_empty() && v.len() <= 128 && !v.contains(';'), "{v:?}");
                }
            }
        }
    }
    // Our values are URL-safe tokens: set one, send it back as a browser would.
    let value: String = text(data)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(128)
        .collect();
    if value.is_empty() {
        return;
    }
    for base in ["http://127.0.0.1:8080", "https://auth.example.com"] {
        let mut res = lambda_http::Response::new(Body::Empty);
        cookie::set_session_cookie(&mut res, base, &value, 60);
        let set = res.headers()[http::header::SET_COOKIE].to_str().unwrap();
        let pair = set.split(';').next().unwrap();
        let req = with_header("cookie", format!("other=1; {pair}; x=y").as_bytes()).unwrap();
        assert_eq!(
            cookie::session_cookie(&req, base).as_deref(),
            Some(value.as_str()),
            "cookie round trip"
        );
    }
}

fn url_is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// `domain::redirect` (RFC 6749 §3.1.2, OAuth 2.1 §2.3.1, RFC 8252 §7): no panic; an accepted URI
/// has no fragment, user info, whitespace or control characters, `http` only on loopback, matches
/// itself, and is allowed by the default policy; exact matching holds for every non-loopback URI and
/// a loopback URI only matches another loopback URI; the policy parser never panics.
pub fn redirect_uri(data: &[u8]) {
    let f = fields(data, 2);
    let (a, b) = (text(f[0]), text(f[1]));
    let _ = RedirectPolicy::parse(&a);
    let Ok(uri) = RedirectUri::parse(&a) else { return };
    let url = Url::parse(&a).expect("an accepted redirect URI is a URL");
    assert!(url.fragment().is_none() && !a.contains('#'), "{a}");
    assert!(url.username().is_empty() && url.password().is_none(), "{a}");
    assert!(!a.chars().any(|c| c.is_control() || c.is_whitespace()), "{a:?}");
    assert!(url.scheme() != "http" || url_is_loopback(&url), "{a}");
    assert!(
        !matches!(url.scheme(), "javascript" | "data" | "file" | "vbscript"),
        "{a}"
    );
    assert!(uri.matches(&a));
    assert!(RedirectPolicy::default().allows(&uri));
    if uri.matches(&b) && a != b {
        assert_eq!(uri.kind(), RedirectKind::Loopback, "{a} matched {b}");
        let other = Url::parse(&b).expect("a loopback match is a URL");
        assert!(url_is_loopback(&other), "{a} matched non-loopback {b}");
        assert_eq!(other.scheme(), url.scheme(), "{a} matched {b}");
        assert_eq!(other.host(), url.host(), "{a} matched {b}");
        assert_eq!(other.path(), url.path(), "{a} matched {b}");
    }
}

/// `vault::path::upstream_url`: no panic, and whatever the caller sends, the URL is on the base's
/// scheme, host and port (or one of the allowed hosts), under its path, without user info.
pub fn proxy_path(data: &[u8]) {
    let f = fields(data, 3);
    let (path, query, host) = (text(f[0]), text(f[1]), text(f[2]));
    let allowed = vec!["www.googleapis.com".to_string(), "gmail.googleapis.com".to_string()];
    for base in [
        "https://www.googleapis.com/",
        "https://api.example.com/v1/",
        "http://127.0.0.1:9/api/",
    ] {
        let base = Url::parse(base).unwrap();
        for host in [None, Some(host.as_str())] {
            for query in [None, Some(query.as_str())] {
                let Ok(u) = upstream_url(&base, &allowed, host, &path, query) else {
                    continue;
                };
                let expected_host = match host {
                    Some(h) => h.to_ascii_lowercase(),
                    None => base.host_str().unwrap().to_string(),
                };
                assert_eq!(u.scheme(), base.scheme(), "{u}");
                assert_eq!(u.host_str(), Some(expected_host.as_str()), "{u} left the host");
                assert!(host.is_none() || allowed.iter().any(|a| a.eq_ignore_ascii_case(&expected_host)));
                assert_eq!(u.port_or_known_default(), base.port_or_known_default(), "{u}");
                assert!(u.path().starts_with(base.path()), "{u} left the base path");
                assert!(u.username().is_empty() && u.password().is_none(), "{u}");
                assert!(u.fragment().is_none(), "{u}");
                assert!(
                    !u.path()[base.path().len()..].split('/').any(|s| s == ".." || s == "."),
                    "{u}"
                );
            }
        }
    }
}

/// The ranges the guard's unit tests list (and DESIGN.md names): an independent table.
fn must_refuse(ip: IpAddr) -> Option<Refused> {
    let v4 = |o: [u8; 4]| -> Option<Refused> {
        match o {
            [127, ..] => Some(Refused::Loopback),
            [10, ..] | [192, 168, ..] => Some(Refused::Private),
            [172, b, ..] if (16..32).contains(&b) => Some(Refused::Private),
            [169, 254, ..] => Some(Refused::LinkLocal),
            [100, b, ..] if (64..128).contains(&b) => Some(Refused::Shared),
            [0, ..] | [224..=255, ..] => Some(Refused::Reserved),
            _ => None,
        }
    };
    match ip {
        IpAddr::V4(a) => v4(a.octets()),
        IpAddr::V6(a) => {
            let s = a.segments();
            if let Some(m) = a.to_ipv4_mapped() {
                return v4(m.octets());
            }
            if a == Ipv6Addr::LOCALHOST {
                Some(Refused::Loopback)
            } else if a == Ipv6Addr::UNSPECIFIED || s[0] >> 8 == 0xff {
                Some(Refused::Reserved)
            } else if s[0] & 0xfe00 == 0xfc00 {
                Some(Refused::Private)
            } else if s[0] & 0xffc0 == 0xfe80 {
                Some(Refused::LinkLocal)
            } else {
                None
            }
        }
    }
}

/// `net::check_ip` (the outbound address guard): no panic; refuses every address in the ranges its
/// unit tests list, with the same reason; loopback is allowed only when configured and never opens
/// another range; an IPv4 address and its IPv4-mapped IPv6 form get the same answer; an IP-literal
/// URL is judged as its address.
pub fn address_guard(data: &[u8]) {
    let ip = match data.len() {
        0..=3 => return,
        4..=15 => IpAddr::V4(Ipv4Addr::new(data[0], data[1], data[2], data[3])),
        _ => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&data[..16]);
            IpAddr::V6(Ipv6Addr::from(o))
        }
    };
    let strict = net::check_ip(ip, false);
    let relaxed = net::check_ip(ip, true);
    if let Some(why) = must_refuse(ip) {
        assert_eq!(strict, Err(why), "{ip} must be refused as {why:?}");
    }
    match strict {
        Err(Refused::Loopback) => assert_eq!(relaxed, Ok(()), "{ip}"),
        other => assert_eq!(relaxed, other, "{ip}: allowing loopback changed another answer"),
    }
    if let IpAddr::V4(v4) = ip {
        assert_eq!(
            net::check_ip(IpAddr::V6(v4.to_ipv6_mapped()), false),
            strict,
            "{ip} mapped"
        );
    }
    let literal = match ip {
        IpAddr::V4(a) => format!("https://{a}/x"),
        IpAddr::V6(a) => format!("https://[{a}]/x"),
    };
    let url = Url::parse(&literal).unwrap();
    // The URL parser may normalise an IPv4-mapped literal; judge what it parsed.
    let parsed = match url.host() {
        Some(url::Host::Ipv4(a)) => IpAddr::V4(a),
        Some(url::Host::Ipv6(a)) => IpAddr::V6(a),
        _ => unreachable!("an IP literal parses as an IP host"),
    };
    assert_eq!(
        net::check_url_host(&url, false),
        net::check_ip(parsed, false),
        "{literal}"
    );
    // Any URL string: the URL check never panics and never allows what the guard refuses.
    let raw = text(data);
    if let Ok(u) = Url::parse(&raw) {
        let _ = net::check_url_host(&u, false);
    }
    if let Ok(u) = latchkey::tools::fetch::check_url(&raw, false) {
        assert!(
            u.scheme() == "https" && u.username().is_empty() && u.fragment().is_none(),
            "{u}"
        );
        assert_eq!(net::check_url_host(&u, false), Ok(()), "{u}");
    }
}

/// `tools::discovery::bearer_params` and `challenge_scope` (RFC 6750 §3): no panic on any header;
/// a challenge built from any parameters (quoted, with escapes) parses back to them.
pub fn www_authenticate(data: &[u8]) {
    let raw = text(data);
    let _ = discovery::bearer_params(&raw);
    let _ = discovery::challenge_scope(401, std::slice::from_ref(&raw));
    let parts = fields(data, 6);
    let mut expected = Vec::new();
    let mut header = String::from("Bearer ");
    for pair in parts.chunks(2) {
        let name: String = text(pair[0])
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .take(20)
            .collect();
        if name.is_empty() {
            continue;
        }
        let value = text(pair[1]);
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
        if !expected.is_empty() {
            header.push_str(", ");
        }
        header.push_str(&format!("{name}=\"{escaped}\""));
        expected.push((name.to_ascii_lowercase(), value));
    }
    assert_eq!(discovery::bearer_params(&header), Some(expected.clone()), "{header:?}");
    let scope = expected
        .iter()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.trim().to_string())
        .filter(|s| !s.is_empty());
    assert_eq!(discovery::challenge_scope(401, &[header.clone()]), scope, "{header:?}");
    assert_eq!(discovery::challenge_scope(200, &[header]), None);
}

/// The protected resource metadata reader (RFC 9728 §2, §3.3, §7.3) and the well-known URL builders:
/// no panic; accepted metadata names a resource on the server's origin whose path contains the
/// server's; every well-known URL stays on the server's (issuer's) origin.
pub fn resource_metadata(data: &[u8]) {
    let f = fields(data, 2);
    let server_raw = text(f[0]);
    // Servers are checked before discovery; judge only what the check lets through.
    let server = latchkey::tools::fetch::check_url(&server_raw, true)
        .unwrap_or_else(|_| Url::parse("https://mcp.example.com/mcp").unwrap());
    let same_origin = |u: &Url| {
        u.scheme() == server.scheme()
            && u.host_str() == server.host_str()
            && u.port_or_known_default() == server.port_or_known_default()
    };
    for u in discovery::resource_metadata_urls(&server)
        .into_iter()
        .chain(discovery::authorization_server_metadata_urls(&server))
    {
        assert!(same_origin(&u), "{u} is not on {server}'s origin");
        assert!(u.path().contains("/.well-known/"), "{u}");
    }
    let doc: Value = match serde_json::from_slice(f[1]) {
        Ok(v) => v,
        Err(_) => serde_json::json!({"resource": text(f[1]), "authorization_servers": [server_raw]}),
    };
    let Value::Object(map) = doc else { return };
    if let Ok((servers, resource)) = discovery::read_resource_metadata(&map, &server) {
        assert!(!servers.is_empty());
        assert!(discovery::resource_covers(&resource, &server));
        let r = Url::parse(&resource).expect("a covering resource is a URL");
        assert!(same_origin(&r), "{resource} covers {server}");
        assert!(r.query().is_none() && r.fragment().is_none());
        let rp = r.path().trim_end_matches('/');
        assert!(server.path().starts_with(rp), "{resource} covers {server}");
        assert_eq!(
            discovery::choose_authorization_server(&servers, ""),
            servers.first().map(String::as_str)
        );
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().unwrap())
}

fn keyring() -> &'static Keyring {
    static K: OnceLock<Keyring> = OnceLock::new();
    K.get_or_init(|| Keyring::new(KeyWrapper::Local(LocalWrapper::from_key([7u8; 32]))))
}

/// The envelope record format (`crypto::envelope`): no panic opening any bytes, which never
/// decrypt; any plaintext seals and opens back under its context; a sealed record opens under no
/// other context, and any single changed byte or truncation makes it fail.
pub fn envelope(data: &[u8]) {
    let k = keyring();
    let ctx = context([
        ("kind", "connection"),
        ("project", "p1"),
        ("user", "u1"),
        ("provider", "google"),
    ]);
    let other = context([
        ("kind", "connection"),
        ("project", "p1"),
        ("user", "u2"),
        ("provider", "google"),
    ]);
    runtime().block_on(async {
        assert!(k.decrypt(&ctx, data).await.is_err(), "arbitrary bytes decrypted");
        let sealed = k.encrypt(&ctx, data).await.expect("seal");
        assert_eq!(
            k.decrypt(&ctx, &sealed).await.expect("open"),
            data,
            "envelope round trip"
        );
        assert!(
            k.decrypt(&other, &sealed).await.is_err(),
            "opened under another context"
        );
        if !sealed.is_empty() {
            let i = data.first().map_or(0, |b| *b as usize) % sealed.len();
            let mut tampered = sealed.clone();
            tampered[i] ^= 1 << (data.len() % 8);
            assert!(k.decrypt(&ctx, &tampered).await.is_err(), "tampered byte {i} opened");
            let cut = data.len() % sealed.len();
            assert!(
                k.decrypt(&ctx, &sealed[..cut]).await.is_err(),
                "truncated to {cut} opened"
            );
        }
    });
}
