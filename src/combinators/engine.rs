//! The logic shared by every combinator: what a finished, failed or
//! panicked branch means for its siblings, and when the whole is done.

use std::any::Any;
use std::fmt;
use std::panic;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::branch::{BranchDyn, BranchParent, Step};
use super::wake_slots::{Lease, ReadyMask};
use crate::cancel::CancelReason;
use crate::sync::mutant;

/// Which combinator an [`Engine`] drives.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Join,
    /// A flagged output (an `Err`) cancels the siblings.
    TryJoin,
    /// The first output wins; the losers are cancelled and awaited.
    Race,
    /// The first flagged output (an `Ok`) wins, as in `Race`.
    RaceOk,
    /// The first output wins; the losers are dropped at once.
    Select,
}

/// Indexed access to a combinator's branches.
pub(crate) trait BranchList {
    fn count(&self) -> usize;
    fn branch(&mut self, index: usize) -> Pin<&mut dyn BranchDyn>;
}

impl BranchList for [Pin<&mut dyn BranchDyn>] {
    fn count(&self) -> usize {
        self.len()
    }

    fn branch(&mut self, index: usize) -> Pin<&mut dyn BranchDyn> {
        self[index].as_mut()
    }
}

/// The state of one combinator besides its branches.
#[doc(hidden)]
pub struct Engine {
    mode: Mode,
    name: &'static str,
    started: bool,
    finished: bool,
    running: usize,
    /// The branch whose output is returned: the winner, or the first error.
    chosen: Option<usize>,
    /// The first panic of a branch, re-raised once every branch finished.
    panic: Option<Box<dyn Any + Send>>,
    /// Where the next polling pass starts (fixed forms rotate it).
    next_start: usize,
    /// The fixed forms' per-branch wakers; `None` before the first poll, in
    /// the iterator forms (they have their own), and when no slot was free.
    wakers: Option<Lease>,
    /// The fixed forms owe a pass over every branch: set at the first poll,
    /// cleared once a pass ran, so a first poll that unwinds before its pass
    /// (the task waker's clone is executor code) leaves it owed.
    full_pass_due: bool,
}

impl Engine {
    #[doc(hidden)]
    pub fn new(mode: Mode, name: &'static str) -> Self {
        Engine {
            mode,
            name,
            started: false,
            finished: false,
            running: 0,
            chosen: None,
            panic: None,
            next_start: 0,
            wakers: None,
            full_pass_due: false,
        }
    }

    /// First poll: every branch gets its parent token.
    pub(crate) fn start_if_needed(&mut self, list: &mut (impl BranchList + ?Sized)) {
        assert!(
            !self.finished,
            "taskscope: `{}` polled after it completed; a future must not be polled again once it returned Ready",
            self.name
        );
        if self.started {
            return;
        }
        self.started = true;
        self.running = list.count();
        if self.running == 0 {
            return;
        }
        let parent = BranchParent::capture();
        for index in 0..list.count() {
            list.branch(index).start(&parent);
        }
    }

    /// Accounts for what a poll of branch `index` did. True when this
    /// cancelled the siblings, which should then be polled soon so they
    /// notice.
    pub(crate) fn record(
        &mut self,
        index: usize,
        step: Step,
        list: &mut (impl BranchList + ?Sized),
    ) -> bool {
        match step {
            Step::Pending => false,
            Step::Panicked(payload) => {
                self.running -= 1;
                if self.mode == Mode::Select {
                    // A select drops its losers; the panic needs no wait.
                    self.finished = true;
                    self.drop_others(index, list);
                    panic::resume_unwind(payload);
                }
                if self.panic.is_some() {
                    return false; // the first panic is the one re-raised
                }
                let reason = CancelReason::from_panic(&*payload);
                self.panic = Some(payload);
                self.cancel_others(index, reason, list);
                true
            }
            Step::Finished { flagged } => {
                self.running -= 1;
                let decided = self.chosen.is_some() || self.panic.is_some();
                let wins = match self.mode {
                    Mode::Join => false,
                    Mode::TryJoin => flagged,
                    Mode::Race | Mode::Select => true,
                    Mode::RaceOk => flagged,
                };
                if wins && !decided {
                    self.chosen = Some(index);
                    list.branch(index).mark_won();
                    match self.mode {
                        Mode::Select => {
                            self.drop_others(index, list);
                            self.running = 0;
                            return false;
                        }
                        Mode::TryJoin => {
                            self.cancel_others(index, CancelReason::SiblingFailed, list)
                        }
                        _ => self.cancel_others(index, CancelReason::LostRace, list),
                    }
                    return true;
                }
                // A loser of a race: its output is dropped now, as documented.
                if matches!(self.mode, Mode::Race | Mode::RaceOk) && self.chosen.is_some() {
                    let dropped = list.branch(index).discard();
                    self.keep_first_panic(dropped);
                }
                false
            }
        }
    }

    /// Cancels every branch but `winner`. A panic of one of their tokens'
    /// callbacks is kept (if it is the first) and raised once every branch
    /// finished, like a branch's own panic, rather than unwinding out of
    /// the pass with the other branches' wake-ups taken and not acted on.
    fn cancel_others(
        &mut self,
        winner: usize,
        reason: CancelReason,
        list: &mut (impl BranchList + ?Sized),
    ) {
        for index in (0..list.count()).filter(|&i| i != winner) {
            let panicked = list.branch(index).cancel(reason.clone());
            self.keep_first_panic(panicked);
        }
    }

    /// Drops every branch but `winner`; a destructor's panic is kept as in
    /// `cancel_others`.
    fn drop_others(&mut self, winner: usize, list: &mut (impl BranchList + ?Sized)) {
        for index in (0..list.count()).filter(|&i| i != winner) {
            let panicked = list.branch(index).discard();
            self.keep_first_panic(panicked);
        }
    }

    fn keep_first_panic(&mut self, payload: Option<Box<dyn Any + Send>>) {
        if self.panic.is_none() {
            self.panic = payload;
        }
    }

    /// `Ready(chosen)` once every branch finished; re-raises a branch's panic.
    pub(crate) fn poll_done(&mut self) -> Poll<Option<usize>> {
        if self.running > 0 && !(self.chosen.is_some() && mutant("race_returns_before_losers")) {
            return Poll::Pending;
        }
        self.finished = true;
        self.wakers = None; // the slot is free for the next combinator
        if let Some(payload) = self.panic.take() {
            panic::resume_unwind(payload);
        }
        Poll::Ready(self.chosen)
    }

    /// The index the next fixed-form pass starts at, rotating.
    fn rotate(&mut self, len: usize) -> usize {
        let start = self.next_start % len;
        self.next_start = start + 1;
        start
    }
}

crate::sync::const_thread_local! {
    /// This thread's xorshift state for where races start.
    static TIE_BREAK: std::cell::Cell<u32> = std::cell::Cell::new(0x9E37_79B9);
}

/// Where a fixed form's first pass starts. A race or select made afresh in
/// a loop (one or several per turn, with or without other combinators in
/// between) would otherwise give every tie to its first branch; a counter
/// per thread or per wake slot still does for some loop shapes, so the
/// start is pseudo-random, as in tokio's `select!`. Joins start at the
/// first branch: their order only decides which of two errors in one pass
/// a `try_join` returns, and that stays reproducible.
fn first_start(mode: Mode) -> usize {
    if matches!(mode, Mode::Join | Mode::TryJoin) {
        return 0;
    }
    TIE_BREAK.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        state.set(x);
        x as usize
    })
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("mode", &self.mode)
            .field("running", &self.running)
            .field("chosen", &self.chosen)
            .field("panicked", &self.panic.is_some())
            .finish()
    }
}

/// Drives a fixed-arity combinator: polls the running branches whose waker
/// fired (all of them at the first poll, or when no waker slot was free),
/// starting one further along each time, each with its own waker.
#[doc(hidden)]
pub fn poll_fixed(
    engine: &mut Engine,
    list: &mut [Pin<&mut dyn BranchDyn>],
    cx: &mut Context<'_>,
) -> Poll<Option<usize>> {
    let first = !engine.started;
    engine.start_if_needed(list);
    if !list.is_empty() && engine.running > 0 {
        if first {
            engine.wakers = Lease::acquire();
            engine.full_pass_due = true;
            engine.next_start = first_start(engine.mode);
        }
        let (mut ready, pass) = match &mut engine.wakers {
            Some(lease) => {
                let (ready, pass) = lease.begin_pass(cx);
                (ready, Some(pass))
            }
            None => (ReadyMask::ALL, None),
        };
        if engine.full_pass_due {
            ready = ReadyMask::ALL;
        }
        let start = engine.rotate(list.len());
        // A second pass, over every running branch, only when the first
        // cancelled the siblings, so those polled before the cancellation
        // see it now (a branch whose token was never made has no waker to
        // tell it); that happens at most twice (a verdict, then a panic).
        while poll_pass(engine, list, cx.waker(), start, ready) && engine.running > 0 {
            ready = ReadyMask::ALL;
        }
        engine.full_pass_due = false;
        drop(pass);
    }
    engine.poll_done()
}

/// Polls the running branches in `ready` once each; true if one of them
/// cancelled its siblings.
fn poll_pass(
    engine: &mut Engine,
    list: &mut [Pin<&mut dyn BranchDyn>],
    parent: &Waker,
    start: usize,
    ready: ReadyMask,
) -> bool {
    let mut cancelled_siblings = false;
    for offset in 0..list.len() {
        let index = (start + offset) % list.len();
        if !ready.contains(index) || !list[index].is_running() {
            continue;
        }
        let step = match &engine.wakers {
            Some(lease) => {
                let waker = lease.branch_waker(index);
                list[index].as_mut().step(&mut Context::from_waker(&waker))
            }
            None => list[index].as_mut().step(&mut Context::from_waker(parent)),
        };
        cancelled_siblings |= engine.record(index, step, list);
    }
    cancelled_siblings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::combinators::branch::{Branch, never};
    use crate::test_util::CountingWaker;
    use std::cell::Cell;
    use std::future::poll_fn;
    use std::pin::pin;

    #[test]
    fn a_branch_polled_before_the_winner_sees_the_cancel_in_the_same_poll() {
        let saw_cancel = Cell::new(false);
        let early = pin!(Branch::new(
            poll_fn(|_| {
                if crate::is_cancelled() {
                    saw_cancel.set(true);
                    return Poll::Ready(0);
                }
                Poll::Pending
            }),
            never,
        ));
        let winner = pin!(Branch::new(std::future::ready(1), never));
        let mut list: [Pin<&mut dyn BranchDyn>; 2] = [early, winner];
        let mut engine = Engine::new(Mode::Race, "test");
        let waker = CountingWaker::new();
        assert_eq!(
            poll_fixed(&mut engine, &mut list, &mut waker.context()),
            Poll::Ready(Some(1))
        );
        assert!(saw_cancel.get());
    }

    #[test]
    #[should_panic(expected = "`test` polled after it completed")]
    fn an_engine_refuses_a_poll_after_completion() {
        let mut engine = Engine::new(Mode::Join, "test");
        let waker = CountingWaker::new();
        let mut list: [Pin<&mut dyn BranchDyn>; 0] = [];
        assert!(poll_fixed(&mut engine, &mut list, &mut waker.context()).is_ready());
        let _ = poll_fixed(&mut engine, &mut list, &mut waker.context());
    }
}
