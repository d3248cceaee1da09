//! Lambda: the `session-confirm` endpoint. All logic lives in `latchkey::handlers`; `router::SessionConfirm` names the
//! handler and the clients this function builds, so its binary links nothing else.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run::<latchkey::router::SessionConfirm>().await
}
