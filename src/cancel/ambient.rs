//! The current token of the running task, reachable without passing it down.
//!
//! A scope makes a token current for the thread while it polls: its own
//! token while it polls its body, a child's token while it polls that child.
//! Code deep inside a task can then call [`current_token`], [`cancelled`] or
//! [`checkpoint`].
//!
//! # Where it does not reach
//!
//! The ambient token is a property of the *poll*, not of the future: work
//! handed to another executor (`tokio::spawn`, a thread pool) is polled by
//! that executor, outside the scope, and sees no ambient token. Capture
//! `current_token()` before handing the work over and pass it along.

use std::cell::RefCell;

use super::branch::BranchToken;
use super::reason::Cancelled;
use super::token::CancelToken;
use super::when_cancelled::WhenCancelled;
use crate::scope::task::TaskHeader;
use crate::sync::{WakerArc, thread_local};

/// What a scope or combinator made current for the poll in progress.
pub(crate) enum Ambient {
    Token(CancelToken),
    /// A scope's child: its token is made on first demand.
    Task(WakerArc<TaskHeader>),
    /// A combinator's branch: moved in for the poll and back out after it,
    /// so a token made on demand during the poll is kept (`cancel::branch`).
    Branch(BranchToken),
}

#[cfg(not(loom))]
thread_local! {
    static CURRENT: RefCell<Option<Ambient>> = const { RefCell::new(None) };
}

// loom's `thread_local!` (edition 2018 `expr` fragments) rejects a `const`
// block initialiser.
#[cfg(loom)]
thread_local! {
    static CURRENT: RefCell<Option<Ambient>> = RefCell::new(None);
}

/// Restores the previous ambient token when dropped, also on unwind.
#[must_use = "the ambient token is restored as soon as the guard is dropped"]
pub(crate) struct Entered {
    previous: Option<Ambient>,
    /// `exit` already restored `previous`; the destructor must not again.
    exited: bool,
}

/// Makes `ambient` current until the returned guard is dropped.
pub(crate) fn enter(ambient: Ambient) -> Entered {
    let previous = CURRENT.with(|current| current.replace(Some(ambient)));
    Entered {
        previous,
        exited: false,
    }
}

impl Entered {
    /// Restores the previous ambient token and gives back the one entered.
    pub(crate) fn exit(mut self) -> Option<Ambient> {
        let restored = self.previous.take();
        self.exited = true;
        CURRENT.with(|current| current.replace(restored))
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        if self.exited {
            return;
        }
        let restored = self.previous.take();
        // Dropped outside the borrow: dropping a token may run arbitrary code.
        let replaced = CURRENT.with(|current| current.replace(restored));
        drop(replaced);
    }
}

fn with_current<R>(f: impl FnOnce(Option<&Ambient>) -> R) -> R {
    CURRENT.with(|current| f(current.borrow().as_ref()))
}

/// `f` must not run user code: it holds the slot borrowed.
pub(crate) fn with_current_mut<R>(f: impl FnOnce(Option<&mut Ambient>) -> R) -> R {
    CURRENT.with(|current| f(current.borrow_mut().as_mut()))
}

/// Swaps the ambient slot's content; the caller drops what it gets back.
pub(crate) fn replace_current(ambient: Option<Ambient>) -> Option<Ambient> {
    CURRENT.with(|current| current.replace(ambient))
}

/// The token of the task being polled on this thread.
///
/// Inside a scope's child it is that child's own token; inside a scope's
/// body, the scope's token. Outside every scope there is nothing to inherit,
/// so it returns a fresh token that nobody else holds and that is never
/// cancelled unless you cancel it.
///
/// ```
/// # futures::executor::block_on(async {
/// let seen = taskscope::scope(|s| async move {
///     s.cancel();
///     taskscope::current_token().is_cancelled()
/// })
/// .await;
/// assert!(seen);
/// # });
/// ```
pub fn current_token() -> CancelToken {
    enum Found {
        Token(CancelToken),
        Task(WakerArc<TaskHeader>),
        Nothing,
    }
    // Making a branch's token runs no user code, so it may happen in place.
    let found = with_current_mut(|ambient| match ambient {
        Some(Ambient::Token(token)) => Found::Token(token.clone()),
        Some(Ambient::Task(task)) => Found::Task(task.clone()),
        Some(Ambient::Branch(branch)) => Found::Token(branch.token()),
        None => Found::Nothing,
    });
    match found {
        Found::Token(token) => token,
        Found::Task(task) => task.token().token(),
        Found::Nothing => CancelToken::new(),
    }
}

/// The token a new scope should hang under, if any task is being polled.
pub(crate) fn parent_for_new_scope() -> Option<CancelToken> {
    with_current(|ambient| ambient.is_some()).then(current_token)
}

/// Completes once the current task is cancelled; see [`current_token`].
///
/// # Cancel safety
///
/// Cancel-safe: dropping it loses nothing.
pub fn cancelled() -> WhenCancelled {
    current_token().cancelled()
}

/// `Err(Cancelled)` once the current task is cancelled, `Ok(())` before.
///
/// Cheap (an atomic load or two): call it between units of work and let `?`
/// carry the error out through the task's ordinary error path.
///
/// ```
/// # futures::executor::block_on(async {
/// let done = taskscope::scope(|s| async move {
///     let worker = s.spawn(async {
///         let mut done = 0;
///         for _item in 0..10 {
///             if taskscope::checkpoint().is_err() {
///                 break;
///             }
///             done += 1;
///         }
///         done
///     });
///     worker.cancel();
///     worker.await
/// })
/// .await;
/// assert_eq!(done, 0);
/// # });
/// ```
pub fn checkpoint() -> Result<(), Cancelled> {
    with_current(|ambient| match ambient {
        Some(Ambient::Token(token)) => token.check(),
        Some(Ambient::Task(task)) => task.token().check(),
        Some(Ambient::Branch(branch)) => branch.check(),
        None => Ok(()),
    })
}

/// Whether the current task is cancelled; see [`checkpoint`].
pub fn is_cancelled() -> bool {
    with_current(|ambient| match ambient {
        Some(Ambient::Token(token)) => token.is_cancelled(),
        Some(Ambient::Task(task)) => task.token().is_cancelled(),
        Some(Ambient::Branch(branch)) => branch.is_cancelled(),
        None => false,
    })
}
