//! The scope-wide clean-up timeout and the [`Builder`] methods that set it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::Builder;
// Shared immutable data, not synchronisation: std's `Arc` even under loom
// (loom's cannot hold a `dyn Fn`).
use crate::sync::WakerArc;

pub(crate) type TimeoutFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

type MakeTimeout = dyn Fn() -> TimeoutFuture + Send + Sync;

/// Makes the timer of a scope's clean-up when the clean-up starts.
#[derive(Clone, Default)]
pub(crate) struct CleanupTimeout {
    make: Option<WakerArc<MakeTimeout>>,
}

impl CleanupTimeout {
    /// The timer for a clean-up that starts now, if a timeout was set.
    pub(crate) fn start(&self) -> Option<TimeoutFuture> {
        self.make.as_ref().map(|make| make())
    }
}

impl fmt::Debug for CleanupTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.make.is_some() {
            "Some(..)"
        } else {
            "None"
        })
    }
}

impl Builder {
    /// Bounds the scope's clean-up (adopted values and deferred futures):
    /// `make_timer` is called when the clean-up starts, and once the future
    /// it returns completes, the clean-up token is cancelled with
    /// [`CancelReason::Deadline`](crate::CancelReason::Deadline). Each clean-up
    /// that is still running, or not yet started, then gets one more poll to
    /// notice it; if it is still pending it is dropped (an adopted value's
    /// sync `Drop` runs) and counted by
    /// [`cleanup_skipped_count`](crate::cleanup_skipped_count).
    ///
    /// Any timer works; it is made when the clean-up starts (as its first
    /// clean-up is taken up) so the clock starts then, each scope made from
    /// this builder gets its own, and a scope with nothing to clean up makes
    /// none.
    ///
    /// ```
    /// use std::future::Future;
    /// use taskscope::{AsyncDrop, Builder};
    ///
    /// struct Stubborn;
    /// impl AsyncDrop for Stubborn {
    ///     fn prepare_drop(&mut self) -> impl Future<Output = ()> + Send + '_ {
    ///         std::future::pending() // ignores cancellation
    ///     }
    /// }
    ///
    /// # futures::executor::block_on(async {
    /// let skipped = taskscope::cleanup_skipped_count();
    /// Builder::new()
    ///     .cleanup_timeout_when(|| std::future::ready(())) // fires at once
    ///     .scope(|s| async move {
    ///         let _value = s.adopt(Stubborn);
    ///     })
    ///     .await; // returns: the stuck clean-up was cut off
    /// assert!(taskscope::cleanup_skipped_count() > skipped);
    /// # });
    /// ```
    ///
    /// # Panics
    ///
    /// A panic of `make_timer`, or of its timer when polled, counts as the
    /// timer firing (the clean-up is never left unbounded); the scope raises
    /// the panic once the clean-up is over.
    pub fn cleanup_timeout_when<F, Fut>(mut self, make_timer: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let make = move || -> TimeoutFuture { Box::pin(make_timer()) };
        self.cleanup_timeout = CleanupTimeout {
            make: Some(WakerArc::new(make)),
        };
        self
    }

    /// Bounds the scope's clean-up to `limit` from its start, with tokio's
    /// timer; see [`cleanup_timeout_when`](Self::cleanup_timeout_when).
    ///
    /// # Panics
    ///
    /// Not here. Outside a tokio runtime with its time driver enabled, tokio
    /// refuses to make the timer when the clean-up starts; that panic is
    /// caught, the clean-up runs as if the timeout had already passed (each
    /// clean-up is cancelled, polled once more, then dropped), and the scope
    /// raises the panic once the clean-up is over. A scope with nothing to
    /// clean up makes no timer, so it needs no runtime.
    #[cfg(feature = "tokio")]
    pub fn cleanup_timeout(self, limit: std::time::Duration) -> Self {
        self.cleanup_timeout_when(move || tokio::time::sleep(limit))
    }
}
