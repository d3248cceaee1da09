//! Lambda: the `tool-create` endpoint. All logic lives in `latchkey::handlers` (route `ToolCreate`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::router::Route::ToolCreate).await
}
