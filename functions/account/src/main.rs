//! Lambda: the `account` endpoint ("Your connected apps"). All logic lives in
//! `latchkey::handlers::account`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::router::Route::Account).await
}
