//! Secrets: hashes and random values for what we issue (`secret`), envelope encryption for what we
//! hold (`Keyring`, with a KMS wrapper for AWS and a local master key for the embedded default).

pub mod envelope;
pub mod kms;
pub mod local;
pub mod secret;

pub use envelope::{CryptoError, EncryptionContext, KeyWrapper, Keyring};
pub use kms::KmsWrapper;
pub use local::LocalWrapper;
