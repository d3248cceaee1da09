//! Lambda: `webhook-deliver`, triggered by the events queue (sign and post each event to the
//! project's webhooks; retries are delayed messages) and by its schedule (drain the outbox).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run_deliver().await
}
