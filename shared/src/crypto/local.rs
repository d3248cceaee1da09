//! The embedded default's key wrapper: a 256-bit master key in a 0600 file (created on first run) or
//! from `LATCHKEY_MASTER_KEY` (base64), wrapping data keys with AES-256-GCM.

use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;

use super::envelope::{canonical, CryptoError, EncryptionContext};

/// Wraps data keys with a local master key.
pub struct LocalWrapper {
    master: [u8; 32],
}

impl std::fmt::Debug for LocalWrapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalWrapper(..)")
    }
}

fn wrap_aad(ctx: &EncryptionContext) -> Vec<u8> {
    [b"latchkey-local-wrap".as_slice(), &canonical(ctx)].concat()
}

impl LocalWrapper {
    pub fn from_key(master: [u8; 32]) -> Self {
        LocalWrapper { master }
    }

    /// Parse a base64 master key (`LATCHKEY_MASTER_KEY`).
    pub fn from_base64(b64: &str) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(b64.trim())
            .map_err(|_| "LATCHKEY_MASTER_KEY is not base64".to_string())?;
        let master: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "LATCHKEY_MASTER_KEY must decode to 32 bytes".to_string())?;
        Ok(Self::from_key(master))
    }

    /// Load the master key file, creating it (mode 0600) with a new random key if it does not exist.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let mut master = [0u8; 32];
                rand::rng().fill_bytes(&mut master);
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                let mut f = opts.open(path)?;
                f.write_all(STANDARD.encode(master).as_bytes())?;
                f.write_all(b"\n")?;
                Ok(Self::from_key(master))
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) fn generate(&self, ctx: &EncryptionContext) -> Result<([u8; 32], Vec<u8>), CryptoError> {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let cipher = Aes256Gcm::new_from_slice(&self.master).map_err(|_| CryptoError::Malformed)?;
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &key,
                    aad: &wrap_aad(ctx),
                },
            )
            .map_err(|_| CryptoError::Authentication)?;
        Ok((key, [nonce.as_slice(), &ct].concat()))
    }

    pub(crate) fn unwrap(&self, ctx: &EncryptionContext, wrapped: &[u8]) -> Result<[u8; 32], CryptoError> {
        if wrapped.len() != 12 + 32 + 16 {
            return Err(CryptoError::Malformed);
        }
        let (nonce, ct) = wrapped.split_at(12);
        let cipher = Aes256Gcm::new_from_slice(&self.master).map_err(|_| CryptoError::Malformed)?;
        let key = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: &wrap_aad(ctx),
                },
            )
            .map_err(|_| CryptoError::Authentication)?;
        key.try_into().map_err(|_| CryptoError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_file_is_created_0600_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        let a = LocalWrapper::load_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let b = LocalWrapper::load_or_create(&path).unwrap();
        assert_eq!(a.master, b.master);
        let ctx = super::super::envelope::context([("k", "v")]);
        let (key, wrapped) = a.generate(&ctx).unwrap();
        assert_eq!(b.unwrap(&ctx, &wrapped).unwrap(), key);
    }

    #[test]
    fn bad_env_keys_are_refused() {
        assert!(LocalWrapper::from_base64("not base64!").is_err());
        assert!(LocalWrapper::from_base64("AAAA").is_err());
        assert!(LocalWrapper::from_base64(&STANDARD.encode([1u8; 32])).is_ok());
    }
}
