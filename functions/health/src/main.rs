//! Lambda: `health`, on a schedule: refresh held tokens that expire within the next interval or
//! have idled for a day, and tell webhooks about refusals.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run_health().await
}
