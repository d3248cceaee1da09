//! Lambda: the `introspect` endpoint. All logic lives in `latchkey::handlers::introspect`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::router::Route::Introspect).await
}
