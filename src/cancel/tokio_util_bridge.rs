//! Conversions between [`CancelToken`] and `tokio_util`'s `CancellationToken`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use ::tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use pin_project_lite::pin_project;

use super::reason::CancelReason;
use super::token::CancelToken;
use super::when_cancelled::WhenCancelled;

impl CancelToken {
    /// A new root token that follows `ct`: cancelled (with
    /// [`CancelReason::Parent`]`(Requested)`) once `ct` is, as long as the
    /// returned [`TokioUtilBridge`] is polled.
    ///
    /// `CancellationToken` has no callback to hook into, so something must
    /// wait on `ct`: that is the bridge. If `ct` is already cancelled, the
    /// token is returned cancelled and the bridge is finished.
    ///
    /// To hang a scope under an application's shutdown token, let the
    /// scope future poll the bridge for exactly as long as it runs:
    ///
    /// ```
    /// use taskscope::{Builder, CancelToken};
    /// use tokio_util::sync::CancellationToken;
    ///
    /// # futures::executor::block_on(async {
    /// let shutdown = CancellationToken::new();
    /// let (parent, bridge) = CancelToken::from_tokio_util(&shutdown);
    /// let trigger = shutdown.clone();
    /// let stopped = Builder::new()
    ///     .parent(&parent)
    ///     .scope(|s| async move {
    ///         trigger.cancel(); // the application shuts down
    ///         taskscope::cancelled().await;
    ///         s.token().reason()
    ///     })
    ///     // The bridge ends (cancelling `parent`) when `shutdown` fires, or
    ///     // is dropped with the scope: nothing outlives the scope.
    ///     .cancel_when(bridge)
    ///     .await;
    /// assert!(stopped.is_some());
    /// # });
    /// ```
    ///
    /// Or spawn the bridge on a runtime (`tokio::spawn(bridge)`): it ends
    /// when either token is cancelled, and lives until then.
    ///
    /// # Cancel safety
    ///
    /// The bridge is cancel-safe: dropping it loses nothing but the
    /// forwarding, so the token is no longer cancelled when `ct` is
    /// afterwards. Dropping the returned token does not stop the bridge (it
    /// holds a clone) nor touch `ct`.
    ///
    /// # Panics
    ///
    /// This call does not panic: the token it cancels when `ct` is already
    /// cancelled is new and has no [`on_cancel`](Self::on_cancel)
    /// callbacks. For the bridge's polls, see [`TokioUtilBridge`].
    pub fn from_tokio_util(ct: &CancellationToken) -> (CancelToken, TokioUtilBridge) {
        let token = CancelToken::new();
        if ct.is_cancelled() {
            token.cancel_with(from_tokio_util_reason());
        }
        let bridge = TokioUtilBridge {
            source: ct.clone().cancelled_owned(),
            target_cancelled: token.cancelled(),
            target: token.clone(),
        };
        (token, bridge)
    }

    /// A `CancellationToken` cancelled when this token is.
    ///
    /// No bridge is needed this way: it registers an
    /// [`on_cancel`](Self::on_cancel) callback that lives as long as this
    /// token's node (until it is cancelled or every handle and descendant is
    /// gone). Each call registers one more callback, so call it once and
    /// clone the result. Cancelling the returned token does not cancel `self`.
    ///
    /// Keep a handle of `self` (or of a token below it) for as long as the
    /// returned token must follow: once the last is gone, the node and its
    /// callback go too, and a later cancel of an ancestor no longer reaches
    /// the returned token. So `parent.child().to_tokio_util()` never fires;
    /// call `parent.to_tokio_util()` instead:
    ///
    /// ```
    /// let parent = taskscope::CancelToken::new();
    /// let forgotten = parent.child().to_tokio_util(); // the child is dropped here
    /// let followed = parent.to_tokio_util();
    /// parent.cancel();
    /// assert!(followed.is_cancelled());
    /// assert!(!forgotten.is_cancelled());
    /// ```
    pub fn to_tokio_util(&self) -> CancellationToken {
        let ct = CancellationToken::new();
        let target = ct.clone();
        self.on_cancel(move |_| target.cancel()).forget();
        ct
    }
}

fn from_tokio_util_reason() -> CancelReason {
    CancelReason::Requested.inherited()
}

pin_project! {
    /// Carries a `tokio_util` `CancellationToken`'s cancellation into a
    /// [`CancelToken`]; made by [`CancelToken::from_tokio_util`].
    ///
    /// Completes once the source is cancelled (after cancelling the target)
    /// or once the target is cancelled by other means. Needs no runtime.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping it only stops the forwarding.
    ///
    /// # Panics
    ///
    /// If an `on_cancel` callback of the target panics, the panic surfaces
    /// from the poll that cancelled it. Polling it again once it completed
    /// does not panic: the target stays cancelled, and it returns
    /// `Ready(())` again, as [`WhenCancelled`] does.
    #[must_use = "futures do nothing unless polled"]
    pub struct TokioUtilBridge {
        #[pin]
        source: WaitForCancellationFutureOwned,
        target: CancelToken,
        target_cancelled: WhenCancelled,
    }
}

impl Future for TokioUtilBridge {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if Pin::new(this.target_cancelled).poll(cx).is_ready() {
            return Poll::Ready(());
        }
        std::task::ready!(this.source.poll(cx));
        this.target.cancel_with(from_tokio_util_reason());
        Poll::Ready(())
    }
}

impl fmt::Debug for TokioUtilBridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokioUtilBridge")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}
