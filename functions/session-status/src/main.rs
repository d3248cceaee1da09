//! Lambda: the `session-status` endpoint. All logic lives in `latchkey::handlers` (route `SessionStatus`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::router::Route::SessionStatus).await
}
