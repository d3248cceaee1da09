//! Lambda: the `consent` endpoint. All logic lives in `latchkey::handlers::consent`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::router::Route::Consent).await
}
