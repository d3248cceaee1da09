//! Lambda: the `tool` endpoint. All logic lives in `latchkey::handlers` (route `Tool`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::router::Route::Tool).await
}
