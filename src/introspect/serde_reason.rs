//! Cancellation reasons in serialized snapshots: their `Display` text.

use serde::Serializer;

use crate::cancel::CancelReason;

/// Serializes an optional reason as its text (`CancelReason` carries
/// arbitrary user values, which serde cannot see into).
pub(crate) fn serialize<S: Serializer>(
    reason: &Option<CancelReason>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match reason {
        Some(reason) => serializer.collect_str(reason),
        None => serializer.serialize_none(),
    }
}
