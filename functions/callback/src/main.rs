//! Lambda: the `callback` endpoint. All logic lives in `latchkey::handlers::callback`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::router::Route::Callback).await
}
