//! Running a scope's clean-up stack: shielded, one at a time, bounded by the timeout.

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::enclosing;
use super::queue::{CleanupQueue, Phase, drop_caught};
use super::skipped::{Skip, note_skipped};
use super::timeout::TimeoutFuture;
use crate::cancel::ambient::{self, Ambient};
use crate::cancel::{CancelReason, CancelToken};
use crate::scope::POLL_BUDGET;
use crate::scope::shared::ScopeShared;
use crate::scope::task::{PanicBox, TaskExit};

/// The runner's state, kept in the queue between two polls of the scope.
pub(crate) struct Run<T: ?Sized> {
    /// Not under the scope's token: the scope's cancellation does not reach
    /// clean-up (its whole point is to run after a cancelled scope); only
    /// the timeout does, and the enclosing clean-up's, for a scope made
    /// inside one (`enclosing`).
    token: CancelToken,
    timer: Option<TimeoutFuture>,
    /// Made with the first clean-up, so that a scope with nothing to clean
    /// up makes no timer (and needs no runtime for one).
    timer_made: bool,
    timed_out: bool,
    /// The clean-up being run, between two polls.
    current: Option<Pin<Box<T>>>,
}

impl<T: ?Sized> Run<T> {
    /// Parts that run user code when dropped, so that the caller drops them
    /// outside the queue's lock.
    pub(super) fn dismantle(self) -> (Option<Pin<Box<T>>>, Option<TimeoutFuture>) {
        (self.current, self.timer)
    }
}

impl<T: ?Sized + Future<Output = TaskExit>> CleanupQueue<T> {
    /// Runs the clean-up stack, last in first out, one clean-up at a time.
    ///
    /// Called by the scope's driver once the body and every child finished;
    /// `Ready` once the stack is empty. Panics of clean-ups are recorded in
    /// `shared` for the driver to re-raise, and never stop the others.
    pub(crate) fn poll_run(&self, cx: &mut Context<'_>, shared: &ScopeShared) -> Poll<()> {
        let parked = {
            let mut state = self.state.lock();
            match state.phase {
                Phase::Open => {
                    state.phase = Phase::Running;
                    None
                }
                Phase::Running => state.run.take(),
                Phase::Finished | Phase::Abandoning | Phase::Abandoned => return Poll::Ready(()),
            }
        };
        let mut run = match parked {
            Some(run) => run,
            None => self.start(shared),
        };
        let mut budget = POLL_BUDGET;
        loop {
            run.poll_timer(cx, shared);
            let mut task = match run.current.take() {
                Some(task) => task,
                None => match self.pop_or_finish() {
                    Some(task) => {
                        // A subscriber's panic must not lose the popped
                        // clean-up (`ScopeShared::traced`).
                        #[cfg(feature = "tracing")]
                        shared.traced(|| {
                            tracing::debug!("taskscope: running a clean-up of the scope")
                        });
                        if !run.timer_made {
                            run.timer_made = true;
                            run.timer = self.make_timer(shared);
                            run.poll_timer(cx, shared);
                        }
                        task
                    }
                    None => break,
                },
            };
            let exit = {
                let _inside = run.enter();
                task.as_mut().poll(cx)
            };
            match exit {
                Poll::Ready(exit) => {
                    drop(task);
                    if let TaskExit::Panicked(panic) = exit {
                        #[cfg(feature = "tracing")]
                        shared.traced(|| {
                            let (scope, name) = shared.info().event_fields();
                            tracing::error!(scope, name, reason = %panic.reason(), "taskscope: a clean-up panicked");
                        });
                        shared.record_panic(panic);
                    }
                }
                Poll::Pending if run.timed_out => {
                    // It had its poll after the cancellation: cut it off. Its
                    // sync drops still see the clean-up token as current.
                    note_skipped(Skip::TimedOut);
                    let _inside = run.enter();
                    if let Some(payload) = drop_caught(task) {
                        shared.record_panic(PanicBox::new(payload));
                    }
                }
                Poll::Pending => {
                    run.current = Some(task);
                    self.park(run);
                    return Poll::Pending;
                }
            }
            budget -= 1;
            if budget == 0 {
                self.park(run);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        let (_, timer) = run.dismantle();
        if let Some(payload) = drop_caught(timer) {
            shared.record_panic(PanicBox::new(payload));
        }
        Poll::Ready(())
    }

    fn start(&self, shared: &ScopeShared) -> Run<T> {
        let enclosing = shared.enclosing_cleanup();
        Run {
            token: enclosing.map_or_else(CancelToken::new, CancelToken::child),
            timer: None,
            timer_made: false,
            timed_out: false,
            current: None,
        }
    }

    /// The timeout's timer, if one was set, made as the first clean-up
    /// starts (the clock starts then).
    fn make_timer(&self, shared: &ScopeShared) -> Option<TimeoutFuture> {
        match panic::catch_unwind(AssertUnwindSafe(|| self.timeout.start())) {
            Ok(timer) => timer,
            Err(payload) => {
                shared.record_panic(PanicBox::new(payload));
                // A timer that cannot be made must not leave clean-up unbounded.
                let fired: TimeoutFuture = Box::pin(std::future::ready(()));
                Some(fired)
            }
        }
    }

    fn park(&self, run: Run<T>) {
        self.state.lock().run = Some(run);
    }
}

impl<T: ?Sized> Run<T> {
    /// Makes the clean-up token current, and the clean-up the one polled on
    /// this thread (`enclosing`), until the guards are dropped: for its
    /// polls and for the sync drops of one cut off.
    fn enter(&self) -> (ambient::Entered, enclosing::Polling) {
        let entered = ambient::enter(Ambient::Token(self.token.clone()));
        let task = ambient::current_task();
        (entered, enclosing::polling(&self.token, task.as_ref()))
    }

    /// Polls the timer; when it fires, cancels the clean-up token.
    fn poll_timer(&mut self, cx: &mut Context<'_>, shared: &ScopeShared) {
        let Some(timer) = self.timer.as_mut() else {
            return;
        };
        match panic::catch_unwind(AssertUnwindSafe(|| timer.as_mut().poll(cx))) {
            Ok(Poll::Pending) => return,
            Ok(Poll::Ready(())) => {}
            Err(payload) => shared.record_panic(PanicBox::new(payload)),
        }
        self.timed_out = true;
        if let Some(payload) = drop_caught(self.timer.take()) {
            shared.record_panic(PanicBox::new(payload));
        }
        #[cfg(feature = "tracing")]
        shared.traced(|| {
            let (scope, name) = shared.info().event_fields();
            tracing::warn!(
                scope,
                name,
                "taskscope: the scope's clean-up timeout fired; cancelling its clean-up"
            );
        });
        let token = &self.token;
        let cancel = AssertUnwindSafe(|| token.cancel_with(CancelReason::Deadline));
        if let Err(payload) = panic::catch_unwind(cancel) {
            shared.record_panic(PanicBox::new(payload));
        }
    }
}
