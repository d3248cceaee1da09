//! Lambda: the `identity-callback` endpoint. All logic lives in `latchkey::handlers` (route `IdentityCallback`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::router::Route::IdentityCallback).await
}
