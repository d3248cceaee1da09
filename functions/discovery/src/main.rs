//! Lambda: the `discovery` endpoint. All logic lives in `latchkey::handlers::discovery`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::router::Route::Discovery).await
}
