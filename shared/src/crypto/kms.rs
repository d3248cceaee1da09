//! The AWS key wrapper: data keys from KMS `GenerateDataKey`, unwrapped with `Decrypt`, both bound to
//! the record's encryption context.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;

use super::envelope::{CryptoError, EncryptionContext};

/// Wraps data keys with a KMS key (id, ARN or alias).
#[derive(Debug, Clone)]
pub struct KmsWrapper {
    client: aws_sdk_kms::Client,
    key_id: String,
}

impl KmsWrapper {
    pub fn new(client: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        KmsWrapper {
            client,
            key_id: key_id.into(),
        }
    }

    pub(crate) async fn generate(&self, ctx: &EncryptionContext) -> Result<([u8; 32], Vec<u8>), CryptoError> {
        let out = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(ctx.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| {
                CryptoError::KeyService(format!(
                    "GenerateDataKey: {}",
                    aws_sdk_kms::error::DisplayErrorContext(e)
                ))
            })?;
        let plaintext = out
            .plaintext
            .ok_or(CryptoError::KeyService("GenerateDataKey returned no plaintext".into()))?;
        let wrapped = out
            .ciphertext_blob
            .ok_or(CryptoError::KeyService("GenerateDataKey returned no ciphertext".into()))?;
        let key: [u8; 32] = plaintext.into_inner().try_into().map_err(|_| CryptoError::Malformed)?;
        Ok((key, wrapped.into_inner()))
    }

    pub(crate) async fn unwrap(&self, ctx: &EncryptionContext, wrapped: &[u8]) -> Result<[u8; 32], CryptoError> {
        let out = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(wrapped.to_vec()))
            .set_encryption_context(Some(ctx.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| {
                let detail = aws_sdk_kms::error::DisplayErrorContext(&e).to_string();
                if detail.contains("InvalidCiphertext") || detail.contains("IncorrectKey") {
                    CryptoError::Authentication
                } else {
                    CryptoError::KeyService(format!("Decrypt: {detail}"))
                }
            })?;
        let plaintext = out
            .plaintext
            .ok_or(CryptoError::KeyService("Decrypt returned no plaintext".into()))?;
        plaintext.into_inner().try_into().map_err(|_| CryptoError::Malformed)
    }
}
