//! Lambda: the `revoke` endpoint. All logic lives in `latchkey::handlers::revoke`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::router::Route::Revoke).await
}
