//! [`cancel_when`]: cancel a future, or a whole scope, when another future completes.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::ambient::{self, Ambient};
use super::reason::CancelReason;
use super::token::CancelToken;

/// Runs `future` and cancels it with [`CancelReason::Deadline`] when
/// `deadline` completes first; any future works as a timer.
///
/// At its first poll the adapter makes a token, a child of the ambient one
/// (see [`current_token`](crate::current_token)), and makes it current while
/// it polls `future`: code inside sees the deadline through
/// [`checkpoint`](crate::checkpoint), [`cancelled`](crate::cancelled) or
/// scopes it creates. Cancellation is voluntary: `future` keeps being polled
/// after the deadline and its own output is returned, so it can finish
/// through its ordinary error paths. `deadline` is dropped at the first
/// poll that finds it fired, the token cancelled otherwise, or `future`
/// finished (the adapter does not wait on its token, so a cancellation
/// from elsewhere drops the deadline at the adapter's next poll).
///
/// ```
/// # futures::executor::block_on(async {
/// let (fire, deadline) = futures::channel::oneshot::channel::<()>();
/// fire.send(()).unwrap(); // a deadline that has already passed
/// let steps = taskscope::cancel_when(
///     async {
///         let mut steps = 0;
///         while taskscope::checkpoint().is_ok() {
///             steps += 1;
///         }
///         steps
///     },
///     deadline,
/// )
/// .await;
/// assert_eq!(steps, 0);
/// # });
/// ```
///
/// The deadline is polled first. When both are ready at the same poll,
/// `future` sees the cancellation (where `tokio::time::timeout` would let it
/// win), so a deadline that has already passed cancels before `future`
/// starts, as above.
///
/// A scope future's own [`ScopeFuture::cancel_when`](crate::ScopeFuture::cancel_when)
/// cancels the scope's token directly. Wrapping a scope future here works
/// too, boxed or not, as long as nothing polled it before: a scope follows
/// the token of whatever first polls it (see [`scope`](crate::scope)), here
/// this adapter's.
///
/// # Cancel safety
///
/// Dropping the adapter drops `future` at its current await point; it is as
/// cancel-safe as `future` is.
///
/// # Panics
///
/// Panics of `future` and `deadline` propagate. Panics if polled after it
/// completed or after `future` or `deadline` panicked.
pub fn cancel_when<F, D>(future: F, deadline: D) -> CancelWhen<F, D>
where
    F: Future,
    D: Future,
{
    CancelWhen::new(future, deadline, None, false)
}

pin_project! {
    /// The future of [`cancel_when`] and its kin: `future`'s output, with
    /// its token cancelled once `deadline` completes.
    ///
    /// # Cancel safety
    ///
    /// Dropping it drops `future` (and `deadline`) where they stand: as
    /// cancel-safe as `future`.
    ///
    /// # Panics
    ///
    /// Panics of `future` and `deadline` propagate. Panics if polled after
    /// it completed or after `future` or `deadline` panicked.
    #[must_use = "futures do nothing unless polled"]
    pub struct CancelWhen<F, D> {
        #[pin]
        future: F,
        #[pin]
        deadline: Option<D>,
        // `None` until the first poll, except for scope futures, which
        // bring their own token.
        token: Option<CancelToken>,
        // The token is a scope's own: the scope makes it current for its
        // body itself, and making it current around the scope future
        // would hide the poller's token from the scope's first poll
        // (src/scope/poller_link.rs).
        scope_owned: bool,
        done: bool,
    }
}

impl<F, D> CancelWhen<F, D> {
    pub(crate) fn new(
        future: F,
        deadline: D,
        token: Option<CancelToken>,
        scope_owned: bool,
    ) -> Self {
        CancelWhen {
            future,
            deadline: Some(deadline),
            token,
            scope_owned,
            done: false,
        }
    }

    /// The token the deadline cancels, once it exists (after the first poll,
    /// or from the start for a scope future).
    pub fn token(&self) -> Option<&CancelToken> {
        self.token.as_ref()
    }
}

/// `cancel_after` and `cancel_at` in terms of the `cancel_when` of the
/// impl they are expanded in, with its cancel-safety sentence.
macro_rules! tokio_deadlines {
    ($cancel_safety:literal) => {
        /// [`cancel_when`](Self::cancel_when) with a tokio timer that fires
        /// `duration` from now (the clock starts when this is called).
        ///
        /// tokio's timer fires on its millisecond tick, not at its first
        /// poll: on a running clock a `duration` of zero does not cancel
        /// before the future is first polled, but on a paused one
        /// (`tokio::time::pause`, `start_paused`) its tick has come and it
        /// does; rely on neither. To cancel before it starts, use
        /// `cancel_when(std::future::ready(()))`.
        ///
        /// # Cancel safety
        ///
        #[doc = $cancel_safety]
        ///
        /// # Panics
        ///
        /// If called outside a tokio runtime with its time driver enabled
        /// (tokio's rule for making a timer); otherwise as
        /// [`cancel_when`](Self::cancel_when).
        #[cfg(feature = "tokio")]
        #[track_caller]
        pub fn cancel_after(
            self,
            duration: std::time::Duration,
        ) -> CancelWhen<Self, tokio::time::Sleep> {
            self.cancel_when(tokio::time::sleep(duration))
        }

        /// [`cancel_when`](Self::cancel_when) with a tokio timer that fires
        /// at `deadline`.
        ///
        /// # Cancel safety
        ///
        #[doc = $cancel_safety]
        ///
        /// # Panics
        ///
        /// If called outside a tokio runtime with its time driver enabled
        /// (tokio's rule for making a timer); otherwise as
        /// [`cancel_when`](Self::cancel_when).
        #[cfg(feature = "tokio")]
        #[track_caller]
        pub fn cancel_at(
            self,
            deadline: tokio::time::Instant,
        ) -> CancelWhen<Self, tokio::time::Sleep> {
            self.cancel_when(tokio::time::sleep_until(deadline))
        }
    };
}

impl<F: Future, D: Future> CancelWhen<F, D> {
    /// A second deadline on the same token: the earlier of the two cancels.
    ///
    /// An inherent method, so that a deadline chained onto a scope future's
    /// deadline (`scope(..).cancel_after(a).cancel_after(b)`) cancels the
    /// scope's own token directly. [`CancelExt::cancel_when`](crate::CancelExt::cancel_when)
    /// would reach the scope too, through a new token that the scope
    /// follows from its first poll on (see [`scope`](crate::scope)). On
    /// other futures the two behave alike: before the first poll there is
    /// no token yet, and the new adapter makes one whose child the inner
    /// one becomes.
    ///
    /// # Cancel safety
    ///
    /// As cancel-safe as `self`.
    ///
    /// # Panics
    ///
    /// Panics of `self` and `deadline` propagate. The returned future panics
    /// if polled after it completed or after its inner future or a deadline
    /// panicked.
    pub fn cancel_when<D2: Future>(self, deadline: D2) -> CancelWhen<Self, D2> {
        let (token, scope_owned) = (self.token.clone(), self.scope_owned);
        CancelWhen::new(self, deadline, token, scope_owned)
    }

    tokio_deadlines!("As cancel-safe as `self`.");
}

impl<F: Future, D: Future> Future for CancelWhen<F, D> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        assert!(
            !*this.done,
            "taskscope: a cancel_when (or cancel_after, cancel_at) future polled after it \
             completed (or panicked); await it once"
        );
        // Set while `future` and `deadline` are polled, so that a panic of
        // either leaves it set.
        *this.done = true;
        let token = this.token.get_or_insert_with(|| {
            ambient::current_token_in_task().map_or_else(CancelToken::new, |parent| parent.child())
        });
        if let Some(deadline) = this.deadline.as_mut().as_pin_mut() {
            if token.is_cancelled() {
                // Cancelled otherwise: the timer has nothing left to do.
                this.deadline.set(None);
            } else if deadline.poll(cx).is_ready() {
                this.deadline.set(None);
                token.cancel_with(CancelReason::Deadline);
            }
        }
        let entered = (!*this.scope_owned).then(|| ambient::enter(Ambient::Token(token.clone())));
        let output = this.future.poll(cx);
        drop(entered);
        if output.is_ready() {
            this.deadline.set(None);
        }
        *this.done = output.is_ready();
        output
    }
}

impl<F, D> fmt::Debug for CancelWhen<F, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelWhen")
            .field("token", &self.token)
            .field("deadline_pending", &self.deadline.is_some())
            .finish_non_exhaustive()
    }
}

/// `cancel_when` (and with tokio `cancel_after`, `cancel_at`) as inherent
/// methods of a scope future: they cancel that scope's own token.
macro_rules! scope_deadlines {
    ($scope:literal, [$($generics:tt)*], $ty:ty, [$($bounds:tt)*]) => {
        impl<$($generics)*> $ty
        where
            $($bounds)*
        {
            #[doc = concat!("Cancels this ", $scope, " with [`CancelReason::Deadline`] when `deadline` completes.")]
            ///
            /// The scope's token is cancelled (voluntarily: the body and every
            /// child still finish and are joined); `deadline` is dropped
            /// once it fired or the scope finished, so it never prolongs the
            /// scope. See [`cancel_when`](crate::cancel_when).
            ///
            /// # Cancel safety
            ///
            /// Dropping the result drops the scope future, with the effect
            /// described for [`scope`](crate::scope).
            ///
            /// # Panics
            ///
            /// As the scope future; panics of `deadline` propagate.
            pub fn cancel_when<D: Future>(self, deadline: D) -> CancelWhen<Self, D> {
                let token = self.token().clone();
                CancelWhen::new(self, deadline, Some(token), true)
            }

            tokio_deadlines!(
                "As [`cancel_when`](Self::cancel_when): dropping the result drops the \
                 scope future, with the effect described for [`scope`](crate::scope)."
            );
        }
    };
}

scope_deadlines!("scope", ['env, Fut], crate::ScopeFuture<'env, Fut>, [Fut: Future]);
scope_deadlines!("scope", ['env, Fut], crate::LocalScopeFuture<'env, Fut>, [Fut: Future]);
scope_deadlines!(
    "scope",
    ['env, Fut, R, E],
    crate::TryScopeFuture<'env, Fut, R, E>,
    [Fut: Future<Output = Result<R, E>>, E: fmt::Debug]
);
scope_deadlines!(
    "scope",
    ['env, Fut, R, E],
    crate::LocalTryScopeFuture<'env, Fut, R, E>,
    [Fut: Future<Output = Result<R, E>>, E: fmt::Debug]
);

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::test_util::CountingWaker;

    #[test]
    fn the_deadline_cancels_the_token_made_current_for_the_future() {
        let (fire, deadline) = futures::channel::oneshot::channel::<()>();
        let mut fut = Box::pin(cancel_when(
            std::future::poll_fn(|_| match crate::checkpoint() {
                Ok(()) => Poll::Pending,
                Err(cancelled) => Poll::Ready(cancelled),
            }),
            deadline,
        ));
        let waker = CountingWaker::new();
        assert!(fut.as_mut().poll(&mut waker.context()).is_pending());
        let token = fut.token().cloned().expect("made at the first poll");
        assert!(!token.is_cancelled());
        fire.send(()).unwrap();
        assert_eq!(waker.count(), 1, "the deadline wakes the adapter");
        match fut.as_mut().poll(&mut waker.context()) {
            Poll::Ready(cancelled) => assert!(matches!(cancelled.reason(), CancelReason::Deadline)),
            Poll::Pending => panic!("the future saw the deadline through checkpoint"),
        }
    }

    #[test]
    fn a_second_deadline_on_a_scope_cancels_the_scopes_own_token() {
        let (fire, second) = futures::channel::oneshot::channel::<()>();
        let scoped = crate::scope(|_| async { crate::cancelled().await.reason().clone() });
        let scope_token = scoped.token().clone();
        let mut fut = Box::pin(
            scoped
                .cancel_when(std::future::pending::<()>())
                .cancel_when(second),
        );
        let waker = CountingWaker::new();
        assert!(fut.as_mut().poll(&mut waker.context()).is_pending());
        fire.send(()).unwrap();
        match fut.as_mut().poll(&mut waker.context()) {
            Poll::Ready(reason) => assert!(matches!(reason, CancelReason::Deadline)),
            Poll::Pending => panic!("the second deadline did not reach the scope"),
        }
        assert!(scope_token.is_cancelled());
    }

    /// Polls `fut`, whose body waits for its cancellation, with an already
    /// passed deadline chained on; the reason its body saw.
    fn reason_seen_under_a_passed_deadline<F>(fut: F) -> Option<CancelReason>
    where
        F: Future<Output = Result<CancelReason, ()>>,
    {
        let mut fut = Box::pin(fut);
        let waker = CountingWaker::new();
        (0..4).find_map(|_| match fut.as_mut().poll(&mut waker.context()) {
            Poll::Ready(seen) => seen.ok(),
            Poll::Pending => None,
        })
    }

    /// With `CancelExt` imported (its `cancel_when` would make a token of
    /// its own, which reaches the scope only through the poller link, as
    /// `Parent(Deadline)`), each scope future's own method must win.
    #[test]
    fn every_scope_future_takes_a_chained_deadline_on_its_own_token() {
        #[allow(unused_imports)]
        use crate::CancelExt as _;
        let body = || async { Ok(crate::cancelled().await.reason().clone()) };
        let passed = || std::future::ready(());
        let seen = [
            reason_seen_under_a_passed_deadline(crate::scope(|_| body()).cancel_when(passed())),
            reason_seen_under_a_passed_deadline(
                crate::local_scope(|_| body()).cancel_when(passed()),
            ),
            reason_seen_under_a_passed_deadline(crate::try_scope(|_| body()).cancel_when(passed())),
            reason_seen_under_a_passed_deadline(
                crate::local_try_scope(|_| body()).cancel_when(passed()),
            ),
        ];
        for (flavour, seen) in ["scope", "local_scope", "try_scope", "local_try_scope"]
            .iter()
            .zip(seen)
        {
            assert!(
                matches!(seen, Some(CancelReason::Deadline)),
                "{flavour}: the body saw {seen:?}"
            );
        }
    }

    #[test]
    fn the_token_is_a_child_of_the_ambient_one() {
        let outer = CancelToken::new();
        let mut fut = Box::pin(cancel_when(
            std::future::pending::<()>(),
            std::future::pending::<()>(),
        ));
        let waker = CountingWaker::new();
        {
            let _entered = ambient::enter(Ambient::Token(outer.clone()));
            assert!(fut.as_mut().poll(&mut waker.context()).is_pending());
        }
        outer.cancel();
        assert!(fut.token().unwrap().is_cancelled());
    }

    #[test]
    fn the_deadline_is_dropped_when_the_future_finishes_first() {
        let (_fire, deadline) = futures::channel::oneshot::channel::<()>();
        let mut fut = Box::pin(cancel_when(async { 7 }, deadline));
        let waker = CountingWaker::new();
        assert_eq!(fut.as_mut().poll(&mut waker.context()), Poll::Ready(7));
        assert!(fut.deadline.is_none());
        assert!(!fut.token().unwrap().is_cancelled());
    }
}
