//! Voluntary cancellation: hierarchical tokens, reasons and ambient access.

pub(crate) mod ambient;
pub(crate) mod branch;
mod cancel_when;
mod cancellable_io;
mod cancellable_stream;
pub(crate) mod each;
mod ext;
pub(crate) mod lazy;
mod reason;
mod shield;
mod token;
#[cfg(feature = "tokio-util")]
mod tokio_util_bridge;
mod until_cancelled;
mod when_cancelled;

pub use ambient::{cancelled, checkpoint, current_token, is_cancelled};
pub use cancel_when::{CancelWhen, cancel_when};
pub use cancellable_io::CancellableIo;
pub use cancellable_stream::{CancelStreamExt, CancellableStream};
pub use ext::CancelExt;
pub use reason::{CancelReason, Cancelled};
pub use shield::{Shield, shield};
pub use token::{CancelOnDrop, CancelToken, OnCancel};
#[cfg(feature = "tokio-util")]
pub use tokio_util_bridge::TokioUtilBridge;
pub use until_cancelled::UntilCancelled;
pub use when_cancelled::WhenCancelled;
