//! Lambda: the `tool-initiate` endpoint. All logic lives in `latchkey::handlers` (route `ToolInitiate`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::router::Route::ToolInitiate).await
}
