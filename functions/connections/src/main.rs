//! Lambda: the `connections` endpoint. All logic lives in `latchkey::handlers` (route `Connections`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::router::Route::Connections).await
}
