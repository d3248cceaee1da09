//! Lambda: the `tool-mcp` endpoint. All logic lives in `latchkey::handlers` (route `ToolMcp`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::router::Route::ToolMcp).await
}
