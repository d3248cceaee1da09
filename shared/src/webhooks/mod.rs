//! Connection health you can act on: signed webhook deliveries of the events the vault and tools
//! notice (`deliver`), and the scheduled refresh that notices failures before a user does
//! (`health`). Events are enqueued by `crate::events`; the API is `handlers::webhooks`.

pub mod deliver;
pub mod health;
