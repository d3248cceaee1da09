//! Lambda: the `authorize` endpoint. All logic lives in `latchkey::handlers::authorize`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::router::Route::Authorize).await
}
