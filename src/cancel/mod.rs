//! Voluntary cancellation: hierarchical tokens, reasons and ambient access.

pub(crate) mod ambient;
pub(crate) mod branch;
pub(crate) mod lazy;
mod reason;
mod token;
mod when_cancelled;

pub use ambient::{cancelled, checkpoint, current_token, is_cancelled};
pub use reason::{CancelReason, Cancelled};
pub use token::{CancelOnDrop, CancelToken, OnCancel};
pub use when_cancelled::WhenCancelled;
