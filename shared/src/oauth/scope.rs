//! OAuth scopes (RFC 6749 §3.3): space-delimited, case-sensitive tokens of printable ASCII.

/// `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )` (RFC 6749 §3.3).
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// Parse a `scope` string into its tokens, rejecting malformed or duplicate tokens.
pub fn parse(raw: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for tok in raw.split(' ') {
        if tok.is_empty() {
            return Err("scope must be scope tokens separated by single spaces".into());
        }
        if !is_scope_token(tok) {
            return Err("scope contains a character outside RFC 6749 §3.3 scope-token".into());
        }
        if !out.iter().any(|t| t == tok) {
            out.push(tok.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6749_3_3_scope_tokens() {
        assert_eq!(parse("openid email").unwrap(), vec!["openid", "email"]);
        assert_eq!(parse("a a").unwrap(), vec!["a"]);
        assert!(parse("").is_err());
        assert!(parse("a  b").is_err());
        assert!(parse("a\"b").is_err());
        assert!(parse("a\\b").is_err());
        assert!(parse("é").is_err());
    }
}
