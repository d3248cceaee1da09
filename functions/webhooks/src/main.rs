//! Lambda: the `webhooks` endpoint (a project's webhooks). All logic lives in `latchkey::handlers`;
//! `router::Webhooks` names the handler and the clients this function builds.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run::<latchkey::router::Webhooks>().await
}
