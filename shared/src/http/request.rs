//! Strict request parsing: bodies are capped, duplicate parameters and non-UTF-8 are refused with a
//! clear message, JSON objects with repeated keys are refused.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::StatusCode;
use lambda_http::Request;
use percent_encoding::percent_decode_str;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Cap on form and JSON request bodies: 64 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A request we refuse before any domain logic: status and a public description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadRequest {
    pub status: StatusCode,
    pub message: String,
}

impl BadRequest {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        BadRequest {
            status,
            message: message.into(),
        }
    }
}

/// The body's bytes, refused (413) past `MAX_BODY_BYTES`.
pub fn body(req: &Request) -> Result<&[u8], BadRequest> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(BadRequest::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than {MAX_BODY_BYTES} bytes"),
        ));
    }
    Ok(bytes)
}

/// Check the media type of the body (parameters such as `charset=utf-8` allowed); 415 otherwise.
pub fn require_content_type(req: &Request, expected: &str) -> Result<(), BadRequest> {
    single_header(req, http::header::CONTENT_TYPE)?;
    let got = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    if got.as_deref() == Some(expected) {
        Ok(())
    } else {
        Err(BadRequest::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type must be {expected}"),
        ))
    }
}

/// Refuse a request that repeats a header which must appear once (400).
pub fn single_header(req: &Request, name: http::header::HeaderName) -> Result<(), BadRequest> {
    if req.headers().get_all(&name).iter().count() > 1 {
        return Err(BadRequest::new(
            StatusCode::BAD_REQUEST,
            format!("the {name} header must appear at most once"),
        ));
    }
    Ok(())
}

/// The public base URL for this request: the configured one, else API Gateway's domain name from the
/// request context (never the `Host` header, which the caller controls).
pub fn public_base(config: &crate::config::Config, req: &Request) -> String {
    use lambda_http::request::RequestContext;
    use lambda_http::RequestExt;
    let domain = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.domain_name.as_deref(),
        _ => None,
    };
    config.base_url(domain)
}

/// The request path exactly as the client sent it. In Lambda, `lambda_http` rebuilds `uri()` through
/// a URL parser that resolves `.`/`..` and `%2e` segments, so the raw path from the event is used;
/// locally (no event) the URI's path is already raw.
pub fn raw_path(req: &Request) -> &str {
    use lambda_http::RequestExt;
    match req.raw_http_path() {
        "" => req.uri().path(),
        raw => raw,
    }
}

/// Form or query parameters, each name at most once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// The parameter's value, if present (possibly empty).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A parameter that must be present and non-empty.
    pub fn require(&self, name: &str) -> Result<&str, String> {
        match self.get(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(format!("missing required parameter \"{name}\"")),
        }
    }
}

fn decode_component(raw: &str) -> Result<String, String> {
    let plus = raw.replace('+', " ");
    percent_decode_str(&plus)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| "parameters must be UTF-8".to_string())
}

/// Parse `application/x-www-form-urlencoded` (a body or a query string): repeated names refused
/// (RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once").
pub fn parse_params(raw: &[u8]) -> Result<Params, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "parameters must be UTF-8".to_string())?;
    let mut out = BTreeMap::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = decode_component(k)?;
        let v = decode_component(v)?;
        if out.insert(k.clone(), v).is_some() {
            return Err(format!("parameter \"{k}\" is repeated"));
        }
    }
    Ok(Params(out))
}

/// The query string of a request.
pub fn query(req: &Request) -> Result<Params, String> {
    parse_params(req.uri().query().unwrap_or("").as_bytes())
}

/// A form body (Content-Type checked, size capped).
pub fn form(req: &Request) -> Result<Params, BadRequest> {
    require_content_type(req, "application/x-www-form-urlencoded")?;
    parse_params(body(req)?).map_err(|m| BadRequest::new(StatusCode::BAD_REQUEST, m))
}

/// A JSON object body (Content-Type checked, size capped, repeated keys refused at any depth).
pub fn json_object(req: &Request) -> Result<Map<String, Value>, BadRequest> {
    require_content_type(req, "application/json")?;
    let bytes = body(req)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(BadRequest::new(
            StatusCode::BAD_REQUEST,
            "request body is empty; expected a JSON object",
        ));
    }
    match parse_strict_json(bytes).map_err(|m| BadRequest::new(StatusCode::BAD_REQUEST, m))? {
        Value::Object(map) => Ok(map),
        _ => Err(BadRequest::new(
            StatusCode::BAD_REQUEST,
            "request body must be a JSON object",
        )),
    }
}

/// Parse JSON, refusing an object that repeats a key (serde_json would silently keep the last one).
pub fn parse_strict_json(bytes: &[u8]) -> Result<Value, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue::deserialize_from(&mut de).map_err(|e| {
        let msg = e.to_string();
        if msg.starts_with("duplicate key") {
            let quoted = msg.split(" at line").next().unwrap_or("duplicate key");
            quoted.chars().filter(|c| !c.is_control()).take(80).collect()
        } else if std::str::from_utf8(bytes).is_err() {
            "request body is not UTF-8".to_string()
        } else {
            "request body is not valid JSON".to_string()
        }
    })?;
    de.end()
        .map_err(|_| "request body has trailing data after the JSON value".to_string())?;
    Ok(value)
}

struct StrictValue(Value);

impl StrictValue {
    fn deserialize_from<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        <StrictValue as de::Deserialize>::deserialize(d).map(|v| v.0)
    }
}

impl<'de> de::Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = StrictValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrictValue, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(StrictValue(Value::Array(out)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrictValue, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key \"{key}\"")));
            }
            let StrictValue(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(StrictValue(Value::Object(out)))
    }
}

/// HTTP Basic credentials (RFC 6749 §2.3.1: id and secret form-urlencoded, then base64).
/// `Ok(None)` when there is no `Authorization: Basic` header.
pub fn basic_auth(req: &Request) -> Result<Option<(String, String)>, String> {
    single_header(req, http::header::AUTHORIZATION).map_err(|e| e.message)?;
    let Some(value) = req.headers().get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| "Authorization header is not ASCII".to_string())?;
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD
        .decode(rest.trim())
        .map_err(|_| "Basic credentials are not base64".to_string())?;
    let text = String::from_utf8(decoded).map_err(|_| "Basic credentials are not UTF-8".to_string())?;
    let (id, secret) = text
        .split_once(':')
        .ok_or_else(|| "Basic credentials must be id:secret".to_string())?;
    Ok(Some((decode_component(id)?, decode_component(secret)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::Body;

    fn req(ct: &str, body: &str) -> Request {
        http::Request::builder()
            .method("POST")
            .uri("/x?a=1&b=%20")
            .header("content-type", ct)
            .body(Body::Text(body.into()))
            .unwrap()
    }

    #[test]
    fn rfc6749_3_1_repeated_parameters_refused() {
        assert!(parse_params(b"a=1&a=2").unwrap_err().contains("repeated"));
        let p = parse_params(b"a=x+y&b=%C3%A9&c").unwrap();
        assert_eq!(p.get("a"), Some("x y"));
        assert_eq!(p.get("b"), Some("é"));
        assert_eq!(p.get("c"), Some(""));
        assert!(p.require("c").is_err());
        assert!(parse_params(b"a=%FF").unwrap_err().contains("UTF-8"));
        assert!(parse_params(&[0x61, 0x3d, 0xff]).is_err());
        assert_eq!(query(&req("x", "")).unwrap().get("b"), Some(" "));
    }

    #[test]
    fn json_must_be_a_strict_object_of_the_right_type_and_size() {
        assert!(json_object(&req("application/json; charset=utf-8", r#"{"a":{"b":1}}"#)).is_ok());
        let e = json_object(&req("application/json", r#"{"a":1,"a":2}"#)).unwrap_err();
        assert_eq!(e.message, "duplicate key \"a\"");
        assert!(json_object(&req("application/json", r#"{"x":{"a":1,"a":2}}"#)).is_err());
        assert_eq!(
            json_object(&req("application/json", "[1]")).unwrap_err().message,
            "request body must be a JSON object"
        );
        assert_eq!(
            json_object(&req("application/json", "{")).unwrap_err().message,
            "request body is not valid JSON"
        );
        assert!(json_object(&req("application/json", "{} x")).is_err());
        assert!(json_object(&req("application/json", " "))
            .unwrap_err()
            .message
            .contains("empty"));
        assert_eq!(json_object(&req("text/plain", "{}")).unwrap_err().status, 415);
        let mut twice = req("application/json", "{}");
        twice
            .headers_mut()
            .append("content-type", "application/json".parse().unwrap());
        assert_eq!(json_object(&twice).unwrap_err().status, 400);
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_BODY_BYTES));
        assert_eq!(json_object(&req("application/json", &big)).unwrap_err().status, 413);
    }

    #[test]
    fn rfc6749_2_3_1_basic_credentials_are_form_decoded() {
        let mut r = req("x", "");
        let enc = STANDARD.encode("my%20id:p%3Ass");
        r.headers_mut()
            .insert("authorization", format!("Basic {enc}").parse().unwrap());
        assert_eq!(basic_auth(&r).unwrap(), Some(("my id".into(), "p:ss".into())));
        r.headers_mut().insert("authorization", "Basic !!!".parse().unwrap());
        assert!(basic_auth(&r).is_err());
        r.headers_mut().insert("authorization", "Bearer abc".parse().unwrap());
        assert_eq!(basic_auth(&r).unwrap(), None);
    }
}
