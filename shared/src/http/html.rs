//! Small server-rendered pages (error, local sign-in, consent): escaped text, no scripts, framing
//! forbidden, readable on a laptop and a phone.

use http::{HeaderValue, StatusCode};
use lambda_http::{Body, Response};

/// Escape text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f5f6f8;color:#1b1f24;margin:0;padding:24px 16px}\
main{max-width:440px;margin:8vh auto;background:#fff;border-radius:12px;box-shadow:0 1px 4px rgba(0,0,0,.12);padding:28px}\
h1{font-size:1.3rem;margin:0 0 12px;overflow-wrap:anywhere}.resource{font-size:1.05rem;font-weight:600;overflow-wrap:anywhere;margin:0 0 14px}p{line-height:1.5}.muted{color:#57606a;font-size:.92rem}\
ul{padding-left:20px}li{margin:6px 0}code{background:#eef0f3;border-radius:4px;padding:1px 5px;white-space:nowrap}code.id{white-space:normal;overflow-wrap:anywhere}\
label{display:block;font-weight:600;margin:16px 0 6px}input[type=email]{width:100%;box-sizing:border-box;padding:10px;font-size:1rem;border:1px solid #c9ced6;border-radius:8px}\
.row{display:flex;gap:12px;margin-top:22px}button{flex:1;padding:12px;font-size:1rem;border-radius:8px;border:1px solid #c9ced6;background:#fff;cursor:pointer}\
button.primary{background:#1f6feb;border-color:#1f6feb;color:#fff}.badge{display:inline-block;background:#fff4d6;color:#7a5200;border-radius:6px;padding:2px 8px;font-size:.8rem;font-weight:600;vertical-align:middle}\
.badge.ok{background:#dafbe1;color:#116329}.who.warn{background:#fff8e6;border-left:3px solid #d4a72c;padding:8px 12px;border-radius:4px}\
table.facts{border-collapse:collapse;width:100%}table.facts td{padding:4px 0;vertical-align:top;overflow-wrap:anywhere}table.facts td:first-child{color:#57606a;padding-right:12px;white-space:nowrap}pre{background:#eef0f3;border-radius:6px;padding:10px;white-space:pre-wrap;overflow-wrap:anywhere}\
.card{border:1px solid #d8dce2;border-radius:10px;padding:4px 16px 16px;margin:16px 0}.card h2{font-size:1.05rem;margin:12px 0 4px;overflow-wrap:anywhere}.card .row{margin-top:12px}\
button.danger{color:#b42318;border-color:#e4a29b}.notice{background:#e8f5ec;color:#14532d;border-radius:8px;padding:10px 12px}a{color:#1f6feb}";

/// A full page with security headers: no framing, no scripts, no caching.
pub fn page(status: StatusCode, title: &str, body_html: &str) -> Response<Body> {
    page_with_form_target(status, title, body_html, None)
}

/// The CSP source that lets a form's post end in a redirect to `redirect_uri`: its origin for
/// http(s), its scheme for a native app's private-use scheme. Browsers apply `form-action` to the
/// redirects after a form post too, so without it the consent decision could not reach the client.
pub fn form_target_source(redirect_uri: &str) -> Option<String> {
    let url = url::Url::parse(redirect_uri).ok()?;
    match url.scheme() {
        "http" | "https" => {
            let origin = url.origin().ascii_serialization();
            (origin != "null").then_some(origin)
        }
        scheme
            if scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')) =>
        {
            Some(format!("{scheme}:"))
        }
        _ => None,
    }
}

/// A page whose form may end in a redirect to `form_target` (a CSP source from
/// `form_target_source`).
pub fn page_with_form_target(
    status: StatusCode,
    title: &str,
    body_html: &str,
    form_target: Option<&str>,
) -> Response<Body> {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body><main>{body_html}</main></body></html>",
        escape(title)
    );
    let mut res = Response::new(Body::Text(html));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let form_action = match form_target {
        Some(t) => format!("'self' {t}"),
        None => "'self'".to_string(),
    };
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    h.insert(
        "content-security-policy",
        HeaderValue::from_str(&csp).unwrap_or_else(|_| {
            HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
        }),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    res
}

/// An error page (used before a redirect URI is validated: never redirect then).
pub fn error_page(status: StatusCode, message: &str) -> Response<Body> {
    page(
        status,
        "Sign-in error",
        &format!("<h1>This sign-in request can't continue</h1><p>{}</p><p class=\"muted\">Go back to the app you came from and try again.</p>", escape(message)),
    )
}

/// A 303 redirect.
pub fn redirect(location: &str) -> Response<Body> {
    let mut res = Response::new(Body::Empty);
    *res.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(http::header::LOCATION, v);
    }
    res.headers_mut()
        .insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[cfg(test)]
mod tests {
    #[test]
    fn form_targets_are_origins_or_schemes() {
        use super::form_target_source as f;
        assert_eq!(
            f("http://127.0.0.1:7777/callback?x=1").as_deref(),
            Some("http://127.0.0.1:7777")
        );
        assert_eq!(
            f("https://app.example.com/cb").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            f("cursor://anysphere.cursor-retrieval/oauth").as_deref(),
            Some("cursor:")
        );
        assert_eq!(
            f("com.example.app:/oauth2redirect").as_deref(),
            Some("com.example.app:")
        );
        assert_eq!(f("not a uri"), None);
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::escape("<a href=\"x\">'&"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
    }
}
