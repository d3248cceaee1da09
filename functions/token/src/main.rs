//! Lambda: the `token` endpoint. All logic lives in `latchkey::handlers::token`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::router::Route::Token).await
}
