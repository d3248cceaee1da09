//! Logging setup. Log lines carry ids and outcomes, never a token, secret or code.

use tracing_subscriber::EnvFilter;

/// What is logged unless `RUST_LOG` says otherwise: our info lines, the libraries' errors.
const DEFAULT_FILTER: &str = "info,dynoxide=error,dynoxide_rs=error,aws_smithy_runtime=error,aws_config=warn";

fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
}

/// JSON lines for CloudWatch (Lambda).
pub fn init_json() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter())
        .with_current_span(false)
        .with_ansi(false)
        .without_time()
        .try_init();
}

/// Human-readable lines for `latchkey serve`.
pub fn init_text() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_target(false)
        .try_init();
}

/// JSON lines into `writer` (a closure returning an `io::Write`), for a process that keeps its log
/// itself: the tests read every line back to prove no token, code or secret is logged. Installs
/// nothing if a logger is already installed; `true` if this one was.
pub fn init_json_with<W>(writer: impl Fn() -> W + Send + Sync + 'static) -> bool
where
    W: std::io::Write,
{
    tracing_subscriber::fmt()
        .json()
        // Not `RUST_LOG`: the tests must see every info line, whatever the environment says.
        .with_env_filter(EnvFilter::new(DEFAULT_FILTER))
        .with_current_span(false)
        .with_ansi(false)
        .with_writer(writer)
        .try_init()
        .is_ok()
}
