//! Lambda: the `tool-client-metadata` endpoint. All logic lives in `latchkey::handlers` (route `ToolClientMetadata`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::router::Route::ToolClientMetadata).await
}
