//! Lambda: the `register` endpoint. All logic lives in `latchkey::handlers::register`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::router::Route::Register).await
}
