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
use crate::scope::cell::TaskRef;
use crate::sync::const_thread_local;

/// What a scope or combinator made current for the poll in progress.
pub(crate) enum Ambient {
    Token(CancelToken),
    /// A scope's child: the slot's current task, whose token is made on
    /// first demand.
    Task,
    /// A combinator's branch: moved in for the poll and back out after it,
    /// so a token made on demand during the poll is kept (`cancel::branch`).
    Branch(BranchToken),
}

/// The thread's ambient state.
///
/// `task` is the scope task (a child or a body) being polled: set only by a
/// scope's poll paths, so wrappers that make a token current (`shield`,
/// `cancel_when`, combinator branches, clean-up) hide the task's token but
/// not the task itself; snapshots and nested scopes find it through them.
/// Keeping both in one slot, with the header moved in and out, costs a
/// child's poll no reference-count traffic.
struct Slot {
    ambient: Option<Ambient>,
    task: Option<TaskRef>,
}

const_thread_local! {
    static CURRENT: RefCell<Slot> = RefCell::new(Slot { ambient: None, task: None });
}

/// Restores the previous ambient token when dropped, also on unwind.
#[must_use = "the ambient token is restored as soon as the guard is dropped"]
pub(crate) struct Entered {
    previous: Option<Ambient>,
}

/// Makes `ambient` current until the returned guard is dropped.
pub(crate) fn enter(ambient: Ambient) -> Entered {
    let previous = replace_current(Some(ambient));
    Entered { previous }
}

impl Drop for Entered {
    fn drop(&mut self) {
        let restored = self.previous.take();
        // Dropped outside the borrow: dropping a token may run arbitrary code.
        let replaced = replace_current(restored);
        drop(replaced);
    }
}

/// Empties the thread's slot (ambient token and task) until the returned
/// guard is dropped, also on unwind.
///
/// For a parallel scope's fan-out: while the calling thread waits in
/// rayon's scope for its helpers, a pool thread runs other pool work
/// (stolen jobs), which must not see the task that happens to be polling
/// the scope (its token, its place in snapshots). The fan-out's own child
/// polls set the slot for each poll, as everywhere.
#[cfg_attr(not(feature = "parallel"), allow(dead_code))]
pub(crate) fn detach() -> Detached {
    let previous = CURRENT.with(|current| {
        let mut slot = current.borrow_mut();
        (slot.ambient.take(), slot.task.take())
    });
    Detached {
        previous: Some(previous),
    }
}

/// Restores what [`detach`] took out of the slot.
#[must_use = "the slot is restored as soon as the guard is dropped"]
#[cfg_attr(not(feature = "parallel"), allow(dead_code))]
pub(crate) struct Detached {
    previous: Option<(Option<Ambient>, Option<TaskRef>)>,
}

impl Drop for Detached {
    fn drop(&mut self) {
        let Some((ambient, task)) = self.previous.take() else {
            return;
        };
        let replaced = CURRENT.with(|current| {
            let mut slot = current.borrow_mut();
            (
                std::mem::replace(&mut slot.ambient, ambient),
                std::mem::replace(&mut slot.task, task),
            )
        });
        // Dropped outside the borrow: dropping a token may run arbitrary code.
        drop(replaced);
    }
}

/// Runs `poll` with `task` as the current scope task and `ambient` as its
/// ambient token (`Ambient::Task` for a child, the scope's token for a
/// body), then restores what was there and gives `task` back.
///
/// One thread-local access for the whole poll, and the header is moved in
/// and out: a child's poll costs no reference-count traffic. The slot is not
/// borrowed while `poll` runs, so `poll` may use it (nested scopes do).
#[inline]
pub(crate) fn run_as_task<R>(
    task: TaskRef,
    ambient: Ambient,
    poll: impl FnOnce() -> R,
) -> (TaskRef, R) {
    CURRENT.with(|current| {
        let previous = {
            let mut slot = current.borrow_mut();
            (slot.ambient.replace(ambient), slot.task.replace(task))
        };
        let mut restore = Restore {
            current,
            previous: Some(previous),
        };
        let output = poll();
        let (ours, task) = restore.restore();
        // Dropped outside the borrow: dropping a token may run arbitrary code.
        drop(ours);
        let task = task.unwrap_or_else(|| unreachable!("the slot gives back the task entered"));
        (task, output)
    })
}

/// Puts back the previous task and ambient token, also on unwind.
struct Restore<'a> {
    current: &'a RefCell<Slot>,
    previous: Option<(Option<Ambient>, Option<TaskRef>)>,
}

impl Restore<'_> {
    fn restore(&mut self) -> (Option<Ambient>, Option<TaskRef>) {
        let Some((ambient, task)) = self.previous.take() else {
            return (None, None);
        };
        let mut slot = self.current.borrow_mut();
        let ours = std::mem::replace(&mut slot.ambient, ambient);
        (ours, std::mem::replace(&mut slot.task, task))
    }
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        // Only on unwind: the normal path restored already.
        let replaced = self.restore();
        drop(replaced);
    }
}

fn with_current<R>(f: impl FnOnce(Option<&Ambient>, Option<&TaskRef>) -> R) -> R {
    CURRENT.with(|current| {
        let slot = current.borrow();
        f(slot.ambient.as_ref(), slot.task.as_ref())
    })
}

/// `f` must not run user code: it holds the slot borrowed.
pub(crate) fn with_current_mut<R>(
    f: impl FnOnce(Option<&mut Ambient>, Option<&TaskRef>) -> R,
) -> R {
    CURRENT.with(|current| {
        let mut slot = current.borrow_mut();
        let slot = &mut *slot;
        f(slot.ambient.as_mut(), slot.task.as_ref())
    })
}

/// Swaps the ambient token; the caller drops what it gets back. The current
/// task stays.
pub(crate) fn replace_current(ambient: Option<Ambient>) -> Option<Ambient> {
    CURRENT.with(|current| std::mem::replace(&mut current.borrow_mut().ambient, ambient))
}

/// The scope task (child or body) being polled on this thread, if any;
/// also found through wrappers that made another token current.
pub(crate) fn current_task() -> Option<TaskRef> {
    CURRENT.with(|current| current.borrow().task.clone())
}

/// Whether the task being polled on this thread is `task`, or a task of a
/// scope polled (at any depth) inside it: one that `task` cannot finish
/// before.
///
/// The walk follows the task polling each scope now, not the one that
/// created it: a scope future made inside `task` but polled as its sibling
/// does not wait for `task`'s end. A scope polled outside every task (by an
/// executor of its own, on another thread) has no poller; there the walk
/// goes on through its creator, which may well be waiting for it: a false
/// alarm there is a clear panic, a missed self-join a silent hang.
pub(crate) fn runs_inside(task: &TaskRef) -> bool {
    let mut next = current_task();
    while let Some(running) = next {
        if TaskRef::ptr_eq(&running, task) {
            return true;
        }
        let shared = running.shared();
        next = shared.poller().or_else(|| shared.info().parent().cloned());
    }
    false
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
///
/// # Where it does not reach
///
/// The ambient token belongs to the *poll* in progress on this thread, not
/// to the future: it is set while a scope (or [`cancel_when`](crate::cancel_when),
/// [`shield`](crate::shield), a combinator's branch) polls its task, and
/// restored when that poll returns. Work handed to another executor is
/// polled there, outside that poll: a future given to `tokio::spawn`, a
/// closure run on a `std::thread`, `tokio::task::spawn_blocking` or a
/// thread pool sees no ambient token, so there `current_token()` returns a
/// fresh token that nobody else holds, [`checkpoint`] returns `Ok(())`,
/// [`is_cancelled`] returns `false` and [`cancelled()`](cancelled) never
/// completes. (A closure that a pool happens to run on the polling thread
/// itself, as rayon may, does see it: do not rely on either.) Call
/// `current_token()` before handing the work over and move the token in:
///
/// ```
/// # futures::executor::block_on(async {
/// taskscope::scope(|s| async move {
///     s.cancel();
///     let token = taskscope::current_token(); // captured inside the scope
///     let seen = std::thread::spawn(move || {
///         // On another thread: no ambient token here.
///         assert!(!taskscope::current_token().is_cancelled());
///         token.is_cancelled()
///     })
///     .join()
///     .unwrap();
///     assert!(seen);
/// })
/// .await;
/// # });
/// ```
///
/// # Panics
///
/// Never, short of a call from a thread-local's destructor after this
/// thread's ambient slot was torn down (where `std`'s thread-local access
/// panics).
pub fn current_token() -> CancelToken {
    enum Found {
        Token(CancelToken),
        Task(TaskRef),
        Nothing,
    }
    // Making a branch's token runs no user code, so it may happen in place.
    let found = with_current_mut(|ambient, task| match (ambient, task) {
        (Some(Ambient::Token(token)), _) => Found::Token(token.clone()),
        (Some(Ambient::Task), Some(task)) => Found::Task(task.clone()),
        (Some(Ambient::Branch(branch)), _) => Found::Token(branch.token()),
        (Some(Ambient::Task), None) | (None, _) => Found::Nothing,
    });
    match found {
        Found::Token(token) => token,
        Found::Task(task) => task.token().token(),
        Found::Nothing => CancelToken::new(),
    }
}

/// The current token if a scope's task, a combinator's branch or a token
/// wrapper is being polled on this thread; `None` outside all of them,
/// where [`current_token`] would make a fresh root token every call. A new
/// scope hangs under it.
pub(crate) fn current_token_in_task() -> Option<CancelToken> {
    with_current(|ambient, _| ambient.is_some()).then(current_token)
}

/// Completes once the current task is cancelled; see [`current_token`].
///
/// The token is looked up when `cancelled()` is called, not when the future
/// is polled: the future follows the token of the task that made it,
/// wherever it is awaited. Called where no ambient token reaches, it
/// follows a fresh token that nobody else holds, so it never completes (see
/// [`current_token`]'s "Where it does not reach").
///
/// # Cancel safety
///
/// Cancel-safe: dropping it loses nothing.
///
/// # Panics
///
/// Never panics, short of a call from a thread-local's destructor after
/// this thread's ambient slot was torn down (where `std`'s thread-local
/// access panics). Polling the future again after it completed returns the
/// same error again (see [`WhenCancelled`]).
pub fn cancelled() -> WhenCancelled {
    current_token().cancelled()
}

/// `Err(Cancelled)` once the current task is cancelled, `Ok(())` before.
///
/// Cheap (a few atomic loads, no lock until the task is cancelled): call it between units of work and let `?`
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
///
/// # Panics
///
/// Never, short of a call from a thread-local's destructor after this
/// thread's ambient slot was torn down (where `std`'s thread-local access
/// panics).
pub fn checkpoint() -> Result<(), Cancelled> {
    with_current(|ambient, task| match (ambient, task) {
        (Some(Ambient::Token(token)), _) => token.check(),
        (Some(Ambient::Task), Some(task)) => task.token().check(),
        (Some(Ambient::Branch(branch)), _) => branch.check(),
        (Some(Ambient::Task), None) | (None, _) => Ok(()),
    })
}

/// Whether the current task is cancelled; see [`checkpoint`].
///
/// # Panics
///
/// Never, short of a call from a thread-local's destructor after this
/// thread's ambient slot was torn down (where `std`'s thread-local access
/// panics).
pub fn is_cancelled() -> bool {
    with_current(|ambient, task| match (ambient, task) {
        (Some(Ambient::Token(token)), _) => token.is_cancelled(),
        (Some(Ambient::Task), Some(task)) => task.token().is_cancelled(),
        (Some(Ambient::Branch(branch)), _) => branch.is_cancelled(),
        (Some(Ambient::Task), None) | (None, _) => false,
    })
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::introspect::ScopeInfo;
    use crate::scope::shared::ScopeShared;
    use crate::scope::task::TaskHeader;
    use crate::sync::WakerArc;

    fn header() -> TaskRef {
        let shared = WakerArc::new(ScopeShared::new(CancelToken::new(), ScopeInfo::root()));
        TaskRef::body(TaskHeader::new(
            shared,
            0,
            1,
            None,
            std::panic::Location::caller(),
        ))
    }

    #[test]
    fn a_wrapper_token_hides_the_tasks_token_but_not_the_task() {
        let task = header();
        let (back, ()) = run_as_task(task.clone(), Ambient::Task, || {
            let wrapper = CancelToken::new();
            {
                let _wrapped = enter(Ambient::Token(wrapper.clone()));
                assert!(TaskRef::ptr_eq(&current_task().unwrap(), &task));
                wrapper.cancel();
                assert!(is_cancelled(), "the wrapper's token is the ambient one");
            }
            assert!(!is_cancelled(), "the task's own token is back");
        });
        assert!(TaskRef::ptr_eq(&back, &task));
        assert!(current_task().is_none());
    }

    #[test]
    fn nested_tasks_restore_the_outer_one_also_on_unwind() {
        let outer = header();
        let inner = header();
        run_as_task(outer.clone(), Ambient::Task, || {
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_as_task(inner.clone(), Ambient::Task, || {
                    assert!(TaskRef::ptr_eq(&current_task().unwrap(), &inner));
                    panic!("unwinding through the guard");
                })
            }));
            assert!(caught.is_err());
            assert!(TaskRef::ptr_eq(&current_task().unwrap(), &outer));
        });
        assert!(current_task().is_none());
    }
}
