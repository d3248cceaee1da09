//! Lambda: the `register` endpoint. All logic lives in `latchkey::handlers`; `router::Register` names the
//! handler and the clients this function builds, so its binary links nothing else.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run::<latchkey::router::Register>().await
}
