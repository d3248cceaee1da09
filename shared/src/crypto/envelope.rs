//! Envelope encryption for the tokens we hold: AES-256-GCM under a per-context data key that a
//! `KeyWrapper` (KMS or a local master key) generates and wraps. Unwrapped data keys are cached for a
//! bounded time and number of uses, so the hot path makes no KMS call.
//!
//! Record format, version 1 (stored as a DynamoDB binary attribute):
//!
//! ```text
//! 0x01 | wrapper kind (1 = local, 2 = KMS) | u16 BE wrapped-key length | wrapped key | 12-byte nonce | ciphertext+tag
//! ```
//!
//! The AES-GCM additional data is the two header bytes and the canonical encryption context, so a
//! record moved to another identity (another user, project or provider) fails to decrypt.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;

use super::kms::KmsWrapper;
use super::local::LocalWrapper;

/// The identity of the record a secret belongs to, e.g. `{"kind": "connection", "project": …,
/// "user": …, "provider": …}`. Sent to KMS as the encryption context and bound into the AAD.
pub type EncryptionContext = BTreeMap<String, String>;

/// Build an encryption context from pairs.
pub fn context<const N: usize>(pairs: [(&str, &str); N]) -> EncryptionContext {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// Why a record could not be sealed or opened. The display text is safe for logs: no key material.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The key service failed or refused (detail for the log).
    #[error("key service error: {0}")]
    KeyService(String),
    /// The record is not in a format we know.
    #[error("malformed encrypted record")]
    Malformed,
    /// The record was sealed by another kind of keyring (local vs KMS).
    #[error("encrypted record was sealed by a different keyring")]
    WrongKeyring,
    /// Authentication failed: tampered data, wrong context or wrong key.
    #[error("encrypted record failed authentication")]
    Authentication,
}

/// Generates and unwraps data keys.
#[derive(Debug)]
pub enum KeyWrapper {
    Local(LocalWrapper),
    Kms(KmsWrapper),
}

impl KeyWrapper {
    fn kind(&self) -> u8 {
        match self {
            KeyWrapper::Local(_) => 1,
            KeyWrapper::Kms(_) => 2,
        }
    }

    async fn generate(&self, ctx: &EncryptionContext) -> Result<([u8; 32], Vec<u8>), CryptoError> {
        match self {
            KeyWrapper::Local(w) => w.generate(ctx),
            KeyWrapper::Kms(w) => w.generate(ctx).await,
        }
    }

    async fn unwrap(&self, ctx: &EncryptionContext, wrapped: &[u8]) -> Result<[u8; 32], CryptoError> {
        match self {
            KeyWrapper::Local(w) => w.unwrap(ctx, wrapped),
            KeyWrapper::Kms(w) => w.unwrap(ctx, wrapped).await,
        }
    }
}

/// Bounds on how long and how often an unwrapped data key is reused.
#[derive(Clone, Copy, Debug)]
pub struct CacheLimits {
    pub max_age: Duration,
    pub max_uses: u32,
    pub max_entries: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            max_age: Duration::from_secs(300),
            max_uses: 1000,
            max_entries: 1000,
        }
    }
}

struct CachedKey {
    key: [u8; 32],
    wrapped: Vec<u8>,
    created: Instant,
    uses: u32,
}

#[derive(Default)]
struct Cache {
    /// Canonical context → the data key new records under that context are sealed with.
    seal: HashMap<Vec<u8>, CachedKey>,
    /// (wrapped key, canonical context) → unwrapped key.
    open: HashMap<(Vec<u8>, Vec<u8>), CachedKey>,
}

/// The envelope-encryption keyring every handler uses.
pub struct Keyring {
    wrapper: KeyWrapper,
    limits: CacheLimits,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("wrapper", &self.wrapper)
            .finish_non_exhaustive()
    }
}

/// Canonical, unambiguous encoding of a context: length-prefixed keys and values in key order.
pub(crate) fn canonical(ctx: &EncryptionContext) -> Vec<u8> {
    let mut out = b"latchkey-ctx".to_vec();
    for (k, v) in ctx {
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

impl Keyring {
    pub fn new(wrapper: KeyWrapper) -> Self {
        Self::with_limits(wrapper, CacheLimits::default())
    }

    pub fn with_limits(wrapper: KeyWrapper, limits: CacheLimits) -> Self {
        Keyring {
            wrapper,
            limits,
            cache: Mutex::new(Cache::default()),
        }
    }

    fn fresh(&self, k: &CachedKey) -> bool {
        k.created.elapsed() < self.limits.max_age && k.uses < self.limits.max_uses
    }

    fn cached_seal_key(&self, canon: &[u8]) -> Option<([u8; 32], Vec<u8>)> {
        let mut cache = self.cache.lock().ok()?;
        let fresh = cache.seal.get(canon).map(|k| self.fresh(k)).unwrap_or(false);
        if !fresh {
            cache.seal.remove(canon);
            return None;
        }
        let k = cache.seal.get_mut(canon)?;
        k.uses += 1;
        Some((k.key, k.wrapped.clone()))
    }

    fn cached_open_key(&self, id: &(Vec<u8>, Vec<u8>)) -> Option<[u8; 32]> {
        let mut cache = self.cache.lock().ok()?;
        let fresh = cache.open.get(id).map(|k| self.fresh(k)).unwrap_or(false);
        if !fresh {
            cache.open.remove(id);
            return None;
        }
        let k = cache.open.get_mut(id)?;
        k.uses += 1;
        Some(k.key)
    }

    fn remember(&self, canon: Vec<u8>, key: [u8; 32], wrapped: Vec<u8>, for_seal: bool) {
        let Ok(mut cache) = self.cache.lock() else { return };
        let limits = self.limits;
        let prune = |len: usize| len >= limits.max_entries;
        let entry = CachedKey {
            key,
            wrapped: wrapped.clone(),
            created: Instant::now(),
            uses: 1,
        };
        if for_seal {
            if prune(cache.seal.len()) {
                cache.seal.clear();
            }
            cache.seal.insert(canon, entry);
        } else {
            if prune(cache.open.len()) {
                cache.open.clear();
            }
            cache.open.insert((wrapped, canon), entry);
        }
    }

    /// Seal `plaintext` for the record named by `ctx`.
    pub async fn encrypt(&self, ctx: &EncryptionContext, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let canon = canonical(ctx);
        let (key, wrapped) = match self.cached_seal_key(&canon) {
            Some(k) => k,
            None => {
                let (key, wrapped) = self.wrapper.generate(ctx).await?;
                self.remember(canon.clone(), key, wrapped.clone(), true);
                // The same key opens what it sealed without another unwrap.
                self.remember(canon.clone(), key, wrapped.clone(), false);
                (key, wrapped)
            }
        };
        let wrapped_len = u16::try_from(wrapped.len()).map_err(|_| CryptoError::Malformed)?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let header = [VERSION, self.wrapper.kind()];
        let aad = [&header[..], &canon].concat();
        let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| CryptoError::Malformed)?;
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Authentication)?;
        let mut out = Vec::with_capacity(4 + wrapped.len() + NONCE_LEN + ct.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&wrapped_len.to_be_bytes());
        out.extend_from_slice(&wrapped);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Open a record sealed by `encrypt` under the same context.
    pub async fn decrypt(&self, ctx: &EncryptionContext, record: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if record.len() < 4 || record[0] != VERSION {
            return Err(CryptoError::Malformed);
        }
        if record[1] != self.wrapper.kind() {
            return Err(CryptoError::WrongKeyring);
        }
        let wlen = u16::from_be_bytes([record[2], record[3]]) as usize;
        let rest = &record[4..];
        if rest.len() < wlen + NONCE_LEN + 16 {
            return Err(CryptoError::Malformed);
        }
        let (wrapped, rest) = rest.split_at(wlen);
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let canon = canonical(ctx);
        let id = (wrapped.to_vec(), canon.clone());
        let key = match self.cached_open_key(&id) {
            Some(k) => k,
            None => {
                let k = self.wrapper.unwrap(ctx, wrapped).await?;
                self.remember(canon.clone(), k, wrapped.to_vec(), false);
                k
            }
        };
        let aad = [&record[..2], &canon].concat();
        let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| CryptoError::Malformed)?;
        cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| CryptoError::Authentication)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring() -> Keyring {
        Keyring::new(KeyWrapper::Local(LocalWrapper::from_key([7u8; 32])))
    }

    fn ctx(user: &str) -> EncryptionContext {
        context([
            ("kind", "connection"),
            ("project", "p1"),
            ("user", user),
            ("provider", "google"),
        ])
    }

    #[tokio::test]
    async fn round_trip() {
        let k = keyring();
        let rec = k.encrypt(&ctx("alice"), b"ya29.token").await.unwrap();
        assert!(!rec.windows(10).any(|w| w == b"ya29.token"));
        assert_eq!(k.decrypt(&ctx("alice"), &rec).await.unwrap(), b"ya29.token");
        // A fresh keyring (no cache) opens it too.
        assert_eq!(keyring().decrypt(&ctx("alice"), &rec).await.unwrap(), b"ya29.token");
    }

    #[tokio::test]
    async fn tampered_ciphertext_fails() {
        let k = keyring();
        let mut rec = k.encrypt(&ctx("alice"), b"secret").await.unwrap();
        let last = rec.len() - 1;
        rec[last] ^= 1;
        assert!(matches!(
            k.decrypt(&ctx("alice"), &rec).await,
            Err(CryptoError::Authentication)
        ));
        let mut rec2 = k.encrypt(&ctx("alice"), b"secret").await.unwrap();
        rec2[5] ^= 1; // inside the wrapped key
        assert!(keyring().decrypt(&ctx("alice"), &rec2).await.is_err());
        assert!(matches!(
            k.decrypt(&ctx("alice"), &rec[..3]).await,
            Err(CryptoError::Malformed)
        ));
    }

    #[tokio::test]
    async fn wrong_context_fails() {
        let k = keyring();
        let rec = k.encrypt(&ctx("alice"), b"secret").await.unwrap();
        assert!(matches!(
            k.decrypt(&ctx("bob"), &rec).await,
            Err(CryptoError::Authentication)
        ));
        assert!(keyring().decrypt(&ctx("bob"), &rec).await.is_err());
    }

    #[tokio::test]
    async fn wrong_key_fails() {
        let rec = keyring().encrypt(&ctx("alice"), b"secret").await.unwrap();
        let other = Keyring::new(KeyWrapper::Local(LocalWrapper::from_key([8u8; 32])));
        assert!(matches!(
            other.decrypt(&ctx("alice"), &rec).await,
            Err(CryptoError::Authentication)
        ));
    }

    #[test]
    fn canonical_context_is_unambiguous() {
        let a = context([("a", "b=c")]);
        let b = context([("a=b", "c")]);
        assert_ne!(canonical(&a), canonical(&b));
    }
}
