//! The one way the store runs a DynamoDB transaction (`TransactWriteItems`): the items, each with
//! the typed refusal its condition stands for, retried when concurrent transactions on the same items
//! make DynamoDB cancel it with `TransactionConflict` (the SDK does not retry those).
//!
//! - A condition that fails refuses the transaction with the refusal of the first failed item
//!   ([`Transaction::guard`]); the caller matches on its own enum. An item added with
//!   [`Transaction::item`] is not expected to fail (a random id, an unconditional update): if it does,
//!   the call fails with [`StoreError::ConditionFailed`].
//! - `TransactionConflict` is retried [`ATTEMPTS`] times in all, after 10, 20 and 40 ms plus up to
//!   20 ms of jitter (so two conflicting requests do not retry in step); then [`StoreError::Busy`],
//!   which every wire error answers with 503.
//! - One round trip when nothing conflicts.

use std::convert::Infallible;
use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::TransactWriteItem;

use super::{Store, StoreError};

/// Attempts in all before a conflicting transaction is [`StoreError::Busy`].
pub const ATTEMPTS: u32 = 4;

/// A transaction's items and what each one's failed condition means to the caller (`R`).
#[derive(Clone, Debug)]
pub struct Transaction<R> {
    items: Vec<TransactWriteItem>,
    refusals: Vec<Option<R>>,
}

impl<R> Default for Transaction<R> {
    fn default() -> Self {
        Transaction {
            items: Vec::new(),
            refusals: Vec::new(),
        }
    }
}

impl<R: Clone> Transaction<R> {
    pub fn new() -> Self {
        Self::default()
    }

    /// An item whose failed condition refuses the transaction with `refusal`.
    pub fn guard(mut self, item: TransactWriteItem, refusal: R) -> Self {
        self.items.push(item);
        self.refusals.push(Some(refusal));
        self
    }

    /// An item whose condition (if any) is not expected to fail.
    pub fn item(mut self, item: TransactWriteItem) -> Self {
        self.items.push(item);
        self.refusals.push(None);
        self
    }

    /// Several items, none expected to fail.
    pub fn items(self, items: impl IntoIterator<Item = TransactWriteItem>) -> Self {
        items.into_iter().fold(self, Self::item)
    }
}

/// What to do after a cancelled attempt, from its cancellation reason codes (one per item, in order).
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// The condition of the item at this index failed.
    Refused(usize),
    /// Another transaction held an item: try again.
    Retry,
    /// Conflicts persisted past the last attempt.
    Busy,
    /// Anything else: a service failure.
    Fail,
}

fn next(codes: &[Option<&str>], attempt: u32) -> Next {
    if let Some(i) = codes.iter().position(|c| *c == Some("ConditionalCheckFailed")) {
        return Next::Refused(i);
    }
    if codes.contains(&Some("TransactionConflict")) {
        return if attempt + 1 < ATTEMPTS {
            Next::Retry
        } else {
            Next::Busy
        };
    }
    Next::Fail
}

/// The pause before attempt `attempt + 1`: 10 ms doubling, plus up to 20 ms of jitter.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((10u64 << attempt) + u64::from(rand::random::<u8>() % 20))
}

impl Store {
    /// Run a transaction: `Ok(Err(refusal))` when a guarded item's condition failed.
    pub async fn transact<R: Clone>(&self, tx: Transaction<R>) -> Result<Result<(), R>, StoreError> {
        Ok(self.transact_returning(tx).await?.map_err(|(refusal, _)| refusal))
    }

    /// Run a transaction: `Ok(Err((refusal, old)))` when a guarded item's condition failed, with the
    /// item as it was when that item asked for it (`ReturnValuesOnConditionCheckFailure: ALL_OLD`;
    /// `None` when it did not ask or there was no item).
    pub async fn transact_returning<R: Clone>(
        &self,
        tx: Transaction<R>,
    ) -> Result<Result<(), (R, Option<super::Item>)>, StoreError> {
        for attempt in 0..ATTEMPTS {
            let e = match self
                .client()
                .transact_write_items()
                .set_transact_items(Some(tx.items.clone()))
                .send()
                .await
            {
                Ok(_) => return Ok(Ok(())),
                Err(e) => e,
            };
            let (step, reasons) = match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    let codes: Vec<Option<&str>> = c.cancellation_reasons().iter().map(|r| r.code()).collect();
                    (next(&codes, attempt), c.cancellation_reasons())
                }
                _ => (Next::Fail, &[][..]),
            };
            match step {
                Next::Refused(i) => {
                    let old = reasons
                        .get(i)
                        .and_then(|r| r.item())
                        .filter(|item| !item.is_empty())
                        .map(|item| super::Item::from(item.clone()));
                    return match tx.refusals.get(i).cloned().flatten() {
                        Some(refusal) => Ok(Err((refusal, old))),
                        None => Err(StoreError::ConditionFailed),
                    };
                }
                Next::Retry => tokio::time::sleep(backoff(attempt)).await,
                Next::Busy => return Err(StoreError::Busy),
                Next::Fail => {
                    return Err(StoreError::Service(format!(
                        "TransactWriteItems: {}",
                        aws_sdk_dynamodb::error::DisplayErrorContext(e)
                    )))
                }
            }
        }
        Err(StoreError::Busy)
    }

    /// Run a transaction none of whose conditions is expected to fail (a failed one is
    /// [`StoreError::ConditionFailed`]).
    pub async fn transact_all(&self, tx: Transaction<Infallible>) -> Result<(), StoreError> {
        match self.transact(tx).await? {
            Ok(()) => Ok(()),
            Err(never) => match never {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CCF: Option<&str> = Some("ConditionalCheckFailed");
    const CONFLICT: Option<&str> = Some("TransactionConflict");
    const NONE: Option<&str> = Some("None");

    #[test]
    fn the_first_failed_condition_names_the_refusal() {
        assert_eq!(next(&[NONE, CCF, CCF], 0), Next::Refused(1));
        // A failed condition decides even beside a conflict: retrying cannot make it pass.
        assert_eq!(next(&[CONFLICT, NONE, CCF], 0), Next::Refused(2));
    }

    #[test]
    fn conflicts_are_retried_a_bounded_number_of_times() {
        for attempt in 0..ATTEMPTS - 1 {
            assert_eq!(next(&[NONE, CONFLICT], attempt), Next::Retry);
        }
        assert_eq!(next(&[NONE, CONFLICT], ATTEMPTS - 1), Next::Busy);
        assert_eq!(next(&[NONE, Some("ThrottlingError")], 0), Next::Fail);
        assert_eq!(next(&[], 0), Next::Fail);
    }

    #[test]
    fn backoff_doubles_with_jitter() {
        for attempt in 0..ATTEMPTS {
            let d = backoff(attempt).as_millis() as u64;
            assert!((10 << attempt..(10 << attempt) + 20).contains(&d), "{attempt}: {d}");
        }
    }
}
