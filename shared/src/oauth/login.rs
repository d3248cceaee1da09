//! ID token validation for the end-user sign-in at an upstream OpenID Connect provider
//! (`LATCHKEY_LOGIN_ISSUER`; OpenID Connect Core §3.1.3.7). Pure: the flow around it (discovery, the
//! authorization code flow with PKCE, state and nonce) is `authz::signin::upstream`. The ID token
//! comes straight from the provider's token endpoint over TLS, so its issuer is authenticated by TLS
//! (§3.1.3.7 step 6) and its claims are checked here: `iss`, `aud`, `exp`, `nonce`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

/// Who signed in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// `iss` + `sub`, stable per user.
    pub sub: String,
    /// The email if the provider gave one, else the subject.
    pub username: String,
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: serde_json::Value,
    exp: i64,
    nonce: Option<String>,
    email: Option<String>,
    email_verified: Option<serde_json::Value>,
    azp: Option<String>,
}

/// Validate an ID token's claims; the error is safe to log (no token content).
pub fn validate_id_token(
    id_token: &str,
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now: i64,
) -> Result<Identity, &'static str> {
    let mut parts = id_token.split('.');
    let (Some(_header), Some(payload), Some(_sig), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the ID token is not a JWT");
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| "the ID token payload is not base64url")?;
    let claims: Claims = serde_json::from_slice(&bytes).map_err(|_| "the ID token claims are malformed")?;
    if claims.iss.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err("the ID token was issued by another issuer");
    }
    let aud_ok = match &claims.aud {
        serde_json::Value::String(a) => a == client_id,
        serde_json::Value::Array(list) => list.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    if !aud_ok {
        return Err("the ID token is for another audience");
    }
    // OpenID Connect Core §2: with several audiences, the authorized party must be us.
    if claims.aud.is_array() && claims.azp.as_deref().is_some_and(|azp| azp != client_id) {
        return Err("the ID token was issued to another party");
    }
    if claims.exp <= now {
        return Err("the ID token has expired");
    }
    if claims.nonce.as_deref() != Some(nonce) {
        return Err("the ID token nonce does not match");
    }
    if claims.sub.is_empty() || claims.sub.len() > 255 {
        return Err("the ID token subject is malformed");
    }
    // Only a verified email names the user; otherwise the subject does.
    let verified = matches!(claims.email_verified, Some(serde_json::Value::Bool(true)))
        || matches!(&claims.email_verified, Some(serde_json::Value::String(v)) if v == "true");
    let username = claims
        .email
        .filter(|e| verified && e.len() <= 254 && !e.chars().any(char::is_control))
        .unwrap_or_else(|| claims.sub.clone());
    Ok(Identity {
        sub: format!("{}|{}", claims.iss.trim_end_matches('/'), claims.sub),
        username,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jwt(claims: serde_json::Value) -> String {
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let p = URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{h}.{p}.c2ln")
    }

    fn good() -> serde_json::Value {
        json!({"iss": "https://idp.example", "sub": "123", "aud": "lk", "exp": 1000, "nonce": "n1", "email": "a@example.com", "email_verified": true})
    }

    #[test]
    fn oidc_core_3_1_3_7_claims_are_checked() {
        let id = validate_id_token(&jwt(good()), "https://idp.example", "lk", "n1", 999).unwrap();
        assert_eq!(id.sub, "https://idp.example|123");
        assert_eq!(id.username, "a@example.com");
        let mut aud_list = good();
        aud_list["aud"] = json!(["other", "lk"]);
        assert!(validate_id_token(&jwt(aud_list), "https://idp.example", "lk", "n1", 999).is_ok());
        let check = |patch: (&str, serde_json::Value)| {
            let mut c = good();
            c[patch.0] = patch.1;
            validate_id_token(&jwt(c), "https://idp.example", "lk", "n1", 999).unwrap_err()
        };
        assert_eq!(
            check(("iss", json!("https://evil.example"))),
            "the ID token was issued by another issuer"
        );
        assert_eq!(check(("aud", json!("other"))), "the ID token is for another audience");
        assert_eq!(check(("exp", json!(999))), "the ID token has expired");
        assert_eq!(check(("nonce", json!("n2"))), "the ID token nonce does not match");
        assert!(validate_id_token("not-a-jwt", "https://idp.example", "lk", "n1", 0).is_err());
        let mut unverified = good();
        unverified["email_verified"] = json!(false);
        let id = validate_id_token(&jwt(unverified), "https://idp.example", "lk", "n1", 999).unwrap();
        assert_eq!(id.username, "123", "an unverified email does not name the user");
        let mut other_azp = good();
        other_azp["aud"] = json!(["lk", "x"]);
        other_azp["azp"] = json!("x");
        assert!(validate_id_token(&jwt(other_azp), "https://idp.example", "lk", "n1", 999).is_err());
        assert!(validate_id_token("a.!!!.c", "https://idp.example", "lk", "n1", 0).is_err());
    }
}
