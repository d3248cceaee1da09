//! Lambda: the `session-create` endpoint. All logic lives in `latchkey::handlers` (route `SessionCreate`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::router::Route::SessionCreate).await
}
