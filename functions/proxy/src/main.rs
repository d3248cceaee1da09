//! Lambda: the `proxy` endpoint. All logic lives in `latchkey::handlers` (route `Proxy`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::router::Route::Proxy).await
}
