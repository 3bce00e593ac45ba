//! A receipt's record, once for both backends: the member's delivered and displayed times
//! after it (a "seen" implies delivered; a time once set stays), and whether it is the
//! receipt that makes the message delivered to (or seen by) as many members as were expected,
//! which only the batch's transaction knows (`FactWriter::commit` reports it). Each backend
//! gives its three statements ([`ReceiptRows`]) and keeps nothing else of receipts.

use crate::core::{Receipt, ReceiptKind};
use crate::store::Completion;

/// A member's delivered and displayed times of a message, as stored.
pub(super) type Times = (Option<i64>, Option<i64>);

/// A backend's statements for a receipt, run inside the batch's transaction.
pub(super) trait ReceiptRows {
    type Error;
    /// The delivered and displayed times `member` has recorded for `message`, if any row.
    fn times(&mut self, message: i64, member: &str) -> Result<Option<Times>, Self::Error>;
    /// Stores `member`'s times for `message`, inserting or replacing its row.
    fn store(&mut self, message: i64, member: &str, times: Times) -> Result<(), Self::Error>;
    /// How many members but `author` have `column` (`delivered_at` or `displayed_at`) set
    /// for `message`.
    fn count(&mut self, message: i64, column: &str, author: &str) -> Result<i64, Self::Error>;
}

/// Records receipt `r`, and notes a completion in `completions` when it is the one that makes
/// the message delivered to (or seen by) as many members as were expected.
pub(super) fn record<R: ReceiptRows>(
    rows: &mut R,
    r: &Receipt,
    completions: &mut Vec<Completion>,
) -> Result<(), R::Error> {
    let member = r.member.as_str();
    let (delivered, displayed) = rows.times(r.message, member)?.unwrap_or((None, None));
    let new_delivered = delivered.or(Some(r.at));
    let new_displayed = match r.kind {
        ReceiptKind::Displayed => displayed.or(Some(r.at)),
        ReceiptKind::Delivered => displayed,
    };
    rows.store(r.message, member, (new_delivered, new_displayed))?;
    for (kind, before, after, column) in [
        (
            ReceiptKind::Delivered,
            delivered,
            new_delivered,
            "delivered_at",
        ),
        (
            ReceiptKind::Displayed,
            displayed,
            new_displayed,
            "displayed_at",
        ),
    ] {
        if before.is_none()
            && after.is_some()
            && rows.count(r.message, column, r.author.as_str())? as usize == r.expected
        {
            completions.push(Completion {
                channel: r.channel,
                message: r.message,
                client_id: r.client_id.clone(),
                author: r.author.clone(),
                kind,
            });
        }
    }
    Ok(())
}
