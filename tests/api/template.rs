//! `template.yaml` routes exactly what `router.rs` serves: every function's HttpApi events (less CORS
//! preflights) equal its `Route::paths()`, and every function directory is in the template.

use std::collections::{BTreeMap, BTreeSet};

use latchkey::router::Route;

fn template_routes() -> BTreeMap<String, BTreeSet<(String, String)>> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    let mut out: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    let (mut current, mut method) = (None::<String>, None::<String>);
    for line in text.lines() {
        let t = line.trim();
        if let Some(f) = t.strip_prefix("CodeUri: functions/") {
            current = Some(f.to_string());
        } else if let Some(m) = t.strip_prefix("Method: ") {
            method = Some(m.to_string());
        } else if let Some(p) = t.strip_prefix("Path: ") {
            if let (Some(f), Some(m)) = (&current, method.take()) {
                if m != "OPTIONS" {
                    out.entry(f.clone()).or_default().insert((m, p.to_string()));
                }
            }
        }
    }
    out
}

#[test]
fn template_routes_match_the_router() {
    let routes = template_routes();
    for route in Route::ALL {
        let expected: BTreeSet<(String, String)> = route
            .paths()
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(
            routes.get(route.function()),
            Some(&expected),
            "template.yaml routes of functions/{}",
            route.function()
        );
    }
    assert_eq!(routes.len(), Route::ALL.len(), "every template function is a Route");
    let dirs: BTreeSet<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let names: BTreeSet<String> = Route::ALL
        .iter()
        .map(|r| r.function().to_string())
        .chain(latchkey::router::BACKGROUND.iter().map(|f| f.to_string()))
        .collect();
    assert_eq!(
        dirs, names,
        "functions/ holds exactly one binary per route, and the background functions"
    );
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    for f in latchkey::router::BACKGROUND {
        assert!(
            text.contains(&format!("CodeUri: functions/{f}\n")),
            "template.yaml deploys functions/{f}"
        );
    }
}

/// One IAM policy statement of a function, as far as these tests look at it.
#[derive(Debug, Default, Clone)]
struct Statement {
    sid: String,
    actions: Vec<String>,
    /// `kms:EncryptionContext:kind` values of a `StringEquals` condition.
    kinds: Vec<String>,
    /// `dynamodb:LeadingKeys` patterns of a `ForAllValues:StringLike` condition.
    leading_keys: Vec<String>,
}

/// Each function's (`functions/<name>`) policy statements and environment variable names, read line by
/// line like `template_routes` (the template's shape is fixed by `cfn-lint` in scripts/test).
fn template_policies() -> (BTreeMap<String, Vec<Statement>>, BTreeMap<String, Vec<String>>) {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    let mut policies: BTreeMap<String, Vec<Statement>> = BTreeMap::new();
    let mut env: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let (mut current, mut list, mut in_env) = (None::<String>, "", false);
    for line in text.lines() {
        let t = line.trim();
        if line.starts_with("  ") && !line.starts_with("   ") && t.ends_with(':') {
            current = None; // the next resource
        }
        if let Some(f) = t.strip_prefix("CodeUri: functions/") {
            current = Some(f.to_string());
            continue;
        }
        let Some(f) = current.clone() else { continue };
        if t == "Variables:" {
            in_env = true;
            continue;
        }
        if in_env {
            match t.split_once(':') {
                Some((name, _)) if name.starts_with("LATCHKEY_") || name.starts_with("RUST_") => {
                    env.entry(f.clone()).or_default().push(name.to_string());
                    continue;
                }
                _ => in_env = false,
            }
        }
        if let Some(sid) = t.strip_prefix("- Sid: ") {
            policies.entry(f).or_default().push(Statement {
                sid: sid.to_string(),
                ..Default::default()
            });
            list = "";
            continue;
        }
        if t == "Events:" {
            current = None;
            continue;
        }
        match t {
            "Action:" => list = "action",
            "kms:EncryptionContext:kind:" => list = "kind",
            "dynamodb:LeadingKeys:" => list = "keys",
            _ => {
                if let (Some(item), Some(st)) = (t.strip_prefix("- "), policies.get_mut(&f).and_then(|p| p.last_mut()))
                {
                    let item = item.trim_matches('"').to_string();
                    match list {
                        "action" => st.actions.push(item),
                        "kind" => st.kinds.push(item),
                        "keys" => st.leading_keys.push(item),
                        _ => {}
                    }
                } else if !t.starts_with("- ")
                    && !t.is_empty()
                    && !["Condition:", "StringEquals:", "ForAllValues:StringLike:"].contains(&t)
                {
                    list = "";
                }
            }
        }
    }
    (policies, env)
}

/// The `kms:EncryptionContext:kind` values `function` may use `action` under (union of its statements);
/// `None` if a statement grants the action with no kind condition.
fn kms_kinds(policies: &BTreeMap<String, Vec<Statement>>, function: &str, action: &str) -> Option<BTreeSet<String>> {
    let mut kinds = BTreeSet::new();
    for st in policies.get(function).into_iter().flatten() {
        if st.actions.iter().any(|a| a == action) {
            if st.kinds.is_empty() {
                return None;
            }
            kinds.extend(st.kinds.iter().cloned());
        }
    }
    Some(kinds)
}

fn set(items: &[&str]) -> Option<BTreeSet<String>> {
    Some(items.iter().map(|s| s.to_string()).collect())
}

/// Issue 12 item 7: every KMS grant is conditioned on the encryption context's `kind`
/// (`shared/src/domain/context.rs`), and each function holds only the kinds its flow seals or opens.
#[test]
fn least_privilege_kms_grants_are_conditioned_on_the_encryption_context_kind() {
    let (policies, _) = template_policies();
    for (function, statements) in &policies {
        for st in statements {
            if st.actions.iter().any(|a| a.starts_with("kms:")) {
                assert!(
                    !st.kinds.is_empty(),
                    "{function} {}: KMS without a kind condition",
                    st.sid
                );
            }
        }
    }
    let decrypt = |f: &str| kms_kinds(&policies, f, "kms:Decrypt");
    let generate = |f: &str| kms_kinds(&policies, f, "kms:GenerateDataKey");
    // The internet-facing sign-in callback opens only its own sign-in verifier.
    assert_eq!(decrypt("callback"), set(&["login"]));
    assert_eq!(generate("callback"), set(&["connection"]));
    assert_eq!(generate("authorize"), set(&["login"]));
    assert_eq!(decrypt("authorize"), set(&[]));
    // The vault callback seals the new connection but never opens one.
    assert_eq!(decrypt("identity-callback"), set(&["vault_state", "provider_secret"]));
    assert_eq!(generate("identity-callback"), set(&["connection"]));
    assert_eq!(generate("session-create"), set(&["vault_state"]));
    assert_eq!(decrypt("proxy"), set(&["connection", "provider_secret"]));
    assert_eq!(decrypt("tool-mcp"), set(&["tool_connection", "provider_secret"]));
    // Issue 14: the webhooks API seals signing secrets and opens nothing; only the deliverer opens
    // them; the health run opens and seals held tokens like the proxy.
    assert_eq!(decrypt("webhooks"), set(&[]));
    assert_eq!(generate("webhooks"), set(&["webhook"]));
    assert_eq!(decrypt("webhook-deliver"), set(&["webhook"]));
    assert_eq!(generate("webhook-deliver"), set(&[]));
    assert_eq!(
        decrypt("health"),
        set(&["connection", "tool_connection", "provider_secret"])
    );
    assert_eq!(generate("health"), set(&["connection", "tool_connection"]));
    for f in [
        "register",
        "token",
        "revoke",
        "introspect",
        "consent",
        "session-status",
        "session-confirm",
        "tool-client-metadata",
    ] {
        assert_eq!(decrypt(f), set(&[]), "{f} opens nothing");
        assert_eq!(generate(f), set(&[]), "{f} seals nothing");
    }
}

/// Issue 12 item 7: `dynamodb:LeadingKeys` confines the anonymous, internet-facing functions to their own
/// key prefixes (docs/storage-schema.md): none of them can read a vault connection, project or API key
/// except the vault callback, which writes the connection it completes.
#[test]
fn least_privilege_dynamodb_leading_keys_confine_anonymous_functions_to_their_prefixes() {
    let (policies, _) = template_policies();
    let schema = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/storage-schema.md")).unwrap();
    let keys = |f: &str| -> BTreeSet<String> {
        let statements: Vec<&Statement> = policies[f]
            .iter()
            .filter(|s| s.actions.iter().any(|a| a.starts_with("dynamodb:")))
            .collect();
        assert!(!statements.is_empty(), "{f} has a table statement");
        for st in &statements {
            assert!(
                !st.leading_keys.is_empty(),
                "{f} {}: no dynamodb:LeadingKeys condition",
                st.sid
            );
        }
        statements.iter().flat_map(|s| s.leading_keys.iter().cloned()).collect()
    };
    let confined = [
        "register",
        "authorize",
        "callback",
        "consent",
        "identity-callback",
        "tool-client-metadata",
        "account",
    ];
    for f in confined {
        for pattern in keys(f) {
            let prefix = pattern.trim_end_matches('*');
            assert!(
                schema.contains(&format!("`{prefix}")),
                "{f}: {pattern} names no key of docs/storage-schema.md"
            );
        }
    }
    assert_eq!(keys("register"), set(&["CLIENT#*", "DCR#*", "SCOPES"]).unwrap());
    assert_eq!(keys("tool-client-metadata"), set(&["TOOL#*"]).unwrap());
    assert_eq!(
        keys("callback"),
        set(&["LOGIN#*", "AUTHREQ#*", "SESSION#*", "CONN#*", "OUTBOX"]).unwrap()
    );
    for f in ["register", "authorize", "callback", "consent"] {
        for vault in ["PROJECT#*", "APIKEY#*", "VSESSION#*", "VSTATE#*", "TOOL#*", "TSTATE#*"] {
            assert!(!keys(f).contains(vault), "{f} may touch {vault}");
        }
    }
    for authz in ["CLIENT#*", "GRANT#*", "SESSION#*", "CONSENT#*", "APIKEY#*"] {
        assert!(
            !keys("identity-callback").contains(authz),
            "identity-callback may touch {authz}"
        );
    }
    // The health run (scheduled, reading a whole index): its item reads and writes are confined to
    // the holders and their providers; its one Query statement is the index's (no LeadingKeys there:
    // the index's partition is the constant "due").
    for st in policies["health"]
        .iter()
        .filter(|s| s.actions.iter().any(|a| a.starts_with("dynamodb:")))
    {
        match st.sid.as_str() {
            "DueTokens" => assert_eq!(st.actions, ["dynamodb:Query"]),
            "HeldTokens" => assert_eq!(
                st.leading_keys.iter().cloned().collect::<BTreeSet<_>>(),
                set(&["CONN#*", "TOOL#*", "PROJECT#*"]).unwrap()
            ),
            "EventOutbox" => assert_eq!(st.leading_keys, ["OUTBOX"]),
            other => panic!("health: unexpected table statement {other}"),
        }
    }
}

/// Issue 12 item 7: the login client secret is in no function's plain environment (not in `Globals`);
/// only the callback, which exchanges sign-in codes, names its SSM parameter and may read it.
#[test]
fn least_privilege_login_client_secret_reaches_only_the_callback_through_ssm() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    assert!(
        !text.contains("LATCHKEY_LOGIN_CLIENT_SECRET:"),
        "a plain secret env var"
    );
    assert!(
        !text.contains("NoEcho"),
        "no secret parameter value passes through the template"
    );
    let (policies, env) = template_policies();
    let with_param: Vec<&String> = env
        .iter()
        .filter(|(_, vars)| vars.iter().any(|v| v == "LATCHKEY_LOGIN_CLIENT_SECRET_PARAM"))
        .map(|(f, _)| f)
        .collect();
    assert_eq!(with_param, vec!["callback"]);
    let with_ssm: Vec<&String> = policies
        .iter()
        .filter(|(_, st)| st.iter().any(|s| s.actions.iter().any(|a| a.starts_with("ssm:"))))
        .map(|(f, _)| f)
        .collect();
    assert_eq!(with_ssm, vec!["callback"]);
}

/// The callback's cold start resolves the secret with one SigV4-signed `ssm:GetParameter`
/// (`WithDecryption`), here against a loopback stand-in for SSM.
#[tokio::test]
async fn least_privilege_login_client_secret_is_fetched_from_ssm_signed_sigv4() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 16384];
        let mut n = 0;
        loop {
            n += sock.read(&mut buf[n..]).await.unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    let answer = r#"{"Parameter":{"Name":"/latchkey/login-client-secret","Type":"SecureString","Value":"s3cr3t-from-ssm"}}"#;
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                        answer.len()
                    );
                    sock.write_all(reply.as_bytes()).await.unwrap();
                    return text;
                }
            }
        }
    });
    let sdk = aws_config::SdkConfig::builder()
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::from_keys("AKIDEXAMPLE", "secret", Some("session".into())),
        ))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let value = latchkey::secrets::ssm_parameter(&sdk, "/latchkey/login-client-secret", Some(&endpoint))
        .await
        .unwrap();
    assert_eq!(value, "s3cr3t-from-ssm");
    let request = server.await.unwrap().to_ascii_lowercase();
    assert!(request.starts_with("post / http/1.1"));
    assert!(request.contains("x-amz-target: amazonssm.getparameter"));
    assert!(request.contains("authorization: aws4-hmac-sha256 credential=akidexample/"));
    assert!(request.contains("/us-east-1/ssm/aws4_request"));
    assert!(request.contains("x-amz-security-token: session"));
    assert!(request.contains(r#""withdecryption":true"#));
}

/// The `Default:` of a template parameter.
fn parameter_default(text: &str, name: &str) -> String {
    let mut lines = text.lines().skip_while(|l| *l != format!("  {name}:"));
    assert!(lines.next().is_some(), "parameter {name}");
    lines
        .take_while(|l| l.starts_with("    "))
        .find_map(|l| l.trim().strip_prefix("Default: "))
        .unwrap_or_else(|| panic!("parameter {name} has a default"))
        .trim_matches('"')
        .to_string()
}

/// `key: value` lines (trimmed) of the block that follows the line `header` (trimmed), while indented deeper.
fn block(text: &str, header: &str) -> BTreeMap<String, String> {
    let mut lines = text.lines().skip_while(|l| l.trim() != header);
    let first = lines.next().unwrap_or_else(|| panic!("{header} in template.yaml"));
    let indent = first.len() - first.trim_start().len();
    lines
        .take_while(|l| l.len() - l.trim_start().len() > indent)
        .filter_map(|l| l.trim().split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Issue 12 item 8: `POST /oauth/2.1/register` has its own throttle, below the API's default, from
/// parameters; the anonymous functions (authorize, which also fetches client metadata documents, and
/// register) have reserved concurrency from parameters (0 = none), and their defaults leave nearly all
/// of a default 1000-execution account to token, introspect and the proxy, which reserve nothing.
#[test]
fn registration_abuse_register_has_its_own_throttle_and_anonymous_functions_reserved_concurrency() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    let num = |v: &str| v.parse::<f64>().unwrap_or_else(|_| panic!("a number: {v}"));

    let default = block(&text, "DefaultRouteSettings:");
    let register = block(&text, "\"POST /oauth/2.1/register\":");
    assert_eq!(register["ThrottlingRateLimit"], "!Ref RegisterThrottleRateLimit");
    assert_eq!(register["ThrottlingBurstLimit"], "!Ref RegisterThrottleBurstLimit");
    let rate = num(&parameter_default(&text, "RegisterThrottleRateLimit"));
    let burst = num(&parameter_default(&text, "RegisterThrottleBurstLimit"));
    assert!(
        rate >= 1.0 && rate < num(&default["ThrottlingRateLimit"]),
        "register rate {rate}"
    );
    assert!(
        burst >= rate && burst < num(&default["ThrottlingBurstLimit"]),
        "register burst {burst}"
    );

    // Which functions reserve concurrency, and from which parameter.
    let mut reserved: BTreeMap<String, String> = BTreeMap::new();
    let mut current = None::<String>;
    for line in text.lines() {
        let t = line.trim();
        if line.starts_with("  ") && !line.starts_with("   ") && t.ends_with(':') {
            current = None;
        }
        if let Some(f) = t.strip_prefix("CodeUri: functions/") {
            current = Some(f.to_string());
        } else if let (Some(f), Some(v)) = (&current, t.strip_prefix("ReservedConcurrentExecutions: ")) {
            reserved.insert(f.clone(), v.to_string());
        }
    }
    let expected = [
        ("authorize", "ReservesAuthorize", "AuthorizeReservedConcurrency"),
        ("register", "ReservesRegister", "RegisterReservedConcurrency"),
    ];
    assert_eq!(
        reserved.keys().map(String::as_str).collect::<Vec<_>>(),
        expected.iter().map(|e| e.0).collect::<Vec<_>>(),
        "only the anonymous functions are capped; token, introspect and proxy draw on the rest"
    );
    let mut total = 0.0;
    for (function, condition, parameter) in expected {
        assert_eq!(
            reserved[function],
            format!("!If [{condition}, !Ref {parameter}, !Ref AWS::NoValue]"),
            "{function}"
        );
        assert!(
            text.contains(&format!("{condition}: !Not [!Equals [!Ref {parameter}, \"0\"]]")),
            "{parameter} = 0 means no reservation"
        );
        let n = num(&parameter_default(&text, parameter));
        assert!(n >= 1.0, "{parameter} reserves something by default");
        total += n;
    }
    // AWS keeps at least 100 unreserved; leave at least 900 of 1000 to everything else.
    assert!(
        total <= 100.0,
        "reserved by default: {total} of a default account's 1000"
    );
    assert_eq!(parameter_default(&text, "RegistrationUnusedTtl"), "86400");
    assert!(text.contains("LATCHKEY_REGISTRATION_UNUSED_TTL: !Ref RegistrationUnusedTtl"));
}

/// Issue 14: exactly the functions that notice events (their `router::Endpoint` needs `EVENTS`, and
/// the two background functions) may send to the events queue, and each may write only the outbox
/// besides what it already could.
#[test]
fn least_privilege_events_go_to_the_queue_only_from_the_functions_that_notice_them() {
    let (policies, _) = template_policies();
    let senders: BTreeSet<String> = policies
        .iter()
        .filter(|(_, sts)| sts.iter().any(|s| s.actions.iter().any(|a| a == "sqs:SendMessage")))
        .map(|(f, _)| f.clone())
        .collect();
    let expected: BTreeSet<String> = [
        "callback",
        "identity-callback",
        "session-confirm",
        "connections",
        "proxy",
        "tool-complete",
        "tool-mcp",
        "webhook-deliver",
        "health",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(senders, expected);
    for f in &expected {
        if f == "webhook-deliver" {
            continue;
        }
        let outbox: Vec<&Statement> = policies[f].iter().filter(|s| s.sid == "EventOutbox").collect();
        assert_eq!(outbox.len(), 1, "{f} has one outbox statement");
        assert_eq!(outbox[0].actions, vec!["dynamodb:PutItem"], "{f}");
        assert_eq!(outbox[0].leading_keys, vec!["OUTBOX"], "{f}");
    }
    // No function but webhook-deliver may put on the operator's bus.
    let putters: Vec<&String> = policies
        .iter()
        .filter(|(_, sts)| sts.iter().any(|s| s.actions.iter().any(|a| a == "events:PutEvents")))
        .map(|(f, _)| f)
        .collect();
    assert_eq!(putters, vec!["webhook-deliver"]);
}

/// `ToolMcp` -> `tool-mcp`: the Makefile's rule from a logical id to a function package.
fn kebab(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[test]
fn issue13_every_function_is_built_by_the_one_makefile_build() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let text = std::fs::read_to_string(format!("{root}/template.yaml")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut functions = BTreeSet::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(id) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':')) else {
            continue;
        };
        if id.starts_with(' ') || lines.get(i + 1).map(|l| l.trim()) != Some("Type: AWS::Serverless::Function") {
            continue;
        }
        let body: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|l| l.is_empty() || l.starts_with("   "))
            .map(|l| l.trim())
            .collect();
        let name = kebab(id.strip_suffix("Function").expect("logical ids end in Function"));
        for want in [
            "BuildMethod: makefile".to_string(),
            "ContextPath: .".to_string(),
            "WorkingDirectory: .".to_string(),
            format!("CodeUri: functions/{name}"),
        ] {
            assert!(body.contains(&want.as_str()), "{id}: `{want}` in template.yaml");
        }
        // The Makefile's own rule names the same package (make -n prints the commands, runs nothing).
        let out = std::process::Command::new("make")
            .args(["-n", "-C", root, &format!("build-{id}")])
            .env("ARTIFACTS_DIR", "/nonexistent")
            .env("LATCHKEY_ARCH", "arm64")
            .output()
            .expect("make runs");
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "make build-{id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            printed.contains(&format!("-p {name} ")) || printed.contains(&format!("-p {name}\n")),
            "{printed}"
        );
        let copy = printed
            .lines()
            .find(|l| l.contains("bin=$(echo"))
            .expect("the copy step");
        let derived = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{}; echo \"$bin\"",
                copy.trim().trim_end_matches('\\').trim().trim_end_matches(';')
            ))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&derived.stdout).trim(), name, "{id}");
        functions.insert(name);
    }
    let dirs: BTreeSet<String> = std::fs::read_dir(format!("{root}/functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        functions, dirs,
        "template.yaml deploys every function package, each built by the Makefile"
    );
}
