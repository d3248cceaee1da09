//! The clients' README examples, run as a user runs them: the example's code block with latchkey's
//! URL and a key put in, and a user who opens the `Please open: <url>` line it prints.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The first ```<fence> block of a README, with latchkey's URL and the key put in.
pub fn readme_example(readme: &Path, fence: &str, base: &str, key: &str) -> String {
    let readme = std::fs::read_to_string(readme).unwrap();
    let open = format!("```{fence}\n");
    let start = readme.find(&open).unwrap_or_else(|| panic!("a {fence} block")) + open.len();
    let code = &readme[start..start + readme[start..].find("```").unwrap()];
    assert!(code.contains("\"http://127.0.0.1:8080\"") && code.contains("\"lk_ak_...\""));
    code.replace("\"http://127.0.0.1:8080\"", &format!("{base:?}"))
        .replace("\"lk_ak_...\"", &format!("{key:?}"))
}

/// Run `cmd`, act as the user's browser for the `Please open: <url>` line it prints (open the URL,
/// following redirects), and return (success, stdout, stderr) once it ends (at most 60 s).
pub async fn run_as_user(mut cmd: Command) -> (bool, String, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the example starts");
    let stdout = child.stdout.take().unwrap();
    let handle = tokio::runtime::Handle::current();
    let reader = tokio::task::spawn_blocking(move || {
        let mut seen = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap_or_default();
            if let Some(url) = line.strip_prefix("Please open: ") {
                let browser = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::limited(5))
                    .build()
                    .unwrap();
                let page = handle.block_on(async { browser.get(url).send().await.unwrap().text().await.unwrap() });
                assert!(page.contains("Connected"), "{page}");
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        seen
    });
    let stdout = match tokio::time::timeout(Duration::from_secs(60), reader).await {
        Ok(out) => out.unwrap(),
        Err(_) => {
            child.kill().ok();
            panic!("the example did not finish within 60 s");
        }
    };
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    (
        out.status.success(),
        stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
