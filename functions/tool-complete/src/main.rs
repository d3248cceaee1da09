//! Lambda: the `tool-complete` endpoint. All logic lives in `latchkey::handlers` (route `ToolComplete`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::router::Route::ToolComplete).await
}
