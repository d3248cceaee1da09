//! Our cookies: the browser session (`lk_session`) and the sign-in binding (`lk_login`). HttpOnly,
//! `SameSite=Lax`, `Path=/`; on https `Secure` and `__Host-` prefixed (RFC 6265bis §4.1.3.2), so
//! no sibling host can set them.

use http::HeaderValue;
use lambda_http::{Body, Request, Response};

/// The browser session cookie: the id of a signed-in session.
pub const SESSION_COOKIE: &str = "lk_session";
/// The sign-in binding cookie: ties an upstream sign-in to the browser that started it.
pub const LOGIN_COOKIE: &str = "lk_login";
/// Longest cookie value we accept.
const MAX_VALUE: usize = 128;

/// A cookie's name: `__Host-` prefixed (and `Secure`) on https.
pub fn cookie_name(base: &str, name: &str) -> String {
    if base.starts_with("https://") {
        format!("__Host-{name}")
    } else {
        name.to_string()
    }
}

/// A cookie of ours from the `Cookie` header, if any (empty or over-long values are absent).
pub fn read_cookie(req: &Request, base: &str, name: &str) -> Option<String> {
    let name = cookie_name(base, name);
    req.headers()
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name.as_str())
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.len() <= MAX_VALUE)
}

/// `Set-Cookie` for one of ours (`max_age` 0 deletes it).
pub fn set_cookie(res: &mut Response<Body>, base: &str, name: &str, value: &str, max_age: i64) {
    let secure = if base.starts_with("https://") { "; Secure" } else { "" };
    let cookie = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        cookie_name(base, name)
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(http::header::SET_COOKIE, v);
    }
}

/// The browser session id from the `Cookie` header, if any.
pub fn session_cookie(req: &Request, base: &str) -> Option<String> {
    read_cookie(req, base, SESSION_COOKIE)
}

/// `Set-Cookie` for a new browser session that lasts `max_age` seconds.
pub fn set_session_cookie(res: &mut Response<Body>, base: &str, session_id: &str, max_age: i64) {
    set_cookie(res, base, SESSION_COOKIE, session_id, max_age);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(value: &str) -> Request {
        http::Request::builder()
            .uri("/")
            .header("cookie", value)
            .body(Body::Empty)
            .unwrap()
    }

    #[test]
    fn rfc6265bis_host_prefix_and_secure_on_https() {
        assert_eq!(cookie_name("https://a.example", "lk_session"), "__Host-lk_session");
        assert_eq!(cookie_name("http://127.0.0.1:8080", "lk_session"), "lk_session");
        let mut res = Response::new(Body::Empty);
        set_session_cookie(&mut res, "https://a.example", "sid", 60);
        let v = res.headers()[http::header::SET_COOKIE].to_str().unwrap();
        assert_eq!(
            v,
            "__Host-lk_session=sid; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let req = with_cookie("x=1; lk_session=abc; lk_sessionx=no");
        assert_eq!(session_cookie(&req, "http://l"), Some("abc".into()));
        assert_eq!(session_cookie(&req, "https://l"), None, "https wants the __Host- name");
        assert_eq!(read_cookie(&with_cookie("lk_login="), "http://l", LOGIN_COOKIE), None);
        let long = format!("lk_login={}", "x".repeat(MAX_VALUE + 1));
        assert_eq!(read_cookie(&with_cookie(&long), "http://l", LOGIN_COOKIE), None);
    }
}
