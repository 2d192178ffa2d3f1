//! One branch of a combinator: its future or output, and its lazy token.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::cancel::CancelReason;
use crate::cancel::branch::{self, BranchToken, Parent};

pin_project! {
    #[project = StateProj]
    #[project_replace = StateReplace]
    enum State<F: Future> {
        Running { #[pin] future: F },
        Done { output: F::Output },
        Gone,
    }
}

pin_project! {
    /// A future plus what its combinator knows about it.
    #[doc(hidden)]
    pub struct Branch<F: Future> {
        #[pin]
        state: State<F>,
        token: BranchToken,
        // Whether an output is notable for the combinator: an `Err` for
        // `try_join`, an `Ok` for `race_ok`; unused by the other forms.
        flag: fn(&F::Output) -> bool,
        // Set by the engine on the branch whose output the combinator returns.
        won: bool,
    }
}

/// What one poll of a branch did.
#[doc(hidden)]
pub enum Step {
    Pending,
    /// The branch finished; `flagged` is its `flag` applied to the output.
    Finished {
        flagged: bool,
    },
    /// The branch panicked; its future was dropped.
    Panicked(Box<dyn Any + Send>),
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Pending => f.write_str("Pending"),
            Step::Finished { flagged } => f
                .debug_struct("Finished")
                .field("flagged", flagged)
                .finish(),
            Step::Panicked(_) => f.write_str("Panicked(..)"),
        }
    }
}

/// The type-erased face of a [`Branch`], so one engine drives any mix of
/// futures without allocating (`Pin<&mut dyn BranchDyn>` points into the
/// combinator).
#[doc(hidden)]
pub trait BranchDyn {
    /// Gives the branch its parent token; called once, at the first poll.
    fn start(self: Pin<&mut Self>, parent: &BranchParent);
    fn is_running(&self) -> bool;
    /// Polls the future with its token ambient, catching a panic.
    fn step(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Step;
    /// Cancels the branch's token; the panic of one of its `on_cancel`
    /// callbacks, caught once every callback ran.
    fn cancel(self: Pin<&mut Self>, reason: CancelReason) -> Option<Box<dyn Any + Send>>;
    /// Drops the output (a race's loser) or the future (a select's loser);
    /// the panic of its destructor, caught.
    fn discard(self: Pin<&mut Self>) -> Option<Box<dyn Any + Send>>;
    fn mark_won(self: Pin<&mut Self>);
}

/// The parent token of a combinator's branches, captured at its first poll.
#[doc(hidden)]
#[derive(Debug)]
pub struct BranchParent(Parent);

impl BranchParent {
    pub(crate) fn capture() -> Self {
        BranchParent(branch::capture_parent())
    }
}

impl fmt::Debug for Parent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Parent::Root => "Root",
            Parent::Token(_) => "Token",
            Parent::Task(_) => "Task",
        })
    }
}

impl<F: Future> Branch<F> {
    #[doc(hidden)]
    pub fn new(future: F, flag: fn(&F::Output) -> bool) -> Self {
        Branch {
            state: State::Running { future },
            token: BranchToken::default(),
            flag,
            won: false,
        }
    }

    /// Takes the finished output out, leaving nothing behind.
    #[doc(hidden)]
    pub fn take_output(self: Pin<&mut Self>) -> Option<F::Output> {
        let mut this = self.project();
        if !matches!(this.state.as_mut().project(), StateProj::Done { .. }) {
            return None;
        }
        match this.state.project_replace(State::Gone) {
            StateReplace::Done { output } => Some(output),
            _ => None,
        }
    }

    /// The output, if the engine chose this branch.
    #[doc(hidden)]
    pub fn take_if_won(self: Pin<&mut Self>) -> Option<F::Output> {
        if !self.won {
            return None;
        }
        self.take_output()
    }
}

impl<F: Future> BranchDyn for Branch<F> {
    fn start(self: Pin<&mut Self>, parent: &BranchParent) {
        *self.project().token = BranchToken::new(parent.0.clone());
    }

    fn is_running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }

    fn step(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Step {
        let mut this = self.project();
        let StateProj::Running { future } = this.state.as_mut().project() else {
            return Step::Pending;
        };
        let polled = {
            let _entered = branch::enter(this.token);
            panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx)))
        };
        match polled {
            Ok(Poll::Pending) => Step::Pending,
            Ok(Poll::Ready(output)) => {
                let flagged = (this.flag)(&output);
                // The finished future is dropped here; its destructor may
                // panic, which counts as the branch's panic (the output is
                // written all the same, as assignment completes on unwind,
                // and goes with it).
                let done = AssertUnwindSafe(|| this.state.set(State::Done { output }));
                match panic::catch_unwind(done) {
                    Ok(()) => Step::Finished { flagged },
                    Err(payload) => panicked(this.state, payload),
                }
            }
            Err(payload) => panicked(this.state, payload),
        }
    }

    fn cancel(self: Pin<&mut Self>, reason: CancelReason) -> Option<Box<dyn Any + Send>> {
        if !self.is_running() {
            return None;
        }
        let token = self.project().token;
        panic::catch_unwind(AssertUnwindSafe(|| token.cancel(reason))).err()
    }

    fn discard(self: Pin<&mut Self>) -> Option<Box<dyn Any + Send>> {
        clear(self.project().state)
    }

    fn mark_won(self: Pin<&mut Self>) {
        *self.project().won = true;
    }
}

/// Drops what a branch holds (its future or its output) in place; the
/// panic of a destructor, caught.
fn clear<F: Future>(mut state: Pin<&mut State<F>>) -> Option<Box<dyn Any + Send>> {
    panic::catch_unwind(AssertUnwindSafe(|| state.set(State::Gone))).err()
}

/// The branch panicked with `payload`: what is left of it is dropped, and a
/// panic of that drop is dropped too (the first panic is the one worth
/// re-raising).
fn panicked<F: Future>(state: Pin<&mut State<F>>, payload: Box<dyn Any + Send>) -> Step {
    drop(clear(state));
    Step::Panicked(payload)
}

impl<F: Future> fmt::Debug for Branch<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Running { .. } => "running",
            State::Done { .. } => "done",
            State::Gone => "gone",
        };
        f.debug_struct("Branch")
            .field("state", &state)
            .field("token", &self.token)
            .finish()
    }
}

/// `flag` for the forms that do not look at outputs.
#[doc(hidden)]
pub fn never<T>(_: &T) -> bool {
    false
}

/// `flag` for `try_join`: an error cancels the siblings.
#[doc(hidden)]
pub fn is_err<T, E>(result: &Result<T, E>) -> bool {
    result.is_err()
}

/// `flag` for `race_ok`: the first `Ok` wins.
#[doc(hidden)]
pub fn is_ok<T, E>(result: &Result<T, E>) -> bool {
    result.is_ok()
}

/// The output of a finished branch of a `join`.
#[doc(hidden)]
pub fn output<F: Future>(branch: Pin<&mut Branch<F>>) -> F::Output {
    branch
        .take_output()
        .expect("taskscope: a joined branch's output is taken once, after it finished")
}

/// The `Ok` value of a finished branch of a successful `try_join`.
#[doc(hidden)]
pub fn ok<F, T, E>(branch: Pin<&mut Branch<F>>) -> T
where
    F: Future<Output = Result<T, E>>,
{
    match branch.take_output() {
        Some(Ok(value)) => value,
        _ => unreachable!("taskscope: every branch of a successful try_join returned Ok"),
    }
}

/// The error of the branch that failed first, if this is it.
#[doc(hidden)]
pub fn err_if_won<F, T, E>(branch: Pin<&mut Branch<F>>) -> Option<E>
where
    F: Future<Output = Result<T, E>>,
{
    match branch.take_if_won() {
        Some(Err(error)) => Some(error),
        _ => None,
    }
}
