//! Counts of DynamoDB and KMS round trips, taken by an SDK interceptor, so tests can hold the
//! per-endpoint budgets of DESIGN.md.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_types::config_bag::ConfigBag;

/// One counter per AWS service; clones share the same numbers.
#[derive(Clone, Debug, Default)]
pub struct CallCounter {
    calls: Arc<AtomicU64>,
}

impl CallCounter {
    /// Calls made so far.
    pub fn get(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// An interceptor that adds one for every operation the SDK client executes.
    pub fn interceptor(&self, name: &'static str) -> CountingInterceptor {
        CountingInterceptor {
            name,
            counter: self.clone(),
        }
    }
}

/// Counts operations before they are serialized: one per SDK call, retries not included.
#[derive(Debug)]
pub struct CountingInterceptor {
    name: &'static str,
    counter: CallCounter,
}

impl Intercept for CountingInterceptor {
    fn name(&self) -> &'static str {
        self.name
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.counter.calls.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// The round trips a piece of work made, per service.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub dynamodb: CallCounter,
    pub kms: CallCounter,
}

impl Metrics {
    /// `(dynamodb, kms)` calls so far.
    pub fn snapshot(&self) -> (u64, u64) {
        (self.dynamodb.get(), self.kms.get())
    }
}
